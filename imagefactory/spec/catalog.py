"""The loaded catalog: the project settings and every concrete image, keyed by its ref."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from imagefactory.errors import UserError
from imagefactory.spec.graph import build_order
from imagefactory.spec.issues import near_miss
from imagefactory.spec.models import ImageSpec, ProjectSpec
from imagefactory.spec.parents import CatalogParent, Parent


@dataclass(frozen=True)
class CatalogImage:
    """One concrete image (a variant expanded) with the folder its files come from."""

    spec: ImageSpec
    file: Path
    parent: Parent

    @property
    def ref(self) -> str:
        return self.spec.ref

    @property
    def folder(self) -> Path:
        return self.file.parent

    @property
    def parent_ref(self) -> str | None:
        return self.parent.ref if isinstance(self.parent, CatalogParent) else None


@dataclass(frozen=True)
class Catalog:
    root: Path
    project_file: Path
    project: ProjectSpec
    images: Mapping[str, CatalogImage]

    @property
    def parents(self) -> dict[str, str | None]:
        """Each image's catalog parent (None when built on a bootstrap or an external image)."""
        return {ref: image.parent_ref for ref, image in self.images.items()}

    def in_build_order(self) -> list[CatalogImage]:
        """Every image, parents before children, ties by ref."""
        return [self.images[ref] for ref in build_order(self.parents)]

    def select(self, patterns: Iterable[str]) -> list[CatalogImage]:
        """Images named by ``patterns`` (a ref, or a name meaning all its variants); all if none."""
        patterns = list(patterns)
        if not patterns:
            return list(self.images.values())
        chosen: dict[str, CatalogImage] = {}
        for pattern in patterns:
            matches = [i for i in self.images.values() if pattern in (i.ref, i.spec.name)]
            if not matches:
                guess = near_miss(
                    pattern, [*self.images, *(i.spec.name for i in self.images.values())]
                )
                raise UserError(
                    f"no image '{pattern}' in the catalog",
                    hint=f"did you mean '{guess}'?"
                    if guess
                    else "run 'imagefactory validate' to list them",
                )
            chosen.update((i.ref, i) for i in matches)
        return [self.images[ref] for ref in self.images if ref in chosen]
