"""The append-only audit log: one JSON line per push or promotion, never rewritten.

Each record says who, when, what (image, version, digest), from where to where, the git
revision, the CI pipeline and job when run in CI, the approver, and whether ``--force`` was
used. Appends take an exclusive lock and write one whole line with O_APPEND, so concurrent
writers never interleave or tear a line.
"""

from __future__ import annotations

import datetime
import fcntl
import getpass
import json
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class AuditRecord:
    id: str
    at: str
    action: str  # push | promote
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
    forced: bool = False


def actor() -> str:
    """Who acts: the CI user when in GitLab CI, else the local account."""
    return os.environ.get("GITLAB_USER_LOGIN") or os.environ.get("USER") or getpass.getuser()


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
) -> AuditRecord:
    """A record stamped with a fresh id, the time, the actor and the CI job (when in CI)."""
    return AuditRecord(
        id=uuid.uuid4().hex[:16],
        at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        action=action,
        who=actor(),
        image=image,
        version=version,
        digest=digest,
        source=source,
        target=target,
        tags=tags,
        git_revision=git_revision,
        ci_pipeline_url=os.environ.get("CI_PIPELINE_URL"),
        ci_job_url=os.environ.get("CI_JOB_URL"),
        approver=approver,
        forced=forced,
    )


def append(path: Path, record: AuditRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(asdict(record), sort_keys=True) + "\n").encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        os.write(descriptor, line)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
