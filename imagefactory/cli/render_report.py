"""How ``render``, ``render packer``, ``render terraform`` and ``ci generate`` print their
:class:`~imagefactory.render.outputs.RenderReport`: one JSON document, always (a stale check's
error and hint in it), or the text lines; a stale check exits 1."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from imagefactory.cli.app import Session
from imagefactory.errors import UserError

if TYPE_CHECKING:
    from imagefactory.render.outputs import RenderReport

#: What a stale check of each kind of render calls its outputs.
_STALE_NOUN = {
    "dockerfile": "rendered files",
    "packer": "Packer templates",
    "terraform": "Terraform variables",
}


def print_render_report(session: Session, report: RenderReport) -> None:
    output = session.output
    for ref in report.skipped:
        output.err.print(f"{ref}: skipped (bootstrapped from a rootfs: no parent image for Packer)")
    problem = _problem(report)
    if output.json:
        document: dict[str, object] = {"ok": problem is None, **_document(report)}
        if problem is not None:
            document.update(error=problem.message, hint=problem.hint)
        output.data(document)
        if problem is not None:
            raise typer.Exit(problem.exit_code)
    elif problem is not None:
        raise problem
    elif report.text is not None:
        output.out.file.write(report.text)
    else:
        for line in _lines(report):
            output.text(line)


def _problem(report: RenderReport) -> UserError | None:
    """A stale check's error: what differs, and how to render it again."""
    if not report.stale:
        return None
    kind = report.request.kind
    if kind == "pipeline":
        from imagefactory.render.catalog import MISSING

        [files] = report.stale.values()
        why = "is missing" if files == [MISSING] else "is stale"
        return UserError(
            f"{report.target} {why}: it differs from a fresh `imagefactory ci generate`",
            hint=f"run: {report.command} and commit it",
        )
    if kind == "terraform":
        listing = ", ".join(_paths(report.stale))
    else:
        listing = "; ".join(f"{name}: {', '.join(files)}" for name, files in report.stale.items())
    return UserError(
        f"{_STALE_NOUN[kind]} in {report.target} are stale: {listing}",
        hint=f"run '{report.command}' and commit {report.request.shown_out}",
    )


def _paths(stale: dict[str, list[str]]) -> list[str]:
    return [f"{name}/{file}" for name, files in stale.items() for file in files]


def _document(report: RenderReport) -> dict[str, object]:
    request = report.request
    if request.kind == "pipeline":
        file = None if report.target is None else str(report.target)
        head: dict[str, object] = {"builder": request.builder, "file": file}
        if request.check:
            return {**head, "stale": bool(report.stale)}
        if report.target is None:
            return {**head, "jobs": list(report.jobs), "pipeline": report.text}
        return {**head, "written": True, "jobs": list(report.jobs)}
    if request.check:
        return {"stale": _paths(report.stale) if request.kind == "terraform" else report.stale}
    if request.kind == "terraform":
        terraform = [
            {"environment": o.name, "file": str(o.path), "repositories": o.repositories}
            for o in report.outputs
        ]
        return {"terraform": terraform}
    if request.kind == "packer":
        return {"rendered": [str(o.path) for o in report.outputs]}
    return {"rendered": [{"image": o.name, "folder": str(o.path.parent)} for o in report.outputs]}


def _lines(report: RenderReport) -> list[str]:
    kind, target, outputs = report.request.kind, report.target, report.outputs
    if report.request.check:
        return [
            {
                "dockerfile": f"{len(outputs)} rendered images in {target} are up to date",
                "packer": f"{len(outputs)} Packer templates in {target} are up to date",
                "terraform": f"Terraform variables in {target} are up to date",
                "pipeline": f"{target} is up to date ({len(report.jobs)} jobs)",
            }[kind]
        ]
    if kind == "pipeline":
        return [f"wrote {target}: {len(report.jobs)} jobs (builder {report.request.builder})"]
    if kind == "terraform":
        return [f"{o.name}: {o.path} ({o.repositories} repositories)" for o in outputs]
    if kind == "packer":
        return [str(o.path) for o in outputs]
    return [f"{o.name}: {o.path}" for o in outputs]
