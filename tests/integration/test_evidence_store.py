"""The evidence store against the real registry (htpasswd, 127.0.0.1:5000): a tiny image pushed
by docker is signed and attested through the registry API and verifies; the tampering an
attacker with write access to the registry can do is caught (the ``.sig`` replaced by one
another key made, one byte of an attestation changed, the image's tag moved onto another
digest, one digest's ``.sig`` put under another's); two writers attesting at once both keep
their layer; the evidence copied into another repository verifies there. And the commands end
to end: ``keygen``, then build, test, push and promote of a tiny signed chain, and ``verify``."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from imagefactory.evidence import predicates
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.evidence.verify import verify_chain, verify_digest
from imagefactory.registry.client import RegistryClient
from imagefactory.signing import dsse, simplesigning
from imagefactory.signing.keys import SigningKey, VerificationError
from imagefactory.signing.oci import (
    CONFIG_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    ArtifactManifest,
    Layer,
    attestation_tag,
    go_json,
    signature_tag,
)
from imagefactory.spec.models import Registry as RegistrySettings
from tests.unit.test_evidence_store import provenance_of

from .helpers.example import cli_json, imagefactory
from .helpers.registry import Registry
from .helpers.tiny import (
    CLI_TIMEOUT,
    TinyCatalog,
    digest_of,
    ok,
    project,
    tiny_parent,
    write_catalog,
)

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Pushed:
    settings: RegistrySettings  # the test's namespace of the registry
    base: str  # HOST/it-<session>/base: the tiny image's repository
    digest: str  # its manifest digest
    authfile: Path


@pytest.fixture(scope="module")
def pushed(tiny_base: str, registry: Registry, docker_config: Path) -> Iterator[Pushed]:
    with tiny_parent("evidence", tiny_base, registry, docker_config) as (session, reference):
        base, _, digest = reference.partition("@")
        settings = RegistrySettings(url=registry.host, namespace=f"it-{session}", tls_verify=False)
        yield Pushed(settings, base, digest, docker_config / "config.json")


@pytest.fixture
def client(docker_config: Path) -> RegistryClient:
    return RegistryClient(docker_config)


@pytest.fixture
def key() -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), "the test's key")


def store_in(client: RegistryClient, pushed: Pushed, repository: str) -> EvidenceStore:
    return EvidenceStore(client, Location(pushed.settings, repository))


def base_provenance() -> dict[str, object]:
    return provenance_of(None, builder="local:test@host")


def evidence(client: RegistryClient, pushed: Pushed, key: SigningKey, name: str) -> EvidenceStore:
    """The tiny image's evidence, signed and attested in a repository of the test's own."""
    store = store_in(client, pushed, f"{pushed.base}-{name}")
    store.sign(pushed.digest, key)
    store.attest(pushed.digest, predicates.PROVENANCE, base_provenance(), key)
    return store


def check(store: EvidenceStore, digest: str, key: SigningKey) -> None:
    """What a later runner sees: a store of its own reads the registry as it is now (``store``
    itself keeps what it read, and an attacker's writes go around it)."""
    verify_digest(
        EvidenceStore(store.client, store.location),
        digest,
        key.verifying_key(),
        identities={store.location.repository},
        builders=["local:"],
    )


def put_tag(
    store: EvidenceStore, tag: str, manifest: ArtifactManifest, blobs: dict[str, bytes]
) -> None:
    """What an attacker with push rights does: blobs and a manifest of their own under ``tag``."""
    client, place = store.client, store.location
    for blob in [*blobs.values(), manifest.config()]:
        client.upload_blob(place.registry, place.repository, blob)
    client.put_manifest(
        place.registry, place.repository, tag, manifest.manifest(), MANIFEST_MEDIA_TYPE
    )


def test_signed_and_attested_verifies(
    client: RegistryClient, pushed: Pushed, key: SigningKey
) -> None:
    store = store_in(client, pushed, pushed.base)  # beside the image docker pushed
    store.sign(pushed.digest, key)
    store.sign(pushed.digest, key)  # idempotent
    store.attest(pushed.digest, predicates.PROVENANCE, base_provenance(), key)
    held = store.read(pushed.digest)
    assert len(held.signatures.layers) == 1 and len(held.attestations.layers) == 1
    # the tags are there for other tools too (skopeo reads them)
    sig = digest_of(pushed.authfile, f"{pushed.base}:{signature_tag(pushed.digest)}")
    assert sig is not None and sig.startswith("sha256:")
    chain = verify_chain(
        client,
        [pushed.settings],
        store.location,
        pushed.digest,
        key.verifying_key(),
        builders=["local:"],
    )
    assert [v.digest for v in chain] == [pushed.digest]
    other = SigningKey(ec.generate_private_key(ec.SECP256R1()), "another key")
    with pytest.raises(VerificationError, match="no valid signature"):
        check(store, pushed.digest, other)


def test_a_sig_replaced_by_another_keys(
    client: RegistryClient, pushed: Pushed, key: SigningKey
) -> None:
    store = evidence(client, pushed, key, "forged-sig")
    check(store, pushed.digest, key)
    mallory = SigningKey(ec.generate_private_key(ec.SECP256R1()), "mallory")
    forged = simplesigning.sign(mallory, store.location.repository, pushed.digest)
    tag = signature_tag(pushed.digest)
    put_tag(store, tag, ArtifactManifest((forged.layer,)), {forged.layer.digest: forged.payload})
    with pytest.raises(VerificationError) as refused:
        check(store, pushed.digest, key)
    message = refused.value.message
    assert f"{store.location.repository}@{pushed.digest}: {tag}" in message
    assert "no valid signature" in message and "does not verify with the key" in message


def test_one_byte_of_an_attestation_changed(
    client: RegistryClient, pushed: Pushed, key: SigningKey
) -> None:
    store = evidence(client, pushed, key, "edited-att")
    store.attest(pushed.digest, predicates.TEST_RESULT, {"result": "FAILED"}, key)
    check(store, pushed.digest, key)
    held = store.read(pushed.digest)
    layer = held.attestations.layers[1]
    envelope = json.loads(held.blobs[layer.digest])
    payload = bytearray(base64.b64decode(envelope["payload"]))
    at = payload.index(b"FAILED")
    payload[at : at + 6] = b"PASSED"
    envelope["payload"] = base64.b64encode(bytes(payload)).decode()
    changed = go_json(envelope)
    edited = Layer.of(dsse.ENVELOPE_MEDIA_TYPE, changed, dict(layer.annotations))
    manifest = ArtifactManifest((held.attestations.layers[0], edited))
    put_tag(store, attestation_tag(pushed.digest), manifest, {edited.digest: changed})
    with pytest.raises(
        VerificationError, match=r"sha256-[0-9a-f]{64}\.att: layer 1: no signature verifies"
    ):
        check(store, pushed.digest, key)


def image_of(store: EvidenceStore, text: str) -> str:
    """A small image of the test's own in ``store``'s repository: its digest."""
    config = go_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": [text]},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    )
    place = store.location
    config_digest = store.client.upload_blob(place.registry, place.repository, config)
    manifest = go_json(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": CONFIG_MEDIA_TYPE,
                "size": len(config),
                "digest": config_digest,
            },
            "layers": [],
        }
    )
    return store.client.put_manifest(
        place.registry, place.repository, f"made-{text}", manifest, MANIFEST_MEDIA_TYPE
    )


