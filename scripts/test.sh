#!/usr/bin/env bash
# The whole test suite: lint, format, types, then the unit and the integration tests.
# Run scripts/setup.sh once first (it installs the tools and starts dockerd and the registry).
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -k loader -x
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=.venv/bin
[[ -x $venv/pytest ]] || { echo "error: no .venv here; run: bash scripts/setup.sh" >&2; exit 1; }

echo "==> ruff"
"$venv/ruff" check .
"$venv/ruff" format --check --quiet .
echo "==> mypy (strict on imagefactory/)"
"$venv/mypy"
# Both folders by name: a bare `pytest` collects tests/unit only (testpaths in pyproject.toml),
# the 25 slowest tests are listed at the end (what to trim when CI nears its time),
# and the integration tests fail (not skip) when the services are missing.
echo "==> pytest (unit + integration)"
"$venv/pytest" tests/unit tests/integration --durations=25 "$@"
