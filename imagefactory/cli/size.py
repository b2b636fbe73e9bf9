"""size: where an image's bytes are, per layer and per package."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from imagefactory.cli.app import app
from imagefactory.cli.catalog import JsonOption, open_catalog
from imagefactory.cli.output import Output

if TYPE_CHECKING:
    from imagefactory.build.size_report import SizeReport

MB = 1000 * 1000  # as docker image ls counts


@app.command(
    epilog="Examples:\n\n  imagefactory size base/debian12\n\n"
    "  imagefactory size app/rag-api runtime/llm:cpu --top 20\n\n"
    "  imagefactory size app/rag-api@sha256:… --json"
)
def size(
    ctx: typer.Context,
    images: Annotated[
        list[str],
        typer.Argument(
            help="Images: refs, optionally @sha256:<hex> (default: the digest its last build "
            "recorded).",
            show_default=False,
            metavar="IMAGE...",
        ),
    ],
    top: Annotated[
        int, typer.Option("--top", min=1, help="How many of the largest packages to list.")
    ] = 10,
    json_output: JsonOption = False,
) -> None:
    """Where each image's bytes are: its size, each layer (the instruction that made it), and
    its largest Debian packages (the files dpkg lists, as the image holds them) and Python
    distributions (their RECORD), read from the image's filesystem without running it. --json
    lists every package.
    """
    from imagefactory.build.size_report import size_reports

    session, catalog = open_catalog(ctx, json_output)
    reports = size_reports(catalog, images)
    if json_output:
        session.output.data({"ok": True, "images": [_described(r) for r in reports]})
        return
    for report in reports:
        _show(session.output, report, top)


def _described(report: SizeReport) -> dict[str, object]:
    return {
        "image": report.image,
        "reference": report.reference,
        "size_bytes": report.size_bytes,
        "layers": [{"created_by": x.created_by, "size_bytes": x.size_bytes} for x in report.layers],
        "debian_bytes": report.package_bytes("deb"),
        "python_bytes": report.package_bytes("pypi"),
        "packages": [
            {"kind": p.kind, "name": p.name, "version": p.version, "size_bytes": p.size_bytes}
            for p in report.packages
        ],
    }


def _show(output: Output, report: SizeReport, top: int) -> None:
    output.text(
        f"{report.image}: {_mb(report.size_bytes)} ({report.reference}); Debian packages "
        f"{_mb(report.package_bytes('deb'))}, Python {_mb(report.package_bytes('pypi'))}"
    )
    output.table(
        "layers (lowest first)",
        ["size", "made by"],
        [[_mb(x.size_bytes), _short(x.created_by)] for x in report.layers],
    )
    output.table(
        f"largest {min(top, len(report.packages))} packages",
        ["size", "kind", "package", "version"],
        [[_mb(p.size_bytes), p.kind, p.name, p.version] for p in report.packages[:top]],
    )


def _mb(size_bytes: int) -> str:
    return f"{size_bytes / MB:.1f} MB"


def _short(created_by: str) -> str:
    text = " ".join(created_by.split()).removeprefix("/bin/sh -c ").removeprefix("#(nop) ")
    return text if len(text) <= 100 else text[:97] + "..."
