"""gc: delete what the environments' retention keeps no longer, with its evidence."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from imagefactory.cli.app import app
from imagefactory.cli.catalog import JsonOption, open_catalog
from imagefactory.cli.output import Output
from imagefactory.release.gc_limit import DEFAULT_LIMIT

if TYPE_CHECKING:
    from imagefactory.release.gc import Deletion, GcReport
    from imagefactory.release.retention import Decision


def _manifest(decision: Decision) -> dict[str, object]:
    m = decision.manifest
    return {
        "environment": m.environment,
        "registry": m.registry,
        "repository": m.repository,
        "image": m.image,
        "digest": m.digest,
        "tags": list(m.tags),
    }


def _as_dict(report: GcReport) -> dict[str, object]:
    return {
        "ok": True,
        "dry_run": report.dry_run,
        "environments": list(report.scope),
        "delete": [
            {
                **_manifest(d.decision),
                "why": d.decision.why,
                "size_bytes": d.size_bytes,
                "evidence": list(d.evidence),
                "audit_id": d.audit_id,
            }
            for d in report.deletions
        ],
        "kept": [{**_manifest(k), "reasons": list(k.reasons)} for k in report.kept],
        "left": [{**_manifest(d), "why": d.why} for d in report.left],
        "skipped": [{**_manifest(d), "tagged": tag} for d, tag in report.skipped],
        "completed_interrupted": list(report.completed),
        "size_bytes": sum(d.size_bytes or 0 for d in report.deletions),
    }


def _line(deletion: Deletion, verb: str) -> str:
    m = deletion.decision.manifest
    tags = ", ".join(m.tags) or "untagged"
    return (
        f"{verb} {m.environment} {m.repository}@{m.digest[7:19]} ({tags}): {deletion.decision.why}"
    )


def _show(output: Output, report: GcReport) -> None:
    for audit_id in report.completed:
        output.text(f"completed the interrupted deletion {audit_id}")
    if report.dry_run:
        for deletion in report.deletions:
            output.text(_line(deletion, "would delete"))
    if report.kept:
        output.table(
            "kept, and the rules that keep each",
            ["env", "repository", "digest", "tags", "kept because"],
            [
                [
                    k.manifest.environment,
                    k.manifest.repository,
                    k.manifest.digest[7:19],
                    ", ".join(k.manifest.tags) or "-",
                    "; ".join(k.reasons),
                ]
                for k in report.kept
            ],
        )
    for decision, tag in report.skipped:
        m = decision.manifest
        output.text(f"skipped {m.repository}@{m.digest[7:19]}: tagged {tag} meanwhile")
    size = sum(d.size_bytes or 0 for d in report.deletions) / 1e6
    verb = "would delete" if report.dry_run else "deleted"
    output.text(
        f"{verb} {len(report.deletions)} manifests ({size:.1f} MB of image data; layers a kept "
        f"image shares stay), kept {len(report.kept)}"
        + (f"; {len(report.left)} left over --limit for the next run" if report.left else "")
    )
    if not report.dry_run and report.deletions:
        output.text(
            "the registry's storage shrinks when its garbage collection runs "
            "(distribution: registry garbage-collect; docs/retention.md)"
        )


@app.command(
    name="gc",
    epilog="Examples:\n\n"
    "  imagefactory gc --dry-run                 # what would go, and why the rest stays\n\n"
    "  imagefactory gc --env dev --json          # delete in dev; one JSON document",
)
def gc_command(
    ctx: typer.Context,
    env: Annotated[
        str | None,
        typer.Option("--env", help="Delete only in this environment (default: every one)."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say what would be deleted and why; delete nothing."),
    ] = False,
    limit: Annotated[
        int,
        typer.Option("--limit", help="The most manifests one run deletes; the rest: next run."),
    ] = DEFAULT_LIMIT,
    json_output: JsonOption = False,
) -> None:
    """Delete the images no retention rule keeps, with their signatures and attestations.

    Reads every environment's registries, the GitOps overlays, state, the audit log and
    revocations.yaml. Never deletes a digest an alias (X.Y, X, latest) of any environment names,
    a GitOps overlay pins, state records as deployed or last built, the catalog's current build,
    a parent of a kept digest, or a yanked/revoked one within `hold_days`; in each environment
    keeps the `keep_versions` highest versions per MAJOR.MINOR line and everything younger than
    `keep_days` (imagefactory.yaml: environments[].retention; without it the first environment
    keeps 10 versions / 30 days and the others delete nothing). Each deletion is an audit record
    written ahead; a run that was interrupted is completed by the next one.
    """
    from imagefactory.release.gc import collect_garbage

    session, catalog = open_catalog(ctx, json_output)
    output = session.output
    report = collect_garbage(
        catalog,
        env,
        dry_run=dry_run,
        limit=limit,
        on_delete=lambda d: None if output.json else output.text(_line(d, "deleted")),
    )
    if json_output:
        output.data(_as_dict(report))
    else:
        _show(output, report)
