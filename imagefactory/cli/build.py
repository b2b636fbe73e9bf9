"""render · build: turn the catalog into Dockerfiles, and Dockerfiles into pushed images."""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from imagefactory.cli.app import app
from imagefactory.cli.catalog import ImagesArgument, JsonOption, open_catalog
from imagefactory.cli.progress import LiveProgress, PlainProgress
from imagefactory.cli.render_report import print_render_report

if TYPE_CHECKING:
    from collections.abc import Sequence

    from imagefactory.build.catalog import Builder, BuildRequest
    from imagefactory.build.schedule import BuildReporter, Outcome
    from imagefactory.cli.app import Session
    from imagefactory.gitops.refresh_mr import Proposal
    from imagefactory.project.plan import PlanEntry
    from imagefactory.render.outputs import Kind
    from imagefactory.spec.catalog import Catalog


@app.command(
    epilog="Examples:\n\n  imagefactory render\n\n  imagefactory render app/rag-api --out /tmp/r"
    "\n\n  imagefactory render --check   # in CI: fail when rendered/ is stale"
    "\n\n  imagefactory render terraform   # terraform/environments/<env>/*.auto.tfvars.json"
    "\n\n  imagefactory render packer app/tiny   # rendered/packer/<image>/<image>.pkr.hcl"
)
def render(
    ctx: typer.Context,
    images: Annotated[
        list[str] | None,
        typer.Argument(
            help="Optionally first a target: dockerfile (the default), terraform or packer; then, "
            "for dockerfile and packer, images by name (all variants) or ref (name:variant); "
            "default: all (packer: all that target packer).",
            show_default=False,
            metavar="[TARGET] IMAGE",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Output folder, relative to the project root (default: rendered for "
            "dockerfile, terraform/environments for terraform, rendered/packer for packer).",
            show_default=False,
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Write nothing; exit 1 if the files in --out differ from a fresh render.",
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Render each image's Dockerfile and build context (files, CA bundle) from the templates,
    or (target terraform) the Terraform variables of each environment's ECR repositories,
    or (target packer) each image's Packer template (docs/packer-ansible.md).

    FROM names the parent by the digest recorded in state for its current content, else by its
    content tag. Output is deterministic: the same catalog and state give the same bytes.
    """
    from imagefactory.render.outputs import RenderRequest, render_outputs

    # The first word may name what to render: dockerfile (the default), terraform, packer.
    words = list(images or [])
    kind: Kind = "dockerfile"
    if words and words[0] in ("dockerfile", "terraform", "packer"):
        kind = cast("Kind", words.pop(0))
    if kind == "terraform" and words:
        raise typer.BadParameter(
            "render terraform covers the whole catalog; it takes no image names",
            param_hint="IMAGE",
        )
    session, catalog = open_catalog(ctx, json_output)
    request = RenderRequest(kind, tuple(words), out, check)
    print_render_report(session, render_outputs(catalog, request))


@app.command(
    epilog="Examples:\n\n  imagefactory build --all\n\n  imagefactory build app/rag-api --jobs 2"
    "\n\n  imagefactory build --all --dry-run --json"
    "\n\n  imagefactory build --all --refresh   # newer Debian packages: refresh.yaml, rebuild"
    "\n\n  imagefactory build --all --exclude tools/ci   # all but the pipeline's job image"
    "\n\n  imagefactory build app/tool --platform linux/arm64   # one platform, no index"
)
def build(
    ctx: typer.Context,
    images: ImagesArgument = None,
    all_images: Annotated[
        bool, typer.Option("--all", help="Build every image of the catalog.")
    ] = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            metavar="IMAGE",
            help="Leave this image (a name: all its variants; or a ref) out of the selection, "
            "e.g. the pipeline's job image out of --all (repeatable; an ancestor the others "
            "need is still built).",
        ),
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, max=16, help="Independent images built at once.")
    ] = 1,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache", help="Rebuild even unchanged images, without BuildKit's layer cache."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be built; touch nothing.")
    ] = False,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh",
            help="First record in refresh.yaml the newer Debian versions the mirror has for "
            "what the build holds (imagefactory outdated), under the image that installed each "
            "package: those images and their descendants rebuild (docs/images.md, Refresh).",
        ),
    ] = False,
    merge_request: Annotated[
        bool,
        typer.Option(
            "--merge-request",
            help="With --refresh, in a GitLab job: then commit refresh.yaml to the branch "
            "imagefactory/refresh and open (or update) its merge request into the default "
            "branch; the token in IMAGEFACTORY_GITLAB_TOKEN (docs/gitlab-ci.md, Refresh).",
        ),
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="docker, or packer: images that target packer are built by 'packer build' "
            "(docs/packer-ansible.md); their ancestors as usual.",
        ),
    ] = "docker",
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="With --engine packer: the template sources to build (repeatable; default "
            "docker.image only; VM and cloud builders, e.g. amazon-ebs.vm, run only when named, "
            "with docker.image).",
        ),
    ] = None,
    platform: Annotated[
        str | None,
        typer.Option(
            "--platform",
            metavar="PLATFORM",
            help="Build only this platform (e.g. linux/arm64) of the images built per platform, "
            "and no index: a pipeline's per-platform job. A build without it then reuses each "
            "platform and assembles the index (docs/multiarch.md).",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Build the selected images and the ancestors they need, in DAG order, and push each to
    the build registry by its content tag. Unchanged images (same content hash) are reused.
    An image with ``platforms`` is built per platform and published as an OCI index.
    """
    from imagefactory.build.catalog import BuildRequest, build_images, build_plan
    from imagefactory.build.run import BuildOptions
    from imagefactory.spec.platforms import PLATFORMS

    session, catalog = open_catalog(ctx, json_output)
    if not images and not all_images:
        raise typer.BadParameter("name images to build, or pass --all", param_hint="IMAGE")
    if platform is not None and platform not in PLATFORMS:
        raise typer.BadParameter(
            f"'{platform}' is not one of {', '.join(PLATFORMS)}", param_hint="--platform"
        )
    if platform is not None and (refresh or engine != "docker"):
        raise typer.BadParameter(
            "builds with the docker engine, without --refresh", param_hint="--platform"
        )
    options = BuildOptions(jobs=jobs, no_cache=no_cache, platform=platform)
    if merge_request and (not refresh or dry_run):
        raise typer.BadParameter(
            "proposes what --refresh records: use it with --refresh, without --dry-run",
            param_hint="--merge-request",
        )
    if refresh and engine != "docker":
        raise typer.BadParameter("builds with the docker engine", param_hint="--refresh")
    left_out = tuple(exclude or ())
    if refresh and dry_run:
        _refresh(
            session, catalog, BuildRequest(tuple(images or ()), options, exclude=left_out), None
        )
        return
    if dry_run:
        entries = build_plan(catalog, BuildRequest(tuple(images or ()), options, exclude=left_out))
        if json_output:
            session.output.data(
                {"ok": True, "dry_run": True, "plan": [e.as_dict() for e in entries]}
            )
            return
        _print_plan(session, entries)
        return
    console = session.output.err
    reporter: LiveProgress | PlainProgress
    if console.is_terminal and not session.verbose and not json_output:
        reporter = LiveProgress(console)
        scope: contextlib.AbstractContextManager[object] = reporter
    else:
        reporter = PlainProgress(console, verbose=session.verbose)
        scope = contextlib.nullcontext()
    if engine not in ("docker", "packer"):
        raise typer.BadParameter(f"'{engine}' is not docker or packer", param_hint="--engine")
    if only and engine != "packer":
        raise typer.BadParameter(
            "names Packer sources: use it with --engine packer", param_hint="--only"
        )
    request = BuildRequest(tuple(images or ()), options, cast("Builder", engine), exclude=left_out)
    if only:
        request = replace(request, sources=tuple(only))
    if refresh:
        with scope:
            _refresh(session, catalog, request, reporter, propose=merge_request)
        return
    with scope:
        outcomes = build_images(catalog, request, reporter)
    if json_output:
        session.output.data({"ok": True, "images": [_outcome(o) for o in outcomes]})
        return
    session.output.text(_summary(outcomes))


def _refresh(
    session: Session,
    catalog: Catalog,
    request: BuildRequest,
    reporter: BuildReporter | None,
    *,
    propose: bool = False,
) -> None:
    """build --refresh: the updates recorded, then the build's outcomes (a dry run: the plan),
    and with ``propose`` the merge request of refresh.yaml."""
    from imagefactory.freshness.refresh import refresh_build
    from imagefactory.gitops.refresh_mr import refresh_and_propose

    proposal: Proposal | None = None
    if propose and reporter is not None:
        result, proposal = refresh_and_propose(catalog, request, reporter)
    else:
        result = refresh_build(catalog, request, reporter)
    plan = result.plan
    if session.output.json:
        session.output.data(
            {
                "ok": True,
                "dry_run": reporter is None,
                "refresh": {
                    "changed": plan.changed,
                    "updates": [u.as_dict() for u in plan.updates],
                    "pinned": [u.as_dict() for u in plan.pinned],
                    "not_built": list(plan.report.not_built),
                },
                **(
                    {"plan": [e.as_dict() for e in result.build_plan]}
                    if reporter is None
                    else {"images": [_outcome(o) for o in result.outcomes]}
                ),
                **({"merge_request": _proposed(proposal)} if propose else {}),
            }
        )
        return
    verb = "would record" if reporter is None else "recorded"
    for update in plan.updates:
        security = " (security)" if update.security else ""
        session.output.text(
            f"{update.image}: {update.package} {update.installed} -> {update.version}{security}"
        )
    for update in plan.pinned:
        session.output.text(
            f"{update.image}: {update.package} {update.installed} -> {update.version}: "
            "not recorded, image.yaml installs it at a version"
        )
    session.output.text(
        f"refresh.yaml: {verb} {len(plan.updates)} update(s)"
        if plan.changed
        else "refresh.yaml: up to date (no newer Debian versions)"
    )
    if reporter is None:
        _print_plan(session, result.build_plan)
        return
    session.output.text(_summary(list(result.outcomes)))
    if proposal is not None:
        mr = proposal.merge_request
        session.output.text(
            f"merge request !{mr.iid} {mr.action}: {mr.url}"
            if mr is not None
            else "merge request: none needed (the default branch holds these records)"
        )


def _proposed(proposal: Proposal | None) -> dict[str, object] | None:
    if proposal is None or proposal.merge_request is None:
        return None
    mr = proposal.merge_request
    return {
        "iid": mr.iid,
        "url": mr.url,
        "action": mr.action,
        "commit": proposal.commit,
        "file": proposal.file,
    }


def _print_plan(session: Session, entries: Sequence[PlanEntry]) -> None:
    """A dry run's plan, one line per image."""
    for entry in entries:
        reasons = ", ".join(entry.reasons)
        session.output.text(
            f"{entry.ref}: {f'would build ({reasons})' if reasons else 'would reuse (unchanged)'}"
        )


def _outcome(o: Outcome) -> dict[str, object]:
    return {
        "image": o.ref,
        "status": o.status,
        "seconds": round(o.seconds, 3),
        "digest": o.digest,
        "size_bytes": o.size_bytes,  # uncompressed; `imagefactory size` says where
        "detail": o.detail,  # unreproducible: the digest kept and the one discarded
        "platforms": o.platforms,  # platform → digest, built per platform (digest: the index)
    }


def _summary(outcomes: list[Outcome]) -> str:
    """``2 built, 1 reused``, and what was built but not used (a content tag that held another
    digest already), one line each with both digests."""
    counts = Counter(o.status for o in outcomes)
    lines = [f"{counts['built']} built, {counts['reused']} reused"]
    unreproducible = [o for o in outcomes if o.status == "unreproducible"]
    if unreproducible:
        lines[0] += f", {len(unreproducible)} not reproducible"
        lines += [f"  {o.ref}: {o.detail}" for o in unreproducible]
    return "\n".join(lines)
