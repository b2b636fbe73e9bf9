"""The state file: what was built, with which inputs. Read here; builds write it atomically.

Layout (JSON)::

    {"schema": 1,
     "images": {"runtime/llm:cpu": {"content_hash": "sha256:…",
                                    "inputs": {"spec": "…", "files": "…", "templates": "…",
                                               "parent": "…"},
                                    "version": "1.0.0", …}}}

Records keep any further fields later commands add (digest, size, test results…).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from imagefactory.atomic import inside, read_regular, write_atomically
from imagefactory.errors import UserError

STATE_SCHEMA = 1
#: The most bytes of state read (a FIFO or a device is refused, not read): thousands of images.
MAX_STATE_BYTES = 64 * 1024 * 1024


class TestRecord(BaseModel):
    """One test run of a digest (passed or failed), valid only for the digest it names."""

    model_config = ConfigDict(frozen=True, extra="allow")

    digest: str
    passed: bool
    at: str
    checks: int = 0


class YankRecord(BaseModel):
    """A version marked bad: never promoted again, never the target of an alias."""

    model_config = ConfigDict(frozen=True, extra="allow")

    version: str
    digest: str
    reason: str
    by: str
    at: str
    audit_id: str | None = None
    aliases_left: list[str] = []  # the aliases left on its digest: their line had no good version


class EnvironmentRecord(BaseModel):
    """What an environment's registries hold for an image after a push or a promotion."""

    model_config = ConfigDict(frozen=True, extra="allow")

    version: str
    digest: str
    tags: list[str]
    registries: list[str]
    at: str
    audit_id: str | None = None


class ImageRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    content_hash: str
    inputs: dict[str, str]
    version: str
    name: str | None = None
    variant: dict[str, str] = {}
    repository: str | None = None
    tag: str | None = None
    image_id: str | None = None
    digest: str | None = None  # of the OCI index, for an image built per platform
    platforms: dict[str, str] = {}  # platform → its image's digest (built per platform only)
    size_bytes: int | None = None
    previous_size_bytes: int | None = None  # the size of the build before, for growth budgets
    tests: TestRecord | None = None  # written before per-digest records: read by test_of only
    test_runs: dict[str, TestRecord] = {}  # digest → its latest test run (passed or failed)
    yanked: dict[str, YankRecord] = {}  # version → why it was marked bad
    versions: dict[str, str] = {}  # every version given to this image → the content hash it named
    environments: dict[str, EnvironmentRecord] = {}
    build_seconds: float | None = None
    built_at: str | None = None

    def test_of(self, digest: str) -> TestRecord | None:
        """The latest test run of ``digest``, None when it was never tested."""
        if digest in self.test_runs:
            return self.test_runs[digest]
        if self.tests is not None and self.tests.digest == digest:
            return self.tests
        return None

    def with_test(self, run: TestRecord) -> ImageRecord:
        """This record with ``run`` as the latest test of its digest (other digests keep
        theirs: testing a new build never erases the record of one running elsewhere)."""
        legacy = self.tests if self.tests is not None and self.tests.digest != run.digest else None
        runs = {**({legacy.digest: legacy} if legacy else {}), **self.test_runs, run.digest: run}
        return self.model_copy(update={"tests": None, "test_runs": runs})


class State(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = STATE_SCHEMA
    images: dict[str, ImageRecord] = {}


def load_state(path: Path) -> State:
    """The state at ``path``; an empty state when the file does not exist yet. UserError when
    it is not a regular file (a FIFO, a device), is larger than MAX_STATE_BYTES, or is broken."""
    if not path.exists():
        return State()
    try:
        data = json.loads(read_regular(path, what="the state file", limit=MAX_STATE_BYTES).decode())
        if not isinstance(data, dict):
            raise ValueError("the top level is not an object")
        data["schema_version"] = data.pop("schema", None)
        state = State.model_validate(data)
    except (OSError, ValueError, ValidationError, RecursionError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(
            f"cannot read the state file {path}: {reason}",
            hint="restore it from the last CI artifact, or delete it to rebuild everything",
        ) from exc
    if state.schema_version != STATE_SCHEMA:
        raise UserError(
            f"the state file {path} has schema {state.schema_version}, expected {STATE_SCHEMA}",
            hint="it was written by another imagefactory version; upgrade or delete it",
        )
    return state


def save_state(path: Path, state: State, *, root: Path | None = None) -> None:
    """Write ``state`` whole or not at all: a temp file in the same folder, fsync, rename.

    Never through a symlink: a symlinked state file is refused (UserError), and given ``root``
    (the catalog's root) so is a state file outside it or below a symlinked folder."""
    document = {
        "schema": state.schema_version,
        "images": {
            ref: record.model_dump(mode="json", exclude_none=True)
            for ref, record in sorted(state.images.items())
        },
    }
    try:
        write_atomically(path, (json.dumps(document, indent=2) + "\n").encode(), root=root)
    except OSError as exc:
        raise unwritable(path, exc) from exc


def unwritable(path: Path, exc: OSError, then: str | None = None) -> UserError:
    """A full disk, a read-only or unwritable folder while writing ``path``: the user's to fix,
    not a bug. ``then`` says what was (not) written before, for the hint."""
    folder = path.parent
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = f"free space on the disk that holds {folder}"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = f"make {folder} writable, or point `state:` in imagefactory.yaml to a writable place"
    else:
        fix = f"check {folder}"
    hint = fix if then is None else f"{fix}; {then}"
    return UserError(f"cannot write {path}: {exc.strerror or exc}", hint=hint)


def with_record(state: State, ref: str, record: ImageRecord) -> State:
    return state.model_copy(update={"images": {**state.images, ref: record}})


@contextmanager
def locked_state(path: Path, *, root: Path | None = None) -> Iterator[Callable[[State], None]]:
    """Read-modify-write of the state by several processes at once, without lost updates:
    an exclusive lock on ``<state>.lock`` is held while the caller loads, changes and saves.
    Given ``root`` (the catalog's root), the lock and the state stay inside it, below no
    symlinked folder (UserError), as for :func:`save_state`."""
    lock = path.with_name(path.name + ".lock")
    if root is not None:
        inside(root, lock)  # before a folder is made: never through a symlinked one
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise unwritable(path, exc) from exc
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield lambda state: save_state(path, state, root=root)
    finally:
        os.close(descriptor)
