"""validate · plan · graph: read the catalog; nothing is built, no daemon or network needed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from imagefactory.cli.app import Session, app
from imagefactory.errors import SpecError
from imagefactory.render.formats import FORMATS

if TYPE_CHECKING:
    from imagefactory.spec.catalog import Catalog, CatalogImage

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
ImagesArgument = Annotated[
    list[str] | None,
    typer.Argument(
        help="Images by name (all variants) or ref (name:variant); default: all.",
        show_default=False,
    ),
]
ImageArgument = Annotated[
    str, typer.Argument(help="One image ref, e.g. app/rag-api or runtime/llm:cpu.")
]
ApproveOption = Annotated[
    bool,
    typer.Option(
        "--approve",
        help="Approve a step into an environment that needs approval (outside CI; in GitLab CI "
        "only the environment's protected deployment job approves).",
    ),
]
ApproverOption = Annotated[
    str | None,
    typer.Option(
        "--approver",
        metavar="NAME",
        help="Who approves (with --approve; default: git config user.name <user.email>). "
        "Recorded in the audit log.",
    ),
]


def open_catalog(ctx: typer.Context, json_output: bool) -> tuple[Session, Catalog]:
    from imagefactory.spec.loader import find_project_root, load_catalog

    session: Session = ctx.obj
    session.output.json = json_output
    root = session.project.resolve() if session.project else find_project_root(Path.cwd())
    return session, load_catalog(root)


def one_image(catalog: Catalog, image: str) -> CatalogImage:
    """The one image ``image`` names (a name with variants must name one of them)."""
    matches = catalog.select([image])
    if len(matches) != 1:
        raise typer.BadParameter(
            f"'{image}' has variants; name one: {', '.join(m.ref for m in matches)}",
            param_hint="IMAGE",
        )
    return matches[0]


def shown(path: Path, root: Path) -> str:
    """``path`` as a user reads it: relative to the project root when it is inside."""
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


@app.command(epilog="Example: imagefactory validate --json")
def validate(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Check the project file, every image.yaml and the files other commands read; report ALL
    errors with file, line and key.

    Those files, each checked when present: gitops.yaml and revocations.yaml, and packer.yaml and
    structure-tests/*.yaml in an image folder. Exits 0 when the catalog is valid, 1 when it is not.
    """
    from imagefactory.spec.companions import companion_issues
    from imagefactory.spec.parents import describe_parent

    session, catalog = open_catalog(ctx, json_output)
    issues = companion_issues(catalog)
    if issues:
        raise SpecError(issues)
    images = catalog.in_build_order()
    if json_output:
        session.output.data(
            {
                "ok": True,
                "project": catalog.project.project,
                "images": [
                    {
                        "image": i.ref,
                        "version": i.spec.version,
                        "parent": describe_parent(i.parent),
                        "file": shown(i.file, catalog.root),
                    }
                    for i in images
                ],
            }
        )
        return
    documents = len({i.file for i in images})
    session.output.text(
        f"catalog '{catalog.project.project}' is valid: {len(images)} images "
        f"from {documents} image files"
    )
    session.output.table(
        None,
        ["image", "version", "built on"],
        [[i.ref, i.spec.version, describe_parent(i.parent)] for i in images],
    )


@app.command(epilog="Examples:\n\n  imagefactory plan\n\n  imagefactory plan app/rag-api --json")
def plan(
    ctx: typer.Context, images: ImagesArgument = None, json_output: JsonOption = False
) -> None:
    """List, in build order, each image, its content hash and whether it would be (re)built and why.

    Compares against the state file (absent: everything is new). Needs no Docker and no network.
    """
    from imagefactory.project.plan import plan_images

    session, catalog = open_catalog(ctx, json_output)
    entries = plan_images(catalog, catalog.select(images or []))
    if json_output:
        session.output.data({"ok": True, "plan": [e.as_dict() for e in entries]})
        return
    multiarch = any(e.inputs.platforms for e in entries)  # the column only when one names them
    rows = [
        [
            e.ref,
            e.version,
            e.inputs.content_hash[7:19],
            *(
                [", ".join(e.platform_hashes()) if e.inputs.platforms else "host"]
                if multiarch
                else []
            ),
            e.action,
            ", ".join(e.reasons) or "up to date",
        ]
        for e in entries
    ]
    columns = ["image", "version", "content hash", *(["platforms"] if multiarch else [])]
    session.output.table(None, [*columns, "action", "why"], rows)
    building = sum(1 for e in entries if e.action == "build")
    session.output.text(f"{building} to build, {len(entries) - building} up to date")


@app.command(
    epilog="Examples:\n\n  imagefactory graph\n\n  imagefactory graph --format mermaid > docs/catalog-graph.md"
)
def graph(
    ctx: typer.Context,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help=f"One of: {', '.join(FORMATS)}.")
    ] = "tree",
    json_output: JsonOption = False,
) -> None:
    """Print the layer graph: a text tree, Mermaid, Graphviz DOT, or JSON (--json)."""
    from imagefactory.render.graph import render_graph

    if json_output:
        fmt = "json"
    if fmt not in FORMATS:
        raise typer.BadParameter(
            f"'{fmt}' is not one of {', '.join(FORMATS)}", param_hint="--format"
        )
    session, catalog = open_catalog(ctx, json_output)
    session.output.out.file.write(render_graph(catalog, fmt))
