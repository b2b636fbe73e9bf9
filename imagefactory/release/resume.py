"""Completing a push or promotion that was interrupted after its intent was logged (a crash, a
kill, a full disk): its tags are verified in the registries by digest, what is missing is
written, state is saved and the done record appended, under the intent's own audit id.

The next push of an image (or promotion into that environment) does this, and only this, when
it finds such an intent; it is run again for anything newer. An intent that can no longer be
completed (an immutable tag of it now holds another digest) is closed as failed, with the error.
"""

from __future__ import annotations

from typing import Literal

from imagefactory.errors import UserError
from imagefactory.project.naming import repository
from imagefactory.project.paths import audit_log
from imagefactory.project.state import ImageRecord
from imagefactory.registry.client import RegistryClient
from imagefactory.release import audit
from imagefactory.release.audit import AuditRecord
from imagefactory.release.record import Release, failure_recorded, finish, released
from imagefactory.release.tags import TagChange, plan_changes, write_tags
from imagefactory.release.versioning import variant_suffix
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.models import Registry

_CLOSED = "unless --dry-run, this closes it as failed: run it again to plan it afresh"


def interrupted(
    catalog: Catalog, action: Literal["push", "promote"], ref: str, target: str
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
    ``repository@digest`` the step copies from)."""
    reason = f"completes the {intent.action} interrupted at {intent.at}, audit record {intent.id}"
    if dry_run:
        return Release(
            intent.image,
            intent.version,
            intent.digest,
            reason,
            tuple(_plan(catalog, client, image, intent)),
        )
    with failure_recorded(catalog, intent):
        changes = _plan(catalog, client, image, intent)
        write_tags(client, catalog, source[0], source[1], changes)
    finish(catalog, intent, record, update=released)
    return Release(
        intent.image, intent.version, intent.digest, reason, tuple(changes), audit_id=intent.id
    )


def _plan(
    catalog: Catalog, client: RegistryClient, image: CatalogImage, intent: AuditRecord
) -> list[TagChange]:
    """What each tag of the intent needs now, read from the registries."""
    suffix = variant_suffix(image.spec.variant)
    immutable = {f"{intent.version}{suffix}", *(t for t in intent.tags if t.startswith("git-"))}
    changes: list[TagChange] = []
    for name in intent.registries:
        registry = catalog.project.registries.get(name)
        if registry is None:
            raise UserError(
                f"the interrupted {intent.action} {intent.id} wrote to registry '{name}', which "
                "imagefactory.yaml no longer has",
                hint=_CLOSED,
            )
        changes += plan_changes(
            client,
            (name, registry),
            repository(registry, image.spec.name),
            intent.tags,
            immutable,
            intent.digest,
            existing=None,
            hint=f"the interrupted {intent.action} {intent.id} cannot be completed; {_CLOSED}",
        )
    return changes
