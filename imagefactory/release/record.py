"""What a push or promotion leaves behind: the image's state record for the environment (and,
for a push, the version given to the content) and one audit record."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from imagefactory import git
from imagefactory.project.paths import audit_log, state_file
from imagefactory.project.state import (
    EnvironmentRecord,
    ImageRecord,
    load_state,
    locked_state,
    with_record,
)
from imagefactory.release import audit
from imagefactory.release.tags import TagChange
from imagefactory.spec.catalog import Catalog


@dataclass(frozen=True)
class Release:
    """One image pushed or promoted (or, with --dry-run, what would be)."""

    ref: str
    version: str
    digest: str
    reason: str
    changes: tuple[TagChange, ...]
    audit_id: str | None = None  # set once it is recorded


@dataclass(frozen=True)
class Step:
    """One step of an image along the chain, as the audit log names it: a push from the build
    into the first environment, or a promotion from one environment into the next."""

    action: Literal["push", "promote"]
    source: str  # "build" for a push, else the environment promoted from
    target: str  # the environment
    forced: bool = False  # a push that moved an immutable tag (--force)
    approver: str | None = None  # who approved a promotion into an environment that needs it

    @classmethod
    def push(cls, target: str, *, forced: bool) -> Step:
        return cls("push", "build", target, forced=forced)

    @classmethod
    def promotion(cls, source: str, target: str, *, approver: str | None) -> Step:
        return cls("promote", source, target, approver=approver)


def nothing_to_do(release: Release, held: EnvironmentRecord | None) -> bool:
    """Every tag already holds the digest and state knows it: no copy, no state, no audit."""
    return (
        held is not None
        and held.digest == release.digest
        and all(change.action == "keep" for change in release.changes)
    )


def record_release(catalog: Catalog, step: Step, release: Release, record: ImageRecord) -> Release:
    """Record ``release`` (written to the registries) in state and the audit log; ``record`` is
    the image's state record it started from (state may have gained one meanwhile). A push also
    gives the release's version to the image's content. The release, with its audit id."""
    tags = sorted({c.tag for c in release.changes})
    entry = audit.new_record(
        action=step.action,
        image=release.ref,
        version=release.version,
        digest=release.digest,
        source=step.source,
        target=step.target,
        tags=tags,
        git_revision=git.revision(catalog.root),
        approver=step.approver,
        forced=step.forced,
    )
    path = state_file(catalog)
    with locked_state(path) as save:
        state = load_state(path)
        current = state.images.get(release.ref, record)
        held = EnvironmentRecord(
            version=release.version,
            digest=release.digest,
            tags=tags,
            registries=sorted({c.registry for c in release.changes}),
            at=entry.at,
            audit_id=entry.id,
        )
        versions = {**current.versions}
        if step.action == "push":
            versions[release.version] = current.content_hash
        updated = current.model_copy(
            update={
                "versions": versions,
                "environments": {**current.environments, step.target: held},
            }
        )
        save(with_record(state, release.ref, updated))
    audit.append(audit_log(catalog), entry)
    return replace(release, audit_id=entry.id)
