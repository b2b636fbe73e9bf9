"""push · promote · status: versions and tags into registries, dev → preprod → prod by digest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from imagefactory.cli.app import app
from imagefactory.cli.catalog import (
    ApproveOption,
    ApproverOption,
    ImageArgument,
    ImagesArgument,
    JsonOption,
    one_image,
    open_catalog,
)
from imagefactory.cli.output import Output

if TYPE_CHECKING:
    from imagefactory.release.record import Shipped


def _show(output: Output, shipped: Shipped, dry_run: bool) -> None:
    release = shipped.release
    verb = "would" if dry_run else "did"
    output.text(f"{release.ref} {release.version} ({release.reason}) {release.digest}")
    for change in release.changes:
        if change.action != "keep":
            before = f" (was {change.previous[:19]}…)" if change.previous else ""
            output.text(f"  {verb} {change.action} {change.repository}:{change.tag}{before}")
    kept = [c.tag for c in release.changes if c.action == "keep"]
    if kept:
        output.text(f"  unchanged: {', '.join(kept)}")
    if release.audit_id:
        output.text(f"  audit record {release.audit_id}")
    if shipped.gitops is not None:
        output.text(f"  gitops: {shipped.gitops.action}")
    if shipped.not_pinned is not None:
        output.text(f"  not pinned in GitOps: {shipped.not_pinned}")


def _as_dict(shipped: Shipped) -> dict[str, object]:
    release = shipped.release
    return {
        "image": release.ref,
        "version": release.version,
        "digest": release.digest,
        "reason": release.reason,
        "audit_id": release.audit_id,
        "tags": [
            {
                "registry": c.registry,
                "repository": c.repository,
                "tag": c.tag,
                "action": c.action,
                "previous": c.previous,
            }
            for c in release.changes
        ],
        "gitops": shipped.gitops.as_dict() if shipped.gitops else None,
        "gitops_not_pinned": shipped.not_pinned,
    }


@app.command(
    epilog="Examples:\n\n  imagefactory push --all\n\n  imagefactory push app/rag-api --dry-run"
)
def push(
    ctx: typer.Context,
    images: ImagesArgument = None,
    all_images: Annotated[bool, typer.Option("--all", help="Push every built image.")] = False,
    env: Annotated[
        str | None,
        typer.Option("--env", help="The environment to push to (the first one; default: it)."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Show every tag that would be created or moved; touch nothing."
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Push a digest without a passing test run of its own, or overwrite an existing "
            "X.Y.Z that holds another digest (the audit log records which).",
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Give each built image its semver version and push it, by digest, to every registry of the
    first environment: X.Y.Z and git-<sha> of the commit that built it (immutable), X.Y, X and
    latest (moved only when this is the highest version of that line). Only a digest that passed
    its tests (release.require_tests). Verifies the digest in each registry.
    """
    from imagefactory.release.push import push_images

    session, catalog = open_catalog(ctx, json_output)
    if not images and not all_images:
        raise typer.BadParameter("name images to push, or pass --all", param_hint="IMAGE")
    releases = push_images(
        catalog,
        catalog.select(images or []),
        env,
        dry_run=dry_run,
        force=force,
        on_release=lambda r: None if json_output else _show(session.output, r, dry_run),
    )
    if json_output:
        session.output.data(
            {"ok": True, "dry_run": dry_run, "images": [_as_dict(r) for r in releases]}
        )


