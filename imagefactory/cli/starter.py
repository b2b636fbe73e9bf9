"""init: a new catalog repository that validates, builds and tests out of the box."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from imagefactory.cli.app import Session, app
from imagefactory.cli.catalog import JsonOption

STARTER_CHOICES = ("minimal", "llm")  # imagefactory.render.starter.STARTERS (a test checks)


@app.command(
    "init",
    epilog="Examples:\n\n  imagefactory init ../my-catalog\n\n"
    "  imagefactory init ../ai-images --template llm\n\n"
    "  imagefactory init . --name platform-images --json",
)
def init(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="DIR", help="The new catalog's folder (made when missing).", file_okay=False
        ),
    ],
    template: Annotated[
        str,
        typer.Option(
            "--template",
            "-t",
            help=f"The starter: {STARTER_CHOICES[0]} (a bootstrapped Debian base and its "
            f"tests) or {STARTER_CHOICES[1]} (that base, a Python LLM runtime and an HTTP app).",
        ),
    ] = STARTER_CHOICES[0],
    name: Annotated[
        str | None,
        typer.Option("--name", help="The project name (default: the folder's name)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Write a new catalog repository into DIR that validates, builds and tests as it is.

    Its files: imagefactory.yaml (dev, preprod and prod registries: the local one on
    127.0.0.1:5000 unless CI variables name others), images with their tests, gitops.yaml, the
    generated .gitlab-ci.yml, a README for its maintainers and a .gitignore. Writes nothing when
    any of them exists already. Then: cd DIR && git init && imagefactory validate &&
    imagefactory build --all && imagefactory test --all.
    """
    from imagefactory.render.starter import write_starter

    if template not in STARTER_CHOICES:
        raise typer.BadParameter(
            f"'{template}' is not one of {', '.join(STARTER_CHOICES)}", param_hint="--template"
        )
    session: Session = ctx.obj
    session.output.json = json_output
    starter = write_starter(directory, template, name)
    if json_output:
        session.output.data(
            {
                "ok": True,
                "root": str(starter.root),
                "project": starter.project,
                "template": starter.template,
                "written": list(starter.written),
                "jobs": list(starter.jobs),
            }
        )
        return
    session.output.text(
        f"catalog '{starter.project}' ({starter.template}) written to {starter.root}: "
        f"{len(starter.written)} files, a pipeline of {len(starter.jobs)} jobs"
    )
    for relative in starter.written:
        session.output.text(f"  {relative}")
    session.output.text(
        f"next: cd {shlex.quote(str(starter.root))} && git init && imagefactory validate && "
        "imagefactory build --all && imagefactory test --all (README.md says more)"
    )
