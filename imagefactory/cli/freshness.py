"""outdated: which built images the Debian mirror has newer packages for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from imagefactory.cli.app import app
from imagefactory.cli.catalog import JsonOption, open_catalog
from imagefactory.cli.output import Output

if TYPE_CHECKING:
    from imagefactory.freshness.outdated import Freshness, OutdatedReport


@app.command(
    name="outdated",
    epilog="Examples:\n\n  imagefactory outdated\n\n  imagefactory outdated base/debian12 --json"
    "\n\n  imagefactory outdated --check   # exit 1 when any image has a pending update",
)
def outdated_command(
    ctx: typer.Context,
    images: Annotated[
        list[str] | None,
        typer.Argument(
            help="Images: refs, optionally @sha256:<hex> (default: every image of the catalog; "
            "each at the digest state records, else the one its content tag names in the build "
            "registry).",
            show_default=False,
            metavar="[IMAGE]...",
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when any image has a pending update.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Compare each built image's Debian packages (from its SBOM) with the current Packages
    indexes of the suite its chain was bootstrapped from (the suite, -updates and -security of
    build.mirrors; cached, asked again with If-None-Match): the pending updates, how many are
    security updates, and the newest versions."""
    from imagefactory.freshness.outdated import outdated

    session, catalog = open_catalog(ctx, json_output)
    report = outdated(catalog, list(images or []))
    pending = any(image.pending for image in report.images)
    if json_output:
        session.output.data({"ok": not (check and pending), **_described(report)})
    else:
        for how in report.indexes:
            if how.note:
                session.output.err.print(
                    f"note: {how.url}: {how.note} (cached copy used)", markup=False
                )
        for image in report.images:
            _show(session.output, image)
        if report.not_built:
            session.output.text(f"not built yet: {', '.join(report.not_built)}")
    if check and pending:
        raise typer.Exit(1)


def _described(report: OutdatedReport) -> dict[str, object]:
    return {
        "images": [
            {
                "image": i.image,
                "reference": i.reference,
                "suite": i.suite,
                "packages": i.packages,
                "pending": len(i.pending),
                "security": i.security,
                "updates": [
                    {
                        "package": p.package,
                        "installed": p.installed,
                        "available": p.available,
                        "dist": p.dist,
                        "security": p.security,
                    }
                    for p in i.pending
                ],
            }
            for i in report.images
        ],
        "indexes": [{"url": f.url, "source": f.source, "note": f.note} for f in report.indexes],
        "not_built": list(report.not_built),
    }


def _show(output: Output, image: Freshness) -> None:
    if image.suite is None:
        output.text(f"{image.image}: not bootstrapped here, so no suite to compare with")
        return
    if not image.pending:
        output.text(f"{image.image}: up to date ({image.packages} Debian packages, {image.suite})")
        return
    output.text(
        f"{image.image}: {len(image.pending)} pending updates, {image.security} security "
        f"({image.packages} Debian packages, {image.suite})"
    )
    output.table(
        None,
        ["package", "installed", "available", "from"],
        [[p.package, p.installed, p.available, p.dist] for p in image.pending],
    )
