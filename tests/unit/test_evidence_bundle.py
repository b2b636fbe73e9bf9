"""imagefactory.evidence.bundle: an evidence bundle made from real signatures and attestations
(keys the tests generate) verifies offline with the public key, byte for byte the same when made
twice; one byte changed in any blob, in a manifest, in an audit record, and the seal or the
summary forged, is refused, saying what was changed."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from imagefactory.evidence import bundle, predicates, store
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.registry.client import RegistryClient
from imagefactory.signing import provenance
from imagefactory.signing.keys import SigningKey, VerificationError
from imagefactory.signing.oci import ArtifactManifest, attestation_tag, sha256_digest
from imagefactory.spec.models import Registry

from .helpers import run
from .test_evidence_store import MemoryRegistry, provenance_of

DIGEST = "sha256:" + "ab" * 32
PARENT = "sha256:" + "cd" * 32
BUILDER = "https://ci.example/runners/7"
BUILD = Registry(url="registry.example:5000", namespace="build")
BUILD_REPO = "registry.example:5000/build/app/tiny"
REPO = "registry.example:5000/dev/app/tiny"
RELEASE = {
    "environment": "dev",
    "version": "1.0.0",
    "from": None,
    "identity": "Jane Doe <jane@example>",
    "approver": None,
}
RELEASED_AT = {"at": "2026-12-01T02:00:00Z"}
AUDIT = [
    {"id": "a1", "phase": "intent", "action": "push", "image": "app/tiny", "digest": DIGEST},
    {"id": "a1", "phase": "done", "action": "push", "image": "app/tiny", "digest": DIGEST},
]


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), "test key")


def _provenance() -> dict[str, Any]:
    return provenance_of(("registry.example:5000/build/base/tiny", PARENT), BUILDER)


REVOKED = predicates.lifecycle_predicate(
    revoked=True, reason="CVE-1", by="sec", at=datetime(2026, 12, 1, tzinfo=UTC)
)
LIFTED = predicates.lifecycle_predicate(
    revoked=False, reason="fixed", by="sec", at=datetime(2026, 12, 2, tzinfo=UTC)
)
PASSED = {"result": "PASSED", "passedTests": ["run"], "at": "2026-12-01T00:00:00Z"}
FAILED = {"result": "FAILED", "failedTests": ["run"], "at": "2026-12-01T01:00:00Z"}


@pytest.fixture(autouse=True)
def _no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "SETTLE", 0.0)


def _contents(
    key: SigningKey,
    *,
    repository: str = REPO,
    evidence: tuple[tuple[str, dict[str, Any]], ...] | None = None,
) -> bundle.Contents:
    """What the registry holds in ``repository`` once the build attested the provenance and
    ``evidence`` in its repository (each through ``EvidenceStore``, as imagefactory does: its
    own types name the layers before them) and a push copied it and signed it there;
    ``evidence`` defaults to a passed test run, a release into dev, a revocation."""
    if evidence is None:
        evidence = (
            (predicates.TEST_RESULT, PASSED),
            (predicates.RELEASE, RELEASE),
            (predicates.LIFECYCLE, REVOKED),
        )
    memory = MemoryRegistry()
    build = EvidenceStore(cast(RegistryClient, memory), Location(BUILD, BUILD_REPO))
    build.sign(DIGEST, key)
    for kind, predicate in ((provenance.PREDICATE_TYPE, _provenance()), *evidence):
        build.attest(DIGEST, kind, predicate, key)
    there = EvidenceStore(cast(RegistryClient, memory), Location(BUILD, repository))
    build.copy_to(DIGEST, there)
    there.sign(DIGEST, key)
    held = there.read(DIGEST)
    return bundle.Contents(
        "app/tiny",
        "dev",
        repository,
        DIGEST,
        held.signatures,
        held.attestations,
        held.blobs,
        AUDIT,
    )


def _edited(data: bytes, change: Any) -> bytes:
    document = json.loads(data)
    change(document)
    return json.dumps(document, indent=2, sort_keys=True).encode()


def _flip_base64(text: str, index: int) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_a_bundle_verifies_offline_and_says_what_its_evidence_says(key: SigningKey) -> None:
    data = bundle.export(_contents(key), key)

    report = bundle.verify(data, key.verifying_key(), source="b.json")

    assert (report.image, report.environment, report.digest) == ("app/tiny", "dev", DIGEST)
    assert report.audit == tuple(AUDIT)
    summary = report.summary
    assert summary["signed_for"] == sorted([BUILD_REPO, REPO])
    assert summary["provenance"] == [{"builder": BUILDER, "parent": PARENT}]
    assert summary["tests"] == [{"result": "PASSED", "at": "2026-12-01T00:00:00Z"}]
    assert summary["releases"] == [RELEASE]
    assert summary["revoked"] is True
    assert summary["revocations"] == [{"reason": "CVE-1", "at": "2026-12-01T00:00:00Z"}]
    assert report.problems == ("the digest is revoked",) and not report.ok
    assert summary["attestations"][provenance.PREDICATE_TYPE] == 1
    assert summary["audit_records"] == 2
    document = json.loads(data)
    assert set(document["blobs"]) >= {layer.digest for layer in _contents(key).signatures.layers}


def test_the_same_evidence_gives_the_same_bytes(key: SigningKey) -> None:
    contents = _contents(key)
    assert bundle.export(contents, key) == bundle.export(contents, key)


def test_one_byte_changed_in_any_blob_is_refused(key: SigningKey) -> None:
    data = bundle.export(_contents(key), key)
    digests = list(json.loads(data)["blobs"])
    assert len(digests) == 2 + 4 + 2  # payloads, envelopes, the two configs
    for digest in digests:

        def change(document: dict[str, Any], digest: str = digest) -> None:
            document["blobs"][digest] = _flip_base64(document["blobs"][digest], 5)

        with pytest.raises(VerificationError, match=f"the blob {digest} does not match its digest"):
            bundle.verify(_edited(data, change), key.verifying_key(), source="b.json")


def test_a_blob_refiled_under_its_new_digest_is_refused_by_its_layer(key: SigningKey) -> None:
    """The edited blob filed under the digest of its new bytes: its layer's blob is missing."""
    contents = _contents(key)
    data = bundle.export(contents, key)
    digest = contents.signatures.layers[0].digest  # a payload

    def change(document: dict[str, Any]) -> None:
        text = document["blobs"].pop(digest)
        raw = bytearray(base64.b64decode(text))
        raw[3] ^= 0x01
        document["blobs"][sha256_digest(bytes(raw))] = base64.b64encode(bytes(raw)).decode()

    with pytest.raises(VerificationError, match=f"the blob {digest} of a layer is missing"):
        bundle.verify(_edited(data, change), key.verifying_key(), source="b.json")


