"""Completing a push or promotion that was interrupted after its intent was logged (a crash, a
kill, a full disk): its tags are verified in the registries by digest, what is missing is
written (with the evidence they carry: ``attach.attach_release``), state is saved and the done
record appended, under the intent's own audit id.

The next push of an image (or promotion into that environment) does this, and only this, when
it finds such an intent; it is run again for anything newer. Its immutable tags are written as
planned; of its aliases, only those the version still takes now (``versioning.plan_tags`` with
the good versions the repository holds now): a newer version that reached the environment
meanwhile keeps ``latest``, ``X`` and ``X.Y``. An intent that can no longer be completed (its
version was yanked since: the gate refuses it; an immutable tag of it now holds another
digest) is closed as failed, with the error.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import semver

from imagefactory.errors import UserError
from imagefactory.evidence.store import Location
from imagefactory.project.naming import repository, variant_suffix
from imagefactory.project.paths import audit_log
from imagefactory.project.state import ImageRecord
from imagefactory.registry.client import RegistryClient
from imagefactory.release import audit, gate
from imagefactory.release.aliases import good_versions
from imagefactory.release.attach import attach_release
from imagefactory.release.audit import AuditRecord
from imagefactory.release.environments import sibling_suffixes
from imagefactory.release.evidence import evidence_for
from imagefactory.release.record import Release, Step, failure_recorded, finish, released
from imagefactory.release.tags import TagChange, plan_changes, write_tags
from imagefactory.release.versioning import plan_tags, tag_versions
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.models import Registry

_CLOSED = "unless --dry-run, this closes it as failed: run it again to plan it afresh"


def interrupted(
    catalog: Catalog, action: Literal["push", "promote", "import"], ref: str, target: str
) -> AuditRecord | None:
    """The oldest open intent of ``action`` (a push or a promotion) of ``ref`` into the
    environment ``target``, if any: only its own (a pin of ``gitops update`` into the same
    environment, or a yank, left open is never taken for one)."""
    found = [
        i
        for i in audit.interrupted(audit_log(catalog))
        if (i.action, i.image, i.target) == (action, ref, target)
    ]
    return found[0] if found else None


def resume(
    catalog: Catalog,
    client: RegistryClient,
    image: CatalogImage,
    intent: AuditRecord,
    record: ImageRecord,
    source: tuple[Registry, str],
    *,
    dry_run: bool,
) -> Release:
    """Complete ``intent`` (or, dry, plan it), copying from ``source`` (the registry and the
    ``repository@digest`` the step copies from); ``record`` is the image's state record, read
    under the step's lock. Raises ``gate.Refused`` (having closed the intent as failed, unless
    dry) when its version was yanked since."""
    _not_yanked(catalog, intent, dry_run=dry_run)
    reason = f"completes the {intent.action} interrupted at {intent.at}, audit record {intent.id}"
    if dry_run:
        return Release(
            intent.image,
            intent.version,
            intent.digest,
            reason,
            tuple(_plan(catalog, client, image, intent, record)),
        )
    with failure_recorded(catalog, intent):
        changes = _plan(catalog, client, image, intent, record)
        completed = Release(
            intent.image, intent.version, intent.digest, reason, tuple(changes), audit_id=intent.id
        )
        origin = Location(source[0], source[1].rpartition("@")[0])
        attach_release(
            catalog,
            client,
            origin,
            _step(intent),
            completed,
            lambda: write_tags(client, catalog, source[0], source[1], changes),
        )
    # state and the done record name the tags it holds: the aliases it no longer takes are not
    finish(catalog, replace(intent, tags=sorted({c.tag for c in changes})), record, update=released)
    return completed


def _step(intent: AuditRecord) -> Step:
    """The step ``intent`` logged (for the release attestation its completion writes)."""
    identity = intent.identity or intent.who
    if intent.action == "push":
        return Step.push(intent.target, identity=identity)
    return Step.promotion(intent.source, intent.target, identity=identity, approver=intent.approver)


def _not_yanked(catalog: Catalog, intent: AuditRecord, *, dry_run: bool) -> None:
    """Raise ``gate.Refused`` when the gate's evidence has ``intent``'s version yanked (since
    the intent was logged: the gate let it through then), closing the intent as failed unless
    ``dry_run``; nothing is written to the registries."""
    yank = evidence_for(catalog).yank_of(intent.image, intent.version)
    if yank is None:
        return
    refused = gate.Refused(
        f"the interrupted {intent.action} {intent.id} of {intent.image} {intent.version} "
        f"({intent.digest}) is not completed: the version was yanked since: {yank.reason} "
        f"(by {yank.by}, {yank.at})",
        hint=f"release a fixed version, or: imagefactory unyank {intent.image} "
        f"{intent.version}; {_CLOSED}",
    )
    if dry_run:
        raise refused
    with failure_recorded(catalog, intent):
        raise refused


def _plan(
    catalog: Catalog,
    client: RegistryClient,
    image: CatalogImage,
    intent: AuditRecord,
    record: ImageRecord,
) -> list[TagChange]:
    """What each tag of the intent needs now, read from the registries: its immutable tags,
    and the aliases its version still takes among the good versions each repository holds now
    (``record``'s yanked versions take none)."""
    suffix = variant_suffix(image.spec.variant)
    version = semver.Version.parse(intent.version)
    immutable = {f"{intent.version}{suffix}", *(t for t in intent.tags if t.startswith("git-"))}
    others = sibling_suffixes(catalog, image)
    changes: list[TagChange] = []
    for name in intent.registries:
        registry = catalog.project.registries.get(name)
        if registry is None:
            raise UserError(
                f"the interrupted {intent.action} {intent.id} wrote to registry '{name}', which "
                "imagefactory.yaml no longer has",
                hint=_CLOSED,
            )
        repo = repository(registry, image.spec.name)
        existing = client.tags(registry, repo)
        good = good_versions(tag_versions(existing, suffix, others), record.yanked)
        aliases = plan_tags(version, suffix, good, None).aliases
        changes += plan_changes(
            client,
            (name, registry),
            repo,
            [t for t in intent.tags if t in immutable or t in aliases],
            immutable,
            intent.digest,
            existing=existing,
            hint=f"the interrupted {intent.action} {intent.id} cannot be completed; {_CLOSED}",
        )
    return changes
