"""The core of ``version show`` and ``version bump``: each image's version as written, as
recorded and as the next push would give it; a bump of image.yaml that keeps the file as written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import semver

from imagefactory.errors import UserError
from imagefactory.project.hashing import content_inputs
from imagefactory.project.paths import state_file
from imagefactory.project.state import ImageRecord, load_state
from imagefactory.project.yamledit import set_version
from imagefactory.release.parts import Part
from imagefactory.release.versioning import VersionChoice, choose_version
from imagefactory.spec.catalog import Catalog, CatalogImage


@dataclass(frozen=True)
class VersionStatus:
    """One concrete image: its version as written, as recorded, and on the next push."""

    ref: str
    spec_version: str
    state_version: str | None
    assigned: dict[str, str]
    content_hash: str
    next: VersionChoice

    def as_dict(self) -> dict[str, object]:
        return {
            "image": self.ref,
            "spec_version": self.spec_version,
            "state_version": self.state_version,
            "assigned": self.assigned,
            "content_hash": self.content_hash,
            "next_version": str(self.next.version),
            "reason": self.next.reason,
        }


def assigned_versions(record: ImageRecord | None) -> dict[str, str]:
    """The record's ``versions`` (version → the content hash it was given for); {} if none."""
    return dict(record.versions) if record is not None else {}


def version_status(
    image: CatalogImage, content_hash: str, record: ImageRecord | None
) -> VersionStatus:
    assigned = assigned_versions(record)
    return VersionStatus(
        ref=image.ref,
        spec_version=image.spec.version,
        state_version=record.version if record is not None else None,
        assigned=assigned,
        content_hash=content_hash,
        next=choose_version(image.spec.version, content_hash, assigned, taken=[]),
    )


def version_statuses(catalog: Catalog, images: list[str]) -> list[VersionStatus]:
    """Every selected concrete image (all when ``images`` is empty), in build order. Offline:
    the catalog and the state file only."""
    selected = {i.ref for i in catalog.select(images)}
    state = load_state(state_file(catalog))
    return [
        version_status(catalog.images[ref], inputs.content_hash, state.images.get(ref))
        for ref, inputs in content_inputs(catalog).items()
        if ref in selected
    ]


def bumped(version: str, part: Part) -> str:
    """The next ``part`` version (semver's rules: 1.2.3 → 1.3.0 for minor; a prerelease
    becomes the release it prepares when that is the same kind: 1.3.0-rc.1 → 1.3.0 for minor
    and 1.2.3-rc.1 → 1.2.3 for patch). Build metadata is dropped."""
    return str(semver.Version.parse(version).replace(build=None).next_version(part.value))


@dataclass(frozen=True)
class Bump:
    """One bump of an image's version in its image.yaml."""

    name: str
    file: Path
    old: str
    new: str
    dry_run: bool


def bump_version(catalog: Catalog, image: str, part: Part, *, dry_run: bool) -> Bump:
    """Raise the version of ``image`` (a name: its variants share one image.yaml) by ``part``;
    only the version's characters of the file change. ``dry_run`` writes nothing."""
    chosen = catalog.select([image])
    files = sorted({i.file for i in chosen})
    names = sorted({i.spec.name for i in chosen})
    if len(files) != 1:  # a name is one file; this guards the impossible rather than guess
        raise UserError(f"'{image}' names images in {len(files)} files: {', '.join(names)}")
    file, name = files[0], names[0]
    old = chosen[0].spec.version
    new = bumped(old, part)
    if not dry_run:
        old = set_version(file, new)
    return Bump(name, file, old, new, dry_run)
