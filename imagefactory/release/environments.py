"""Where releases go: each environment's registries, and the tag suffixes an image shares its
repository with (its other variants). The environments themselves: ``Catalog.environment``."""

from __future__ import annotations

from imagefactory.project.naming import variant_suffix
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.models import Environment, Registry


def registries_of(catalog: Catalog, env: Environment) -> list[tuple[str, Registry]]:
    return [(name, catalog.project.registries[name]) for name in env.registries]


def sibling_suffixes(catalog: Catalog, image: CatalogImage) -> list[str]:
    """The tag suffixes of the image's other variants: they share its repository."""
    return [
        variant_suffix(other.spec.variant)
        for other in catalog.images.values()
        if other.spec.name == image.spec.name and other.ref != image.ref
    ]
