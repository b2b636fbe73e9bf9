"""``wheels:``: Python wheels from the image's own folder, found without trusting the disk.

An entry is a relative path whose file name may hold ``*`` (``dist/imagefactory-*.whl``, the
grammar is ``grammar.wheel_pattern``): a wheel built next to the image, whose version is in its
name. :func:`wheel_files` lists what the entries match: plain files only, in a folder that
resolves inside the image folder (a symlink there could lead the build context to any file of
the runner). The content hash, the Dockerfile and the build context all take their list from it.
A clean checkout holds no built wheel, so ``validate`` takes an entry that matches nothing;
:func:`wheel_problems` says why a build cannot start.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from imagefactory.errors import UserError
from imagefactory.spec.walk import entry_of

#: Where the build context holds the wheels, and where the pip step finds them (a bind mount:
#: no layer keeps the files).
CONTEXT_FOLDER = "wheels"
TARGET_FOLDER = "/run/imagefactory/wheels"
#: A matched file's name reaches the RUN line (escaped as well): a wheel name's characters only.
WHEEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*\.whl")


@dataclass(frozen=True)
class Wheel:
    """One wheel file an entry matched: its path, file name and distribution (canonical)."""

    path: Path
    name: str
    distribution: str


def wheel_files(folder: Path, patterns: list[str]) -> list[Wheel]:
    """The files ``patterns`` match in ``folder``, each once, sorted by file name; UserError
    for a folder that leads out of ``folder`` or a match that is not a plain file."""
    if not patterns:  # most images: no folder is resolved for them
        return []
    found: dict[Path, Wheel] = {}
    base = folder.resolve()
    for pattern in patterns:
        pure = PurePosixPath(pattern)
        parent = folder / pure.parent
        if not parent.is_dir():
            continue
        if not parent.resolve().is_relative_to(base):
            raise UserError(
                f"wheels: '{pattern}': '{pure.parent}' leads out of the image folder {folder}",
                hint="wheels come from the image's own folder; replace the symlink",
            )
        with os.scandir(parent) as scan:
            names = sorted(e.name for e in scan if fnmatch.fnmatchcase(e.name, pure.name))
        for name in names:
            entry = entry_of(parent / name, name)
            if entry.kind != "file":
                raise UserError(
                    f"wheels: '{pattern}' matches {parent / name}, a {entry.kind}",
                    hint="a wheel is a plain file in the image folder",
                )
            found.setdefault(
                parent / name, Wheel(parent / name, name, _distribution(pattern, name))
            )
    return sorted(found.values(), key=lambda w: w.name)


def _distribution(pattern: str, name: str) -> str:
    """The canonical distribution of the wheel file ``name`` (PEP 427, by packaging)."""
    try:
        if WHEEL_NAME.fullmatch(name):
            return str(parse_wheel_filename(name)[0])
    except InvalidWheelFilename:
        pass
    raise UserError(
        f"wheels: '{pattern}' matches {name!r}, which is not a wheel file name",
        hint="NAME-VERSION-PYTHON-ABI-PLATFORM.whl of letters, digits and . _ + - (PEP 427); "
        "rename or remove it",
    )


def wheel_problems(folder: Path, patterns: list[str]) -> list[str]:
    """Why the wheels of an image cannot be installed: an entry that matches no file, or two
    files of one distribution (pip would refuse the pair, or install whichever came last)."""
    matched = {pattern: wheel_files(folder, [pattern]) for pattern in patterns}
    problems = [f"wheels: '{p}' matches no file" for p, wheels in matched.items() if not wheels]
    seen: dict[str, str] = {}
    unique = {wheel.path: wheel for wheels in matched.values() for wheel in wheels}
    for wheel in sorted(unique.values(), key=lambda w: w.name):
        if wheel.distribution in seen:
            problems.append(
                f"wheels: {seen[wheel.distribution]} and {wheel.name} are both "
                f"{wheel.distribution}: keep one"
            )
        seen.setdefault(wheel.distribution, wheel.name)
    return problems
