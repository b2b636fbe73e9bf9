"""How commands speak: human text to the terminal, or one JSON document for machines.

Results go to stdout; errors, hints and progress go to stderr, so ``--json`` output can be piped.
"""

from __future__ import annotations

import json
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
        from rich.console import Console

        return Console(soft_wrap=True, highlight=False)

    @cached_property
    def err(self) -> Console:
        from rich.console import Console

        return Console(stderr=True, soft_wrap=True, highlight=False)

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
