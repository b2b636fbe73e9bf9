"""evidence: one file with everything known about a digest, checked offline with the public key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imagefactory.cli.app import app
from imagefactory.cli.catalog import JsonOption, one_image, open_catalog


@app.command(
    name="evidence",
    epilog="Examples:\n\n  imagefactory evidence app/rag-api --env prod --out rag-api.evidence.json\n\n"
    "  imagefactory verify --bundle rag-api.evidence.json --key cosign.pub",
)
def evidence_command(
    ctx: typer.Context,
    image: Annotated[
        str,
        typer.Argument(
            metavar="IMAGE[@sha256:…]",
            help="An image (the digest ENV holds, as state records it), or an image and a digest.",
        ),
    ],
    env: Annotated[
        str, typer.Option("--env", help="The environment whose first registry is read.")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="The bundle file to write (JSON).", dir_okay=False)
    ],
    json_output: JsonOption = False,
) -> None:
    """Write the evidence bundle of a digest: its .sig and .att manifests and every blob
    (signatures, provenance, SBOM, test runs, releases and approvals, scan verdicts,
    revocations), its audit records and the verification summary, sealed with the signing key.
    Checked first as `imagefactory verify` does; `imagefactory verify --bundle FILE --key PUB`
    re-checks it offline.
    """
    from imagefactory.gitops.pin import parse_reference
    from imagefactory.release.evidence_bundle import export_evidence

    session, catalog = open_catalog(ctx, json_output)
    ref, digest = parse_reference(image) if "@" in image else (image, None)
    exported = export_evidence(catalog, one_image(catalog, ref), env, out, digest)
    report = exported.report
    if json_output:
        session.output.data(
            {
                "ok": True,
                "out": str(exported.path),
                "image": report.image,
                "environment": report.environment,
                "repository": report.repository,
                "digest": report.digest,
                "summary": dict(report.summary),
            }
        )
        return
    session.output.text(f"wrote {exported.path}: {report.repository}@{report.digest}")
    for kind, count in report.summary["attestations"].items():
        session.output.text(f"  {count} {kind}")
    session.output.text(f"  {report.summary['audit_records']} audit records")
    if report.summary["revoked"]:
        session.output.text("  REVOKED")
