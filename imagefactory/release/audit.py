"""The append-only audit log: JSON lines, never rewritten, written ahead of every push and
promotion.

Each record says who, when, what (image, version, digest), from where to where, the tags and
registries, the git revision, the CI pipeline and job when run in CI, the person acting as
approvals name people (``identity``), the approver, and whether ``--force`` let it through and
what it overrode (``overrides``: ``untested``, a digest without a passing test run of its own;
``immutable-tag``, an X.Y.Z or git- tag moved). A push or promotion appends its ``intent``
before it writes the first tag, and a ``done`` record with the same id once state is saved; a
``failed`` one (with the error) when writing its tags failed and the error was reported. An
intent with neither was interrupted (a crash, a kill, a full disk): ``status`` lists it and the
next run of the same step completes it. Lines written before the write-ahead log have no
``phase``: they are ``done`` records.

Appends take an exclusive lock and write one whole line with O_APPEND, so concurrent writers
never interleave or tear a line.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import getpass
import json
import os
import shlex
import stat
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from imagefactory.atomic import read_regular
from imagefactory.ci_env import login
from imagefactory.errors import UserError

INTENT, DONE, FAILED = "intent", "done", "failed"
UNTESTED, IMMUTABLE_TAG = "untested", "immutable-tag"  # what --force let a push past
READ_LIMIT = 1024 * 1024 * 1024  # about a million records: decades of releases
_RESTORE = "restore it from the last CI artifact; it is append-only, never edit it"


@dataclass(frozen=True)
class AuditRecord:
    id: str
    at: str
    action: str  # push | promote | pin (gitops update) | yank | unyank | revoke | gc | import
    who: str
    image: str
    version: str
    digest: str
    source: str  # "build" for a push, else the environment promoted from
    target: str
    tags: list[str]
    git_revision: str | None
    ci_pipeline_url: str | None
    ci_job_url: str | None
    approver: str | None
    forced: bool = False  # --force let it through; ``overrides`` says past what
    phase: str = DONE  # intent | done | failed
    registries: list[str] = field(default_factory=list)  # the target's, by name
    content_hash: str | None = None  # a push: the content its version is given to
    error: str | None = None  # a failed record: what went wrong
    identity: str | None = None  # who acts, as approvals name people (gate.identity)
    overrides: list[str] = field(default_factory=list)  # UNTESTED, IMMUTABLE_TAG
    reason: str | None = None  # a yank or unyank: why
    archive: str | None = None  # an import: the archive file it read

    def command(self) -> str:
        """The command that runs this step again (and so completes it when interrupted)."""
        if self.action == "push":
            return f"imagefactory push {self.image}"
        if self.action == "pin":  # its approver is set exactly where the environment needs one
            return pin_command(
                self.target, self.image, self.digest, approval=self.approver is not None
            )
        if self.action in ("yank", "unyank"):  # an interrupted one completes with its reason
            return f"imagefactory {self.action} {self.image} {self.version}"
        if self.action == "revoke":  # run again, it writes the attestations again
            return f"imagefactory revoke {self.image}@{self.digest} --reason {shlex.quote(self.reason or '')}"
        if self.action == "gc":  # run again, it completes the deletion first
            return f"imagefactory gc --env {self.target}"
        if self.action == "import":  # run again, it skips what the registry holds already
            return (
                f"imagefactory import {shlex.quote(self.archive or 'ARCHIVE')} --to {self.target}"
            )
        return f"imagefactory promote {self.image} --to {self.target}"


def pin_command(env: str, image: str, digest: str, *, approval: bool) -> str:
    """The ``gitops update`` that pins ``digest`` of ``image`` in ``env``; with ``--approve``
    where ``env`` needs an approval (``approval``), which it refuses without one."""
    approve = " --approve" if approval else ""
    return f"imagefactory gitops update --env {env} {image}@{digest}{approve}"


def actor() -> str:
    """Who acts: the CI user when in GitLab CI, else the local account."""
    return login() or os.environ.get("USER") or getpass.getuser()


def _stamp() -> dict[str, Any]:
    """When, who, and the CI job (when in CI): what every line says of its own writing."""
    return {
        "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "who": actor(),
        "ci_pipeline_url": os.environ.get("CI_PIPELINE_URL"),
        "ci_job_url": os.environ.get("CI_JOB_URL"),
    }


def new_record(
    *,
    action: str,
    image: str,
    version: str,
    digest: str,
    source: str,
    target: str,
    tags: list[str],
    git_revision: str | None,
    approver: str | None,
    forced: bool = False,
    overrides: list[str] | None = None,
    registries: list[str] | None = None,
    content_hash: str | None = None,
    identity: str | None = None,
    reason: str | None = None,
    archive: str | None = None,
) -> AuditRecord:
    """An intent stamped with a fresh id, the time, the actor and the CI job (when in CI)."""
    return AuditRecord(
        id=uuid.uuid4().hex[:16],
        action=action,
        image=image,
        version=version,
        digest=digest,
        source=source,
        target=target,
        tags=tags,
        git_revision=git_revision,
        approver=approver,
        forced=forced,
        overrides=overrides or [],
        phase=INTENT,
        registries=registries or [],
        content_hash=content_hash,
        identity=identity,
        reason=reason,
        archive=archive,
        **_stamp(),
    )


def follow_up(intent: AuditRecord, phase: str, error: str | None = None) -> AuditRecord:
    """The ``done`` or ``failed`` record of ``intent``: its id and fields, stamped now, by
    whoever writes it (the run itself, or the later one that completes it)."""
    return replace(intent, phase=phase, error=error, **_stamp())


def append(path: Path, record: AuditRecord) -> None:
    """Append one whole line, or none: a short write (a full disk) is cut back off and raised.
    Only to a regular file: a symlink, a FIFO or a device there is refused (an OSError)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(asdict(record), sort_keys=True) + "\n").encode()
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK
    descriptor = os.open(path, flags, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        end = os.lseek(descriptor, 0, os.SEEK_END)
        if os.write(descriptor, line) != len(line):
            os.ftruncate(descriptor, end)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read(path: Path) -> list[dict[str, Any]]:
    """Every line, as written (intents, done and failed records alike)."""
    if not path.exists():
        return []
    data = read_regular(path, what="the audit log", limit=READ_LIMIT)
    try:
        lines = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
    except ValueError as exc:
        raise UserError(f"cannot read the audit log {path}: {exc}", hint=_RESTORE) from exc
    if not all(isinstance(line, dict) and isinstance(line.get("id"), str) for line in lines):
        raise UserError(
            f"the audit log {path} has a line that is not an audit record", hint=_RESTORE
        )
    return lines


def phase(line: dict[str, Any]) -> str:
    return str(line.get("phase", DONE))


def completed(path: Path) -> list[dict[str, Any]]:
    """The ``done`` records: one per push or promotion recorded in state."""
    return done_of(read(path))


def done_of(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``done`` records of ``lines`` (``read``'s)."""
    return [line for line in lines if phase(line) == DONE]


def interrupted(path: Path) -> list[AuditRecord]:
    """The intents with neither a ``done`` nor a ``failed`` record, oldest first."""
    return interrupted_of(read(path), path)


def interrupted_of(lines: list[dict[str, Any]], path: Path) -> list[AuditRecord]:
    """``interrupted`` of ``lines``, read from the log at ``path``."""
    closed = {line["id"] for line in lines if phase(line) != INTENT}
    names = {f.name for f in fields(AuditRecord)}
    try:
        return [
            AuditRecord(**{k: v for k, v in line.items() if k in names})
            for line in lines
            if phase(line) == INTENT and line["id"] not in closed
        ]
    except TypeError as exc:
        raise UserError(
            f"the audit log {path} has an intent that lacks a field: {exc}",
            hint=_RESTORE,
        ) from exc