@pytest.mark.parametrize("name", ["signatures", "attestations"])
def test_one_byte_changed_in_a_manifest_is_refused(key: SigningKey, name: str) -> None:
    data = bundle.export(_contents(key), key)

    def change(document: dict[str, Any]) -> None:
        document[name]["manifest"] = _flip_base64(document[name]["manifest"], 40)

    with pytest.raises(VerificationError, match=r"manifest does not match its digest"):
        bundle.verify(_edited(data, change), key.verifying_key(), source="b.json")


def test_a_layer_dropped_from_a_manifest_with_its_digest_updated_is_refused(
    key: SigningKey,
) -> None:
    contents = _contents(key)
    data = bundle.export(contents, key)
    fewer = ArtifactManifest(contents.attestations.layers[:-1]).manifest()  # the revocation

    def change(document: dict[str, Any]) -> None:
        document["attestations"] = {
            "digest": sha256_digest(fewer),
            "manifest": base64.b64encode(fewer).decode(),
        }

    with pytest.raises(VerificationError, match=r"the \.att manifest was changed after"):
        bundle.verify(_edited(data, change), key.verifying_key(), source="b.json")


def test_a_layer_removed_from_before_a_later_attestation_is_refused(key: SigningKey) -> None:
    """Fails before the fix: with the FAILED run's layer removed from the ``.att`` (no key
    needed), the bundle was made, and verified with the PASSED run as the latest. The release
    attested after it names it under ``previous``: refused, at export and offline."""
    evidence = (
        (predicates.TEST_RESULT, PASSED),
        (predicates.TEST_RESULT, FAILED),
        (predicates.RELEASE, RELEASE | RELEASED_AT),
    )
    contents = _contents(key, evidence=evidence)
    failed = contents.attestations.layers[2]
    fewer = ArtifactManifest(tuple(x for x in contents.attestations.layers if x != failed))
    message = (
        rf"attestation 2 \({predicates.RELEASE}, at 2026-12-01T02:00:00Z\) names layer {failed.digest} which "
        rf"{REPO}:{attestation_tag(DIGEST)} \(as the bundle holds it\) no longer holds: a layer "
        "was removed"
    )
    with pytest.raises(VerificationError, match=message):
        bundle.export(dataclasses.replace(contents, attestations=fewer), key)
    data = bundle.export(contents, key)

    def change(document: dict[str, Any]) -> None:
        document["attestations"] = {
            "digest": sha256_digest(fewer.manifest()),
            "manifest": base64.b64encode(fewer.manifest()).decode(),
        }

    with pytest.raises(VerificationError, match=f"b.json: {message}"):
        bundle.verify(_edited(data, change), key.verifying_key(), source="b.json")


