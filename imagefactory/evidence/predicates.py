"""The predicates imagefactory attests, by type, with a builder and a parser for its own.

Every attestation is an in-toto Statement about one digest (``signing.dsse``); its predicate
type says what it tells:

* ``PROVENANCE``: how the image was built (SLSA v1, ``signing.provenance``);
* ``SBOM``: what is inside it (the CycloneDX document itself, as ``cosign attest --type
  cyclonedx`` writes it);
* ``TEST_RESULT``: one test run (in-toto's test-result v0.1: ``result``, ``configuration``,
  ``url``, ``passedTests``, ``warnedTests``, ``failedTests``, and imagefactory's ``at``, the
  run's time: v0.1 has no time field, and the in-toto attestation framework's parsing rules
  have consumers ignore fields they do not know);
* ``RELEASE``: a push or a promotion into an environment (imagefactory's own);
* ``LIFECYCLE``: a revocation, or its lifting (imagefactory's own);
* ``SCAN_VERDICT``: the vulnerability gate's verdict (``scan``).

A parser takes a predicate read from a verified attestation and gives a small frozen record,
or refuses a malformed one (a VerificationError naming the field): the signature proves who
wrote it, not that it is well formed.

The ``.att`` of a digest is one manifest whose layers are signed one by one, but not their order
nor their set: whoever can write the repository can reorder or remove layers. So the latest of
several records (test runs, lifecycle records, verdicts, releases) is the latest by its signed
time (``latest``), never the last layer; and every attestation of imagefactory's own types
(``CHAINED``) names, under ``previous``, the layers the ``.att`` held when it was written
(``evidence.store`` adds it, ``evidence.verify`` checks it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from imagefactory.signing import provenance
from imagefactory.signing.keys import VerificationError
from imagefactory.spec.parents import DIGEST_PATTERN

PROVENANCE = provenance.PREDICATE_TYPE
SBOM = "https://cyclonedx.org/bom"
TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"
RELEASE = "urn:imagefactory:predicate:release:v1"
LIFECYCLE = "urn:imagefactory:predicate:lifecycle:v1"
SCAN_VERDICT = "urn:imagefactory:predicate:scan-verdict:v1"
#: imagefactory's own predicate types: each names the ``.att`` layers before it (``PREVIOUS``).
#: Not the provenance and the SBOM, whose formats are SLSA's and CycloneDX's.
CHAINED = frozenset({TEST_RESULT, RELEASE, LIFECYCLE, SCAN_VERDICT})
PREVIOUS = "previous"

_PASSED, _WARNED, _FAILED = "PASSED", "WARNED", "FAILED"
_REVOKED, _ACTIVE = "revoked", "active"


@dataclass(frozen=True)
class TestResult:
    """One test run of a digest: its verdict, the checks by name, what was tested against."""

    __test__ = False  # not a pytest test class

    passed: bool
    passed_tests: tuple[str, ...]
    failed_tests: tuple[str, ...]
    warned_tests: tuple[str, ...]
    configuration: tuple[tuple[str, str], ...]  # (name, sha256 hex): the image.yaml tested
    url: str | None  # the CI job that ran it
    at: datetime  # when it ran (signed)

    @property
    def checks(self) -> int:
        return len(self.passed_tests) + len(self.failed_tests) + len(self.warned_tests)


@dataclass(frozen=True)
class Release:
    """A push (``from_environment`` None) or a promotion of a digest into ``environment``."""

    environment: str
    version: str
    tags: tuple[str, ...]
    identity: str  # who released it
    approver: str | None  # who approved it, where the environment needs approval
    from_environment: str | None
    at: datetime


@dataclass(frozen=True)
class Lifecycle:
    """A digest revoked (or a revocation lifted), why, by whom, when."""

    revoked: bool
    reason: str
    by: str
    at: datetime


def result_predicate(
    *,
    passed: bool,
    passed_tests: Sequence[str],
    failed_tests: Sequence[str],
    spec_path: str,
    spec_sha256: str,
    url: str | None,
    at: datetime,
) -> dict[str, Any]:
    """The test-result predicate of one run: its checks by name (``kind:name``), the image.yaml
    it ran (path and sha256 hex), the CI job's URL (None outside CI), when it ran (``at``: not
    a field of in-toto's test-result v0.1, whose consumers ignore fields they do not know; the
    readers here pick the latest run by it, since the order of the layers is not signed)."""
    if passed and failed_tests:
        raise ValueError("a passed run has no failed checks")
    document: dict[str, Any] = {
        "result": _PASSED if passed else _FAILED,
        "configuration": [{"name": spec_path, "digest": {"sha256": spec_sha256}}],
    }
    if url is not None:
        document["url"] = url
    document |= {
        "passedTests": list(passed_tests),
        "warnedTests": [],
        "failedTests": list(failed_tests),
        "at": _time(at),
    }
    return document


def release_predicate(
    *,
    environment: str,
    version: str,
    tags: Sequence[str],
    identity: str,
    approver: str | None,
    from_environment: str | None,
    at: datetime,
) -> dict[str, Any]:
    """The release predicate of a push (``from_environment`` None) or a promotion."""
    return {
        "environment": environment,
        "version": version,
        "tags": list(tags),
        "identity": identity,
        "approver": approver,
        "from": from_environment,
        "at": _time(at),
    }


def lifecycle_predicate(*, revoked: bool, reason: str, by: str, at: datetime) -> dict[str, Any]:
    """The lifecycle predicate: ``status`` revoked (or active: a revocation lifted)."""
    return {"status": _REVOKED if revoked else _ACTIVE, "reason": reason, "by": by, "at": _time(at)}


def parse_test_result(predicate: Any) -> TestResult:
    what = "test-result predicate"
    document = _map(predicate, what)
    result = _text(document, "result", what)
    if result not in (_PASSED, _WARNED, _FAILED):
        raise VerificationError(f"{what}: result {result!r} is not PASSED, WARNED or FAILED")
    lists = {
        name: _strings(document.get(name, []), f"{what}: {name}")
        for name in ("passedTests", "warnedTests", "failedTests")
    }
    if result != _FAILED and lists["failedTests"]:
        raise VerificationError(f"{what}: result {result} with failed tests")
    url = document.get("url")
    if url is not None and not isinstance(url, str):
        raise VerificationError(f"{what}: url is not a string")
    if "at" not in document:
        raise VerificationError(
            f"{what}: it has no at (the time of the run), so it cannot be ordered among the runs",
            hint="a run attested before imagefactory signed the time of each run does not "
            "count: test the digest again",
        )
    return TestResult(
        passed=result != _FAILED,
        passed_tests=lists["passedTests"],
        failed_tests=lists["failedTests"],
        warned_tests=lists["warnedTests"],
        configuration=_configuration(document.get("configuration", []), what),
        url=url,
        at=_parse_time(_text(document, "at", what), what),
    )


def parse_release(predicate: Any) -> Release:
    what = "release predicate"
    document = _map(predicate, what)
    return Release(
        environment=_text(document, "environment", what),
        version=_text(document, "version", what),
        tags=_strings(document.get("tags"), f"{what}: tags"),
        identity=_text(document, "identity", what),
        approver=_optional(document, "approver", what),
        from_environment=_optional(document, "from", what),
        at=_parse_time(_text(document, "at", what), what),
    )


def parse_lifecycle(predicate: Any) -> Lifecycle:
    what = "lifecycle predicate"
    document = _map(predicate, what)
    status = _text(document, "status", what)
    if status not in (_REVOKED, _ACTIVE):
        raise VerificationError(f"{what}: status {status!r} is not {_REVOKED} or {_ACTIVE}")
    return Lifecycle(
        revoked=status == _REVOKED,
        reason=_text(document, "reason", what),
        by=_text(document, "by", what),
        at=_parse_time(_text(document, "at", what), what),
    )


def previous_of(predicate_type: str, predicate: Any) -> tuple[str, ...]:
    """The layer digests an attestation of ``predicate_type`` names under ``previous``: none
    for the types outside ``CHAINED``, and for one written before imagefactory named them (only
    a key holder could write one without it, so it hides nothing); a VerificationError when
    they are not a list of sha256 digests."""
    if predicate_type not in CHAINED or not isinstance(predicate, dict):
        return ()
    named = predicate.get(PREVIOUS, [])
    if not isinstance(named, list) or not all(
        isinstance(layer, str) and DIGEST_PATTERN.fullmatch(layer) for layer in named
    ):
        raise VerificationError(
            f"{predicate_type} predicate: {PREVIOUS} is not a list of sha256 layer digests"
        )
    return tuple(named)


class _Timed(Protocol):
    @property
    def at(self) -> datetime: ...


_T = TypeVar("_T", bound=_Timed)


def latest(records: Iterable[_T]) -> _T | None:
    """The latest of ``records`` by their signed time; of two at one time, the one that comes
    later (written later); None when there are none."""
    found = None
    for record in records:
        if found is None or record.at >= found.at:
            found = record
    return found


def _time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("predicate times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_time(text: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise VerificationError(f"{what}: at {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise VerificationError(f"{what}: at {text!r} has no time zone")
    return moment


def _map(predicate: Any, what: str) -> dict[str, Any]:
    if not isinstance(predicate, dict):
        raise VerificationError(f"{what}: not a JSON object")
    return predicate


def _text(document: dict[str, Any], name: str, what: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise VerificationError(f"{what}: {name} is missing or not a non-empty string")
    return value


def _optional(document: dict[str, Any], name: str, what: str) -> str | None:
    value = document.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise VerificationError(f"{what}: {name} is neither null nor a non-empty string")
    return value


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise VerificationError(f"{what}: not a list of strings")
    return tuple(value)


def _configuration(value: Any, what: str) -> tuple[tuple[str, str], ...]:
    try:
        entries = tuple((entry["name"], entry["digest"]["sha256"]) for entry in value)
    except (KeyError, TypeError):
        raise VerificationError(f"{what}: configuration is not a list of named digests") from None
    if not all(isinstance(name, str) and isinstance(hex_, str) for name, hex_ in entries):
        raise VerificationError(f"{what}: configuration is not a list of named digests")
    return entries
