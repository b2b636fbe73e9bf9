"""One private folder per run for the files that hold secrets (the temporary Docker config, build
secret values): ``imagefactory-run-<pid>-<random>``, mode 0700, on /dev/shm when it is writable
(tmpfs: never on a disk), else in the temp dir; removed when the run exits.

A run killed before it could clean up (SIGKILL, a lost runner) leaves its folder behind; the
next run that makes its own folder removes every such folder of this user whose process is gone
(a bounded number per run).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

SHM = Path("/dev/shm")
PREFIX = "imagefactory-run-"
#: At most this many leftover folders are removed per run (each run removes its own anyway).
MAX_REMOVED = 64

_lock = threading.Lock()
_folder: Path | None = None


def bases() -> list[Path]:
    """Where run folders may be: /dev/shm when it is a writable folder, then the temp dir."""
    shm = [SHM] if SHM.is_dir() and os.access(SHM, os.W_OK | os.X_OK) else []
    return [*shm, Path(tempfile.gettempdir())]


def run_folder() -> Path:
    """This run's private folder, made on first use (leftovers of killed runs removed first)."""
    global _folder
    with _lock:
        if _folder is None or not _folder.is_dir():
            remove_leftovers()
            _folder = _make()
            atexit.register(shutil.rmtree, _folder, ignore_errors=True)
        return _folder


@contextlib.contextmanager
def private_folder(prefix: str) -> Iterator[Path]:
    """A new folder (0700) inside this run's private folder, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=run_folder()))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _make() -> Path:
    for base in bases():
        with contextlib.suppress(OSError):
            return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base))
    raise OSError(f"cannot make a private folder in {' or '.join(map(str, bases()))}")


def remove_leftovers() -> None:
    """Remove run folders of this user whose process no longer runs (at most MAX_REMOVED)."""
    removed = 0
    for base in bases():
        with contextlib.suppress(OSError), os.scandir(base) as entries:
            for entry in entries:
                if removed == MAX_REMOVED:
                    return
                if _is_leftover(entry):
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed += 1


def _is_leftover(entry: os.DirEntry[str]) -> bool:
    pid, _, rest = entry.name.removeprefix(PREFIX).partition("-")
    if not entry.name.startswith(PREFIX) or not (pid.isascii() and pid.isdigit()) or not rest:
        return False
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not _alive(int(pid))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or no pid at all): not ours to judge
    return True
