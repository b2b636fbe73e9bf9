"""Walking a folder the catalog copies, without trusting what is on disk.

A catalog arrives through merge requests, so a folder named in ``files[].src`` may hold a
symlink loop, a symlink to ``/``, a FIFO, a socket or a device, or be made to be endless.
:func:`walk_tree` lists a folder without following symlinks (a symlink is an entry with its
target as written, which is how it is copied), refuses FIFOs, sockets and devices, and stops with
an error past :data:`MAX_TREE_ENTRIES` entries or :data:`MAX_TREE_DEPTH` levels. The content hash,
the check of ``files[].src`` and the copy into a build context all walk through it, so what is
hashed, checked and copied is the same list.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from imagefactory.errors import UserError

#: Entries (files, folders, symlinks) one copied folder may hold.
MAX_TREE_ENTRIES = 50_000
#: Folder levels below one copied folder.
MAX_TREE_DEPTH = 64

EntryKind = Literal["file", "dir", "symlink"]
SPECIAL_HINT = "only plain files, folders and symlinks can be copied into an image; remove it"


@dataclass(frozen=True)
class TreeEntry:
    """One entry below a walked folder: its path, its path relative to the folder (POSIX), its
    kind and, for a symlink, the target as written in the link ("" for others)."""

    path: Path
    relative: str
    kind: EntryKind
    link: str = ""


def walk_tree(folder: Path) -> list[TreeEntry]:
    """Every entry below ``folder`` (not ``folder`` itself) in the order of sorted paths,
    symlinks not followed. UserError for a FIFO, socket or device, or past the bounds."""
    entries: list[TreeEntry] = []
    pending: list[tuple[Path, str, int]] = [(folder, "", 1)]
    while pending:  # bounded: each folder is listed once, and the entries are capped
        current, prefix, depth = pending.pop()
        with os.scandir(current) as scan:
            children = sorted(scan, key=lambda e: e.name)
        for child in children:
            entry = entry_of(Path(child.path), f"{prefix}{child.name}")
            entries.append(entry)
            if len(entries) > MAX_TREE_ENTRIES:
                raise UserError(
                    f"{folder} holds more than {MAX_TREE_ENTRIES} entries",
                    hint="copy an archive, or a smaller folder",
                )
            if entry.kind == "dir":
                if depth >= MAX_TREE_DEPTH:
                    raise UserError(
                        f"{entry.path} is more than {MAX_TREE_DEPTH} folders deep",
                        hint="copy an archive, or a flatter folder",
                    )
                pending.append((entry.path, f"{entry.relative}/", depth + 1))
    return sorted(entries, key=lambda e: e.relative.split("/"))  # as sorted Paths are


def entry_of(path: Path, relative: str) -> TreeEntry:
    """What ``path`` is, not following a symlink; UserError when it is a special file."""
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        return TreeEntry(path, relative, "symlink", str(path.readlink()))
    if stat.S_ISDIR(mode):
        return TreeEntry(path, relative, "dir")
    if stat.S_ISREG(mode):
        return TreeEntry(path, relative, "file")
    raise UserError(f"{path} is {special_kind(mode)}, not a regular file", hint=SPECIAL_HINT)


def special_kind(mode: int) -> str:
    """'a FIFO', 'a socket', … for the mode of a file that is not regular."""
    kinds = {
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
    }
    return next((name for test, name in kinds.items() if test(mode)), "a special file")


def copy_problem(folder: Path, target: Path) -> str | None:
    """Why ``target`` (a path below the image folder ``folder`` that the spec copies) cannot be
    copied, or None: a FIFO, socket or device in it, a symlink in it that dangles, loops or leads
    out of ``folder``, or more entries or levels than the bounds. Never walks out of ``folder``."""
    problem, _ = copied_entries(folder, target)
    return problem


def copied_entries(folder: Path, target: Path) -> tuple[str | None, list[TreeEntry]]:
    """:func:`copy_problem`'s answer and the entries it walked: ``target`` and, for a folder,
    everything below it, relative to ``folder`` (empty when there is a problem)."""
    base = folder.resolve()
    try:
        top = entry_of(target, target.relative_to(folder).as_posix())
        entries = [top]
        if top.kind == "symlink":
            problem = _link_problem(top, base)
            if problem:
                return problem, []
        if target.is_dir():  # a symlink at the top is followed, as the copy follows it
            entries += [
                TreeEntry(e.path, f"{top.relative}/{e.relative}", e.kind, e.link)
                for e in walk_tree(target)
            ]
    except UserError as exc:
        return exc.message, []
    for entry in entries[1:]:
        problem = _link_problem(entry, base) if entry.kind == "symlink" else None
        if problem:
            return problem, []
    return None, entries


def _link_problem(entry: TreeEntry, base: Path) -> str | None:
    shown = entry.relative
    try:
        resolved = entry.path.resolve(strict=True)
    except FileNotFoundError:
        return f"'{shown}' is a dangling symlink (to '{entry.link}')"
    except (RuntimeError, OSError):  # Python 3.11 raises RuntimeError for a loop, 3.13 OSError
        return f"'{shown}' is a symlink loop"
    if not resolved.is_relative_to(base):
        return f"'{shown}' is a symlink pointing outside the image folder"
    mode = resolved.stat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return f"'{shown}' is a symlink to {special_kind(mode)}; {SPECIAL_HINT}"
    return None


def copy_into(source: Path, target: Path) -> None:
    """Copy the file or folder ``source`` to ``target`` (a symlink at the top is followed, as
    the spec names it; below it symlinks are copied as symlinks, modes and times kept)."""
    if source.is_dir():
        target.mkdir()
        entries = walk_tree(source)
        for entry in entries:
            destination = target / entry.relative
            if entry.kind == "dir":
                destination.mkdir()
            elif entry.kind == "symlink":
                destination.symlink_to(entry.link)
            else:
                shutil.copy2(entry.path, destination)
        for entry in reversed([e for e in entries if e.kind == "dir"]):  # after their contents
            shutil.copystat(entry.path, target / entry.relative)
        shutil.copystat(source, target)
    elif source.is_file():
        shutil.copy2(source, target)
    else:
        raise UserError(f"{source} is not a regular file or folder", hint=SPECIAL_HINT)
