"""What an image is built on: another catalog image, an external image pinned by digest, or a
rootfs bootstrapped from Debian packages.

``from:`` takes either a catalog name (``base/debian12``, ``runtime/llm:cpu``) or an external
reference. As Docker does, a reference is external when its first path component is a registry
host (contains ``.`` or ``:``, or is ``localhost``) or when it carries a digest (``@``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imagefactory.spec.models import Bootstrap

DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class CatalogParent:
    """Built FROM another image of this catalog: ``name`` or ``name:variant``."""

    name: str
    variant: str | None

    @property
    def ref(self) -> str:
        return self.name if self.variant is None else f"{self.name}:{self.variant}"


@dataclass(frozen=True)
class ExternalParent:
    """Built FROM an image outside the catalog; ``digest`` is None when it was not pinned."""

    reference: str
    digest: str | None


@dataclass(frozen=True)
class BootstrapParent:
    """Built from a rootfs that mmdebstrap makes from Debian packages."""

    bootstrap: Bootstrap


Parent = CatalogParent | ExternalParent | BootstrapParent


def parse_from(value: str) -> CatalogParent | ExternalParent:
    if "@" in value:
        reference, _, digest = value.partition("@")
        return ExternalParent(reference, digest)
    first, slash, _ = value.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return ExternalParent(value, None)
    name, colon, variant = value.partition(":")
    return CatalogParent(name, variant if colon else None)


def describe_parent(parent: Parent) -> str:
    """One line naming what an image is built on, for plans and graphs."""
    if isinstance(parent, CatalogParent):
        return parent.ref
    if isinstance(parent, ExternalParent):
        return parent.reference if parent.digest is None else f"{parent.reference}@{parent.digest}"
    recipe = parent.bootstrap
    return f"bootstrap: debian {recipe.suite}/{recipe.variant}"
