"""version show · version bump: the versions images have, will get, and a bump of image.yaml."""

from __future__ import annotations

from typing import Annotated

import typer

from imagefactory.cli.app import app
from imagefactory.cli.catalog import ImagesArgument, JsonOption, open_catalog, shown
from imagefactory.release.parts import Part

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
    from imagefactory.release.versions import version_statuses

    session, catalog = open_catalog(ctx, json_output)
    statuses = version_statuses(catalog, images or [])
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
    from imagefactory.release.versions import bump_version

    session, catalog = open_catalog(ctx, json_output)
    done = bump_version(catalog, image, part, dry_run=dry_run)
    where = shown(done.file, catalog.root)
    if json_output:
        session.output.data(
            {
                "ok": True,
                "image": done.name,
                "file": where,
                "old": done.old,
                "new": done.new,
                "dry_run": done.dry_run,
            }
        )
        return
    change = f"{done.name}: {done.old} → {done.new} ({where})"
    session.output.text(f"{change}: dry run, nothing written" if dry_run else change)
