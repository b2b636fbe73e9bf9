"""Render many images at once: Dockerfiles and build contexts, each FROM its parent's digest."""

from __future__ import annotations

import filecmp
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from imagefactory.project.hashing import ContentInputs
from imagefactory.project.naming import build_registry, content_tag, repository
from imagefactory.project.paths import slug
from imagefactory.project.state import State
from imagefactory.render.dockerfile import (
    ROOTFS_FILE,
    ParentPin,
    render_dockerfile,
    write_build_context,
)
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.parents import CatalogParent, ExternalParent


def parent_pin(
    catalog: Catalog,
    image: CatalogImage,
    inputs: Mapping[str, ContentInputs],
    digests: Mapping[str, str],
) -> ParentPin | None:
    """FROM for ``image``: the parent's digest when known (built in this run, or recorded for the
    parent's current content), else its content tag. None for a bootstrapped rootfs."""
    parent = image.parent
    if isinstance(parent, ExternalParent):
        return ParentPin(f"{parent.reference}@{parent.digest}", parent.reference, parent.digest)
    if not isinstance(parent, CatalogParent):
        return None
    registry = build_registry(catalog.project)
    repo = repository(registry, parent.name)
    digest = digests.get(parent.ref)
    if digest is not None:
        return ParentPin(f"{repo}@{digest}", parent.name, digest)
    return ParentPin(f"{repo}:{content_tag(inputs[parent.ref].content_hash)}", parent.name, None)


@dataclass(frozen=True)
class Rendered:
    ref: str
    folder: Path


def render_images(
    catalog: Catalog,
    images: list[CatalogImage],
    inputs: Mapping[str, ContentInputs],
    digests: Mapping[str, str],
    out_dir: Path,
) -> list[Rendered]:
    rendered = []
    for image in images:
        text = render_dockerfile(
            catalog,
            image,
            inputs[image.ref].content_hash,
            parent_pin(catalog, image, inputs, digests),
        )
        folder = write_build_context(catalog, image, text, out_dir / slug(image.ref))
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
        else ["(missing)"]
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
