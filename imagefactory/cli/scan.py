"""gate: the vulnerability gate — a scan of one digest judged by the project's scan: policy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from imagefactory.cli.app import app
from imagefactory.cli.catalog import JsonOption, open_catalog
from imagefactory.cli.output import Output
from imagefactory.errors import EXIT_USER_ERROR
from imagefactory.scan.formats import FORMATS

if TYPE_CHECKING:
    from imagefactory.scan.gate import GateOutcome


@app.command(
    name="gate",
    epilog="Examples:\n\n  imagefactory gate app/rag-api --report trivy.json --scanner-info trivy-version.json"
    "\n\n  imagefactory gate app/rag-api@sha256:… --report grype.json --env prod"
    "\n\n  imagefactory gate app/rag-api --osv /mirror/osv --json   # the SBOM its build kept"
    "\n\n  imagefactory gate app/rag-api --reference   # what to scan: REPOSITORY@sha256:…",
)
def gate_command(
    ctx: typer.Context,
    image: Annotated[
        str,
        typer.Argument(
            help="One image ref, optionally @sha256:<hex> (default: the digest its last build "
            "recorded)."
        ),
    ],
    report: Annotated[
        Path | None,
        typer.Option("--report", help="A scanner's JSON report of the digest.", dir_okay=False),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help=f"The report's format: {', '.join(FORMATS)}.")
    ] = "auto",
    scanner_info: Annotated[
        Path | None,
        typer.Option(
            "--scanner-info",
            help="trivy only: the output of `trivy version --format json` (its database time).",
            dir_okay=False,
        ),
    ] = None,
    osv_dir: Annotated[
        Path | None,
        typer.Option(
            "--osv",
            help="Match offline instead: a folder of OSV advisories (*.json, all.zip).",
            file_okay=False,
        ),
    ] = None,
    sbom: Annotated[
        Path | None,
        typer.Option(
            "--sbom",
            help="With --osv: the digest's CycloneDX SBOM (default: the one its build kept).",
            dir_okay=False,
        ),
    ] = None,
    env: Annotated[
        str | None,
        typer.Option(
            "--env",
            help="Judge for this environment (its scan.thresholds entry); default: for every "
            "environment, at the strictest threshold.",
        ),
    ] = None,
    reference: Annotated[
        bool,
        typer.Option(
            "--reference", help="Only print the reference the gate judges (for the scanner)."
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Judge a vulnerability scan of one digest by the project's scan: policy (threshold per
    environment, ignore_unfixed, the scanner database's age, exceptions with an expiry), and
    attest the verdict to the digest when signing is configured. Exits 1 when the gate fails.

    Reads trivy JSON (schema 2), grype JSON or a CycloneDX VEX document; or, with --osv,
    matches the SBOM's Debian and PyPI packages against a local OSV mirror. The report (or the
    SBOM) must name the digest judged: scan the reference --reference prints.
    """
    from imagefactory.project.targets import target
    from imagefactory.scan.gate import GateRequest, gate
    from imagefactory.scan.verdict import require_passed

    session, catalog = open_catalog(ctx, json_output)
    if reference:
        chosen = target(catalog, image)
        if json_output:
            session.output.data(
                {"ok": True, "image": chosen.image.ref, "reference": chosen.reference}
            )
        else:
            session.output.text(chosen.reference)
        return
    request = GateRequest(report, fmt, scanner_info, osv_dir, sbom, env)
    outcome = gate(catalog, image, request)
    if json_output:
        session.output.data(
            {
                "ok": outcome.verdict.passed,
                "attested_in": list(outcome.attested_in),
                "verdict": outcome.verdict.predicate(),
            }
        )
        if not outcome.verdict.passed:
            raise typer.Exit(EXIT_USER_ERROR)
        return
    _show(session.output, outcome)
    require_passed(outcome.verdict)


def _show(output: Output, outcome: GateOutcome) -> None:
    verdict = outcome.verdict
    scanner = verdict.scanner.as_dict()
    where = f" for {verdict.environment}" if verdict.environment else " for every environment"
    output.text(
        f"{verdict.image}{where}: {'passed' if verdict.passed else 'FAILED'} "
        f"(threshold {verdict.threshold}; {scanner['name']} {scanner['version'] or ''}, "
        f"database {scanner['db_built'] or 'of unknown age'})"
    )
    if verdict.findings:
        output.table(
            None,
            ["id", "package", "installed", "fixed", "severity", "status"],
            [
                [
                    j.finding.id,
                    j.finding.package,
                    j.finding.installed,
                    j.finding.fixed or "-",
                    j.finding.severity,
                    j.status if j.exception is None else f"excepted ({j.exception})",
                ]
                for j in verdict.findings
            ],
        )
    if verdict.below_threshold:
        counted = ", ".join(f"{n} {s}" for s, n in verdict.below_threshold)
        output.text(f"below the threshold: {counted}")
    for exception in verdict.expired_exceptions:
        output.text(
            f"expired exception: {exception.id} (expired {exception.expires}, approved by "
            f"{exception.approver}: {exception.reason})"
        )
    for place in outcome.attested_in:
        output.text(f"verdict attested in {place}")