def test_a_tag_moved_onto_another_digest(
    client: RegistryClient, pushed: Pushed, key: SigningKey
) -> None:
    store = store_in(client, pushed, f"{pushed.base}-moved")
    released, other = image_of(store, "released"), image_of(store, "other")
    store.sign(released, key)
    reference = f"{store.location.repository}:1.0.0"
    client.tag(pushed.settings, store.location.repository, released, "1.0.0")
    held = client.digest(pushed.settings, reference)
    assert held == released
    check(store, held, key)
    client.tag(pushed.settings, store.location.repository, other, "1.0.0")  # moved
    moved = client.digest(pushed.settings, reference)
    assert moved == other
    with pytest.raises(VerificationError, match=f"{other} is not signed"):
        check(store, moved, key)
    # the signature of the released digest put under the other's .sig tag does not help
    signatures = store.read(released)
    put_tag(store, signature_tag(other), signatures.signatures, dict(signatures.blobs))
    with pytest.raises(VerificationError, match=f"the payload signs {released}, not {other}"):
        check(store, other, key)


def test_two_writers_at_once_keep_both_layers(
    client: RegistryClient, pushed: Pushed, key: SigningKey, docker_config: Path
) -> None:
    store = evidence(client, pushed, key, "concurrent")
    writers = 2
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        own = store_in(RegistryClient(docker_config), pushed, store.location.repository)
        try:
            start.wait(timeout=30)
            own.attest(pushed.digest, "urn:test:writer", {"writer": n}, key)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    verified = verify_digest(
        store,
        pushed.digest,
        key.verifying_key(),
        identities={store.location.repository},
        builders=[],
    )
    assert sorted(p["writer"] for p in verified.predicates("urn:test:writer")) == [0, 1]
    assert len(verified.predicates(predicates.PROVENANCE)) == 1  # the earlier layer kept


