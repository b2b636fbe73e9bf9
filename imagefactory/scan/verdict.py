"""The vulnerability gate's verdict, and its attested form (``urn:imagefactory:predicate:scan-verdict:v1``).

:meth:`Verdict.predicate` is the JSON map attested to the digest; :func:`parse_predicate` reads
one back (the release gate reads the latest for a digest: ``passed``, and ``environment``, None
meaning "for any environment"). The predicate::

    {"passed": bool, "image": "REPOSITORY@sha256:…", "ref": "app/rag-api",
     "environment": "prod" | null, "threshold": "high",
     "findings": [{"id", "aliases", "package", "installed", "purl", "severity", "fixed",
                   "fix_state", "status": "blocking" | "excepted" | "unfixed", "exception"}],
     "below_threshold": {"medium": 12, …},
     "exceptions": [{"id", "purl", "images", "reason", "approver", "approved", "expires",
                     "ticket"}],
     "expired_exceptions": [… the same …],
     "reasons": ["why it failed", …],
     "scanner": {"name", "version", "db_built"}, "at": "2026-12-01T12:00:00Z"}

``findings`` holds only those at or above the threshold; the rest are counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from imagefactory.errors import UserError
from imagefactory.spec.models import ScanException, Severity

from .document import Node
from .findings import SEVERITIES, Finding, FixState, Scanner

Status = Literal["blocking", "excepted", "unfixed"]
_T = TypeVar("_T", bound=str)
_STATUSES: tuple[Status, ...] = ("blocking", "excepted", "unfixed")
_FIX_STATES: tuple[FixState, ...] = ("fixed", "not_fixed", "wont_fix", "unknown")


@dataclass(frozen=True)
class Judged:
    """A finding at or above the threshold and what the policy made of it: it blocks, an
    exception (its id) excepts it, or it is unfixed and ``ignore_unfixed`` lets it pass."""

    finding: Finding
    status: Status
    exception: str | None


@dataclass(frozen=True)
class Verdict:
    passed: bool
    image: str  # REPOSITORY@sha256:…
    ref: str  # the catalog's image ref
    environment: str | None  # None: judged for every environment (the strictest threshold)
    threshold: Severity
    findings: tuple[Judged, ...]
    below_threshold: tuple[tuple[Severity, int], ...]
    exceptions: tuple[ScanException, ...]  # in force, and applied to a finding
    expired_exceptions: tuple[ScanException, ...]
    reasons: tuple[str, ...]  # why it failed; none when it passed
    scanner: Scanner
    at: datetime

    @property
    def digest(self) -> str:
        return self.image.rpartition("@")[2]

    def predicate(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "image": self.image,
            "ref": self.ref,
            "environment": self.environment,
            "threshold": self.threshold,
            "findings": [
                {**j.finding.as_dict(), "status": j.status, "exception": j.exception}
                for j in self.findings
            ],
            "below_threshold": dict(self.below_threshold),
            "exceptions": [_exception(e) for e in self.exceptions],
            "expired_exceptions": [_exception(e) for e in self.expired_exceptions],
            "reasons": list(self.reasons),
            "scanner": self.scanner.as_dict(),
            "at": _time(self.at),
        }


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _exception(exception: ScanException) -> dict[str, Any]:
    return exception.model_dump(mode="json")


def parse_predicate(data: Any, source: str = "the scan verdict") -> Verdict:
    """The verdict a predicate holds; UserError naming the key when it is not one."""
    root = Node(source, "", data)
    passed = root.get("passed")
    if not isinstance(passed.value, bool):
        raise passed.expected("true or false")
    environment = root.get("environment")
    if environment.present() and not isinstance(environment.value, str):
        raise environment.expected("an environment name or null")
    below = root.get("below_threshold")
    counts = []
    for severity, count in (below.mapping() if below.present() else {}).items():
        if severity not in SEVERITIES or not isinstance(count, int):
            raise below.get(severity).expected("a count of a severity")
        counts.append((_choice(below.get(severity), severity, SEVERITIES), count))
    scanner = root.get("scanner")
    at = root.time("at")
    if at is None:
        raise root.get("at").expected("the time of the verdict")
    return Verdict(
        passed=passed.value,
        image=root.text("image"),
        ref=root.optional_text("ref"),
        environment=environment.value,
        threshold=_choice(root.get("threshold"), root.optional_text("threshold"), SEVERITIES),
        findings=tuple(_judged(node) for node in root.items("findings")),
        below_threshold=tuple(counts),
        exceptions=tuple(_parse_exception(n) for n in root.items("exceptions")),
        expired_exceptions=tuple(_parse_exception(n) for n in root.items("expired_exceptions")),
        reasons=tuple(root.texts("reasons")),
        scanner=Scanner(
            scanner.text("name"), scanner.optional_text("version"), scanner.time("db_built")
        ),
        at=at,
    )


def _judged(node: Node) -> Judged:
    exception = node.optional_text("exception")
    finding = Finding(
        id=node.text("id"),
        package=node.text("package"),
        installed=node.optional_text("installed"),
        severity=_choice(node.get("severity"), node.optional_text("severity"), SEVERITIES),
        purl=node.optional_text("purl"),
        fixed=node.optional_text("fixed"),
        fix_state=_choice(node.get("fix_state"), node.optional_text("fix_state"), _FIX_STATES),
        aliases=tuple(node.texts("aliases")),
    )
    status = _choice(node.get("status"), node.optional_text("status"), _STATUSES)
    return Judged(finding, status, exception or None)


def _choice(node: Node, value: str, allowed: tuple[_T, ...]) -> _T:
    for choice in allowed:
        if value == choice:
            return choice
    raise node.expected(f"one of {', '.join(allowed)}")


def _parse_exception(node: Node) -> ScanException:
    try:
        return ScanException.model_validate(node.mapping())
    except ValidationError as exc:
        raise node.error(f"is not a scan exception: {exc.errors()[0]['msg']}") from exc


def require_passed(verdict: Verdict) -> None:
    """UserError (exit 1) unless ``verdict`` passed: what ``imagefactory gate`` exits with."""
    if not verdict.passed:
        raise UserError(
            f"the vulnerability gate failed for {verdict.image}: " + "; ".join(verdict.reasons),
            hint="fix the image (a newer parent, updated packages), or record an exception "
            "(id, reason, approver, approved, expires) under scan.exceptions in imagefactory.yaml",
        )
