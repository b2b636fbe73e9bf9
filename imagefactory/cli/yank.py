"""yank · unyank: mark a version bad (or good again); its aliases move to the highest good one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from imagefactory.cli.app import app
from imagefactory.cli.catalog import (
    ApproverOption,
    ImageArgument,
    JsonOption,
    one_image,
    open_catalog,
)
from imagefactory.cli.output import Output

if TYPE_CHECKING:
    from imagefactory.release.yank import YankResult

VersionArgument = Annotated[
    str, typer.Argument(help="The version, X.Y.Z as its tag names it (without the variant).")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Show every alias that would move; touch nothing.")
]
ApproveOption = Annotated[
    bool,
    typer.Option(
        "--approve",
        help="Approve moving the aliases in an environment that needs approval (outside CI; in "
        "GitLab CI only the environment's protected deployment job approves).",
    ),
]
PINS_NOTE = (
    "GitOps pins are not changed: where it is deployed, the yanked digest stays deployed until "
    "a good version is promoted over it"
)


def _run(
    ctx: typer.Context,
    step: Callable[..., YankResult],  # release.yank.yank or unyank
    image: str,
    version: str,
    reason: str | None,
    *,
    approve: bool,
    approver: str | None,
    dry_run: bool,
    json_output: bool,
) -> None:
    """Run ``step`` (yank or unyank) of one image's version and show what it did."""
    session, catalog = open_catalog(ctx, json_output)
    result = step(
        catalog,
        one_image(catalog, image),
        version,
        reason,
        dry_run=dry_run,
        approve=approve,
        approver=approver,
    )
    if json_output:
        session.output.data(_as_dict(result, dry_run))
    else:
        _show(session.output, result, dry_run)


def _as_dict(result: YankResult, dry_run: bool) -> dict[str, object]:
    return {
        "ok": True,
        "dry_run": dry_run,
        "action": result.action,
        "image": result.ref,
        "version": result.version,
        "digest": result.digest,
        "reason": result.reason,
        "audit_id": result.audit_id,
        "approver": result.approver,
        "completed_interrupted": list(result.completed),
        "deployed_in": list(result.deployed),
        "aliases_left": result.left,
        "aliases": [
            {
                "registry": c.registry,
                "repository": c.repository,
                "tag": c.tag,
                "action": c.action,
                "previous": c.previous,
                "version": c.version,
                "digest": c.digest,
                "environments": list(c.environments),
            }
            for c in result.changes
        ],
    }


def _show(output: Output, result: YankResult, dry_run: bool) -> None:
    verb = "would" if dry_run else "did"
    for audit_id in result.completed:
        output.text(f"completed the interrupted yank or unyank {audit_id}")
    why = f": {result.reason}" if result.reason else ""
    output.text(f"{result.action} {result.ref} {result.version} ({result.digest}){why}")
    for change in result.changes:
        if change.action in ("create", "move"):
            output.text(
                f"  {verb} {change.action} {change.repository}:{change.tag} → {change.version}"
            )
    kept = [f"{c.tag} ({c.registry})" for c in result.changes if c.action == "keep"]
    if kept:
        output.text(f"  unchanged: {', '.join(kept)}")
    if result.left:
        output.text(
            f"  left on the yanked digest (no good version in their line): {', '.join(result.left)}"
        )
    if result.approver:
        output.text(f"  approved by {result.approver}")
    if result.audit_id:
        output.text(f"  audit record {result.audit_id}")
    elif not dry_run:
        output.text("  nothing to do: state and every alias already say so")
    if result.action == "yank" and result.deployed:
        output.text(f"  deployed in {', '.join(result.deployed)}: {PINS_NOTE}")


@app.command(
    name="yank",
    epilog="Examples:\n\n"
    "  imagefactory yank app/rag-api 1.0.1 --reason 'CVE-2026-1234 in libfoo, INC-42'\n\n"
    "  imagefactory yank runtime/llm:cpu 1.2.0 --reason 'crashes on start' --dry-run --json\n\n"
    "  imagefactory yank app/rag-api 1.0.1 --reason 'CVE-2026-1234' --approve --approver 'Jane Doe'",
)
def yank_command(
    ctx: typer.Context,
    image: ImageArgument,
    version: VersionArgument,
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason",
            help="Why it is bad (one line; recorded in state and the audit log). Required, "
            "except to complete an interrupted yank of this version.",
        ),
    ] = None,
    approve: ApproveOption = False,
    approver: ApproverOption = None,
    dry_run: DryRunOption = False,
    json_output: JsonOption = False,
) -> None:
    """Mark a version bad: it is never pushed or promoted again, and X.Y, X and latest move back
    to the highest good version of their line in every environment's registries (approved where
    an environment whose aliases move needs it). The X.Y.Z tag stays; an alias whose line has no
    good version is left and reported. GitOps pins do not change. Recorded in state and the audit
    log, with the approver; `imagefactory status` shows it.
    """
    from imagefactory.release.yank import yank

    _run(
        ctx,
        yank,
        image,
        version,
        reason,
        approve=approve,
        approver=approver,
        dry_run=dry_run,
        json_output=json_output,
    )


@app.command(
    name="unyank",
    epilog="Examples:\n\n  imagefactory unyank app/rag-api 1.0.1\n\n"
    "  imagefactory unyank app/rag-api 1.0.1 --reason 'false positive, INC-42' --dry-run\n\n"
    "  imagefactory unyank app/rag-api 1.0.1 --approve --approver 'Jane Doe'",
)
def unyank_command(
    ctx: typer.Context,
    image: ImageArgument,
    version: VersionArgument,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why it is good again (one line; in the audit log)."),
    ] = None,
    approve: ApproveOption = False,
    approver: ApproverOption = None,
    dry_run: DryRunOption = False,
    json_output: JsonOption = False,
) -> None:
    """Undo a yank: the version may be promoted again, and X.Y, X and latest move to the highest
    good version of their line again (forward onto it where it is the highest), through the
    release gate wherever they move: a passing test run of the digest they move onto, and the
    environment's approval rule (four eyes included). Recorded in state and the audit log.
    """
    from imagefactory.release.yank import unyank

    _run(
        ctx,
        unyank,
        image,
        version,
        reason,
        approve=approve,
        approver=approver,
        dry_run=dry_run,
        json_output=json_output,
    )
