"""``imagefactory render terraform``: the Terraform variables of every environment's registries.

Called by the ``render`` command (imagefactory/cli/build.py) when its first word is
``terraform``; the work is in :mod:`imagefactory.render.terraform`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from imagefactory.cli.catalog import open_catalog
from imagefactory.errors import UserError
from imagefactory.render.terraform import stale_tfvars, write_tfvars

DEFAULT_OUT = Path("terraform/environments")


def render_terraform(
    ctx: typer.Context, words: list[str], out: Path | None, check: bool, json_output: bool
) -> None:
    """``render terraform``: every environment's tfvars from the whole catalog."""
    if words:
        raise typer.BadParameter(
            "render terraform covers the whole catalog; it takes no image names",
            param_hint="IMAGE",
        )
    session, catalog = open_catalog(ctx, json_output)
    chosen = DEFAULT_OUT if out is None else out
    target = chosen if chosen.is_absolute() else catalog.root / chosen
    if check:
        stale = stale_tfvars(catalog, target)
        if json_output:
            session.output.data({"ok": not stale, "stale": stale})
        if stale:
            raise UserError(
                f"Terraform variables in {target} are stale: {', '.join(stale)}",
                hint=f"run 'imagefactory render terraform' and commit {chosen}",
            )
        if not json_output:
            session.output.text(f"Terraform variables in {target} are up to date")
        return
    written = write_tfvars(catalog, target)
    if json_output:
        session.output.data(
            {
                "ok": True,
                "terraform": [
                    {
                        "environment": w.environment,
                        "file": str(w.path),
                        "repositories": w.repositories,
                    }
                    for w in written
                ],
            }
        )
        return
    for w in written:
        session.output.text(f"{w.environment}: {w.path} ({w.repositories} repositories)")
