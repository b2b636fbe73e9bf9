"""Where releases go: the environments in promotion order, each with its registries, and the tag
suffixes an image shares its repository with (its other variants)."""

from __future__ import annotations

from imagefactory.errors import UserError
from imagefactory.release.versioning import variant_suffix
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.models import Environment, Registry


def environment(catalog: Catalog, name: str) -> tuple[int, Environment]:
    """The environment ``name`` and its position in the promotion order."""
    names = [env.name for env in catalog.project.environments]
    if name not in names:
        raise UserError(
            f"no environment '{name}'", hint=f"environments in promotion order: {' → '.join(names)}"
        )
    return names.index(name), catalog.project.environments[names.index(name)]


def registries_of(catalog: Catalog, env: Environment) -> list[tuple[str, Registry]]:
    return [(name, catalog.project.registries[name]) for name in env.registries]


def sibling_suffixes(catalog: Catalog, image: CatalogImage) -> list[str]:
    """The tag suffixes of the image's other variants: they share its repository."""
    return [
        variant_suffix(other.spec.variant)
        for other in catalog.images.values()
        if other.spec.name == image.spec.name and other.ref != image.ref
    ]
