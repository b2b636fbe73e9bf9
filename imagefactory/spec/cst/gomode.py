"""Go ``os.FileMode`` strings (CST's ``permissions``), parsed into a type and an octal mode."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Go's os.FileMode.String() writes these letters, in this order, then rwxrwxrwx.
_GO_MODE_LETTERS = "dalTLDpSugct?"
_GO_MODE = re.compile(r"(?P<letters>[dalTLDpSugct?]+|-)(?P<perms>(?:[r-][w-][x-]){3})")
_LS_MODE = re.compile(r"(?P<type>[-dlcbps])(?P<perms>[r-][w-][xsS-][r-][w-][xsS-][r-][w-][xtT-])")
_UNSUPPORTED_TYPES = {
    "a": "append-only",
    "l": "exclusive-use",
    "T": "temporary",
    "D": "device",
    "p": "named pipe",
    "S": "socket",
    "c": "character device",
    "?": "irregular file",
}


class ModeProblem(ValueError):
    """A ``permissions`` text that CST never matches, or that a file check cannot express."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class GoMode:
    type: str  # file, directory or symlink
    bits: int  # permission bits with setuid (0o4000), setgid (0o2000) and sticky (0o1000)

    @property
    def mode(self) -> str:
        return f"{self.bits:04o}"


def parse_go_mode(text: str) -> GoMode:
    """Parse CST's ``permissions``: the text of Go's ``os.FileMode.String()``.

    Raises :class:`ModeProblem`, with a hint, for text CST never matches (``ls -l`` style such
    as ``drwxrwxrwt``) and for file types a file check cannot express (pipes, devices…).
    """
    match = _GO_MODE.fullmatch(text)
    if match is None:
        raise ModeProblem(f"'{text}' is not a Go file mode string", _ls_hint(text))
    letters = match.group("letters").replace("-", "")
    if letters == "l":
        raise ModeProblem(
            f"'{text}' marks an exclusive-use file in Go's notation; CST never matches "
            "an ls-style symlink mode",
            f"Go writes symlinks with a capital L: 'L{match.group('perms')}'",
        )
    canonical = "".join(c for c in _GO_MODE_LETTERS if c in letters)
    if canonical != letters:
        raise ModeProblem(
            f"'{text}' is not how Go writes a mode, so CST never matches it",
            f"Go writes the letters in the order {_GO_MODE_LETTERS!r}: "
            f"'{canonical or '-'}{match.group('perms')}'",
        )
    for letter, kind in _UNSUPPORTED_TYPES.items():
        if letter in letters:
            raise ModeProblem(
                f"'{text}' asks for a {kind}: file checks know files, directories and symlinks"
            )
    kind = "directory" if "d" in letters else "symlink" if "L" in letters else "file"
    if "d" in letters and "L" in letters:
        raise ModeProblem(f"'{text}' is both a directory and a symlink")
    bits = 0
    for index, char in enumerate(match.group("perms")):
        if char != "-":
            bits |= 1 << (8 - index)
    bits |= (0o4000 if "u" in letters else 0) | (0o2000 if "g" in letters else 0)
    bits |= 0o1000 if "t" in letters else 0
    return GoMode(kind, bits)


def _ls_hint(text: str) -> str:
    match = _LS_MODE.fullmatch(text)
    if match is None:
        return "write it as Go prints it: '-rw-r--r--', 'drwxr-xr-x', 'dtrwxrwxrwx', 'Lrwxrwxrwx'"
    perms = list(match.group("perms"))
    letters = {"-": "-", "d": "d", "l": "L", "c": "Dc", "b": "D", "p": "p", "s": "S"}[
        match.group("type")
    ]
    extra = ""
    for position, special in ((2, "u"), (5, "g"), (8, "t")):
        if perms[position] in "sStT":
            extra += special
            perms[position] = "x" if perms[position] in "st" else "-"
    letters = letters.replace("-", "")
    go = "".join(c for c in _GO_MODE_LETTERS if c in letters + extra) or "-"
    return f"CST compares Go's mode string, not ls -l output: write '{go}{''.join(perms)}'"
