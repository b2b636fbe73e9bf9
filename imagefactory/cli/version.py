"""version show · version bump: the versions images have, will get, and a bump of image.yaml."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import semver
import typer

from imagefactory.cli.app import app
from imagefactory.cli.catalog import ImagesArgument, JsonOption, open_catalog, shown
from imagefactory.errors import UserError
from imagefactory.project.hashing import content_inputs
from imagefactory.project.paths import state_file
from imagefactory.project.state import ImageRecord, load_state
from imagefactory.project.yamledit import set_version
from imagefactory.release.versioning import VersionChoice, choose_version
from imagefactory.spec.catalog import CatalogImage

OFFLINE_NOTE = (
    "offline: the registry was not asked; a version it already holds for other content "
    "makes the push take the next free patch instead"
)

version_app = typer.Typer(
    name="version",
    help="Show the versions images have and will get on push; bump the version in image.yaml.",
    epilog="Examples:\n\n  imagefactory version show\n\n"
    "  imagefactory version bump runtime/llm minor --dry-run",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(version_app, name="version")


class Part(StrEnum):
    MAJOR = "major"
    MINOR = "minor"
    PATCH = "patch"


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
    raw = record.model_dump().get("versions") if record is not None else None
    if not isinstance(raw, Mapping):
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}


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


@version_app.command(
    "show",
    epilog="Examples:\n\n  imagefactory version show\n\n"
    "  imagefactory version show runtime/llm --json",
)
def show(
    ctx: typer.Context, images: ImagesArgument = None, json_output: JsonOption = False
) -> None:
    """For each image: the version in image.yaml, the version the state file records, and the
    version the next push would give it, with the reason.

    Offline: reads the catalog and the state file only, so a version the registry holds
    without the state file knowing is not taken into account (the push itself asks).
    """
    session, catalog = open_catalog(ctx, json_output)
    selected = {i.ref for i in catalog.select(images or [])}
    state = load_state(state_file(catalog))
    statuses = [
        version_status(catalog.images[ref], inputs.content_hash, state.images.get(ref))
        for ref, inputs in content_inputs(catalog).items()
        if ref in selected
    ]
    if json_output:
        session.output.data(
            {"ok": True, "offline": True, "images": [s.as_dict() for s in statuses]}
        )
        return
    session.output.table(
        None,
        ["image", "image.yaml", "state", "next push", "why"],
        [
            [s.ref, s.spec_version, s.state_version or "-", str(s.next.version), s.next.reason]
            for s in statuses
        ],
    )
    session.output.err.print(OFFLINE_NOTE, markup=False)


def bumped(version: str, part: Part) -> str:
    """The next ``part`` version (semver's rules: 1.2.3 → 1.3.0 for minor; a prerelease
    becomes the release it prepares when that is the same kind: 1.3.0-rc.1 → 1.3.0 for minor
    and 1.2.3-rc.1 → 1.2.3 for patch). Build metadata is dropped."""
    return str(semver.Version.parse(version).replace(build=None).next_version(part.value))


@version_app.command(
    "bump",
    epilog="Examples:\n\n  imagefactory version bump runtime/llm patch\n\n"
    "  imagefactory version bump app/rag-api major --dry-run",
)
def bump(
    ctx: typer.Context,
    image: Annotated[
        str,
        typer.Argument(
            help="The image by name; its variants share one image.yaml and are bumped together.",
            metavar="IMAGE",
            show_default=False,
        ),
    ],
    part: Annotated[
        Part,
        typer.Argument(
            help="Which part of the version to raise.", metavar="PART", show_default=False
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the change without writing the file.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Raise the version in an image's image.yaml (major, minor or patch) and print old → new.

    Only the version's characters change: comments, blank lines, key order and quoting stay.
    """
    session, catalog = open_catalog(ctx, json_output)
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
    where = shown(file, catalog.root)
    if json_output:
        session.output.data(
            {"ok": True, "image": name, "file": where, "old": old, "new": new, "dry_run": dry_run}
        )
        return
    change = f"{name}: {old} → {new} ({where})"
    session.output.text(f"{change}: dry run, nothing written" if dry_run else change)
