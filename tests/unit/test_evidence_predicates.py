"""The predicates imagefactory attests: each builder's output parses back to what was given, and
a malformed predicate (a signature proves who wrote it, not its shape) is refused by name."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from imagefactory.evidence import predicates
from imagefactory.signing.keys import VerificationError

AT = datetime(2026, 12, 1, 21, 30, 5, tzinfo=UTC)
SPEC_HEX = "ab" * 32


def roundtrip(document: dict[str, Any]) -> Any:
    """What a verifier reads back: the predicate through JSON."""
    return json.loads(json.dumps(document))


def test_a_passed_run_round_trips() -> None:
    document = predicates.result_predicate(
        passed=True,
        passed_tests=["command:python", "file:/app"],
        failed_tests=[],
        spec_path="images/app/rag-api/image.yaml",
        spec_sha256=SPEC_HEX,
        url="https://gitlab.example/jobs/7",
    )
    assert document["result"] == "PASSED"  # in-toto test-result v0.1 field names
    assert list(document) == [
        "result",
        "configuration",
        "url",
        "passedTests",
        "warnedTests",
        "failedTests",
    ]
    result = predicates.parse_test_result(roundtrip(document))
    assert result.passed and result.checks == 2
    assert result.passed_tests == ("command:python", "file:/app")
    assert result.configuration == (("images/app/rag-api/image.yaml", SPEC_HEX),)
    assert result.url == "https://gitlab.example/jobs/7"


def test_a_failed_run_outside_ci() -> None:
    document = predicates.result_predicate(
        passed=False,
        passed_tests=["a"],
        failed_tests=["container"],
        spec_path="image.yaml",
        spec_sha256=SPEC_HEX,
        url=None,
    )
    assert "url" not in document
    result = predicates.parse_test_result(roundtrip(document))
    assert not result.passed and result.failed_tests == ("container",) and result.url is None


def test_a_passed_run_with_failures_is_not_built() -> None:
    with pytest.raises(ValueError, match="no failed checks"):
        predicates.result_predicate(
            passed=True,
            passed_tests=[],
            failed_tests=["x"],
            spec_path="i",
            spec_sha256=SPEC_HEX,
            url=None,
        )


@pytest.mark.parametrize(
    ("predicate", "message"),
    [
        ([], "not a JSON object"),
        ({"result": "OK"}, "is not PASSED"),
        ({"result": "PASSED", "failedTests": ["x"]}, "with failed tests"),
        ({"result": "FAILED", "passedTests": "x"}, "passedTests: not a list"),
        ({"result": "PASSED", "configuration": [{"name": "i"}]}, "configuration"),
        ({"result": "PASSED", "url": 7}, "url is not a string"),
    ],
)
def test_malformed_test_results_are_refused(predicate: Any, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        predicates.parse_test_result(predicate)


def test_a_release_round_trips() -> None:
    local = datetime(2026, 12, 1, 22, 30, 5, tzinfo=timezone(timedelta(hours=1)))
    document = predicates.release_predicate(
        environment="prod",
        version="1.4.2",
        tags=["1.4.2", "1.4", "1"],
        identity="alice",
        approver="bob",
        from_environment="preprod",
        at=local,
    )
    assert document["at"] == "2026-12-01T21:30:05Z" and document["from"] == "preprod"
    release = predicates.parse_release(roundtrip(document))
    assert release == predicates.Release(
        "prod", "1.4.2", ("1.4.2", "1.4", "1"), "alice", "bob", "preprod", AT
    )


def test_a_push_has_no_source_environment_and_maybe_no_approver() -> None:
    document = predicates.release_predicate(
        environment="dev",
        version="1.0.0",
        tags=[],
        identity="ci",
        approver=None,
        from_environment=None,
        at=AT,
    )
    release = predicates.parse_release(roundtrip(document))
    assert release.from_environment is None and release.approver is None


def test_naive_times_are_not_written() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        predicates.lifecycle_predicate(revoked=True, reason="r", by="b", at=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"environment": ""}, "environment is missing"),
        ({"tags": "1.0"}, "tags: not a list"),
        ({"approver": 3}, "approver is neither null"),
        ({"at": "yesterday"}, "not an ISO 8601 time"),
        ({"at": "2026-12-01T21:30:05"}, "no time zone"),
    ],
)
def test_malformed_releases_are_refused(change: dict[str, Any], message: str) -> None:
    document = predicates.release_predicate(
        environment="dev",
        version="1.0.0",
        tags=["1.0.0"],
        identity="ci",
        approver=None,
        from_environment=None,
        at=AT,
    )
    with pytest.raises(VerificationError, match=message):
        predicates.parse_release(document | change)


def test_lifecycle_round_trips_and_refuses_an_unknown_status() -> None:
    revoked = predicates.lifecycle_predicate(revoked=True, reason="CVE-1", by="sec", at=AT)
    assert revoked["status"] == "revoked"
    assert predicates.parse_lifecycle(roundtrip(revoked)) == predicates.Lifecycle(
        True, "CVE-1", "sec", AT
    )
    lifted = predicates.lifecycle_predicate(revoked=False, reason="fixed", by="sec", at=AT)
    assert not predicates.parse_lifecycle(roundtrip(lifted)).revoked
    with pytest.raises(VerificationError, match="status 'deleted'"):
        predicates.parse_lifecycle(revoked | {"status": "deleted"})
    with pytest.raises(VerificationError, match="reason is missing"):
        predicates.parse_lifecycle({k: v for k, v in revoked.items() if k != "reason"})
