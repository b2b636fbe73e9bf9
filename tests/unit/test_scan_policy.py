"""imagefactory.scan.policy and .verdict: the scan: policy applied to findings, and the verdict
predicate written and read back."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from imagefactory.errors import UserError
from imagefactory.scan.findings import Finding, Scanner, ScanReport
from imagefactory.scan.policy import evaluate, threshold_for
from imagefactory.scan.verdict import parse_predicate, require_passed
from imagefactory.spec.models import ScanSettings

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
IMAGE = "registry.test:5000/app/rag-api@sha256:" + "a" * 64
OPENSSL = "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&upstream=openssl&distro=debian-12"
CRITICAL = Finding("CVE-2024-0001", "libssl3", "3.0.11", "critical", OPENSSL, "3.0.13", "fixed")
HIGH_UNFIXED = Finding(
    "CVE-2024-0002", "bash", "5.2", "high", "pkg:deb/debian/bash@5.2", "", "not_fixed"
)
MEDIUM = Finding("CVE-2024-0003", "zlib1g", "1.2", "medium", "pkg:deb/debian/zlib1g@1.2")
ALIASED = Finding(
    "GHSA-h5c8-rqwp-cp95",
    "jinja2",
    "3.1.2",
    "high",
    "pkg:pypi/jinja2@3.1.2",
    "3.1.3",
    "fixed",
    ("CVE-2024-22195",),
)


def report(*findings: Finding, built: datetime | None = NOW - timedelta(days=1)) -> ScanReport:
    return ScanReport(Scanner("trivy", "0.58.1", built), findings, (), "trivy.json")


def settings(**values: Any) -> ScanSettings:
    return ScanSettings.model_validate(values)


def exception(**values: Any) -> dict[str, Any]:
    return {
        "id": "CVE-2024-0001",
        "reason": "not reachable: the service never parses PKCS12",
        "approver": "Jane Doe",
        "approved": "2026-11-20",
        "expires": "2027-01-20",
        **values,
    }


def judge(scan: ScanReport, policy: ScanSettings, env: str | None = None, ref: str = "app/rag-api"):  # type: ignore[no-untyped-def]
    return evaluate(scan, policy, ref=ref, image=IMAGE, environment=env, now=NOW)


def test_a_finding_at_the_threshold_fails_and_below_is_counted() -> None:
    verdict = judge(report(CRITICAL, HIGH_UNFIXED, MEDIUM), settings(threshold="high"))
    assert not verdict.passed
    assert [(j.finding.id, j.status) for j in verdict.findings] == [
        ("CVE-2024-0001", "blocking"),
        ("CVE-2024-0002", "blocking"),
    ]
    assert verdict.below_threshold == (("medium", 1),)
    assert verdict.reasons == ("2 finding(s) at or above high",)
    with pytest.raises(UserError, match=r"the vulnerability gate failed for registry\.test"):
        require_passed(verdict)
    assert judge(report(MEDIUM), settings(threshold="high")).passed


def test_ignore_unfixed_lets_a_finding_without_a_fix_pass() -> None:
    verdict = judge(report(HIGH_UNFIXED), settings(ignore_unfixed=True))
    assert verdict.passed
    assert [j.status for j in verdict.findings] == ["unfixed"]
    assert not judge(report(CRITICAL), settings(ignore_unfixed=True)).passed  # it has a fix


def test_thresholds_per_environment_and_the_strictest_without_one() -> None:
    policy = settings(threshold="critical", thresholds={"prod": "medium"})
    assert threshold_for(policy, "dev") == "critical"
    assert threshold_for(policy, "prod") == "medium"
    assert threshold_for(policy, None) == "medium"  # a verdict for any environment holds for prod
    assert judge(report(HIGH_UNFIXED), policy, "dev").passed
    assert not judge(report(HIGH_UNFIXED), policy, "prod").passed
    assert not judge(report(HIGH_UNFIXED), policy).passed


def test_the_scanner_database_age() -> None:
    policy = settings(max_db_age_days=5)
    assert judge(report(built=NOW - timedelta(days=5)), policy).passed
    stale = judge(report(built=NOW - timedelta(days=6)), policy)
    assert stale.reasons == (
        "the scanner's database was built 2026-11-25 (6 days ago), older than "
        "scan.max_db_age_days (5)",
    )
    unknown = judge(report(built=None), policy)
    assert unknown.reasons == ("trivy.json does not say when the scanner's database was built",)


def test_an_exception_in_force_excepts_its_finding_by_id_purl_and_image() -> None:
    policy = settings(exceptions=[exception(purl="pkg:deb/debian/libssl3@*", images=["app/*"])])
    verdict = judge(report(CRITICAL), policy)
    assert verdict.passed
    assert [(j.status, j.exception) for j in verdict.findings] == [("excepted", "CVE-2024-0001")]
    assert [e.id for e in verdict.exceptions] == ["CVE-2024-0001"]
    assert not judge(report(CRITICAL), policy, ref="runtime/python").passed  # another image
    other_purl = settings(exceptions=[exception(purl="pkg:deb/debian/openssl@*")])
    assert not judge(report(CRITICAL), other_purl).passed


def test_an_exception_names_a_finding_by_an_alias_too() -> None:
    policy = settings(exceptions=[exception(id="cve-2024-22195")])
    assert judge(report(ALIASED), policy).passed


def test_an_expired_exception_fails_the_gate_and_is_listed() -> None:
    old = exception(approved="2026-08-01", expires="2026-10-30")
    verdict = judge(report(MEDIUM), settings(exceptions=[old]))  # nothing it would except
    assert not verdict.passed
    assert [e.expires for e in verdict.expired_exceptions] == [date(2026, 10, 30)]
    assert verdict.reasons == (
        "the exception for CVE-2024-0001 expired on 2026-10-30 (approved by Jane Doe)",
    )
    unrelated = exception(approved="2026-08-01", expires="2026-10-30", images=["base/*"])
    assert judge(report(MEDIUM), settings(exceptions=[unrelated])).passed  # not this image's


def test_an_exception_not_yet_approved_excepts_nothing() -> None:
    future = exception(approved="2026-12-05", expires="2027-01-05")
    assert not judge(report(CRITICAL), settings(exceptions=[future])).passed


def test_exceptions_last_at_most_90_days() -> None:
    with pytest.raises(ValueError, match="at most 90 days"):
        settings(exceptions=[exception(approved="2026-01-01", expires="2026-04-02")])


def test_repeated_findings_count_once() -> None:
    verdict = judge(report(CRITICAL, CRITICAL), settings())
    assert len(verdict.findings) == 1


def test_the_predicate_round_trips() -> None:
    policy = settings(
        exceptions=[
            exception(ticket="SEC-42"),
            exception(id="CVE-1", approved="2026-08-01", expires="2026-10-01"),
        ]
    )
    verdict = judge(report(CRITICAL, HIGH_UNFIXED, MEDIUM), policy, "prod")
    predicate = verdict.predicate()
    assert predicate["passed"] is False
    assert predicate["environment"] == "prod"
    assert predicate["image"] == IMAGE
    assert predicate["scanner"] == {
        "name": "trivy",
        "version": "0.58.1",
        "db_built": "2026-11-30T12:00:00Z",
    }
    assert predicate["at"] == "2026-12-01T12:00:00Z"
    assert predicate["exceptions"][0]["ticket"] == "SEC-42"
    assert predicate["expired_exceptions"][0]["id"] == "CVE-1"
    assert predicate["findings"][0]["status"] == "excepted"
    assert parse_predicate(predicate) == verdict
    assert parse_predicate(predicate).digest == "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.update(passed="yes"), "passed: expected true or false"),
        (lambda p: p.update(environment=3), "environment: expected an environment name or null"),
        (
            lambda p: p["findings"][0].update(status="ok"),
            r"findings\[0\]\.status: expected one of blocking",
        ),
        (lambda p: p.update(threshold="severe"), "threshold: expected one of critical"),
        (lambda p: p.pop("at"), "at: expected the time of the verdict"),
        (lambda p: p["exceptions"][0].pop("approver"), r"exceptions\[0\]: is not a scan exception"),
    ],
)
def test_a_malformed_predicate_is_refused_by_key(change: Any, message: str) -> None:
    predicate = judge(report(CRITICAL), settings(exceptions=[exception()])).predicate()
    change(predicate)
    with pytest.raises(UserError, match=message):
        parse_predicate(predicate)
