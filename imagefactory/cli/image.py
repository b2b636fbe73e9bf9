"""test: run each image's checks against the digest its build recorded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from imagefactory.cli.app import app
from imagefactory.cli.catalog import ImagesArgument, JsonOption, open_catalog
from imagefactory.cli.output import Output

if TYPE_CHECKING:
    from imagefactory.imagetest.results import ImageReport


@app.command(
    name="test",
    epilog="Examples:\n\n  imagefactory test --all\n\n  imagefactory test app/rag-api --junit report.xml",
)
def test_command(
    ctx: typer.Context,
    images: ImagesArgument = None,
    all_images: Annotated[
        bool, typer.Option("--all", help="Test every built image of the catalog.")
    ] = False,
    junit: Annotated[
        Path | None,
        typer.Option(
            "--junit",
            help="Write a JUnit XML report (one testsuite per image) for GitLab's test widget.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Test the images of the current state: declarative checks from image.yaml, files in
    structure-tests/ (container-structure-test format) and tests/test_*.py (pytest-testinfra).

    Starts at most one container per image, always removed. Every selected image is tested: one
    whose container does not start fails its "container" check (exit code and last output) and
    the others still run. Each run, passed or failed, is recorded in state against its digest
    (the runs of other digests stay); any failure exits 1.
    """
    from imagefactory.imagetest.junit import write_junit
    from imagefactory.imagetest.session import TestsFailed, test_images

    session, catalog = open_catalog(ctx, json_output)
    if not images and not all_images:
        raise typer.BadParameter("name images to test, or pass --all", param_hint="IMAGE")
    reports: list[ImageReport] = []

    def show(report: ImageReport) -> None:
        reports.append(report)
        if not json_output:
            _table(session.output, report)

    try:
        test_images(catalog, images or [], show)
    except TestsFailed as failed:
        if json_output:  # one document: the reports and the verdict, not a second error document
            session.output.data(
                {
                    "ok": False,
                    "error": failed.message,
                    "hint": failed.hint,
                    "images": [_as_dict(r) for r in reports],
                }
            )
            raise typer.Exit(failed.exit_code) from failed
        raise
    finally:
        if junit is not None and reports:
            write_junit(reports, junit)
    if json_output:
        session.output.data({"ok": True, "images": [_as_dict(r) for r in reports]})
        return
    session.output.text(f"{len(reports)} images passed their tests")


def _table(output: Output, report: ImageReport) -> None:
    verdict = "passed" if report.passed else "FAILED"
    rows = [
        [
            r.kind,
            r.name,
            "skip" if r.skipped else ("ok" if r.passed else "FAIL"),
            f"{r.seconds:.2f}s",
            r.why,
        ]
        for r in report.results
    ]
    output.table(
        f"{report.ref} {verdict} ({report.reference})",
        ["check", "name", "result", "time", "why"],
        rows,
    )


def _as_dict(report: ImageReport) -> dict[str, object]:
    return {
        "image": report.ref,
        "reference": report.reference,
        "passed": report.passed,
        "checks": [
            {
                "kind": r.kind,
                "name": r.name,
                "passed": r.passed,
                "skipped": r.skipped,
                "seconds": r.seconds,
                "expected": r.expected,
                "actual": r.actual,
            }
            for r in report.results
        ],
    }
