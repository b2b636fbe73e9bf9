"""Fuzz run: mutated copies of the example catalog through validate, plan, render and ci generate.

Each catalog is the example with one or two of its files mutated (once or twice) by the strategies of
tests/unit/test_properties.py (structural mutations of the YAML data, and raw byte damage). Every
command runs in-process (typer's runner, ``--json``), bounded by an alarm, and what it did is
counted: its exit code, a traceback (an exception that escaped the CLI), a hang (the alarm), or
more than one JSON document on stdout. Prints the exit-code table per command, and what a later
command refused in a catalog validate accepted; fails (exit 1) on any traceback, hang, exit 3 or
broken JSON.

    .venv/bin/python bench/fuzz_catalogs.py --catalogs 1000
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from typer.testing import CliRunner  # noqa: E402

import imagefactory.cli  # noqa: E402, F401  (registers the commands)
from imagefactory.cli import app  # noqa: E402
from tests.unit.test_properties import (  # noqa: E402  (the repository is not installed)
    EXAMPLE_DATA,
    EXAMPLE_TEXT,
    IMAGE_FILES,
    PROJECT_FILE,
    RAW_MUTATIONS,
    _dump,
    apply_raw,
    example_copy,
    mutate,
)

COMMANDS = {
    "validate": ["validate", "--json"],
    "plan": ["plan", "--json"],
    "render": ["render", "--out", "rendered-fuzz", "--json"],
    "ci generate": ["ci", "generate", "--out", "ci-fuzz.yml", "--json"],
}
ALARM_SECONDS = 20


class Hang(Exception):
    pass


@contextmanager
def alarm(seconds: int) -> Iterator[None]:
    def ring(signum: int, frame: FrameType | None) -> None:
        raise Hang

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def outcome(root: Path, args: list[str]) -> tuple[str, str]:
    """What the command did, and its error message when it refused."""
    runner = CliRunner()
    try:
        with alarm(ALARM_SECONDS):
            result = runner.invoke(app, ["-C", str(root), *args], catch_exceptions=True)
    except Hang:
        return "hang", ""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return f"traceback ({type(result.exception).__name__})", repr(result.exception)
    try:
        document = json.loads(result.stdout)
    except ValueError:
        return f"exit {result.exit_code}, not one JSON document", result.stdout[-300:]
    return f"exit {result.exit_code}", str(document.get("error", ""))[:300]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogs", type=int, default=1000)
    options = parser.parse_args()
    table: dict[str, collections.Counter[str]] = {c: collections.Counter() for c in COMMANDS}
    bad: list[str] = []
    later: list[str] = []
    done = 0

    @settings(
        max_examples=options.catalogs,
        database=None,
        deadline=None,
        derandomize=True,  # the same catalogs every run: a finding can be replayed
        suppress_health_check=list(HealthCheck),
    )
    @given(
        targets=st.lists(
            st.sampled_from([PROJECT_FILE, *IMAGE_FILES]), min_size=1, max_size=2, unique=True
        ),
        raw=st.booleans(),
        data=st.data(),
    )
    def one(targets: list[str], raw: bool, data: st.DataObject) -> None:
        nonlocal done
        texts: dict[str, bytes] = {}
        for target in targets:
            if raw:
                text = EXAMPLE_TEXT[target]
                for mutation in data.draw(st.lists(RAW_MUTATIONS, min_size=1, max_size=2)):
                    text = apply_raw(text, mutation)
                texts[target] = text
            else:
                document: Any = copy.deepcopy(EXAMPLE_DATA[target])
                for _ in range(data.draw(st.integers(min_value=1, max_value=2))):
                    mutate(data, document, project=target == PROJECT_FILE)
                texts[target] = _dump(document, None, True)
        with example_copy() as root:
            for target, text in texts.items():
                (root / target).write_bytes(text)
            valid = False
            for name, args in COMMANDS.items():
                seen, error = outcome(root, args)
                table[name][seen] += 1
                if not seen.startswith("exit") or seen.startswith("exit 3") or "JSON" in seen:
                    bad.append(f"{name}: {seen} ({', '.join(texts)}): {error}")
                if name == "validate":
                    valid = seen == "exit 0"
                elif valid and seen != "exit 0":  # validate let through what this refused
                    later.append(f"{name}: {error}")
        done += 1

    started = time.monotonic()
    one()
    seconds = time.monotonic() - started
    print(f"{done} mutated catalogs x {len(COMMANDS)} commands in {seconds:.0f} s")
    outcomes = sorted({o for counter in table.values() for o in counter})
    print("| command | " + " | ".join(outcomes) + " |")
    print("|---|" + "---|" * len(outcomes))
    for name, counter in table.items():
        print(f"| {name} | " + " | ".join(str(counter.get(o, 0)) for o in outcomes) + " |")
    for line in bad[:20]:
        print("BAD", line)
    for line in later[:20]:
        print("VALID, THEN REFUSED", line)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
