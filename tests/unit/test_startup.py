"""What a command's start imports: every command imports the whole CLI, so a heavy module
imported at the top of any package slows every command (and every CI job) down."""

from __future__ import annotations

import subprocess
import sys

#: Modules no command needs at its start: jsonschema's format checkers build an IRI grammar
#: (rfc3987_syntax) that took 1.7 s of the CLI's 2.8 s import; only SBOM validation uses them.
HEAVY = ("jsonschema", "rfc3987_syntax")


def test_the_cli_starts_without_the_schema_validator() -> None:
    probe = (
        f"import sys, imagefactory.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == ""
