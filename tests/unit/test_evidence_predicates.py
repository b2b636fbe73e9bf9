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
        at=AT,
    )
    assert document["result"] == "PASSED"  # in-toto test-result v0.1 field names, then the time
    assert list(document) == [
        "result",
        "configuration",
        "url",
        "passedTests",
        "warnedTests",
        "failedTests",
        "at",
    ]
    assert document["at"] == "2026-12-01T21:30:05Z"  # as the release predicate writes it
    result = predicates.parse_test_result(roundtrip(document))
    assert result.passed and result.checks == 2
    assert result.passed_tests == ("command:python", "file:/app")
    assert result.configuration == (("images/app/rag-api/image.yaml", SPEC_HEX),)
    assert result.url == "https://gitlab.example/jobs/7" and result.at == AT


def test_a_failed_run_outside_ci() -> None:
    document = predicates.result_predicate(
        passed=False,
        passed_tests=["a"],
        failed_tests=["container"],
        spec_path="image.yaml",
        spec_sha256=SPEC_HEX,
        url=None,
        at=AT,
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
            at=AT,
        )


@pytest.mark.parametrize(
    ("predicate", "message"),
    [
        ([], "not a JSON object"),
        ({"result": "OK"}, "is not PASSED"),
        ({"result": "PASSED", "failedTests": ["x"]}, "with failed tests"),
        ({"result": "FAILED", "passedTests": "x"}, "passedTests: not a list"),
        (
            {"result": "PASSED", "configuration": [{"name": "i"}], "at": "2026-12-01T00:00:00Z"},
            "configuration",
        ),
        ({"result": "PASSED", "url": 7}, "url is not a string"),
        ({"result": "PASSED", "at": "yesterday"}, "not an ISO 8601 time"),
    ],
)
def test_malformed_test_results_are_refused(predicate: Any, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        predicates.parse_test_result(predicate)


def test_a_test_result_without_its_time_is_refused() -> None:
    """Fails before the fix: a run carried no time, and the latest was the last layer (whose
    order nobody signs). One without it cannot be ordered: refused, naming the field."""
    document = predicates.result_predicate(
        passed=True,
        passed_tests=["a"],
        failed_tests=[],
        spec_path="image.yaml",
        spec_sha256=SPEC_HEX,
        url=None,
        at=AT,
    )
    del document["at"]
    with pytest.raises(VerificationError, match="test-result predicate: it has no at") as refused:
        predicates.parse_test_result(roundtrip(document))
    assert "test the digest again" in refused.value.hint


def test_the_latest_is_by_signed_time_and_of_a_tie_the_later() -> None:
    first, second, third = (
        predicates.Lifecycle(True, reason, "sec", at)
        for reason, at in (("a", AT), ("b", AT.replace(hour=23)), ("c", AT))
    )
    assert predicates.latest([second, first]) is second  # written out of order
    assert predicates.latest([first, third]) is third  # a tie: the later one
    assert predicates.latest([]) is None


def test_previous_names_layers_of_imagefactorys_own_types_only() -> None:
    layer = "sha256:" + "1" * 64
    assert predicates.previous_of(predicates.RELEASE, {"previous": [layer]}) == (layer,)
    assert predicates.previous_of(predicates.RELEASE, {}) == ()  # written before it existed
    assert predicates.previous_of(predicates.SBOM, {"previous": "whatever"}) == ()  # CycloneDX's
    with pytest.raises(VerificationError, match="previous is not a list of sha256 layer digests"):
        predicates.previous_of(predicates.LIFECYCLE, {"previous": ["sha256:x"]})


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