def test_one_byte_changed_in_an_audit_record_is_refused(key: SigningKey) -> None:
    data = bundle.export(_contents(key), key)

    def change(document: dict[str, Any]) -> None:
        document["audit"][1]["id"] = "a2"

    with pytest.raises(
        VerificationError, match="the audit records were changed after the bundle was sealed"
    ):
        bundle.verify(_edited(data, change), key.verifying_key(), source="b.json")


def test_an_edited_summary_is_refused(key: SigningKey) -> None:
    data = bundle.export(_contents(key), key)

    def change(document: dict[str, Any]) -> None:
        document["summary"]["revoked"] = False

    with pytest.raises(VerificationError, match="the verification summary was changed after"):
        bundle.verify(_edited(data, change), key.verifying_key(), source="b.json")


def test_a_summary_sealed_with_a_lie_is_refused(
    key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whoever holds the key can seal anything: the summary is still checked against the
    evidence."""
    said = bundle.summarize

    def lie(*args: Any) -> dict[str, Any]:
        return {**said(*args), "revoked": False}

    monkeypatch.setattr(bundle, "summarize", lie)
    data = bundle.export(_contents(key), key)
    monkeypatch.setattr(bundle, "summarize", said)

    with pytest.raises(VerificationError, match="summary does not say what the evidence says"):
        bundle.verify(data, key.verifying_key(), source="b.json")


def test_another_key_verifies_nothing(key: SigningKey) -> None:
    data = bundle.export(_contents(key), key)
    other = SigningKey(ec.generate_private_key(ec.SECP256R1()), "other key").verifying_key()
    with pytest.raises(VerificationError, match="no valid signature"):
        bundle.verify(data, other, source="b.json")


def test_evidence_not_signed_for_the_repository_is_never_bundled(key: SigningKey) -> None:
    contents = _contents(key)
    elsewhere = bundle.Contents(
        contents.image,
        contents.environment,
        "registry.example:5000/prod/app/tiny",
        contents.digest,
        contents.signatures,
        contents.attestations,
        contents.blobs,
        contents.audit,
    )
    with pytest.raises(VerificationError, match=r"names registry\.example:5000/prod/app/tiny"):
        bundle.export(elsewhere, key)


@pytest.mark.parametrize("data", [b"{", b"[]", b'{"format": "other"}'])
def test_a_file_that_is_not_a_bundle_is_refused(key: SigningKey, data: bytes) -> None:
    with pytest.raises(VerificationError, match=r"b\.json: not"):
        bundle.verify(data, key.verifying_key(), source="b.json")


def test_verify_bundle_reads_the_file_and_the_key_alone(key: SigningKey, tmp_path: Path) -> None:
    """No catalog, no registry: ``-C`` names an empty folder."""
    path, public = tmp_path / "b.json", tmp_path / "cosign.pub"
    path.write_bytes(bundle.export(_contents(key), key))
    public.write_bytes(
        key.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    empty = tmp_path / "empty"
    empty.mkdir()

    result = run(empty, "verify", "--bundle", str(path), "--key", str(public), "--json")

    assert result.exit_code == 1, result.output  # intact, but it says the digest is revoked
    document = json.loads(result.stdout)
    assert (document["ok"], document["intact"], document["digest"]) == (False, True, DIGEST)
    assert document["summary"]["revoked"] is True
    assert document["problems"] == ["the digest is revoked"]
    text = run(empty, "verify", "--bundle", str(path), "--key", str(public))
    assert text.exit_code == 1
    assert "verified offline" in text.stdout and "REVOKED" in text.stdout

    def change(document: dict[str, Any]) -> None:
        document["audit"][0]["who"] = "mallory"

    path.write_bytes(_edited(path.read_bytes(), change))
    result = run(empty, "verify", "--bundle", str(path), "--key", str(public), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["ok"] is False
    assert "audit records were changed" in result.stdout


def test_verify_bundle_needs_its_key(tmp_path: Path) -> None:
    result = run(tmp_path, "verify", "--bundle", str(tmp_path / "b.json"))
    assert result.exit_code == 2 and "--bundle and --key go together" in result.output


def _public(key: SigningKey, folder: Path) -> Path:
    public = folder / "cosign.pub"
    public.write_bytes(
        key.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public


@pytest.mark.parametrize(
    ("evidence", "problems"),
    [
        (
            ((predicates.TEST_RESULT, PASSED), (predicates.RELEASE, RELEASE)),
            [],
        ),
        (  # revoked, then the revocation lifted (by its signed time, not the order written)
            (
                (predicates.TEST_RESULT, PASSED),
                (predicates.RELEASE, RELEASE),
                (predicates.LIFECYCLE, LIFTED),
                (predicates.LIFECYCLE, REVOKED),
            ),
            [],
        ),
        (
            (
                (predicates.TEST_RESULT, PASSED),
                (predicates.RELEASE, RELEASE),
                (predicates.LIFECYCLE, LIFTED | {"at": "2026-11-30T00:00:00Z"}),
                (predicates.LIFECYCLE, REVOKED),
            ),
            ["the digest is revoked"],
        ),
        (
            (
                (predicates.TEST_RESULT, PASSED),
                (predicates.TEST_RESULT, FAILED),
                (predicates.RELEASE, RELEASE),
            ),
            ["its latest test run failed"],
        ),
        (  # the older PASSED layer after the FAILED one: the latest is by the signed time
            (
                (predicates.TEST_RESULT, FAILED),
                (predicates.TEST_RESULT, PASSED),
                (predicates.RELEASE, RELEASE),
            ),
            ["its latest test run failed"],
        ),
        (
            ((predicates.RELEASE, RELEASE),),
            ["no test-result attestation: the digest was not tested"],
        ),
        (
            (
                (predicates.TEST_RESULT, PASSED),
                (predicates.RELEASE, RELEASE | {"environment": "prod"}),
            ),
            ["no release attestation puts the digest into dev"],
        ),
    ],
)
def test_verify_bundle_fails_when_its_intact_evidence_says_the_digest_is_not_releasable(
    key: SigningKey,
    tmp_path: Path,
    evidence: tuple[tuple[str, dict[str, Any]], ...],
    problems: list[str],
) -> None:
    """Fails before the fix: an intact bundle was ok (exit 0) whatever its evidence said, and a
    revocation lifted later was still read as revoked."""
    path = tmp_path / "b.json"
    path.write_bytes(bundle.export(_contents(key, evidence=evidence), key))
    result = run(
        tmp_path, "verify", "--bundle", str(path), "--key", str(_public(key, tmp_path)), "--json"
    )
    document = json.loads(result.stdout)
    assert (document["ok"], document["intact"], document["problems"]) == (
        not problems,
        True,
        problems,
    )
    assert result.exit_code == (1 if problems else 0), result.output
    assert document["summary"]["revoked"] is ("the digest is revoked" in problems)
