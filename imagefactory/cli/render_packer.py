"""``imagefactory render packer [IMAGE…]``: a Packer template (``<image>.pkr.hcl``) per image.

Called by the ``render`` command (imagefactory/cli/build.py) when its first word is ``packer``;
the work is in :mod:`imagefactory.render.packer`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from imagefactory.cli.catalog import open_catalog
from imagefactory.errors import UserError
from imagefactory.project.hashing import content_inputs
from imagefactory.project.paths import state_file
from imagefactory.project.state import load_state
from imagefactory.render.catalog import pinned_digests, stale_folders
from imagefactory.render.packer import packer_images, render_packer_images

DEFAULT_OUT = Path("rendered/packer")


def render_packer(
    ctx: typer.Context, words: list[str], out: Path | None, check: bool, json_output: bool
) -> None:
    """``render packer``: the named images, else every image whose targets include packer."""
    session, catalog = open_catalog(ctx, json_output)
    selected, skipped = packer_images(catalog, catalog.select(words) if words else [])
    for image in skipped:
        session.output.err.print(
            f"{image.ref}: skipped (bootstrapped from a rootfs: no parent image for Packer)"
        )
    inputs = content_inputs(catalog)
    digests = pinned_digests(load_state(state_file(catalog)), inputs)
    chosen = DEFAULT_OUT if out is None else out
    target = chosen if chosen.is_absolute() else catalog.root / chosen
    if check:
        # rendered beside the real output (same depth: same relative paths in the templates)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as fresh:
            written = render_packer_images(catalog, selected, inputs, digests, Path(fresh))
            stale = stale_folders({path.parent.name: path.parent for path in written}, target)
        if json_output:
            session.output.data({"ok": not stale, "stale": stale})
        if stale:
            listing = "; ".join(f"{name}: {', '.join(files)}" for name, files in stale.items())
            raise UserError(
                f"Packer templates in {target} are stale: {listing}",
                hint=f"run 'imagefactory render packer' and commit {chosen}",
            )
        if not json_output:
            session.output.text(f"{len(written)} Packer templates in {target} are up to date")
        return
    written = render_packer_images(catalog, selected, inputs, digests, target)
    if json_output:
        session.output.data({"ok": True, "rendered": [str(p) for p in written]})
    else:
        for path in written:
            session.output.text(str(path))
