"""What the release gate reads from signed evidence (``release.evidence.RegistryEvidence``): which
attestation answers each question, where it is looked for, and that it is verified once per
digest. The verification itself (signatures, subjects, tampering) is ``evidence.verify``'s, tested
in tests/unit/test_evidence_store.py and against a real registry in
tests/integration/test_supply_chain.py; here it is replaced by the attestations it would give."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from imagefactory.errors import UserError
from imagefactory.evidence import predicates
from imagefactory.evidence.store import EvidenceStore
from imagefactory.evidence.verify import NoEvidence, Verified
from imagefactory.project.state import ImageRecord, State, YankRecord
from imagefactory.registry.client import RegistryClient
from imagefactory.release import evidence as module
from imagefactory.release import gate
from imagefactory.release.evidence import LocalEvidence, RegistryEvidence, evidence_for
from imagefactory.signing.dsse import VerifiedAttestation
from imagefactory.signing.keys import VerificationError, VerifyingKey
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.loader import load_catalog

from .test_gate import NOTHING_LISTED
from .test_write_ahead import REF
from .test_write_tags import DIGEST

BUILT = "127.0.0.1:5000/bank-ai-lab/dev/app/rag-api"
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def statement(predicate_type: str, predicate: Mapping[str, Any]) -> VerifiedAttestation:
    return VerifiedAttestation(predicate_type, dict(predicate), (BUILT,))


def run(passed: bool, hour: int = 12) -> VerifiedAttestation:
    return statement(
        predicates.TEST_RESULT,
        predicates.result_predicate(
            passed=passed,
            passed_tests=["commands:imports"] if passed else [],
            failed_tests=[] if passed else ["commands:imports"],
            spec_path="images/app/rag-api/image.yaml",
            spec_sha256="0" * 64,
            url=None,
            at=AT.replace(hour=hour),
        ),
    )


def release(environment: str, identity: str, source: str | None) -> VerifiedAttestation:
    return statement(
        predicates.RELEASE,
        predicates.release_predicate(
            environment=environment,
            version="0.3.0",
            tags=["0.3.0"],
            identity=identity,
            approver=None,
            from_environment=source,
            at=AT,
        ),
    )


def lifecycle(revoked: bool, hour: int) -> VerifiedAttestation:
    return statement(
        predicates.LIFECYCLE,
        predicates.lifecycle_predicate(
            revoked=revoked, reason="CVE-1", by="sec", at=AT.replace(hour=hour)
        ),
    )


def scanned(passed: bool, environment: str | None, at: str) -> VerifiedAttestation:
    predicate = {
        "passed": passed,
        "image": f"{BUILT}@{DIGEST}",
        "environment": environment,
        "threshold": "high",
        "scanner": {"name": "trivy"},
        "at": at,
    }
    return statement(predicates.SCAN_VERDICT, predicate)


class Registry:
    """What ``verify_digest`` would give for each repository: its verified attestations; for
    one not ``held``, that it holds no evidence; for one ``broken``, that it does not verify."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.held: dict[str, tuple[VerifiedAttestation, ...]] = {}
        self.broken: set[str] = set()
        self.reads: list[str] = []
        monkeypatch.setattr(module, "verify_digest", self.verify_digest)

    def verify_digest(self, store: EvidenceStore, digest: str, key: object, **_: Any) -> Verified:
        repository = store.location.repository
        self.reads.append(repository)
        if repository in self.broken:
            raise VerificationError(f"{repository}@{digest}: a layer was removed")
        if repository not in self.held:
            raise NoEvidence(f"{repository}@{digest} is not signed")
        return Verified(digest, repository, self.held[repository])


@pytest.fixture
def catalog(catalog_dir: Path) -> Catalog:
    return load_catalog(catalog_dir)


def gate_evidence(catalog: Catalog, *, at: str | None = None) -> RegistryEvidence:
    """The evidence a push (``at`` None: where the build put the image) or a promotion from
    ``at`` reads; state knows the build's repository and one yank."""
    record = ImageRecord(
        content_hash="sha256:" + "c" * 64,
        inputs={},
        version="0.3.0",
        repository=BUILT,
        yanked={"0.2.0": YankRecord(version="0.2.0", digest="x", reason="r", by="b", at="t")},
    )
    key = VerifyingKey(ec.generate_private_key(ec.SECP256R1()).public_key(), "cosign.pub")
    registry = catalog.project.registries[at] if at is not None else None
    return RegistryEvidence(catalog, State(images={REF: record}), RegistryClient(), registry, key)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    return Registry(monkeypatch)


