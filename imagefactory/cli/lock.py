"""lock: the exact Debian and Python packages each image installs, in its image.lock."""

from __future__ import annotations

from typing import Annotated

import typer

from imagefactory.cli.app import app
from imagefactory.cli.catalog import ImagesArgument, JsonOption, open_catalog


@app.command(
    name="lock",
    epilog="Examples:\n\n  imagefactory lock runtime/llm:cpu\n\n  imagefactory lock --all --dry-run"
    "\n\n  imagefactory lock --all --check   # exit 1 when a lock is missing or stale (no engine)",
)
def lock_command(
    ctx: typer.Context,
    images: ImagesArgument = None,
    all_images: Annotated[
        bool, typer.Option("--all", help="Every image of the catalog that installs packages.")
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Resolve nothing: exit 1 when an image that installs packages has no lock, "
            "or its lock does not cover its packages: and pip: (or holds what it no longer "
            "installs).",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Resolve and show what would change; write nothing.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Resolve what each image's packages: and pip: install — apt's whole closure at the
    versions it chose, pip's distributions with the SHA-256 of the files it chose — in the
    local build of the image's parent, and write it to the image.lock beside its image.yaml.
    Builds then install exactly that (docs/images.md, Locks)."""
    from imagefactory.build.docker import Engine
    from imagefactory.freshness.lock import check_locks, lock_images

    session, catalog = open_catalog(ctx, json_output)
    if not images and not all_images:
        raise typer.BadParameter("name images to lock, or pass --all", param_hint="IMAGE")
    if check and dry_run:
        raise typer.BadParameter("--check resolves nothing already", param_hint="--dry-run")
    selected = catalog.select(list(images or []))
    if check:
        stale = check_locks(catalog, selected)
        if json_output:
            session.output.data({"ok": not stale, "stale": [s.as_dict() for s in stale]})
        else:
            for one in stale:
                session.output.text(f"{one.image}: {'; '.join(one.problems)}")
            if not stale:
                session.output.text(f"locks cover what {len(selected)} images install")
        if stale:
            raise typer.Exit(1)
        return
    engine = Engine()
    engine.check()
    results = lock_images(catalog, selected, engine, write=not dry_run)
    if json_output:
        session.output.data(
            {"ok": True, "dry_run": dry_run, "images": [r.as_dict() for r in results]}
        )
        return
    for result in results:
        lock = result.after
        verb = ("would change" if dry_run else "locked") if result.changed else "unchanged"
        session.output.text(
            f"{result.image}: {verb} ({len(lock.apt)} Debian packages, {len(lock.pip)} Python "
            f"distributions, {lock.arch})"
        )
        for key, entries in result.differences.items():
            if entries and result.before is not None:
                session.output.text(f"  {key}: {', '.join(entries)}")
    if not results:
        session.output.text("nothing to lock: the images install no packages")
