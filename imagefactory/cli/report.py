"""report: one self-contained HTML page (or one JSON document) of every image's records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imagefactory.cli.app import app
from imagefactory.cli.catalog import JsonOption, open_catalog

DEFAULT_OUT = Path("report.html")


@app.command(
    name="report",
    epilog="Examples:\n\n  imagefactory report\n\n  imagefactory report --out public/catalog.html"
    "\n\n  imagefactory report --json --offline   # state and audit log only: no registry, no mirror",
)
def report_command(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help=f"The HTML file to write (default: {DEFAULT_OUT}; with --json: none unless given).",
            dir_okay=False,
        ),
    ] = None,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help="Read only local records (state, audit log, kept SBOMs): no signed evidence "
            "from the registries, no pending updates from the mirror.",
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Write the catalog report: one self-contained HTML file (inline CSS, the layer graph as
    inline SVG drawn by Graphviz, no script, a Content-Security-Policy that forbids every
    fetch) for a platform team and its auditors. Per image: its parent chain, last build, size
    and the size of the build before, SBOM package counts, test runs, revocations, yanks,
    pending Debian updates, and for each environment the version and digest it holds, the push
    or promotion that put it there (when, by whom, approved by whom), and its signed evidence
    (the checks of `imagefactory verify`, attestations, gate verdicts). What no record holds
    is shown as "not recorded". --json prints the same data as one JSON document.
    """
    from imagefactory.report.page import report_document, write_report

    session, catalog = open_catalog(ctx, json_output)
    if json_output and out is None:
        session.output.data({"ok": True, "out": None, **report_document(catalog, offline=offline)})
        return
    target = out or DEFAULT_OUT
    document = write_report(catalog, target, offline=offline)
    if json_output:
        session.output.data({"ok": True, "out": str(target), **document})
        return
    images, envs = len(document["images"]), len(document["environments"])
    session.output.text(f"wrote {target}: {images} images, {envs} environments")
