"""Where images live in registries: repositories, content tags, the registry builds pin parents in."""

from __future__ import annotations

from collections.abc import Mapping

from imagefactory.errors import UserError
from imagefactory.spec.models import ProjectSpec, Registry

CONTENT_TAG_PREFIX = "content-"
CONTENT_LABEL = "org.imagefactory.content-hash"
#: The commit a build is of (``<sha>-dirty`` for an uncommitted tree): push names git- tags by it.
REVISION_LABEL = "org.opencontainers.image.revision"
REF_LABEL = "org.imagefactory.ref"
#: The digest of the parent an image was built on (render.dockerfile.image_labels writes it).
BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"


def repository(registry: Registry, name: str) -> str:
    """``HOST[:PORT]/NAMESPACE/NAME`` — variants share the repository and differ by tag."""
    parts = [registry.url, registry.namespace, name]
    return "/".join(p for p in parts if p)


def variant_suffix(variant: Mapping[str, str]) -> str:
    """The tag suffix of a variant: ``""``, or ``"-"`` and its values in axis order joined by
    ``"-"`` (``{"accelerator": "cuda"}`` → ``"-cuda"``), as refs name variants."""
    return "-" + "-".join(variant.values()) if variant else ""


def content_tag(content_hash: str) -> str:
    """The immutable tag a build pushes: the image's content hash, shortened."""
    return CONTENT_TAG_PREFIX + content_hash.removeprefix("sha256:")[:24]


def build_registry(project: ProjectSpec) -> Registry:
    """The first registry of the first environment: builds push there and pin parents from it."""
    if not project.environments:
        raise UserError(
            "the project defines no environments, so builds have no registry to pin parents in",
            hint="add environments (dev first) with their registries to imagefactory.yaml",
        )
    return project.registries[project.environments[0].registries[0]]
