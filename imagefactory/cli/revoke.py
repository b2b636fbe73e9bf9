"""revoke: a digest (and what is built on it) is never deployed again; the blast radius."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from imagefactory.cli.app import app
from imagefactory.cli.catalog import JsonOption, open_catalog
from imagefactory.cli.output import Output

if TYPE_CHECKING:
    from imagefactory.release.revoke import Revocation


def _as_dict(result: Revocation, dry_run: bool) -> dict[str, object]:
    return {
        "ok": True,
        "dry_run": dry_run,
        "reason": result.reason,
        "revoked": [
            {
                "image": r.ref,
                "digest": r.digest,
                "repositories": list(r.repositories),
                "built_on": r.parent,
                "audit_id": r.audit_id,
                "listed": r.listed,
                "listed_now": r.added,
            }
            for r in result.revoked
        ],
        "still_pinned": [
            {"image": p.ref, "digest": p.digest, "env": p.env, "source": p.source}
            for p in result.pinned
        ],
        "completed_interrupted": list(result.completed),
        "commit": result.to_commit,
    }


def _show(output: Output, result: Revocation, dry_run: bool) -> None:
    verb = "would revoke" if dry_run else "revoked"
    for audit_id in result.completed:
        output.text(f"completed the interrupted revocation {audit_id}")
    for r in result.revoked:
        why = f" (built on {r.parent})" if r.parent else ""
        output.text(f"{verb} {r.ref}@{r.digest}{why}")
        for place in r.repositories:
            output.text(f"  lifecycle attestation in {place}")
        if r.listed:
            output.text(f"  {'listed' if r.added else 'already listed'} in {r.listed}")
        if r.audit_id:
            output.text(f"  audit record {r.audit_id}")
    if result.pinned:
        output.table(
            "blast radius: still held or pinned (nothing is rolled back; promote a good "
            "version over it)",
            ["image", "digest", "env", "according to"],
            [[p.ref, p.digest[7:19], p.env, p.source] for p in result.pinned],
        )
    else:
        output.text("no environment holds or pins a revoked digest")
    if dry_run and result.revoked:
        from imagefactory.spec.revocations import REVOCATIONS_FILE

        output.text(f"would list each in {REVOCATIONS_FILE}, the catalog's record, to commit")
    if result.to_commit:
        output.text(
            f"commit {result.to_commit} and merge it (a reviewed merge request): the catalog's "
            f"record of the revocation, which the release gate reads (git add {result.to_commit} "
            "&& git commit)"
        )


@app.command(
    name="revoke",
    epilog="Examples:\n\n"
    "  imagefactory revoke base/debian12@sha256:4f2a… --reason 'CVE-2026-1234, INC-42' --descendants\n\n"
    "  imagefactory revoke app/rag-api@sha256:4f2a… --reason 'leaked key' --dry-run --json",
)
def revoke_command(
    ctx: typer.Context,
    reference: Annotated[
        str, typer.Argument(metavar="IMAGE@sha256:…", help="An image of the catalog and a digest.")
    ],
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why (one line; in the attestation and the audit log)."),
    ] = None,
    descendants: Annotated[
        bool,
        typer.Option(
            "--descendants",
            help="Also revoke every catalog image built on it (its provenance or its "
            "base.digest label names it as the parent), recursively.",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Show what would be revoked and the blast radius; write nothing."
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Revoke a digest: a signed lifecycle attestation (status revoked) in every repository of
    the image that holds it, so the release gate, `imagefactory verify` and admission refuse it,
    and an entry in the catalog's revocations.yaml (commit it: lifting a revocation is deleting
    its entry, in review); recorded in the audit log. Nothing is rolled back: prints the environments that still hold
    or pin it (state, GitOps overlays); `imagefactory status` and `gitops diff` mark them.
    """
    from imagefactory.gitops.pin import parse_reference
    from imagefactory.release.revoke import revoke

    session, catalog = open_catalog(ctx, json_output)
    image, digest = parse_reference(reference)
    result = revoke(catalog, image, digest, reason, descendants=descendants, dry_run=dry_run)
    if json_output:
        session.output.data(_as_dict(result, dry_run))
    else:
        _show(session.output, result, dry_run)