@app.command(
    name="promote",
    epilog="Examples:\n\n  imagefactory promote app/rag-api --to preprod"
    "\n\n  imagefactory promote app/rag-api --to prod --approve"
    "\n\n  imagefactory promote app/rag-api --to prod --approve --approver 'Jane Doe'",
)
def promote_command(
    ctx: typer.Context,
    image: ImageArgument,
    to: Annotated[
        str,
        typer.Option(
            "--to", help="The environment to promote to (the one after where the image is now)."
        ),
    ],
    approve: ApproveOption = False,
    approver: ApproverOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be copied; touch nothing.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Copy the digest the previous environment holds into this one — never a rebuild, never a
    skipped environment, only a digest that passed its tests and is not yanked, approved where the
    environment needs it — verify it, and append an audit record naming the approver.
    """
    from imagefactory.release.promote import promote

    session, catalog = open_catalog(ctx, json_output)
    shipped = promote(
        catalog, one_image(catalog, image), to, approve=approve, approver=approver, dry_run=dry_run
    )
    if json_output:
        session.output.data({"ok": True, "dry_run": dry_run, **_as_dict(shipped)})
        return
    _show(session.output, shipped, dry_run)


@app.command(
    name="status",
    epilog="Examples:\n\n  imagefactory status\n\n  imagefactory status app/rag-api --json",
)
def status_command(
    ctx: typer.Context, images: ImagesArgument = None, json_output: JsonOption = False
) -> None:
    """Per image, the version and digest each environment holds, whether that digest passed its
    tests, whether its version is yanked and whether the digest is revoked (either stays
    deployed until a good version is promoted over it); the yanked versions, with why; then
    every push, promotion, yank or revocation that was interrupted (its intent logged, not its
    done record)."""
    from imagefactory.release.status import status

    session, catalog = open_catalog(ctx, json_output)
    found = status(catalog, catalog.select(images or []))
    envs = [env.name for env in catalog.project.environments]
    incomplete = [
        {
            "image": i.image,
            "env": i.target,
            "action": i.action,
            "version": i.version,
            "digest": i.digest,
            "tags": i.tags,
            "audit_id": i.id,
            "at": i.at,
            "who": i.who,
            "complete_with": i.command(),
        }
        for i in found.incomplete
    ]
    if json_output:
        session.output.data(
            {
                "ok": True,
                "images": {
                    ref: {
                        p.env: {
                            "version": p.version,
                            "digest": p.digest,
                            "tested": p.tested,
                            "yanked": p.yanked is not None,
                            "revoked": p.revoked is not None,
                        }
                        for p in row
                    }
                    for ref, row in found.placements.items()
                },
                "yanked": {
                    ref: [
                        {
                            "version": y.version,
                            "digest": y.digest,
                            "reason": y.reason,
                            "by": y.by,
                            "at": y.at,
                            "audit_id": y.audit_id,
                            "deployed_in": found.holding(ref, y.version),
                            "aliases_left": y.aliases_left,
                        }
                        for y in records
                    ]
                    for ref, records in found.yanked.items()
                },
                "incomplete": incomplete,
            }
        )
        return
    rows = [
        [
            ref,
            *(
                f"{p.version} {p.digest[7:19]}{' ✓' if p.tested else ''}"
                f"{' YANKED' if p.yanked else ''}{' REVOKED' if p.revoked is not None else ''}"
                if p.digest
                else "-"
                for p in row
            ),
        ]
        for ref, row in found.placements.items()
    ]
    session.output.table(None, ["image", *envs], rows)
    if found.yanked:
        session.output.table(
            "yanked: never pushed or promoted again; deployed digests stay until promoted over",
            ["image", "version", "digest", "reason", "by", "at", "deployed in", "aliases left"],
            [
                [
                    ref,
                    y.version,
                    y.digest[7:19],
                    y.reason,
                    y.by,
                    y.at,
                    ", ".join(found.holding(ref, y.version)) or "-",
                    ", ".join(y.aliases_left) or "-",
                ]
                for ref, records in found.yanked.items()
                for y in records
            ],
        )
    if found.incomplete:
        session.output.table(
            "incomplete: intent logged, never done (interrupted, or still running)",
            ["image", "env", "action", "version", "tags", "audit id", "since", "complete with"],
            [
                [i.image, i.target, i.action, i.version, ", ".join(i.tags), i.id, i.at, i.command()]
                for i in found.incomplete
            ],
        )
