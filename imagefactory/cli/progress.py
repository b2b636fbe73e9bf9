"""Build progress: a live table on a terminal, one plain line per event in CI logs."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from imagefactory.build.schedule import Outcome

STEP = re.compile(r"^#\d+ \[(?:[^\]]* )?(\d+)/(\d+)\] (.*)$")
STYLES = {
    "queued": "dim",
    "building": "cyan",
    "built": "green",
    "reused": "green",
    "unreproducible": "yellow",
    "failed": "bold red",
    "skipped": "yellow",
}


@dataclass
class _Row:
    status: str = "queued"
    detail: str = ""
    started: float | None = None
    seconds: float | None = None


@dataclass
class PlainProgress:
    """One line per event; with ``verbose`` every build log line too (prefixed by the image)."""

    console: Console
    verbose: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    steps: dict[str, str] = field(default_factory=dict)

    def queued(self, ref: str) -> None:
        pass

    def started(self, ref: str, why: str) -> None:
        self._say(f"[{ref}] building ({why})")

    def log(self, ref: str, line: str) -> None:
        if self.verbose:
            self._say(f"[{ref}] {line}")
            return
        match = STEP.match(line)
        if match and self.steps.get(ref) != match.group(1):
            self.steps[ref] = match.group(1)
            self._say(f"[{ref}] step {match.group(1)}/{match.group(2)}: {match.group(3)[:100]}")

    def finished(self, outcome: Outcome) -> None:
        digest = f" {outcome.digest}" if outcome.digest else ""
        self._say(
            f"[{outcome.ref}] {outcome.status} in {outcome.seconds:.1f}s: {outcome.detail}{digest}"
        )

    def _say(self, text: str) -> None:
        with self.lock:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)


class LiveProgress:
    """A table that updates in place: queued / building step n/m / reused / built / failed."""

    def __init__(self, console: Console) -> None:
        self.rows: dict[str, _Row] = {}
        self.lock = threading.Lock()
        self.live = Live(
            self._table(),
            console=console,
            refresh_per_second=4,
            transient=False,
            get_renderable=self._table,
        )

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def queued(self, ref: str) -> None:
        with self.lock:
            self.rows[ref] = _Row()

    def started(self, ref: str, why: str) -> None:
        with self.lock:
            self.rows[ref] = _Row("building", why, time.monotonic())

    def log(self, ref: str, line: str) -> None:
        match = STEP.match(line)
        if match:
            with self.lock:
                self.rows[
                    ref
                ].detail = f"step {match.group(1)}/{match.group(2)}: {match.group(3)[:60]}"

    def finished(self, outcome: Outcome) -> None:
        with self.lock:
            self.rows[outcome.ref] = _Row(outcome.status, outcome.detail, None, outcome.seconds)

    def _table(self) -> Table:
        table = Table(show_edge=False, header_style="bold")
        for column in ("image", "status", "time", "detail"):
            table.add_column(column, overflow="ellipsis", no_wrap=True)
        with self.lock:
            for ref, row in self.rows.items():
                seconds = (
                    row.seconds
                    if row.seconds is not None
                    else (time.monotonic() - row.started if row.started else None)
                )
                table.add_row(
                    Text(ref),
                    Text(row.status, style=STYLES.get(row.status, "")),
                    Text(f"{seconds:.0f}s" if seconds is not None else ""),
                    Text(row.detail),
                )
        return table
