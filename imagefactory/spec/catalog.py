"""The loaded catalog: the project settings and every concrete image, keyed by its ref."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagefactory.errors import UserError
from imagefactory.spec.graph import build_order
from imagefactory.spec.issues import near_miss
from imagefactory.spec.lock import ImageLock
from imagefactory.spec.models import Environment, ImageSpec, ProjectSpec
from imagefactory.spec.parents import CatalogParent, Parent


def ref_slug(ref: str) -> str:
    """A folder name for an image ref: ``runtime/llm:cpu`` → ``runtime_llm_cpu``. Two refs can
    share one (``a/b`` and ``a_b``): the loader refuses such a catalog."""
    return re.sub(r"[^a-z0-9._-]+", "_", ref)


APP_KIND = "app"


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


def is_application(name: str) -> bool:
    """An image under ``app/`` is an application: GitOps deploys it, its root filesystem is
    read-only there and in its service tests."""
    return name.split("/", 1)[0] == APP_KIND


@dataclass(frozen=True)
class Catalog:
    root: Path
    project_file: Path
    project: ProjectSpec
    images: Mapping[str, CatalogImage]
    #: refresh.yaml: image ref → package → the version it must hold at least (spec/refresh.py)
    refreshed: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: image.lock files: image ref → the exact packages it installs (spec/lock.py)
    locks: Mapping[str, ImageLock] = field(default_factory=dict)

    @property
    def parents(self) -> dict[str, str | None]:
        """Each image's catalog parent (None when built on a bootstrap or an external image)."""
        return {ref: image.parent_ref for ref, image in self.images.items()}

    def in_build_order(self) -> list[CatalogImage]:
        """Every image, parents before children, ties by ref."""
        return [self.images[ref] for ref in build_order(self.parents)]

    def lineage(self, ref: str) -> list[CatalogImage]:
        """The image and its catalog ancestors, nearest first."""
        chain = [self.images[ref]]
        while chain[-1].parent_ref is not None:
            chain.append(self.images[chain[-1].parent_ref])
        return chain

    def lineage_value(self, ref: str, key: str) -> Any:
        """The value of the spec field ``key`` in the nearest image of the lineage that sets
        it (not None), as Docker hands a child its parent's config; None when none does."""
        return next(
            (value for i in self.lineage(ref) if (value := getattr(i.spec, key)) is not None),
            None,
        )

    def effective_user(self, ref: str) -> str | None:
        """The user the image runs as: its own ``user``, else its catalog parent's (as Docker does)."""
        user: str | None = self.lineage_value(ref, "user")
        return user

    def numeric_user(self, ref: str) -> str:
        """The effective user as ``UID:GID`` (what Kubernetes' runAsNonRoot can verify)."""
        user = self.effective_user(ref) or "root"
        if user == "root":
            return "0:0"
        accounts = [a for image in self.lineage(ref) for a in image.spec.create_users]
        account = next((a for a in accounts if a.name == user), None)
        return f"{account.uid}:{account.gid or account.uid}" if account else user

    def environment(self, name: str) -> tuple[int, Environment]:
        """The environment ``name`` and its position in the promotion order."""
        names = [env.name for env in self.project.environments]
        if name not in names:
            raise UserError(
                f"no environment '{name}'",
                hint=f"environments in promotion order: {' → '.join(names)}",
            )
        return names.index(name), self.project.environments[names.index(name)]

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

    def one(self, pattern: str) -> CatalogImage:
        """The one image ``pattern`` names: a name with variants must name one of them."""
        matches = self.select([pattern])
        if len(matches) != 1:
            raise UserError(
                f"'{pattern}' has variants; name one: {', '.join(m.ref for m in matches)}",
                hint=f"a digest belongs to one image: name the variant (e.g. {matches[0].ref})",
            )
        return matches[0]
