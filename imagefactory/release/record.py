"""What a push or promotion leaves behind, written ahead: an intent in the audit log before the
first tag, then the image's state record for the environment (and, for a push, the version
given to the content), then the done record. A failure while writing tags closes the intent as
failed; a crash, a kill or a failed write of state or audit leaves it open for the next run
(``resume``). One push, and one promotion, of an image at a time. A yank writes ahead through
the same ``written_ahead`` and ``finish``; a pin of ``gitops update`` through ``written_ahead``."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from typing import Literal

from imagefactory.errors import ImageFactoryError, UserError
from imagefactory.gitops.pin import PinResult
from imagefactory.project.paths import audit_log, state_file, work_dir
from imagefactory.project.state import (
    EnvironmentRecord,
    ImageRecord,
    load_state,
    locked_state,
    unwritable,
    with_record,
)
from imagefactory.release import audit
from imagefactory.release.audit import AuditRecord
from imagefactory.release.tags import TagChange
from imagefactory.spec.catalog import Catalog, ref_slug

NOTHING_WRITTEN = "nothing was written to the registries"


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
class Shipped:
    """A push or promotion and what it pinned in the GitOps repository (``gitops`` None:
    nothing recorded, gitops.yaml does not deploy it there, or ``not_pinned`` says why not)."""

    release: Release
    gitops: PinResult | None
    not_pinned: str | None = None  # why a recorded release was not pinned (untested, yanked)


@dataclass(frozen=True)
class Step:
    """One step of an image along the chain, as the audit log names it: a push from the build
    into the first environment, or a promotion from one environment into the next."""

    action: Literal["push", "promote"]
    source: str  # "build" for a push, else the environment promoted from
    target: str  # the environment
    identity: str | None = None  # who acts, as approvals name people (gate.identity)
    overrides: tuple[str, ...] = ()  # what --force let a push past (audit.UNTESTED, IMMUTABLE_TAG)
    approver: str | None = None  # who approved a promotion into an environment that needs it

    @property
    def forced(self) -> bool:
        return bool(self.overrides)

    @classmethod
    def push(cls, target: str, *, identity: str | None, overrides: tuple[str, ...] = ()) -> Step:
        return cls("push", "build", target, identity=identity, overrides=overrides)

    @classmethod
    def promotion(
        cls, source: str, target: str, *, identity: str | None, approver: str | None
    ) -> Step:
        return cls("promote", source, target, identity=identity, approver=approver)


def nothing_to_do(release: Release, held: EnvironmentRecord | None) -> bool:
    """Every tag already holds the digest and state knows it: no copy, no state, no audit."""
    return (
        held is not None
        and held.digest == release.digest
        and all(change.action == "keep" for change in release.changes)
    )


def record_release(
    catalog: Catalog,
    step: Step,
    release: Release,
    record: ImageRecord,
    write: Callable[[], None],
    *,
    revision: str | None,
) -> Release:
    """Write ``release``'s tags (``write``) and record it: the intent first, then state, then
    done. ``record`` is the image's state record it started from (state may have gained one
    meanwhile); ``revision`` the commit the catalog is at (``git.revision``, read once per
    command). The release, with its audit id."""
    intent = audit.new_record(
        action=step.action,
        image=release.ref,
        version=release.version,
        digest=release.digest,
        source=step.source,
        target=step.target,
        tags=sorted({c.tag for c in release.changes}),
        git_revision=revision,
        approver=step.approver,
        forced=step.forced,
        overrides=list(step.overrides),
        identity=step.identity,
        registries=sorted({c.registry for c in release.changes}),
        content_hash=record.content_hash if step.action == "push" else None,
    )
    with written_ahead(catalog, intent):
        write()
    finish(catalog, intent, record, update=released)
    return replace(release, audit_id=intent.id)


@contextmanager
def written_ahead(
    catalog: Catalog, intent: AuditRecord, *, nothing: str = NOTHING_WRITTEN
) -> Iterator[None]:
    """Append ``intent`` to the audit log (failing that, a UserError whose hint says
    ``nothing`` was written), then run the step's writes, their failure recorded
    (``failure_recorded``)."""
    path = audit_log(catalog)
    try:
        audit.append(path, intent)
    except OSError as exc:
        raise unwritable(path, exc, nothing) from exc
    with failure_recorded(catalog, intent):
        yield


@contextmanager
def failure_recorded(catalog: Catalog, intent: AuditRecord) -> Iterator[None]:
    """An error raised while the tags of ``intent`` are written is reported: it closes the
    intent with a failed record (the next run plans afresh). If even that cannot be written, the
    intent stays open: ``status`` lists it and the next run completes it."""
    try:
        yield
    except ImageFactoryError as exc:
        with suppress(OSError):
            audit.append(audit_log(catalog), audit.follow_up(intent, audit.FAILED, exc.message))
        raise


def finish(
    catalog: Catalog,
    intent: AuditRecord,
    record: ImageRecord,
    *,
    update: Callable[[AuditRecord, ImageRecord], ImageRecord],
    written: str = "the tags are written and verified",
) -> None:
    """Record ``intent``, whose changes are ``written`` (and verified), in state: ``update``
    gives the image's record with it, from the one state holds now (``record``: the one the
    step started from, when state has none); then append its done record. Either failing
    leaves the intent open, and says how to complete it."""
    then = (
        f"{written}, and the audit log holds the intent {intent.id}: "
        f"then run `{intent.command()}` again to complete it (imagefactory status lists it)"
    )
    path = state_file(catalog)
    try:
        with locked_state(path, root=catalog.root) as save:
            state = load_state(path)
            current = state.images.get(intent.image, record)
            save(with_record(state, intent.image, update(intent, current)))
        path = audit_log(catalog)  # from here on, the file a failure is about
        audit.append(path, audit.follow_up(intent, audit.DONE))
    except OSError as exc:
        raise unwritable(path, exc, then) from exc
    except UserError as exc:  # a state file that cannot be read
        raise UserError(exc.message, hint="; ".join(filter(None, [exc.hint, then]))) from exc


def released(intent: AuditRecord, current: ImageRecord) -> ImageRecord:
    """``current`` with the push or promotion ``intent`` recorded: what its environment holds
    now (and, for a push, the version given to the content)."""
    held = EnvironmentRecord(
        version=intent.version,
        digest=intent.digest,
        tags=intent.tags,
        registries=intent.registries,
        at=intent.at,
        audit_id=intent.id,
    )
    versions = {**current.versions}
    if intent.action == "push":
        assert intent.content_hash is not None  # every push intent names its content
        versions[intent.version] = intent.content_hash
    return current.model_copy(
        update={"versions": versions, "environments": {**current.environments, intent.target: held}}
    )


@contextmanager
def one_at_a_time(catalog: Catalog, action: str, ref: str) -> Iterator[None]:
    """One push (or one promotion) of an image at a time; a second one fails at once instead
    of racing, and an open intent met under the lock is never one still being written."""
    folder = work_dir(catalog) / "locks"
    lock = folder / f"{action}-{ref_slug(ref)}.lock"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise unwritable(lock, exc, NOTHING_WRITTEN) from exc
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            name = "promotion" if action == "promote" else action
            raise UserError(
                f"another {name} of {ref} is in progress",
                hint="wait for it to finish, then check: imagefactory status",
            ) from exc
        yield
    finally:
        os.close(descriptor)
