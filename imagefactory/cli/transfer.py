"""export · import: an environment's digests and their evidence across an air gap, in one OCI
layout archive with a signed index (docs/airgap.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from imagefactory.cli.app import app
from imagefactory.cli.catalog import (
    ApproveOption,
    ApproverOption,
    ImagesArgument,
    JsonOption,
    open_catalog,
)
from imagefactory.cli.output import Output

DryRunOption = Annotated[
    bool,
    typer.Option("--dry-run", help="Check everything and show what would be done; write nothing."),
]


def _progress(output: Output) -> Callable[[str], None]:
    """Progress lines on stderr (stdout keeps the result, or the one JSON document)."""
    return lambda line: output.err.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command(
    name="export",
    epilog="Examples:\n\n  imagefactory export --env prod --out prod.oci.tar\n\n"
    "  imagefactory export --env prod app/rag-api --out rag-api.oci.tar --dry-run\n\n"
    "  skopeo inspect oci-archive:prod.oci.tar:app/rag-api:0.3.0",
)
def export_command(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", help="The environment whose digests are exported.")],
    out: Annotated[
        Path,
        typer.Option("--out", help="The archive to write (an OCI layout tar).", dir_okay=False),
    ],
    images: ImagesArgument = None,
    dry_run: DryRunOption = False,
    json_output: JsonOption = False,
) -> None:
    """Write an OCI image layout archive (oci-layout, index.json, blobs/sha256/…) of the digests
    ENV holds — each read from its first registry under the released version's tag, verified
    as `imagefactory verify` does — with their .sig and .att artifacts, and an index of what it
    holds signed with the project's signing key (a DSSE envelope, imagefactory-index.json).
    skopeo reads each image: oci-archive:FILE:NAME:VERSION. `imagefactory import FILE --to ENV`
    pushes it into another registry.
    """
    from imagefactory.release.export import export_environment

    session, catalog = open_catalog(ctx, json_output)
    done = export_environment(
        catalog, env, images or [], out, dry_run=dry_run, progress=_progress(session.output)
    )
    rows = [
        {
            "image": p.image.ref,
            "version": p.version,
            "tag": p.tag,
            "repository": p.repository,
            "digest": p.digest,
            "evidence": list(p.evidence),
            "name": f"{p.image.spec.name}:{p.tag}",
        }
        for p in done.images
    ]
    if json_output:
        session.output.data(
            {
                "ok": True,
                "dry_run": dry_run,
                "environment": env,
                "out": None if done.path is None else str(done.path),
                "blobs": done.blobs,
                "bytes": done.size,
                "images": rows,
            }
        )
        return
    verb = "would export" if dry_run else f"exported into {done.path}"
    session.output.text(
        f"{verb} from {env}: {len(rows)} images, {done.blobs} blobs, {done.size} bytes"
    )
    for row in rows:
        session.output.text(
            f"  {row['name']} {row['digest']} (+ {', '.join(row['evidence']) or 'no evidence'})"
        )


@app.command(
    name="import",
    epilog="Examples:\n\n  imagefactory import prod.oci.tar --to prod-airgap --dry-run\n\n"
    "  imagefactory import prod.oci.tar --to prod-airgap --json",
)
def import_command(
    ctx: typer.Context,
    archive: Annotated[
        Path, typer.Argument(help="An archive of `imagefactory export`.", dir_okay=False)
    ],
    to: Annotated[str, typer.Option("--to", help="The environment whose registries receive it.")],
    approve: ApproveOption = False,
    approver: ApproverOption = None,
    dry_run: DryRunOption = False,
    json_output: JsonOption = False,
) -> None:
    """Check an archive whole — its members, the signature of its index (the project's public
    key), every blob's digest and size — then push each image into every registry of the
    environment with its digest preserved (manifests byte for byte), its .sig and .att too;
    verify the signatures there, record the environment in state and append an audit record
    (written ahead: an interrupted import completes when run again).
    """
    from imagefactory.release.importing import import_archive

    session, catalog = open_catalog(ctx, json_output)
    done = import_archive(
        catalog,
        archive,
        to,
        approve=approve,
        approver=approver,
        dry_run=dry_run,
        progress=_progress(session.output),
    )
    rows = [
        {
            "image": landed.image,
            "version": landed.version,
            "digest": landed.digest,
            "repositories": list(landed.repositories),
            "action": landed.action,
            "audit_id": landed.audit_id,
        }
        for landed in done.images
    ]
    if json_output:
        session.output.data(
            {
                "ok": True,
                "dry_run": dry_run,
                "source": done.source,
                "environment": to,
                "blobs": done.blobs,
                "bytes": done.size,
                "images": rows,
            }
        )
        return
    session.output.text(
        f"{archive} (exported from {done.source}): signature and {done.blobs} blobs verified"
    )
    for landed in done.images:
        where = ", ".join(landed.repositories)
        audit_id = f" (audit record {landed.audit_id})" if landed.audit_id else ""
        session.output.text(
            f"  {landed.action} {landed.image} {landed.version} {landed.digest} → {where}{audit_id}"
        )
