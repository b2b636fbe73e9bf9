"""sbom: what is inside an image (CycloneDX 1.6), and what changed between two."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from imagefactory.cli.app import Session, app
from imagefactory.cli.catalog import JsonOption, open_catalog
from imagefactory.cli.output import Output

if TYPE_CHECKING:
    from imagefactory.build.sbom_lookup import FoundSbom
    from imagefactory.sbom.diff import SbomDiff


@app.command(
    epilog="Examples:\n\n  imagefactory sbom app/rag-api\n\n"
    "  imagefactory sbom app/rag-api@sha256:… --out rag-api.cdx.json\n\n"
    "  imagefactory sbom diff app/rag-api@sha256:… app/rag-api\n\n"
    "  imagefactory sbom diff old.cdx.json new.cdx.json --json"
)
def sbom(
    ctx: typer.Context,
    words: Annotated[
        list[str],
        typer.Argument(
            help="IMAGE (a ref, optionally @sha256:<hex>; default: the digest its last build "
            "recorded), or 'diff A B' where A and B are images or CycloneDX files.",
            show_default=False,
            metavar="IMAGE | diff A B",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the CycloneDX JSON to this file.", dir_okay=False),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """The CycloneDX 1.6 SBOM of an image: its Debian and Python packages (syft's purls), the
    files its spec copies and its parent image, read from its filesystem without running it.

    Taken from the image's signed SBOM attestation in the registry when the project signs and
    the evidence verifies, else from the copy its build wrote, else computed from the local
    engine's image. 'diff A B' lists the packages added, removed and changed from A to B.
    """
    from imagefactory.atomic import write_atomically
    from imagefactory.build.sbom_lookup import image_sbom, sbom_diff

    if words and words[0] == "diff":
        if len(words) != 3:
            raise typer.BadParameter("diff takes two images or SBOM files: diff A B")
        if out is not None:
            raise typer.BadParameter("diff writes no SBOM", param_hint="--out")
        session: Session = ctx.obj
        session.output.json = json_output
        before, after, changes = sbom_diff(
            lambda: open_catalog(ctx, json_output)[1], words[1], words[2]
        )
        _show_diff(session.output, before, after, changes, json_output)
        return
    if len(words) != 1:
        raise typer.BadParameter("name one image (or: diff A B)", param_hint="IMAGE")
    session, catalog = open_catalog(ctx, json_output)
    found = image_sbom(catalog, words[0])
    if out is not None:
        write_atomically(out.absolute(), found.text.encode("utf-8"))
    if json_output:
        document: dict[str, Any] = {"ok": True, **_described(found)}
        if out is None:
            document["sbom"] = json.loads(found.text)
        else:
            document["out"] = str(out)
        session.output.data(document)
        return
    if found.note:
        session.output.err.print(f"note: {found.note}", markup=False)
    if out is not None:
        session.output.text(f"wrote the SBOM of {found.reference} ({found.source}) to {out}")
        return
    _show(session.output, found)


def _described(found: FoundSbom) -> dict[str, Any]:
    return {
        "reference": found.reference,
        "digest": found.digest,
        "source": found.source,
        "note": found.note,
    }


def _show(output: Output, found: FoundSbom) -> None:
    components = json.loads(found.text).get("components") or []
    rows = [
        [str(c.get(key) or "") for key in ("type", "name", "version", "purl")]
        for c in components
        if isinstance(c, dict)
    ]
    output.table(
        f"{found.reference} (from {found.source})", ["type", "name", "version", "purl"], rows
    )
    kinds: dict[str, int] = {}
    for row in rows:
        kinds[row[0]] = kinds.get(row[0], 0) + 1
    output.text(", ".join(f"{kind}: {count}" for kind, count in sorted(kinds.items())) or "empty")


def _show_diff(
    output: Output, before: FoundSbom, after: FoundSbom, changes: SbomDiff, json_output: bool
) -> None:
    if json_output:
        output.data(
            {
                "ok": True,
                "before": _described(before),
                "after": _described(after),
                "added": [
                    {"key": e.key, "name": e.name, "version": e.version} for e in changes.added
                ],
                "removed": [
                    {"key": e.key, "name": e.name, "version": e.version} for e in changes.removed
                ],
                "changed": [
                    {"key": c.key, "name": c.name, "before": c.before, "after": c.after}
                    for c in changes.changed
                ],
            }
        )
        return
    output.text(f"{before.reference} ({before.source}) → {after.reference} ({after.source})")
    for entry in changes.added:
        output.text(f"  + {entry.name} {entry.version}  {entry.key}")
    for entry in changes.removed:
        output.text(f"  - {entry.name} {entry.version}  {entry.key}")
    for change in changes.changed:
        output.text(f"  ~ {change.name} {change.before} → {change.after}  {change.key}")
    if changes.empty:
        output.text("  no package differs")
