"""Benchmark: the CLI's start-up against the interpreter's own.

Three commands, each a fresh process of this interpreter: ``python -c pass`` (the floor no
command goes under), ``python -m imagefactory --version`` (the CLI declared: typer, click, rich
and the modules of imagefactory.cli; tests/unit/test_startup.py checks which) and ``python -m
imagefactory -C <repository root> plan --json`` on the example catalog (the catalog loaded
and planned: what the lightest real command costs). They run interleaved, the order rotating
each round, ``--repeat`` times each after one warm-up run of each; the median is reported with
min and max. ``cli_start_s`` is median(--version) - median(python -c pass), ``plan_start_s``
median(plan --json) - median(python -c pass): what imagefactory adds to the interpreter.

Needs no Docker and no network. The commands run in a temporary folder; the tree measured is
the first one holding imagefactory on ``PYTHONPATH``, else this checkout (the first line of the
report names it)::

    .venv/bin/python bench/startup_bench.py [--repeat 9] [--results FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stats import summary  # bench/stats.py: the script's folder is on sys.path

REPO = Path(__file__).resolve().parent.parent
COMMANDS = {
    "python_pass": ("python -c pass", ["-c", "pass"]),
    "version": ("imagefactory --version", ["-m", "imagefactory", "--version"]),
    "plan": ("imagefactory plan --json", ["-m", "imagefactory", "-C", str(REPO), "plan", "--json"]),
}


def environment() -> dict[str, str]:
    """This environment, with this checkout after whatever ``PYTHONPATH`` already names."""
    paths = [p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def run(arguments: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds one run of ``python ARGUMENTS`` takes in ``cwd``; fails loudly."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *arguments], cwd=cwd, env=env, capture_output=True, check=False
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip()
        raise SystemExit(f"python {' '.join(arguments)} exited {proc.returncode}: {detail}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--results", type=Path, help="also write the results here (JSON)")
    args = parser.parse_args()
    env = environment()
    # Not in a source tree: ``python -m`` puts the current folder first on sys.path.
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as folder:
        cwd = Path(folder)
        tree = subprocess.run(
            [sys.executable, "-c", "import imagefactory; print(imagefactory.__file__)"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        names = list(COMMANDS)
        for name in names:  # warm: the first run of each compiles and reads from disk
            run(COMMANDS[name][1], env, cwd)
        samples: dict[str, list[float]] = {name: [] for name in names}
        for index in range(args.repeat):
            rotated = names[index % len(names) :] + names[: index % len(names)]
            for name in rotated:
                samples[name].append(run(COMMANDS[name][1], env, cwd))
    measured = {name: summary(values) for name, values in samples.items()}
    results: dict[str, float] = {"repeat": args.repeat}
    for name, value in measured.items():
        for key, seconds in value.items():
            results[f"{name}_{key}_s"] = seconds
    floor = measured["python_pass"]["median"]
    results["cli_start_s"] = measured["version"]["median"] - floor
    results["plan_start_s"] = measured["plan"]["median"] - floor
    print(f"tree {Path(tree).parent}, {sys.executable}, {args.repeat} runs each")
    for name, (label, _) in COMMANDS.items():
        value = measured[name]
        print(
            f"  {label:<26} median {value['median']:6.3f}s"
            f"  min {value['min']:6.3f}s  max {value['max']:6.3f}s"
        )
    print(f"  cli_start_s  {results['cli_start_s']:.3f}  (--version - python -c pass)")
    print(f"  plan_start_s {results['plan_start_s']:.3f}  (plan --json - python -c pass)")
    if args.results:
        args.results.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
