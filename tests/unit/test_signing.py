"""imagefactory.signing: cosign signatures, DSSE attestations, SLSA provenance.

Interoperability is checked against real cosign output (tests/unit/fixtures/cosign/README.md):
a ``.sig`` manifest, its payload and its public key as published for
ghcr.io/freedomofpress/dangerzone/v1, and a DSSE envelope that cosign attached to
ghcr.io/distroless/static, with the key of its signing certificate. The rest are round trips
with keys the tests generate.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from imagefactory.errors import UserError
from imagefactory.signing import dsse, oci, provenance, simplesigning
from imagefactory.signing.keys import (
    SigningKey,
    VerificationError,
    read_signing_key,
    read_verifying_key,
    signing_key,
    verifying_key,
)

FIXTURES = Path(__file__).parent / "fixtures" / "cosign"
DZ_REPO = "ghcr.io/freedomofpress/dangerzone/v1"
DZ_DIGEST = "sha256:7396780b5862cf8b37527854a2a2331e5c746b6a71aa1f424258c3bfaf3a1bd7"
DISTROLESS_DIGEST = "sha256:a1e82f6a5f6dfc735165d3442e7cc5a615f72abac3db19452481f5f3c90fbfa8"
DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
REPO = "registry.example:5000/app/rag-api"


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), "test key")


@pytest.fixture(scope="module")
def other_key() -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), "other key")


# --- real cosign data -----------------------------------------------------------------------


def test_the_payload_is_byte_for_byte_what_cosign_signed() -> None:
    real = (FIXTURES / "dangerzone-payload.json").read_bytes()
    assert simplesigning.payload(DZ_REPO, DZ_DIGEST) == real
    manifest = oci.parse_manifest(
        (FIXTURES / "dangerzone-sig-manifest.json").read_bytes(), what="x"
    )
    assert manifest.layers[0].digest == oci.sha256_digest(real)
    assert manifest.layers[0].size == len(real) == 252


def test_the_config_is_byte_for_byte_what_cosign_wrote() -> None:
    """Only the layer list is taken from the real manifest: the config descriptor (233 bytes,
    sha256:a3b0…) comes out of ArtifactManifest as cosign made it."""
    real = json.loads((FIXTURES / "dangerzone-sig-manifest.json").read_bytes())
    manifest = oci.parse_manifest(
        (FIXTURES / "dangerzone-sig-manifest.json").read_bytes(), what="x"
    )
    config = manifest.config()
    assert real["config"] == {
        "mediaType": oci.CONFIG_MEDIA_TYPE,
        "size": len(config),
        "digest": oci.sha256_digest(config),
    }
    assert json.loads(manifest.manifest()) == real


def test_the_manifest_has_cosigns_field_order() -> None:
    """Key order as cosign's (go-containerregistry's structs): the bytes, not only the JSON, agree."""
    real = json.loads((FIXTURES / "dangerzone-sig-manifest.json").read_bytes())
    manifest = oci.parse_manifest(
        (FIXTURES / "dangerzone-sig-manifest.json").read_bytes(), what="x"
    )
    ours = json.loads(manifest.manifest())
    assert list(ours) == list(real) == ["schemaVersion", "mediaType", "config", "layers"]
    assert list(ours["config"]) == list(real["config"])
    assert list(ours["layers"][0]) == list(real["layers"][0])
    compact = json.dumps(real, separators=(",", ":")).encode()
    assert manifest.manifest() == compact


def _dangerzone() -> tuple[oci.ArtifactManifest, dict[str, bytes]]:
    manifest = oci.parse_manifest(
        (FIXTURES / "dangerzone-sig-manifest.json").read_bytes(), what="dangerzone .sig"
    )
    body = (FIXTURES / "dangerzone-payload.json").read_bytes()
    return manifest, {oci.sha256_digest(body): body}


def test_a_real_cosign_signature_verifies() -> None:
    manifest, blobs = _dangerzone()
    public = read_verifying_key(FIXTURES / "dangerzone.pub")
    verified = simplesigning.verify(manifest, blobs, public, digest=DZ_DIGEST, repository=DZ_REPO)
    assert (verified.digest, verified.repository, verified.optional) == (DZ_DIGEST, DZ_REPO, ())


def test_a_real_cosign_signature_with_one_flipped_byte_fails() -> None:
    manifest, blobs = _dangerzone()
    public = read_verifying_key(FIXTURES / "dangerzone.pub")
    layer = manifest.layers[0]
    signature = base64.b64decode(layer.annotation(oci.SIGNATURE_ANNOTATION) or "")
    forged = dict(layer.annotations) | {
        oci.SIGNATURE_ANNOTATION: base64.b64encode(_flip(signature, 20)).decode()
    }
    tampered = oci.ArtifactManifest(
        (oci.Layer(layer.media_type, layer.digest, layer.size, tuple(sorted(forged.items()))),)
    )
    with pytest.raises(VerificationError, match="does not verify with the key"):
        simplesigning.verify(tampered, blobs, public, digest=DZ_DIGEST)
    body = next(iter(blobs.values()))
    with pytest.raises(VerificationError, match="does not match its descriptor"):
        simplesigning.verify(manifest, {layer.digest: _flip(body, 60)}, public, digest=DZ_DIGEST)


def test_a_real_cosign_signature_is_refused_for_another_digest_repo_or_key(
    key: SigningKey,
) -> None:
    manifest, blobs = _dangerzone()
    public = read_verifying_key(FIXTURES / "dangerzone.pub")
    with pytest.raises(VerificationError, match=f"signs {DZ_DIGEST}, not {OTHER}"):
        simplesigning.verify(manifest, blobs, public, digest=OTHER)
    with pytest.raises(VerificationError, match="names repository"):
        simplesigning.verify(manifest, blobs, public, digest=DZ_DIGEST, repository=REPO)
    with pytest.raises(VerificationError, match="does not verify"):
        simplesigning.verify(manifest, blobs, key.verifying_key(), digest=DZ_DIGEST)


def test_a_real_cosign_dsse_envelope_verifies() -> None:
    envelope = (FIXTURES / "distroless-vuln-dsse.json").read_bytes()
    public = read_verifying_key(FIXTURES / "distroless-signer.pub")
    body = dsse.open_envelope(envelope, public)
    attestation = dsse.verify_statement(body, digest=DISTROLESS_DIGEST)
    assert attestation.predicate_type == "cosign.sigstore.dev/attestation/vuln/v1"
    assert attestation.subject_names == ("ghcr.io/distroless/static",)
    assert attestation.predicate["scanner"]["uri"] == "https://github.com/aquasecurity/trivy"
    with pytest.raises(VerificationError, match="subject is not"):
        dsse.verify_statement(body, digest=OTHER)


def test_a_real_cosign_dsse_envelope_with_one_flipped_byte_fails() -> None:
    document = json.loads((FIXTURES / "distroless-vuln-dsse.json").read_bytes())
    public = read_verifying_key(FIXTURES / "distroless-signer.pub")
    body = base64.b64decode(document["payload"])
    altered = dict(document, payload=base64.b64encode(_flip(body, 100)).decode())
    with pytest.raises(VerificationError, match="no signature verifies"):
        dsse.open_envelope(json.dumps(altered).encode(), public)
    retyped = dict(document, payloadType="application/json")
    with pytest.raises(VerificationError, match="payload type"):
        dsse.open_envelope(json.dumps(retyped).encode(), public)


# --- keys ------------------------------------------------------------------------------------


def test_keys_load_from_pem_plain_and_encrypted(tmp_path: Path, key: SigningKey) -> None:
    encrypted = key.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    loaded = signing_key(encrypted, source="CI variable", password=b"s3cret")
    public_pem = key.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "cosign.pub").write_bytes(public_pem)
    assert read_verifying_key(tmp_path / "cosign.pub").verifies(loaded.sign(b"x"), b"x")
    with pytest.raises(UserError, match="wrong password"):
        signing_key(encrypted, source="CI variable", password=b"wrong")
    with pytest.raises(UserError, match="CI variable: Password was not given"):
        signing_key(encrypted, source="CI variable")


def test_a_missing_or_wrong_key_is_a_clear_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"cannot read signing key .*missing\.key"):
        read_signing_key(tmp_path / "missing.key")
    (tmp_path / "junk.pem").write_text("not a key\n")
    with pytest.raises(UserError, match="not a readable PEM private key"):
        read_signing_key(tmp_path / "junk.pem")
    with pytest.raises(UserError, match="not a readable PEM public key"):
        read_verifying_key(tmp_path / "junk.pem")
    rsa_pem = rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(UserError, match="not an ECDSA P-256 private key"):
        signing_key(rsa_pem, source="rsa.pem")
    p384 = (
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(UserError, match="not an ECDSA P-256 public key"):
        verifying_key(p384, source="p384.pub")
    cosign_format = (
        b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nxx\n"
        b"-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    )
    with pytest.raises(UserError, match="cosign's encrypted key format is not supported"):
        signing_key(cosign_format, source="cosign.key")


# --- simple signing round trips ----------------------------------------------------------------


def test_tags_are_cosigns() -> None:
    assert oci.signature_tag(DIGEST) == "sha256-" + "ab" * 32 + ".sig"
    assert oci.attestation_tag(DIGEST) == "sha256-" + "ab" * 32 + ".att"
    with pytest.raises(VerificationError, match="not a sha256 digest"):
        oci.signature_tag("sha256:ABC")


def test_the_payload_escapes_and_sorts_optional_as_go_does() -> None:
    body = simplesigning.payload(REPO, DIGEST, {"z": "1", "a": "<&>"})
    assert body.endswith(b'"optional":{"a":"\\u003c\\u0026\\u003e","z":"1"}}')
    assert json.loads(body)["optional"] == {"a": "<&>", "z": "1"}


def test_sign_then_verify(key: SigningKey, other_key: SigningKey) -> None:
    first = simplesigning.sign(other_key, REPO, DIGEST)
    second = simplesigning.sign(key, REPO, DIGEST, {"pipeline": "42"})
    manifest = oci.ArtifactManifest(()).append(first.layer).append(second.layer)
    blobs = {first.layer.digest: first.payload, second.layer.digest: second.payload}
    verified = simplesigning.verify(
        manifest, blobs, key.verifying_key(), digest=DIGEST, repository=REPO
    )
    assert verified.optional == (("pipeline", "42"),)
    document = json.loads(manifest.manifest())
    assert document["mediaType"] == oci.MANIFEST_MEDIA_TYPE
    assert [layer["mediaType"] for layer in document["layers"]] == [
        simplesigning.PAYLOAD_MEDIA_TYPE
    ] * 2
    assert document["layers"][1]["size"] == len(second.payload)
    assert json.loads(manifest.config())["rootfs"]["diff_ids"] == [
        first.layer.digest,
        second.layer.digest,
    ]


def test_a_manifest_without_signatures_or_with_garbage_is_refused(key: SigningKey) -> None:
    with pytest.raises(VerificationError, match="no cosign signature layer"):
        simplesigning.verify(oci.ArtifactManifest(()), {}, key.verifying_key(), digest=DIGEST)
    with pytest.raises(VerificationError, match="not an image manifest"):
        oci.parse_manifest(b'{"schemaVersion":2}', what="sha256-x.sig")
    signed = simplesigning.sign(key, REPO, DIGEST)
    manifest = oci.ArtifactManifest((signed.layer,))
    with pytest.raises(VerificationError, match="is missing"):
        simplesigning.verify(manifest, {}, key.verifying_key(), digest=DIGEST)


# --- DSSE and the .att manifest ----------------------------------------------------------------


def test_pae_is_the_specs() -> None:
    """The test vector of secure-systems-lab/dsse protocol.md."""
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_attest_then_verify(key: SigningKey) -> None:
    made = dsse.attest(key, REPO, DIGEST, "https://example.com/test-result/v1", {"passed": True})
    envelope = json.loads(made.envelope)
    assert list(envelope) == ["payloadType", "payload", "signatures"]
    assert envelope["signatures"][0]["keyid"] == ""
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": REPO, "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://example.com/test-result/v1",
        "predicate": {"passed": True},
    }
    assert made.layer.media_type == "application/vnd.dsse.envelope.v1+json"
    assert dict(made.layer.annotations) == {
        "dev.cosignproject.cosign/signature": "",
        "predicateType": "https://example.com/test-result/v1",
    }
    manifest = oci.ArtifactManifest(()).append(made.layer)
    verified = dsse.verify(
        manifest, {made.layer.digest: made.envelope}, key.verifying_key(), digest=DIGEST
    )
    assert [(v.predicate_type, v.predicate) for v in verified] == [
        ("https://example.com/test-result/v1", {"passed": True})
    ]


def test_appending_keeps_every_earlier_attestation_once(key: SigningKey) -> None:
    sbom = dsse.attest(key, REPO, DIGEST, "https://cyclonedx.org/bom", {"bomFormat": "CycloneDX"})
    slsa = dsse.attest(key, REPO, DIGEST, provenance.PREDICATE_TYPE, {"x": 1})
    # an earlier manifest read back from the registry, with a layer of a foreign tool
    foreign = oci.Layer(
        "application/vnd.dsse.envelope.v1+json", OTHER, 10, (("predicateType", "x"), ("z", "kept"))
    )
    earlier = oci.parse_manifest(
        oci.ArtifactManifest((foreign, sbom.layer)).manifest(), what="old .att"
    )
    after = earlier.append(slsa.layer)
    assert after.layers == (foreign, sbom.layer, slsa.layer)
    assert after.append(slsa.layer) == after  # a retried append adds nothing
    assert json.loads(after.manifest())["layers"][0]["annotations"] == {
        "predicateType": "x",
        "z": "kept",
    }


def test_an_altered_or_misfiled_attestation_fails_the_lot(
    key: SigningKey, other_key: SigningKey
) -> None:
    good = dsse.attest(key, REPO, DIGEST, "https://cyclonedx.org/bom", {})
    bad = dsse.attest(other_key, REPO, DIGEST, "https://cyclonedx.org/bom", {})
    manifest = oci.ArtifactManifest((good.layer, bad.layer))
    blobs = {good.layer.digest: good.envelope, bad.layer.digest: bad.envelope}
    with pytest.raises(VerificationError, match="layer 1: no signature verifies"):
        dsse.verify(manifest, blobs, key.verifying_key(), digest=DIGEST)
    with pytest.raises(VerificationError, match="subject is not"):
        dsse.verify(oci.ArtifactManifest((good.layer,)), blobs, key.verifying_key(), digest=OTHER)
    relabelled = oci.Layer(
        good.layer.media_type,
        good.layer.digest,
        good.layer.size,
        (("dev.cosignproject.cosign/signature", ""), ("predicateType", provenance.PREDICATE_TYPE)),
    )
    with pytest.raises(VerificationError, match="annotated as"):
        dsse.verify(oci.ArtifactManifest((relabelled,)), blobs, key.verifying_key(), digest=DIGEST)


def test_url_safe_base64_in_an_envelope_is_read(key: SigningKey) -> None:
    body = dsse.statement(REPO, DIGEST, "https://example.com/p", {"k": "~~~???"})
    signature = key.sign(dsse.pae(dsse.PAYLOAD_TYPE, body))
    envelope = {
        "payloadType": dsse.PAYLOAD_TYPE,
        "payload": base64.urlsafe_b64encode(body).decode().rstrip("="),
        "signatures": [{"sig": base64.urlsafe_b64encode(signature).decode()}],
    }
    assert dsse.open_envelope(json.dumps(envelope).encode(), key.verifying_key()) == body


# --- SLSA provenance ---------------------------------------------------------------------------


def _facts(**changes: object) -> provenance.BuildFacts:
    facts = provenance.BuildFacts(
        catalog_uri="https://gitlab.bank.example/platform/catalog.git",
        catalog_ref="main",
        catalog_path="images/app/rag-api/image.yaml",
        catalog_commit="0123456789abcdef0123456789abcdef01234567",
        spec="app/rag-api",
        variant="cuda",
        parent_repository="registry.example:5000/runtime/python",
        parent_digest=OTHER,
        builder_id="https://gitlab.bank.example/platform/catalog/-/runners/7",
        invocation_id="https://gitlab.bank.example/platform/catalog/-/jobs/991",
        started_on=datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC),
        finished_on=datetime(2026, 12, 1, 10, 4, 30, tzinfo=UTC),
        internal=(("docker", "20.10.24"),),
        dependencies=(
            provenance.Dependency(
                "debian-release",
                "http://deb.debian.org/debian/dists/bookworm/InRelease",
                (("sha256", "ef" * 32),),
            ),
        ),
    )
    return dataclasses.replace(facts, **changes)  # type: ignore[arg-type]


def test_the_provenance_predicate_has_slsa_v1s_fields() -> None:
    predicate = provenance.predicate(_facts())
    assert predicate == {
        "buildDefinition": {
            "buildType": provenance.BUILD_TYPE,
            "externalParameters": {
                "catalog": {
                    "uri": "https://gitlab.bank.example/platform/catalog.git",
                    "ref": "main",
                    "path": "images/app/rag-api/image.yaml",
                },
                "spec": "app/rag-api",
                "variant": "cuda",
            },
            "internalParameters": {"docker": "20.10.24"},
            "resolvedDependencies": [
                {
                    "name": "catalog",
                    "uri": "git+https://gitlab.bank.example/platform/catalog.git@main",
                    "digest": {"gitCommit": "0123456789abcdef0123456789abcdef01234567"},
                },
                {
                    "name": "parent",
                    "uri": f"pkg:docker/registry.example:5000/runtime/python@{OTHER}",
                    "digest": {"sha256": "cd" * 32},
                },
                {
                    "name": "debian-release",
                    "uri": "http://deb.debian.org/debian/dists/bookworm/InRelease",
                    "digest": {"sha256": "ef" * 32},
                },
            ],
        },
        "runDetails": {
            "builder": {"id": "https://gitlab.bank.example/platform/catalog/-/runners/7"},
            "metadata": {
                "invocationId": "https://gitlab.bank.example/platform/catalog/-/jobs/991",
                "startedOn": "2026-12-01T10:00:00Z",
                "finishedOn": "2026-12-01T10:04:30Z",
            },
        },
    }
    assert provenance.parent_of(predicate) == OTHER


def test_a_bootstrapped_base_has_no_parent_and_no_variant() -> None:
    predicate = provenance.predicate(
        _facts(parent_repository=None, parent_digest=None, variant=None)
    )
    assert provenance.parent_of(predicate) is None
    assert "variant" not in predicate["buildDefinition"]["externalParameters"]
    with pytest.raises(ValueError, match="both its repository and its digest"):
        provenance.predicate(_facts(parent_digest=None))
    with pytest.raises(ValueError, match="timezone-aware"):
        provenance.predicate(_facts(started_on=datetime(2026, 1, 1)))
    with pytest.raises(ValueError, match="not an imagefactory provenance"):
        provenance.parent_of({"buildDefinition": {}})


def test_provenance_signed_into_an_attestation_verifies(key: SigningKey) -> None:
    made = dsse.attest(key, REPO, DIGEST, provenance.PREDICATE_TYPE, provenance.predicate(_facts()))
    (verified,) = dsse.verify(
        oci.ArtifactManifest((made.layer,)),
        {made.layer.digest: made.envelope},
        key.verifying_key(),
        digest=DIGEST,
    )
    assert verified.predicate_type == "https://slsa.dev/provenance/v1"
    assert provenance.parent_of(verified.predicate) == OTHER
