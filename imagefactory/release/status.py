"""What each environment holds, per image, according to state (after pushes and promotions),
and the pushes and promotions that were interrupted after their intent was logged."""

from __future__ import annotations

from dataclasses import dataclass

from imagefactory.project.paths import audit_log, state_file
from imagefactory.project.state import load_state
from imagefactory.release import audit
from imagefactory.release.audit import AuditRecord
from imagefactory.spec.catalog import Catalog, CatalogImage


@dataclass(frozen=True)
class Placement:
    env: str
    version: str | None
    digest: str | None
    tested: bool


@dataclass(frozen=True)
class Status:
    placements: dict[str, list[Placement]]  # per image, one per environment in chain order
    incomplete: list[AuditRecord]  # open intents (a push or promotion still running shows too)


def status(catalog: Catalog, images: list[CatalogImage]) -> Status:
    """Per image, what each environment holds according to state (after pushes and
    promotions); and the intents of those images that have no done or failed record."""
    state = load_state(state_file(catalog))
    table = {}
    for image in images:
        record = state.images.get(image.ref)
        row = []
        for env in catalog.project.environments:
            held = record.environments.get(env.name) if record else None
            tested = bool(record and record.tests and held and record.tests.digest == held.digest)
            row.append(
                Placement(
                    env.name, held.version if held else None, held.digest if held else None, tested
                )
            )
        table[image.ref] = row
    refs = {image.ref for image in images}
    pending = [i for i in audit.interrupted(audit_log(catalog)) if i.image in refs]
    return Status(table, pending)
