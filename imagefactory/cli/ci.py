"""ci generate: the catalog's GitLab CI pipeline, written or checked."""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from imagefactory.cli.app import app
from imagefactory.cli.catalog import JsonOption, open_catalog
from imagefactory.errors import UserError
from imagefactory.project.paths import templates_dir
from imagefactory.render.gitlab_ci import (
    BUILDERS,
    REFUSED_BUILDERS,
    PipelineOptions,
    job_names,
    render_pipeline,
)

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
    json_output: JsonOption = False,
) -> None:
    """Write the GitLab CI pipeline of the catalog: validate, then per image build → test →
    push → promote jobs whose needs follow the image graph and whose rules:changes follow what
    each image is made of. The same catalog gives the same bytes.
    """
    if builder not in BUILDERS:
        refused = REFUSED_BUILDERS.get(builder)
        note = f" ({refused})" if refused else ""
        raise typer.BadParameter(
            f"'{builder}' is not one of {', '.join(BUILDERS)}{note}", param_hint="--builder"
        )
    if check and out is None:
        raise typer.BadParameter("--check compares a file: pass --out FILE", param_hint="--check")
    session, catalog = open_catalog(ctx, json_output)
    repository = _repository_root(catalog.root)
    target = None if out is None else (out if out.is_absolute() else catalog.root / out)
    shown = None if target is None else _shown(target, catalog.root)
    options = PipelineOptions(
        builder=builder,
        auto=tuple(auto or ()),
        prefix=_shown(catalog.root, repository) if catalog.root != repository else "",
        templates=_shown(templates_dir(), repository)
        if templates_dir().is_relative_to(repository)
        else None,
        command=_command(builder, auto or [], shown),
    )
    text = render_pipeline(catalog, options)  # refuses bad options before anything is written
    jobs = job_names(text)
    if target is None:
        if json_output:
            session.output.data(
                {"ok": True, "builder": builder, "file": None, "jobs": jobs, "pipeline": text}
            )
        else:
            session.output.out.file.write(text)
        return
    if check:
        current = target.read_text(encoding="utf-8") if target.is_file() else None
        fresh = current == text
        problem = None
        if not fresh:
            why = "is missing" if current is None else "is stale"
            problem = UserError(
                f"{target} {why}: it differs from a fresh `imagefactory ci generate`",
                hint=f"run: {_command(builder, auto or [], shown)} and commit it",
            )
        if json_output:  # one document, the error in it
            document: dict[str, object] = {
                "ok": fresh,
                "builder": builder,
                "file": str(target),
                "stale": not fresh,
            }
            if problem is not None:
                document.update(error=problem.message, hint=problem.hint)
            session.output.data(document)
            if problem is not None:
                raise typer.Exit(problem.exit_code)
        if problem is not None:
            raise problem
        if not json_output:
            session.output.text(f"{target} is up to date ({len(jobs)} jobs)")
        return
    _write(target, text)
    if json_output:
        session.output.data(
            {"ok": True, "builder": builder, "file": str(target), "written": True, "jobs": jobs}
        )
    else:
        session.output.text(f"wrote {target}: {len(jobs)} jobs (builder {builder})")


def _repository_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding ``.git``; ``start`` when there is none."""
    for folder in [start, *start.parents]:
        if (folder / ".git").exists():
            return folder
    return start


def _shown(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _command(builder: str, auto: list[str], out: str | None) -> str:
    argv = ["imagefactory", "ci", "generate", "--builder", builder]
    for name in auto:
        argv += ["--auto", name]
    if out is not None:
        argv += ["--out", out]
    return shlex.join(argv)


def _write(target: Path, text: str) -> None:
    """Whole or not at all: a temp file in the same folder, then a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        Path(temp).chmod(0o644)
        Path(temp).replace(target)
    finally:
        Path(temp).unlink(missing_ok=True)
