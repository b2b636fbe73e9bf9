"""Render many images at once: Dockerfiles and build contexts, each FROM its parent's digest."""

from __future__ import annotations

import filecmp
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from imagefactory.project.hashing import ContentInputs
from imagefactory.project.naming import build_registry, content_tag, repository
from imagefactory.project.state import State
from imagefactory.render.dockerfile import (
    ROOTFS_FILE,
    ParentPin,
    render_dockerfile,
    write_build_context,
)
from imagefactory.spec.catalog import Catalog, CatalogImage, ref_slug
from imagefactory.spec.models import ProjectSpec, Registry
from imagefactory.spec.parents import CatalogParent, ExternalParent

#: What a check reports for an output that is not there at all.
MISSING = "(missing)"


@dataclass(frozen=True)
class Pins:
    """How one run names catalog images in FROM: in the build registry, by the digest known for
    an image's current content (built in this run, or recorded in state), else by its content
    tag. The registry is resolved once per run, when first needed (a catalog of roots needs none).
    """

    project: ProjectSpec
    inputs: Mapping[str, ContentInputs]
    digests: Mapping[str, str]
    #: ref → platform → digest, for the images built per platform (``platforms``).
    platform_digests: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @cached_property
    def registry(self) -> Registry:
        return build_registry(self.project)

    def content_hash(self, image: CatalogImage) -> str:
        return self.inputs[image.ref].content_hash

    def tagged(self, name: str, ref: str) -> str:
        """Catalog image ``ref`` (named ``name``) in the build registry by its content tag: what a
        build pushes and what a child's FROM names until a digest is known."""
        return f"{repository(self.registry, name)}:{content_tag(self.inputs[ref].content_hash)}"

    def platform_tagged(self, image: CatalogImage, platform: str) -> str:
        """Catalog ``image`` built for ``platform`` by the content tag of that platform's hash:
        what its per-platform build pushes, and what the image's index names."""
        hashed = self.inputs[image.ref].platform_hash(platform)
        return f"{repository(self.registry, image.spec.name)}:{content_tag(hashed)}"

    def parent(self, image: CatalogImage, platform: str | None = None) -> ParentPin | None:
        """FROM for ``image`` (built for ``platform``; None: an image without ``platforms``):
        its parent's digest when known (of that platform, where the parent is built per
        platform), else its content tag. None for a bootstrapped rootfs."""
        parent = image.parent
        if isinstance(parent, ExternalParent):
            return ParentPin(f"{parent.reference}@{parent.digest}", parent.reference, parent.digest)
        if not isinstance(parent, CatalogParent):
            return None
        repo = repository(self.registry, parent.name)
        per_platform = self.platform_digests.get(parent.ref, {})
        digest = per_platform.get(platform or "") or self.digests.get(parent.ref)
        if digest is not None:
            return ParentPin(f"{repo}@{digest}", parent.name, digest)
        return ParentPin(self.tagged(parent.name, parent.ref), parent.name, None)


@dataclass(frozen=True)
class Rendered:
    ref: str
    folder: Path


def render_images(
    catalog: Catalog, images: list[CatalogImage], pins: Pins, out_dir: Path
) -> list[Rendered]:
    rendered = []
    for image in images:
        text = render_dockerfile(catalog, image, pins.content_hash(image), pins.parent(image))
        folder = write_build_context(catalog, image, text, out_dir / ref_slug(image.ref))
        rendered.append(Rendered(image.ref, folder))
    return rendered


def pinned_digests(state: State, inputs: Mapping[str, ContentInputs]) -> dict[str, str]:
    """The recorded digest of every image whose build still matches its content: the parents a
    render may pin by digest."""
    return {
        ref: record.digest
        for ref, record in state.images.items()
        if record.digest and ref in inputs and record.content_hash == inputs[ref].content_hash
    }


def stale_folders(fresh: Mapping[str, Path], target: Path) -> dict[str, list[str]]:
    """For each freshly rendered folder (by name), what differs in its namesake under
    ``target``; only the folders that differ."""
    stale = {
        name: stale_files(folder, target / folder.name)
        if (target / folder.name).is_dir()
        else [MISSING]
        for name, folder in fresh.items()
    }
    return {name: files for name, files in stale.items() if files}


def stale_files(expected: Path, actual: Path) -> list[str]:
    """Paths that differ between two rendered trees (missing, extra or changed)."""
    comparison = filecmp.dircmp(expected, actual, ignore=[ROOTFS_FILE])
    return sorted(_differences(comparison, ""))


def _differences(comparison: filecmp.dircmp[str], prefix: str) -> list[str]:
    found = [
        prefix + name
        for name in comparison.left_only + comparison.right_only + comparison.funny_files
    ]
    found += [
        prefix + name
        for name in comparison.common_files
        if not filecmp.cmp(
            Path(comparison.left) / name, Path(comparison.right) / name, shallow=False
        )
    ]
    for name, sub in comparison.subdirs.items():
        found += _differences(sub, f"{prefix}{name}/")
    return found
