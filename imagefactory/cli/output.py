"""How commands speak: human text to the terminal, or one JSON document for machines.

Results go to stdout; errors, hints and progress go to stderr, so ``--json`` output can be piped.
With ``NO_COLOR`` set and not empty (https://no-color.org) both print plain text: no colour and
no other styling escape either, whatever the terminal (FORCE_COLOR included).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class Output:
    json: bool = False

    @cached_property
    def out(self) -> Console:
        """The terminal's stdout (rich is loaded by the first command that prints)."""
        return _console(stderr=False)

    @cached_property
    def err(self) -> Console:
        return _console(stderr=True)

    def data(self, document: Any) -> None:
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")

    def text(self, message: str) -> None:
        self.out.print(message, markup=False)

    def table(self, title: str | None, columns: list[str], rows: list[list[str]]) -> None:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))  # cells are data, never markup
        self.out.print(table)

    def error(self, message: str, hint: str | None = None) -> None:
        self.err.print(f"error: {message}", style="red", markup=False)
        if hint:
            self.err.print(f"hint: {hint}", style="yellow", markup=False)


def _console(*, stderr: bool) -> Console:
    from rich.console import Console

    plain = os.environ.get("NO_COLOR", "") != ""
    return Console(
        stderr=stderr, soft_wrap=True, highlight=False, color_system=None if plain else "auto"
    )
