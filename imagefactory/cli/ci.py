"""ci generate: the catalog's GitLab CI pipeline, written or checked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imagefactory.cli.app import app
from imagefactory.cli.catalog import JsonOption, open_catalog
from imagefactory.cli.render_report import print_render_report

ci_app = typer.Typer(
    name="ci",
    help="Generate the GitLab CI pipeline of the catalog.",
    epilog="Examples:\n\n  imagefactory ci generate --out ci/catalog-pipeline.yml\n\n"
    "  imagefactory ci generate --out ci/catalog-pipeline.yml --check",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(ci_app, name="ci")


@ci_app.command(
    "generate",
    epilog="Examples:\n\n  imagefactory ci generate                     # YAML on stdout"
    "\n\n  imagefactory ci generate --out ci/catalog-pipeline.yml --builder rootless"
    "\n\n  imagefactory ci generate --out .gitlab-ci.yml --check   # in CI: fail when stale",
)
def generate(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write the pipeline to this file (relative to the project root); "
            "default: print it.",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Write nothing; exit 1 if --out differs from a fresh generation."
        ),
    ] = False,
    builder: Annotated[
        str,
        typer.Option(
            "--builder",
            help="How build and test jobs reach an engine: dind (Docker-in-Docker with TLS), "
            "rootless (the same, its daemon and BuildKit unprivileged) or host (the runner's own "
            "engine: shell runners, gitlab-ci-local).",
        ),
    ] = "dind",
    auto: Annotated[
        list[str] | None,
        typer.Option(
            "--auto",
            help="An environment whose promotion runs automatically on the default branch "
            "(repeatable; default: none, every promotion is a manual job).",
        ),
    ] = None,
    runner_tag: Annotated[
        list[str] | None,
        typer.Option(
            "--runner-tag",
            metavar="PLATFORM=TAG",
            help="Run the build jobs of PLATFORM (of images built per platform) on runners "
            "with TAG, e.g. linux/arm64=arm64 for native arm64 runners (repeatable; default: "
            "every platform on the pipeline's runners, foreign ones emulated).",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Write the GitLab CI pipeline of the catalog: validate, then per image build → test →
    push → promote jobs whose needs follow the image graph and whose rules:changes follow what
    each image is made of. The same catalog gives the same bytes.
    """
    from imagefactory.render.gitlab_ci import BUILDERS, REFUSED_BUILDERS
    from imagefactory.render.outputs import RenderRequest, render_outputs

    if builder not in BUILDERS:
        refused = REFUSED_BUILDERS.get(builder)
        note = f" ({refused})" if refused else ""
        raise typer.BadParameter(
            f"'{builder}' is not one of {', '.join(BUILDERS)}{note}", param_hint="--builder"
        )
    if check and out is None:
        raise typer.BadParameter("--check compares a file: pass --out FILE", param_hint="--check")
    tags = []
    for given in runner_tag or []:
        platform, equals, tag = given.partition("=")
        if not equals or not platform or not tag:
            raise typer.BadParameter(
                f"'{given}' is not PLATFORM=TAG (e.g. linux/arm64=arm64)", param_hint="--runner-tag"
            )
        tags.append((platform, tag))
    session, catalog = open_catalog(ctx, json_output)
    request = RenderRequest(
        "pipeline",
        out=out,
        check=check,
        builder=builder,
        auto=tuple(auto or ()),
        runner_tags=tuple(tags),
    )
    print_render_report(session, render_outputs(catalog, request))
