"""The one exception root of imagefactory and its families.

Every error a user can cause or meet is an ``ImageFactoryError``. Each subclass builds its own
message and carries the exit code of its family; ``imagefactory.cli.app`` is the one place that
turns them into output and an exit status. Constructors have no side effects.

Exit codes (documented in the README):

* 0 — success
* 1 — user or spec error (bad catalog, unknown image, refused operation)
* 2 — usage error (bad command-line arguments; raised by click itself)
* 3 — internal error or a failed external tool
* 130 — interrupted (Ctrl-C)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


class ImageFactoryError(Exception):
    """Root of every error imagefactory raises on purpose."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\nhint: {self.hint}"


class UserError(ImageFactoryError):
    """The user asked for something that cannot be done as asked (exit 1)."""

    exit_code = EXIT_USER_ERROR


@dataclass(frozen=True)
class SpecIssue:
    """One problem found in one catalog file: where it is, what was expected, how to fix it."""

    file: Path
    key_path: str
    message: str
    line: int | None = None
    hint: str | None = None

    def location(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        return f"{where}: {self.key_path}" if self.key_path else where

    def render(self) -> str:
        text = f"{self.location()}: {self.message}"
        return text if self.hint is None else f"{text}\n    hint: {self.hint}"


class SpecError(UserError):
    """The catalog is invalid. Carries every issue found in one run, not just the first."""

    def __init__(self, issues: list[SpecIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (str(i.file), i.line or 0, i.key_path))
        count = len(self.issues)
        header = f"the catalog has {count} error{'s' if count != 1 else ''}:"
        super().__init__("\n".join([header, *("  " + i.render() for i in self.issues)]))


class ToolError(ImageFactoryError):
    """An external program failed: the command, its exit code and the tail of its output."""

    def __init__(
        self, argv: list[str], returncode: int, output_tail: str, *, hint: str | None = None
    ) -> None:
        self.argv = argv
        self.returncode = returncode
        self.output_tail = output_tail
        shown = " ".join(argv)
        message = (
            f"command timed out: {shown}"
            if returncode == -1
            else f"command failed with exit code {returncode}: {shown}"
        )
        if output_tail:
            message += "\n" + "\n".join("  | " + line for line in output_tail.splitlines())
        super().__init__(message, hint=hint)
