"""What each environment holds, per image, according to state (after pushes and promotions),
the versions that are yanked, the digests revoked (as the audit log records them), and the
pushes, promotions, yanks and revocations that were interrupted after their intent was
logged."""

from __future__ import annotations

from dataclasses import dataclass

from imagefactory.project.paths import audit_log, state_file
from imagefactory.project.state import YankRecord, load_state
from imagefactory.release import audit
from imagefactory.release.audit import AuditRecord
from imagefactory.release.revoke import revocations
from imagefactory.spec.catalog import Catalog, CatalogImage


@dataclass(frozen=True)
class Placement:
    env: str
    version: str | None
    digest: str | None
    tested: bool  # the digest has a passing test run of its own
    yanked: YankRecord | None = None  # its version is yanked: still deployed until promoted over
    revoked: str | None = None  # why its digest was revoked: still deployed until promoted over


@dataclass(frozen=True)
class Status:
    placements: dict[str, list[Placement]]  # per image, one per environment in chain order
    yanked: dict[str, list[YankRecord]]  # per image, its yanked versions, in the order yanked
    incomplete: list[AuditRecord]  # open intents (a push or promotion still running shows too)

    def holding(self, ref: str, version: str) -> list[str]:
        """The environments that hold ``version`` of ``ref`` (GitOps deploys it there)."""
        return [p.env for p in self.placements.get(ref, []) if p.version == version]


def status(catalog: Catalog, images: list[CatalogImage]) -> Status:
    """Per image, what each environment holds according to state (after pushes and
    promotions) and which versions are yanked; and the intents of those images that have no
    done or failed record."""
    state = load_state(state_file(catalog))
    revoked = revocations(catalog)
    table = {}
    yanked = {}
    for image in images:
        record = state.images.get(image.ref)
        row = []
        for env in catalog.project.environments:
            held = record.environments.get(env.name) if record else None
            if record is None or held is None:
                row.append(Placement(env.name, None, None, False))
                continue
            run = record.test_of(held.digest)
            tested = run is not None and run.passed
            row.append(
                Placement(
                    env.name,
                    held.version,
                    held.digest,
                    tested,
                    record.yanked.get(held.version),
                    revoked.get((image.ref, held.digest)),
                )
            )
        table[image.ref] = row
        if record is not None and record.yanked:
            yanked[image.ref] = sorted(record.yanked.values(), key=lambda y: y.at)
    # an image's ref, or its name (a gc deletion names the repository's image, variants and all)
    named = {image.ref for image in images} | {image.spec.name for image in images}
    pending = [i for i in audit.interrupted(audit_log(catalog)) if i.image in named]
    return Status(table, yanked, pending)