def test_the_test_run_is_the_latest_by_its_signed_time(
    catalog: Catalog, registry: Registry
) -> None:
    registry.held[BUILT] = (run(True, 10), release("dev", "bob", None), run(False, 11))
    found = gate_evidence(catalog).test_of(REF, DIGEST)
    assert found is not None and (found.passed, found.digest, found.checks) == (False, DIGEST, 1)
    assert found.at == "2026-12-01T11:00:00+00:00"  # the run's own time, as state writes one
    registry.held[BUILT] = (run(False, 10), run(True, 11))
    found = gate_evidence(catalog).test_of(REF, DIGEST)
    assert found is not None and found.passed
    registry.held[BUILT] = (run(False, 10), run(True, 10))  # one time: the later layer
    found = gate_evidence(catalog).test_of(REF, DIGEST)
    assert found is not None and found.passed
    registry.held[BUILT] = (release("dev", "bob", None),)
    assert gate_evidence(catalog).test_of(REF, DIGEST) is None


def test_an_old_passed_run_appended_again_after_a_failed_one_does_not_count(
    catalog: Catalog, registry: Registry
) -> None:
    """Fails before the fix: the gate took the last layer as the latest run, and the order of
    the layers is not signed (anyone who may write to the registry can append an old one)."""
    passed = run(True, 10)
    registry.held[BUILT] = (passed, run(False, 11), passed)
    found = gate_evidence(catalog).test_of(REF, DIGEST)
    assert found is not None and not found.passed


def test_the_pusher_is_who_released_it_into_the_first_environment(
    catalog: Catalog, registry: Registry
) -> None:
    registry.held[BUILT] = (release("dev", "Bob <bob@x>", None), release("preprod", "ada", "dev"))
    assert gate_evidence(catalog).pusher_of(REF, DIGEST) == ("Bob <bob@x>",)
    registry.held[BUILT] = (release("preprod", "ada", "dev"),)  # a promotion is not a push
    assert gate_evidence(catalog).pusher_of(REF, DIGEST) == ()


def test_the_latest_lifecycle_record_by_time_says_whether_it_is_revoked(
    catalog: Catalog, registry: Registry
) -> None:
    registry.held[BUILT] = (lifecycle(True, 10), lifecycle(False, 11))  # revoked, then lifted
    assert gate_evidence(catalog).revocation_of(REF, DIGEST) is None
    registry.held[BUILT] = (lifecycle(True, 12), lifecycle(False, 11))  # written out of order
    revoked = gate_evidence(catalog).revocation_of(REF, DIGEST)
    assert revoked is not None and (revoked.reason, revoked.by) == ("CVE-1", "sec")
    registry.held[BUILT] = ()
    assert gate_evidence(catalog).revocation_of(REF, DIGEST) is None


def test_the_verdict_is_the_latest_for_the_environment_or_for_any(
    catalog: Catalog, registry: Registry
) -> None:
    registry.held[BUILT] = (
        scanned(False, "prod", "2026-12-01T11:00:00Z"),
        scanned(True, None, "2026-12-01T10:00:00Z"),
        scanned(True, "preprod", "2026-12-01T12:00:00Z"),
    )
    found = gate_evidence(catalog)
    verdicts = {env: found.verdict_of(REF, DIGEST, env) for env in ("dev", "preprod", "prod")}
    assert {env: (v.passed, v.environment) for env, v in verdicts.items() if v} == {
        "dev": (True, None),
        "preprod": (True, "preprod"),
        "prod": (False, "prod"),  # newer than the one for any environment
    }
    registry.held[BUILT] = (scanned(True, "preprod", "2026-12-01T12:00:00Z"),)
    assert gate_evidence(catalog).verdict_of(REF, DIGEST, "prod") is None


def test_a_malformed_verdict_is_an_error_naming_where_it_is(
    catalog: Catalog, registry: Registry
) -> None:
    broken = statement(predicates.SCAN_VERDICT, {"passed": "yes"})
    registry.held[BUILT] = (broken,)
    with pytest.raises(UserError, match=r"sha256-a{64}\.att"):
        gate_evidence(catalog).verdict_of(REF, DIGEST, "prod")


def test_a_push_reads_where_the_build_put_it_a_promotion_the_source_once_per_digest(
    catalog: Catalog, registry: Registry
) -> None:
    preprod = "127.0.0.1:5000/bank-ai-lab/preprod/app/rag-api"
    registry.held = {BUILT: (run(True),), preprod: (run(False),)}
    pushing, promoting = gate_evidence(catalog), gate_evidence(catalog, at="preprod")
    for found in (pushing, promoting):
        found.test_of(REF, DIGEST)
        found.pusher_of(REF, DIGEST)
        found.revocation_of(REF, DIGEST)
    assert registry.reads == [BUILT, preprod, BUILT]  # each verified once, the home too
    tag = f"sha256-{'a' * 64}.att"
    assert pushing.where(REF, DIGEST) == f"the signed attestations {BUILT}:{tag}"
    assert promoting.where(REF, DIGEST) == (
        f"the signed attestations {preprod}:{tag} and {BUILT}:{tag}"
    )
    assert pushing.yank_of(REF, "0.2.0") is not None  # yanks: from state
    assert pushing.yank_of(REF, "0.3.0") is None


