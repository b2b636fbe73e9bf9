"""Files written whole, kept in their place, and read only when they are regular and bounded.

``write_atomically`` replaces a file whole or not at all (a temp file in the same folder, fsync,
rename). It never replaces a symlink, and given a ``root`` (a clone, a checkout, a project) the
file must lie inside it with no symlink on the way: the folders below ``root`` are opened one by
one without following links (O_NOFOLLOW), and the temp file is made, and renamed into place,
relative to the folder so opened (a folder swapped for a symlink meanwhile cannot redirect it).
``inside`` checks a path the same way before it is used (it refuses symlinks; the spec's
``resolves_inside`` follows them); ``read_inside`` reads a file under a root by the same rules.
``read_regular`` reads a file a setting names (a CA bundle): a FIFO would block and a device
never ends, so only regular files are read, up to ``READ_LIMIT`` bytes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path, PurePath

from imagefactory.errors import UserError

#: The most bytes ``read_inside`` and ``read_regular`` read.
READ_LIMIT = 16 * 1024 * 1024
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def inside(root: Path, relative: str | PurePath) -> Path:
    """``root / relative`` when it stays inside ``root``: not absolute, no ``..``, and no part of
    it that exists below ``root`` a symlink (``root`` itself may be one). Raises UserError."""
    path = root / relative
    current = root
    for part in _parts(root, path):
        current = current / part
        if current.is_symlink():
            raise _symlink_error(path, current)
    return path


def write_atomically(
    path: Path, data: bytes, *, mode: int | None = None, root: Path | None = None
) -> None:
    """Replace ``path`` with ``data``; a crash leaves the old file (or none), never half of one.

    Refused (UserError) when ``path`` is a symlink, and with ``root`` when ``path`` is not inside
    ``root`` or a folder between them is a symlink. Missing folders are made (``root`` too)."""
    base = path.parent if root is None else root
    *folders, name = _parts(base, path)
    base.mkdir(parents=True, exist_ok=True)
    folder = _open_folders(base, path, folders, create=True)
    try:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISLNK(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode):
                raise _symlink_error(path, path)
        temp = f".{name}.{secrets.token_hex(6)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        handle = os.open(temp, flags, 0o600, dir_fd=folder)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                if mode is not None:
                    os.fchmod(stream.fileno(), mode)
                os.fsync(stream.fileno())
            # relative to the folder opened link-free: a folder swapped for a symlink since
            # cannot redirect the rename
            os.replace(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=folder)
    finally:
        os.close(folder)


def read_inside(root: Path, relative: str | PurePath, *, limit: int = READ_LIMIT) -> bytes | None:
    """The bytes of ``root / relative``, or None when there is no such file. Refused (UserError)
    by the rules of ``inside``, and when it is not a regular file or holds more than ``limit``."""
    path = root / relative
    *folders, name = _parts(root, path)
    try:
        folder = _open_folders(root, path, folders, create=False)
    except FileNotFoundError:
        return None
    try:
        try:
            kind = os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(kind):
            raise _symlink_error(path, path)
        if not stat.S_ISREG(kind):  # before opening: opening a device may act
            raise _not_regular(str(path))
        return _read_handle(os.open(name, _READ | os.O_NOFOLLOW, dir_fd=folder), str(path), limit)
    finally:
        os.close(folder)


def read_regular(path: Path, *, what: str, limit: int = READ_LIMIT) -> bytes:
    """The bytes of the regular file ``path`` (symlinks followed), which a setting ``what``
    names. Refused (UserError) when it is missing, special (a FIFO, a device) or too large."""
    label = f"{what} {path}"
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # before opening: opening a device may act
            raise _not_regular(label)
        handle = os.open(path, _READ)
    except OSError as exc:
        raise UserError(f"cannot read {label}: {exc.strerror}") from exc
    return _read_handle(handle, label, limit)


def _read_handle(handle: int, label: str, limit: int) -> bytes:
    with os.fdopen(handle, "rb") as stream:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(label)
        data = stream.read(limit + 1)
    if info.st_size > limit or len(data) > limit:
        raise UserError(
            f"{label} is larger than {limit // (1024 * 1024)} MiB",
            hint="point the setting at the file that is meant; nothing this large is read",
        )
    return data


def _parts(root: Path, path: Path) -> list[str]:
    """The names from ``root`` down to ``path``; UserError when ``path`` is not below it."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = ()
    if not parts or ".." in parts:
        raise UserError(
            f"{path} is outside {root}",
            hint="paths here are relative to their folder and stay inside it: no '..', not absolute",
        )
    return list(parts)


def _open_folders(base: Path, path: Path, folders: list[str], *, create: bool) -> int:
    """A descriptor of ``base / folders…``, each opened without following a symlink (made first
    when ``create``). Raises FileNotFoundError when one is missing and not ``create``."""
    folder = os.open(base, _FOLDER)
    current = base
    try:
        for part in folders:
            current = current / part
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_fd=folder)
            try:
                inner = os.open(part, _FOLDER | os.O_NOFOLLOW, dir_fd=folder)
            except NotADirectoryError as exc:  # Linux says so for a symlink too
                if stat.S_ISLNK(os.stat(part, dir_fd=folder, follow_symlinks=False).st_mode):
                    raise _symlink_error(path, current) from exc
                raise UserError(f"{path}: {current} is not a folder") from exc
            os.close(folder)
            folder = inner
    except BaseException:
        os.close(folder)
        raise
    return folder


def _symlink_error(path: Path, link: Path) -> UserError:
    what = f"{path} is a symlink" if link == path else f"{path}: {link} is a symlink"
    return UserError(
        f"{what}, and symlinks are not followed here",
        hint="a symlink could point anywhere on this machine: put the file or folder itself there",
    )


def _not_regular(label: str) -> UserError:
    return UserError(
        f"{label} is not a regular file",
        hint="a FIFO, a device or a socket is never read: name a plain file",
    )
