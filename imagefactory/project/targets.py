"""The digest a command's ``IMAGE[@sha256:…]`` argument names, in the build registry.

``IMAGE`` is one image of the catalog (a name with variants must name one); the digest is the
one given, else the one its last build recorded in state. ``gate`` judges it, ``sbom`` describes
it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imagefactory.errors import UserError
from imagefactory.project.naming import build_registry, repository
from imagefactory.project.paths import state_file
from imagefactory.project.state import load_state
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.parents import DIGEST_PATTERN


@dataclass(frozen=True)
class Target:
    image: CatalogImage
    repository: str  # HOST/PATH in the build registry
    digest: str
    #: platform → digest, when ``digest`` is the index state records for an image built per
    #: platform (empty otherwise)
    platforms: dict[str, str] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"


def target(catalog: Catalog, image: str) -> Target:
    """The image ``image`` (``IMAGE`` or ``IMAGE@sha256:…``) names, and its digest."""
    ref, _, digest = image.partition("@")
    chosen = catalog.one(ref)
    record = load_state(state_file(catalog)).images.get(chosen.ref)
    if not digest:
        digest = record.digest if record is not None and record.digest else ""
        if not digest:
            raise UserError(
                f"no build of {chosen.ref} is recorded in state, so its digest is not known",
                hint=f"build it first (imagefactory build {chosen.ref}), or name the digest: "
                f"{chosen.ref}@sha256:…",
            )
    if not DIGEST_PATTERN.fullmatch(digest):
        raise UserError(f"{digest!r} is not a manifest digest", hint="expected sha256:<64 hex>")
    registry = build_registry(catalog.project)
    platforms = dict(record.platforms) if record and record.digest == digest else {}
    return Target(chosen, repository(registry, chosen.spec.name), digest, platforms)