PREPROD = "127.0.0.1:5000/bank-ai-lab/preprod/app/rag-api"


def test_a_failed_run_attested_only_in_the_home_blocks_the_promotion(
    catalog: Catalog, registry: Registry
) -> None:
    """Fails before the fix: a promotion read the source environment's copy alone, and a test
    re-run is attested only in the build repository (where it was built: its home)."""
    registry.held = {
        PREPROD: (run(True, 10), release("dev", "bob", None), lifecycle(False, 9)),
        BUILT: (run(True, 10), release("dev", "bob", None), run(False, 11)),
    }
    promoting = gate_evidence(catalog, at="preprod")
    _, prod = catalog.environment("prod")
    with pytest.raises(gate.Refused, match="failed its tests") as refused:
        gate.require(
            promoting,
            gate.Candidate(REF, "0.3.0", DIGEST, prod),
            approver="ada",
            listed=NOTHING_LISTED,
        )
    assert f"{PREPROD}:sha256-" in refused.value.message
    assert f"and {BUILT}:sha256-" in refused.value.message
    registry.held[BUILT] += (lifecycle(True, 12),)  # a revocation written in the home only
    revoked = gate_evidence(catalog, at="preprod").revocation_of(REF, DIGEST)
    assert revoked is not None and revoked.at == AT


def test_the_merge_takes_the_latest_by_time_from_either_place(
    catalog: Catalog, registry: Registry
) -> None:
    registry.held = {
        PREPROD: (run(True, 13), lifecycle(True, 10), scanned(True, None, "2026-12-01T12:00:00Z")),
        BUILT: (run(False, 11), lifecycle(False, 11), scanned(False, None, "2026-12-01T11:00:00Z")),
    }
    found = gate_evidence(catalog, at="preprod")
    test = found.test_of(REF, DIGEST)
    assert test is not None and test.passed  # the source's run is the later one
    assert found.revocation_of(REF, DIGEST) is None  # lifted in the home, after the revocation
    verdict = found.verdict_of(REF, DIGEST, "prod")
    assert verdict is not None and verdict.passed
    registry.held[BUILT] = (release("dev", "bob", None),)  # the push, on record in the home only
    assert gate_evidence(catalog, at="preprod").pusher_of(REF, DIGEST) == ("bob",)


def test_a_home_without_evidence_leaves_the_source_alone_and_one_that_fails_refuses(
    catalog: Catalog, registry: Registry
) -> None:
    registry.held = {PREPROD: (run(True),)}  # promoted from another catalog's build
    test = gate_evidence(catalog, at="preprod").test_of(REF, DIGEST)
    assert test is not None and test.passed
    registry.broken = {BUILT}
    with pytest.raises(VerificationError, match=f"{BUILT}@{DIGEST}: a layer was removed"):
        gate_evidence(catalog, at="preprod").test_of(REF, DIGEST)
    registry.held, registry.broken = {BUILT: (run(True),)}, set()
    with pytest.raises(NoEvidence):  # the source itself must hold it
        gate_evidence(catalog, at="preprod").test_of(REF, DIGEST)


def test_the_home_is_read_once_when_it_is_the_source(catalog: Catalog, registry: Registry) -> None:
    registry.held = {BUILT: (run(True),)}
    found = gate_evidence(catalog, at="dev")  # dev's first registry is the build registry
    found.test_of(REF, DIGEST)
    found.revocation_of(REF, DIGEST)
    assert registry.reads == [BUILT]
    assert found.where(REF, DIGEST) == f"the signed attestations {BUILT}:sha256-{'a' * 64}.att"


def test_evidence_that_does_not_verify_refuses_whatever_is_asked(
    catalog: Catalog, registry: Registry
) -> None:
    with pytest.raises(VerificationError, match="is not signed"):
        gate_evidence(catalog).test_of(REF, DIGEST)


def test_evidence_for_reads_the_registry_only_with_signing_and_a_session(
    catalog_dir: Path,
) -> None:
    assert isinstance(
        evidence_for(load_catalog(catalog_dir), client=RegistryClient()), LocalEvidence
    )
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    (catalog_dir / "cosign.pub").write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    project = catalog_dir / "imagefactory.yaml"
    project.write_text(project.read_text() + "\nsigning:\n  public_key: cosign.pub\n")
    signed = load_catalog(catalog_dir)
    assert isinstance(evidence_for(signed, client=RegistryClient()), RegistryEvidence)
    without_session = evidence_for(signed)
    assert isinstance(without_session, LocalEvidence)  # reads yanks only: state holds them
