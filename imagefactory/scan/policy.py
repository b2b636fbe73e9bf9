"""The project's ``scan:`` policy applied to a report: the verdict of the vulnerability gate.

For a digest and (optionally) the environment it is going to, :func:`evaluate` judges every
finding at or above the severity threshold (the environment's own in ``scan.thresholds``, else
``scan.threshold``; with no environment the strictest of them all, so that a verdict for no
environment holds for every one): an exception that is in force and names it (``id`` among the
finding's id and aliases, ``purl`` a glob over its purl, ``images`` globs over the image's ref)
excepts it; with ``ignore_unfixed`` one without a fixed version does not count; any other one
fails the gate. The gate also fails when the scanner's database is older than
``max_db_age_days`` or its age is not known, and when an exception that applies to the image has
expired: it is listed, to be approved again or removed. Below the threshold, findings are only
counted. The verdict (:mod:`imagefactory.scan.verdict`) says all of it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from imagefactory.spec.models import ScanException, ScanSettings, Severity

from .findings import SEVERITIES, Finding, ScanReport, rank
from .verdict import Judged, Verdict


def threshold_for(settings: ScanSettings, environment: str | None) -> Severity:
    """The threshold a verdict for ``environment`` (None: any environment) is judged at."""
    if environment is not None:
        return settings.thresholds.get(environment, settings.threshold)
    return max([settings.threshold, *settings.thresholds.values()], key=rank)  # counts the most


def evaluate(
    report: ScanReport,
    settings: ScanSettings,
    *,
    ref: str,
    image: str,
    environment: str | None,
    now: datetime,
) -> Verdict:
    """The verdict on ``report`` of image ``ref`` (``image``: ``REPOSITORY@DIGEST``)."""
    threshold = threshold_for(settings, environment)
    today = now.date()
    applying = [e for e in settings.exceptions if _applies(e, ref)]
    active = [e for e in applying if e.approved <= today <= e.expires]
    expired = tuple(e for e in applying if e.expires < today)
    judged: list[Judged] = []
    below = dict.fromkeys(SEVERITIES, 0)
    for finding in _unique(report.findings):
        if rank(finding.severity) > rank(threshold):
            below[finding.severity] += 1
            continue
        exception = next((e for e in active if _names(e, finding)), None)
        if exception is not None:
            judged.append(Judged(finding, "excepted", exception.id))
        elif settings.ignore_unfixed and finding.fix_state != "fixed":
            judged.append(Judged(finding, "unfixed", None))
        else:
            judged.append(Judged(finding, "blocking", None))
    reasons = _reasons(report, settings, judged, threshold, expired, now)
    used = {j.exception for j in judged if j.exception is not None}
    return Verdict(
        passed=not reasons,
        image=image,
        ref=ref,
        environment=environment,
        threshold=threshold,
        findings=tuple(judged),
        below_threshold=tuple((s, n) for s, n in below.items() if n),
        exceptions=tuple(e for e in active if e.id in used),
        expired_exceptions=expired,
        reasons=tuple(reasons),
        scanner=report.scanner,
        at=now,
    )


def _reasons(
    report: ScanReport,
    settings: ScanSettings,
    judged: list[Judged],
    threshold: Severity,
    expired: tuple[ScanException, ...],
    now: datetime,
) -> list[str]:
    reasons = []
    blocking = [j for j in judged if j.status == "blocking"]
    if blocking:
        reasons.append(f"{len(blocking)} finding(s) at or above {threshold}")
    built = report.scanner.db_built
    if built is None:
        reasons.append(f"{report.source} does not say when the scanner's database was built")
    elif now - built > timedelta(days=settings.max_db_age_days):
        age = (now - built).days
        reasons.append(
            f"the scanner's database was built {built:%Y-%m-%d} ({age} days ago), older than "
            f"scan.max_db_age_days ({settings.max_db_age_days})"
        )
    reasons += [
        f"the exception for {e.id} expired on {e.expires} (approved by {e.approver})"
        for e in expired
    ]
    return reasons


def _applies(exception: ScanException, ref: str) -> bool:
    return not exception.images or any(fnmatchcase(ref, glob) for glob in exception.images)


def _names(exception: ScanException, finding: Finding) -> bool:
    wanted = exception.id.upper()
    if wanted not in (i.upper() for i in finding.ids):
        return False
    return exception.purl is None or fnmatchcase(finding.purl, exception.purl)


def _unique(findings: tuple[Finding, ...]) -> list[Finding]:
    """``findings`` without repeats (a package found in two layers or two results)."""
    seen: dict[tuple[str, str, str, str], Finding] = {}
    for finding in findings:
        seen.setdefault((finding.id, finding.package, finding.installed, finding.purl), finding)
    return list(seen.values())
