"""What each environment holds, per image, according to state (after pushes and promotions)."""

from __future__ import annotations

from dataclasses import dataclass

from imagefactory.project.paths import state_file
from imagefactory.project.state import load_state
from imagefactory.spec.catalog import Catalog, CatalogImage


@dataclass(frozen=True)
class Placement:
    env: str
    version: str | None
    digest: str | None
    tested: bool


def status(catalog: Catalog, images: list[CatalogImage]) -> dict[str, list[Placement]]:
    """Per image, what each environment holds according to state (after pushes and promotions)."""
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
    return table