def test_copied_into_another_repository(
    client: RegistryClient, pushed: Pushed, key: SigningKey
) -> None:
    source = evidence(client, pushed, key, "copy-source")
    target = store_in(client, pushed, f"{pushed.base}-copy-target")
    target.attest(pushed.digest, "urn:test:there-before", {}, key)
    source.copy_to(pushed.digest, target)
    identities = {source.location.repository, target.location.repository}
    verified = verify_digest(
        target, pushed.digest, key.verifying_key(), identities=identities, builders=["local:"]
    )
    assert [a.predicate_type for a in verified.attestations] == [
        "urn:test:there-before",
        predicates.PROVENANCE,
    ]
    with pytest.raises(VerificationError, match="which is not one of this image's repositories"):
        check(target, pushed.digest, key)  # signed for the source only, so far
    target.sign(pushed.digest, key)
    check(target, pushed.digest, key)
    assert len(target.read(pushed.digest).signatures.layers) == 2


def test_imagefactory_verify_after_push_and_promote(
    registry: Registry,
    registry_env: dict[str, str],
    docker_config: Path,
    tiny_base: str,
    tmp_path: Path,
) -> None:
    """The commands end to end on a tiny signed chain (base/tiny on the busybox base, app/tiny
    on base/tiny), its key pair made by ``imagefactory keygen``: built, tested and pushed to dev,
    ``verify`` passes every check there, the chain down to base/tiny; promoted, in preprod too;
    not pushed anywhere, prod has nothing to verify."""
    root = tmp_path / "catalog"
    root.mkdir()
    secret = tmp_path / "secret" / "signing.key"
    env = {**registry_env, "COLUMNS": "250", "IMAGEFACTORY_SIGNING_KEY": str(secret)}
    made = imagefactory(
        root,
        "keygen",
        "--public",
        "keys/cosign.pub",
        "--private",
        str(secret),
        "--json",
        env=env,
        timeout=CLI_TIMEOUT,
    )
    assert (
        ok(made)["fingerprint"].startswith("sha256:") and (secret.stat().st_mode & 0o777) == 0o600
    )
    with tiny_parent("verify", tiny_base, registry, docker_config) as (session, parent):
        stages = [{"name": stage, "registries": [stage]} for stage in ("dev", "preprod", "prod")]
        settings = project("it-verify", registry, f"it-{session}/verify", session, stages)
        settings["signing"] = {"public_key": "keys/cosign.pub", "builders": ["local:"]}
        write_catalog(
            root,
            settings,
            {"name": "base/tiny", "version": "1.0.0", "from": parent, "user": "root"},
        )
        (root / "images" / "app" / "tiny").mkdir(parents=True)
        (root / "images" / "app" / "tiny" / "image.yaml").write_text(
            yaml.safe_dump(
                {"name": "app/tiny", "version": "1.0.0", "from": "base/tiny", "user": "root"}
            )
        )
        catalog = TinyCatalog(root, env, docker_config / "config.json")
        for step in (("build", "--all"), ("test", "--all"), ("push", "--all")):
            ok(catalog.cli(*step, "--json"))
        dev = ok(catalog.cli("verify", "app/tiny", "--json"))
        assert dev["environment"] == "dev" and {c["result"] for c in dev["checks"]} == {"ok"}
        [chain] = [c["detail"] for c in dev["checks"] if c["check"] == "chain"]
        assert "/dev/app/tiny@" in chain and "/dev/base/tiny@" in chain
        ok(catalog.cli("promote", "app/tiny", "--to", "preprod", "--json"))
        preprod = ok(catalog.cli("verify", "app/tiny", "--env", "preprod", "--json"))
        [(repository, digest)] = preprod["digests"].items()
        assert "/preprod/app/tiny" in repository and digest in dev["digests"].values()
        text = catalog.cli("verify", "app/tiny", "--env", "preprod")
        assert text.returncode == 0 and "verified" in text.stdout, text.stderr
        absent = catalog.cli("verify", "app/tiny", "--env", "prod", "--json")
        assert absent.returncode == 1
        assert "does not say which version of app/tiny prod holds" in cli_json(absent)["error"]
