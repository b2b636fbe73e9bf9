"""gitops init · update · diff: the deployment repository Argo CD syncs, pinned by digest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imagefactory.cli.app import app
from imagefactory.cli.catalog import JsonOption, open_catalog
from imagefactory.errors import UserError

gitops_app = typer.Typer(
    name="gitops",
    help="The GitOps repository: Kustomize bases and overlays per environment, pinned by "
    "digest, and Argo CD Applications (settings: gitops.yaml next to imagefactory.yaml).",
    epilog="Examples:\n\n  imagefactory gitops init ../deployments\n\n"
    "  imagefactory gitops update --env preprod app/rag-api@sha256:4f2a…\n\n"
    "  imagefactory gitops diff --env prod",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(gitops_app, name="gitops")

EnvOption = Annotated[str, typer.Option("--env", help="The environment (dev, preprod, prod…).")]


@gitops_app.command("init", epilog="Example: imagefactory gitops init ../deployments")
def init(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Argument(metavar="DIR", help="A checkout of the GitOps repository.", file_okay=False),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Also rewrite existing overlays (their pins too).")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Write, for each application image, a Kustomize base, one overlay per environment pinned by
    the digest state records there, and an Argo CD Application per environment. Existing
    overlays are kept (they hold the pins) unless --force."""
    from imagefactory.gitops.scaffold import write_layout

    session, catalog = open_catalog(ctx, json_output)
    layout = write_layout(catalog, directory, force=force)
    if json_output:
        session.output.data({"ok": True, "written": layout.written, "kept": layout.kept})
        return
    for relative in layout.written:
        session.output.text(f"wrote {relative}")
    for relative in layout.kept:
        session.output.text(f"kept  {relative} (exists; --force rewrites it)")


@gitops_app.command(
    "update",
    epilog="Examples:\n\n  imagefactory gitops update --env preprod app/rag-api@sha256:4f2a…\n\n"
    "  imagefactory gitops update --env prod app/rag-api@sha256:4f2a… --approve",
)
def update(
    ctx: typer.Context,
    reference: Annotated[
        str, typer.Argument(metavar="IMAGE@sha256:…", help="An application image and its digest.")
    ],
    env: EnvOption,
    approve: Annotated[
        bool,
        typer.Option(
            "--approve",
            help="Approve the pin into an environment that needs approval, outside CI "
            "(recorded in the audit log; in GitLab CI only the protected deployment job "
            "approves).",
        ),
    ] = False,
    approver: Annotated[
        str | None,
        typer.Option(
            "--approver",
            help="Who approves, with --approve (default: the git identity, user.name <user.email>).",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Pin IMAGE's digest in ENV's overlay, through the release gate: ENV's registry must hold
    the digest under a version tag (the version the commit names), it must have passed its
    tests, its version must not be yanked, and ENV's approval rule must be met. Writes an audit
    record, then edits only the overlay's images: entry, commits and pushes (or opens or updates
    a merge request, as gitops.yaml says for ENV). Nothing changes when it is pinned."""
    from imagefactory.gitops.pin import parse_reference
    from imagefactory.release.deploy import deploy

    session, catalog = open_catalog(ctx, json_output)
    image, digest = parse_reference(reference)
    deployment = deploy(catalog, image, env, digest, approve=approve, approver=approver)
    result = deployment.pin
    if json_output:
        session.output.data({"ok": True, **deployment.as_dict()})
        return
    what = f"{result.image} {deployment.version} in {env}"
    if result.action == "unchanged":
        session.output.text(f"{what} already pins {digest}: nothing to do")
    elif result.merge_request is not None:
        session.output.text(
            f"{what}: merge request !{result.merge_request.iid} "
            f"{result.merge_request.action}: {result.merge_request.url}"
        )
    else:
        session.output.text(f"{what}: pinned {digest} ({result.commit})")
    session.output.text(f"audit record {deployment.audit_id}")


@gitops_app.command("diff", epilog="Example: imagefactory gitops diff --env prod --json")
def diff(
    ctx: typer.Context,
    env: EnvOption,
    checkout: Annotated[
        Path | None,
        typer.Option(
            "--repo-dir", help="Read this checkout instead of cloning repo_url.", file_okay=False
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Exit 1 when an image pins another digest than state holds, or none where "
            "state holds one.",
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """What the GitOps repository pins in ENV vs what state says ENV holds (drift report). An
    image neither side names a digest for is not-deployed, one whose pin this checkout's state does
    not know is not-in-state: neither is drift. One state says ENV holds but the overlay pins no
    digest for (entry removed, or a newTag:) is unpinned: that is drift. A pin of a revoked
    digest (as this checkout's audit log records revocations) is marked REVOKED (--json:
    revoked_pins)."""
    from imagefactory.gitops.drift import drift
    from imagefactory.release.revoke import revocations

    session, catalog = open_catalog(ctx, json_output)
    rows = drift(catalog, env, checkout)
    differs = [r for r in rows if r.drifted]
    revoked = revocations(catalog)
    pins = {
        (r.image, r.pinned): revoked[r.image, r.pinned]
        for r in rows
        if r.pinned is not None and (r.image, r.pinned) in revoked
    }
    if json_output:
        session.output.data(
            {
                "ok": True,
                "env": env,
                "images": [r.as_dict() for r in rows],
                "revoked_pins": [
                    {"image": image, "digest": digest, "reason": reason}
                    for (image, digest), reason in pins.items()
                ],
            }
        )
    else:
        session.output.table(
            None,
            ["image", "gitops pins", "state holds", "status"],
            [
                [
                    r.image,
                    r.pinned or "-",
                    r.state or "-",
                    f"{r.status} REVOKED" if (r.image, r.pinned) in pins else r.status,
                ]
                for r in rows
            ],
        )
    if check and differs:
        raise UserError(
            f"{len(differs)} image(s) in {env} pin no digest or another digest than state says "
            f"{env} holds",
            hint=f"pin what {env} holds: imagefactory gitops update --env {env} IMAGE@DIGEST",
        )
