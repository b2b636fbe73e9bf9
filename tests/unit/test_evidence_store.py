"""The evidence store and its verifier against a registry held in memory (the integration
test ``test_evidence_store`` runs the same against the real one): appends that never drop a
layer when another writer's PUT lands in between, copies between repositories, and every
refusal of ``verify_digest`` and ``verify_chain``."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from imagefactory.evidence import predicates, store
from imagefactory.evidence.store import EvidenceConflict, EvidenceStore, Location
from imagefactory.evidence.verify import (
    MAX_DEPTH,
    builder_allowed,
    identities,
    verify_chain,
    verify_digest,
)
from imagefactory.registry.client import RegistryClient
from imagefactory.signing import dsse, provenance
from imagefactory.signing.keys import SigningKey, VerificationError
from imagefactory.signing.oci import (
    ArtifactManifest,
    Layer,
    attestation_tag,
    parse_manifest,
    signature_tag,
)
from imagefactory.spec.models import Registry

DEV = Registry(url="dev.example:5000", namespace="team/dev")
PROD = Registry(url="prod.example", namespace="team")
APP, BASE = "sha256:" + "a" * 64, "sha256:" + "b" * 64
BUILDER = "https://gitlab.example/-/runners/7"
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class MemoryRegistry:
    """RegistryClient's evidence methods over dicts; ``after_put`` runs after each manifest PUT
    (another writer's PUT landing then)."""

    manifests: dict[tuple[str, str], bytes] = field(default_factory=dict)
    blobs: dict[tuple[str, str], bytes] = field(default_factory=dict)
    mounts: list[tuple[str, str]] = field(default_factory=list)  # (into, from)
    after_put: Callable[[str, str], None] | None = None
    reads: list[str] = field(default_factory=list)  # the references of each manifest GET

    def manifest(
        self, registry: Registry, repository: str, reference: str
    ) -> tuple[bytes, str] | None:
        assert repository.startswith(registry.url + "/")
        self.reads.append(reference)
        body = self.manifests.get((repository, reference))
        return None if body is None else (body, "application/vnd.oci.image.manifest.v1+json")

    def blob(self, registry: Registry, repository: str, digest: str, *, limit: int) -> bytes:
        return self.blobs[(repository, digest)]

    def upload_blob(
        self, registry: Registry, repository: str, data: bytes, *, mount_from: str | None = None
    ) -> str:
        if mount_from is not None:
            self.mounts.append((repository, mount_from))
        self.blobs[(repository, sha(data))] = data
        return sha(data)

    def put_manifest(
        self, registry: Registry, repository: str, tag: str, body: bytes, media_type: str
    ) -> str:
        manifest = json.loads(body)
        for entry in [manifest["config"], *manifest["layers"]]:  # as distribution checks
            assert (repository, entry["digest"]) in self.blobs, entry
        self.manifests[(repository, tag)] = body
        if self.after_put is not None:
            self.after_put(repository, tag)
        return sha(body)

    def layers(self, repository: str, tag: str) -> ArtifactManifest:
        return parse_manifest(self.manifests[(repository, tag)], what=tag)

    def rewrite(
        self, repository: str, tag: str, change: Callable[[list[Layer]], list[Layer]]
    ) -> None:
        """Put ``tag`` again with its layers as ``change`` makes them (reordered, one
        appended again, one removed), as whoever may write to the registry can: no key needed."""
        edited = ArtifactManifest(tuple(change(list(self.layers(repository, tag).layers))))
        self.blobs[(repository, sha(edited.config()))] = edited.config()
        self.manifests[(repository, tag)] = edited.manifest()


def repo(registry: Registry, name: str) -> str:
    return f"{registry.url}/{registry.namespace}/{name}"


@pytest.fixture
def memory() -> MemoryRegistry:
    return MemoryRegistry()


@pytest.fixture
def key() -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), "test key")


@pytest.fixture(autouse=True)
def _no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "SETTLE", 0.0)


def at(memory: MemoryRegistry, registry: Registry, name: str) -> EvidenceStore:
    return EvidenceStore(cast(RegistryClient, memory), Location(registry, repo(registry, name)))


def provenance_of(parent: tuple[str, str] | None, builder: str = BUILDER) -> dict[str, Any]:
    facts = provenance.BuildFacts(
        catalog_uri="https://gitlab.example/team/catalog.git",
        catalog_ref="main",
        catalog_path="images/x/image.yaml",
        catalog_commit="c" * 40,
        spec="x",
        variant=None,
        parent_repository=None if parent is None else parent[0],
        parent_digest=None if parent is None else parent[1],
        builder_id=builder,
        invocation_id="https://gitlab.example/jobs/1",
        started_on=AT,
        finished_on=AT,
    )
    return provenance.predicate(facts)


def test_sign_is_idempotent_and_names_the_repository(
    memory: MemoryRegistry, key: SigningKey
) -> None:
    app = at(memory, DEV, "app")
    app.sign(APP, key)
    app.sign(APP, key)
    held = app.read(APP)
    assert len(held.signatures.layers) == 1 and held.attestations.layers == ()
    verified = verify_digest(
        app, APP, key.verifying_key(), identities={repo(DEV, "app")}, builders=[]
    )
    assert verified.repository == repo(DEV, "app") and verified.attestations == ()


def test_verifying_then_signing_reads_the_signatures_once(
    memory: MemoryRegistry, key: SigningKey
) -> None:
    """What a reused image's evidence costs: the store read for the verification serves the
    sign that follows it (a no-op build checks every image this way)."""
    at(memory, DEV, "app").sign(APP, key)
    app = at(memory, DEV, "app")
    memory.reads.clear()
    verify_digest(app, APP, key.verifying_key(), identities={repo(DEV, "app")}, builders=[])
    app.sign(APP, key)
    assert memory.reads.count(signature_tag(APP)) == 1
    assert len(app.read(APP).signatures.layers) == 1


def test_attestations_are_kept_in_the_order_written(
    memory: MemoryRegistry, key: SigningKey
) -> None:
    app = at(memory, DEV, "app")
    app.sign(APP, key)
    for n in range(3):
        app.attest(APP, "urn:test", {"n": n}, key)
    app.attest(APP, predicates.PROVENANCE, provenance_of(None), key)
    verified = verify_digest(
        app, APP, key.verifying_key(), identities={repo(DEV, "app")}, builders=[]
    )
    assert verified.predicates("urn:test") == ({"n": 0}, {"n": 1}, {"n": 2})
    assert len(verified.predicates(predicates.PROVENANCE)) == 1


def test_a_put_that_lands_in_between_loses_no_layer(
    memory: MemoryRegistry, key: SigningKey
) -> None:
    """Another writer read the tag before our PUT and put theirs right after it: our layer is
    gone from the tag, so the append reads theirs and writes again with both."""
    app = at(memory, DEV, "app")
    app.sign(APP, key)
    app.attest(APP, "urn:test", {"first": True}, key)
    tag = attestation_tag(APP)
    before = memory.layers(repo(DEV, "app"), tag)
    theirs = dsse.attest(key, repo(DEV, "app"), APP, "urn:test", {"theirs": True})

    def other_writer(repository: str, written: str) -> None:
        memory.after_put = None  # once
        memory.upload_blob(DEV, repository, theirs.envelope)
        stale = before.append(theirs.layer)
        memory.upload_blob(DEV, repository, stale.config())
        memory.put_manifest(DEV, repository, written, stale.manifest(), "")

    memory.after_put = other_writer
    app.attest(APP, "urn:test", {"ours": True}, key)
    verified = verify_digest(
        app, APP, key.verifying_key(), identities={repo(DEV, "app")}, builders=[]
    )
    assert verified.predicates("urn:test") == ({"first": True}, {"theirs": True}, {"ours": True})


def test_a_put_that_lands_after_the_first_read_back(
    memory: MemoryRegistry, key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other writer's PUT lands in the pause between the two read-backs."""
    app = at(memory, DEV, "app")
    app.attest(APP, "urn:test", {"first": True}, key)
    tag = attestation_tag(APP)
    before = memory.layers(repo(DEV, "app"), tag)
    theirs = dsse.attest(key, repo(DEV, "app"), APP, "urn:test", {"theirs": True})
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 1:
            memory.upload_blob(DEV, repo(DEV, "app"), theirs.envelope)
            stale = before.append(theirs.layer)
            memory.upload_blob(DEV, repo(DEV, "app"), stale.config())
            memory.put_manifest(DEV, repo(DEV, "app"), tag, stale.manifest(), "")

    monkeypatch.setattr(store.time, "sleep", pause)
    app.attest(APP, "urn:test", {"ours": True}, key)
    assert len(pauses) == 2
    names = [
        a.predicate
        for a in dsse.verify(
            memory.layers(repo(DEV, "app"), tag),
            app.read(APP).blobs,
            key.verifying_key(),
            digest=APP,
        )
    ]
    assert names == [{"first": True}, {"theirs": True}, {"ours": True}]


def test_a_tag_that_keeps_changing_gives_up(memory: MemoryRegistry, key: SigningKey) -> None:
    app = at(memory, DEV, "app")

    def wipe(repository: str, tag: str) -> None:
        del memory.manifests[(repository, tag)]

    memory.after_put = wipe
    with pytest.raises(EvidenceConflict, match="kept changing"):
        app.attest(APP, "urn:test", {}, key)


def test_copy_to_keeps_what_the_target_holds(memory: MemoryRegistry, key: SigningKey) -> None:
    dev, prod = at(memory, DEV, "app"), at(memory, PROD, "app")
    dev.sign(APP, key)
    dev.attest(APP, "urn:test", {"in": "dev"}, key)
    prod.attest(APP, "urn:test", {"in": "prod"}, key)
    dev.copy_to(APP, prod)
    dev.copy_to(APP, prod)  # again: nothing added twice
    assert memory.mounts == []  # another registry: uploaded, not mounted
    held = prod.read(APP)
    assert len(held.signatures.layers) == 1
    verified = verify_digest(
        prod, APP, key.verifying_key(), identities={repo(DEV, "app")}, builders=[]
    )
    assert verified.predicates("urn:test") == ({"in": "prod"}, {"in": "dev"})
    preprod = at(memory, Registry(url=DEV.url, namespace="team/preprod"), "app")
    dev.copy_to(APP, preprod)
    assert memory.mounts and all(source == repo(DEV, "app") for _, source in memory.mounts)


def test_merge_keeps_what_the_target_holds(memory: MemoryRegistry, key: SigningKey) -> None:
    """Evidence from an air-gap archive joins what the importing repository holds already."""
    build, there = at(memory, DEV, "app"), at(memory, PROD, "app")
    build.attest(APP, "urn:test", {"in": "build"}, key)
    there.attest(APP, "urn:test", {"in": "there"}, key)
    held = build.read(APP)
    items = [(layer, held.blobs[layer.digest]) for layer in held.attestations.layers]
    there.merge(attestation_tag(APP), items)
    there.merge(attestation_tag(APP), items)  # again: nothing added twice
    merged = there.read(APP).attestations.layers
    assert len(merged) == 2 and set(held.attestations.layers) <= set(merged)


def test_copy_to_signs_in_the_same_write(memory: MemoryRegistry, key: SigningKey) -> None:
    """A promotion's copy of the evidence and its own signature in the target are one write of
    the target's ``.sig`` (each write of a tag pays its read-backs), and signing again adds
    nothing."""
    dev, prod = at(memory, DEV, "app"), at(memory, PROD, "app")
    dev.sign(APP, key)
    dev.attest(APP, "urn:test", {"in": "dev"}, key)
    puts: list[str] = []
    memory.after_put = lambda repository, tag: puts.append(tag)
    dev.copy_to(APP, prod, sign=key)
    assert sorted(puts) == sorted([signature_tag(APP), attestation_tag(APP)])  # written at once
    held = prod.read(APP)
    assert len(held.signatures.layers) == 2  # dev's identity and prod's
    for identity in (repo(DEV, "app"), repo(PROD, "app")):
        verify_digest(prod, APP, key.verifying_key(), identities={identity}, builders=[])
    dev.copy_to(APP, prod, sign=key)  # again: nothing to add, nothing written
    assert len(puts) == 2


def test_no_signature(memory: MemoryRegistry, key: SigningKey) -> None:
    app = at(memory, DEV, "app")
    app.attest(APP, "urn:test", {}, key)
    with pytest.raises(
        VerificationError, match=f"is not signed: the registry holds no {signature_tag(APP)}"
    ):
        verify_digest(app, APP, key.verifying_key(), identities={repo(DEV, "app")}, builders=[])


def test_a_signature_by_another_key(memory: MemoryRegistry, key: SigningKey) -> None:
    app = at(memory, DEV, "app")
    app.sign(APP, SigningKey(ec.generate_private_key(ec.SECP256R1()), "other"))
    with pytest.raises(VerificationError, match="does not verify with the key"):
        verify_digest(app, APP, key.verifying_key(), identities={repo(DEV, "app")}, builders=[])


def test_a_signature_for_another_image(memory: MemoryRegistry, key: SigningKey) -> None:
    other, app = at(memory, DEV, "other"), at(memory, DEV, "app")
    other.sign(APP, key)
    other.copy_to(APP, app)
    with pytest.raises(
        VerificationError, match=r"signed by the key for .*/other, which is not one"
    ):
        verify_digest(app, APP, key.verifying_key(), identities={repo(DEV, "app")}, builders=[])
    app.sign(APP, key)  # a second layer, for this repository: that one counts
    verify_digest(app, APP, key.verifying_key(), identities={repo(DEV, "app")}, builders=[])


def test_a_tampered_attestation_fails_the_lot(memory: MemoryRegistry, key: SigningKey) -> None:
    app = at(memory, DEV, "app")
    app.sign(APP, key)
    app.attest(APP, "urn:test", {"passed": False}, key)
    app.attest(APP, "urn:test", {"other": 1}, key)
    tag = attestation_tag(APP)
    manifest = memory.layers(repo(DEV, "app"), tag)
    envelope = json.loads(memory.blobs[(repo(DEV, "app"), manifest.layers[0].digest)])
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["passed"] = True
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    changed = json.dumps(envelope).encode()
    layer = dsse.Layer.of(dsse.ENVELOPE_MEDIA_TYPE, changed, dict(manifest.layers[0].annotations))
    edited = ArtifactManifest((layer, *manifest.layers[1:]))
    memory.upload_blob(DEV, repo(DEV, "app"), changed)
    memory.upload_blob(DEV, repo(DEV, "app"), edited.config())
    memory.put_manifest(DEV, repo(DEV, "app"), tag, edited.manifest(), "")
    with pytest.raises(VerificationError, match="layer 0: no signature verifies"):
        verify_digest(app, APP, key.verifying_key(), identities={repo(DEV, "app")}, builders=[])


def test_an_attestation_about_another_digest(memory: MemoryRegistry, key: SigningKey) -> None:
    app = at(memory, DEV, "app")
    app.sign(APP, key)
    app.attest(BASE, "urn:test", {}, key)
    base_tag, app_tag = attestation_tag(BASE), attestation_tag(APP)
    memory.manifests[(repo(DEV, "app"), app_tag)] = memory.manifests[(repo(DEV, "app"), base_tag)]
    with pytest.raises(VerificationError, match=f"its subject is not {APP}"):
        verify_digest(app, APP, key.verifying_key(), identities={repo(DEV, "app")}, builders=[])


def test_builders(memory: MemoryRegistry, key: SigningKey) -> None:
    assert builder_allowed("anything", [])
    assert builder_allowed("https://gitlab.example/-/runners/7", ["https://gitlab.example/"])
    assert builder_allowed("local:me@host", ["local:"])
    assert not builder_allowed("https://gitlab.example.evil/x", ["https://gitlab.example"])
    assert not builder_allowed("https://gitlab.example/x", ["https://gitlab.example"])
    app = at(memory, DEV, "app")
    app.sign(APP, key)
    app.attest(APP, predicates.PROVENANCE, provenance_of(None, builder="local:mallory@laptop"), key)
    with pytest.raises(
        VerificationError,
        match=r"built by local:mallory@laptop, which signing\.builders does not allow",
    ):
        verify_digest(
            app,
            APP,
            key.verifying_key(),
            identities={repo(DEV, "app")},
            builders=["https://gitlab.example/"],
        )


def test_identities_across_registries() -> None:
    assert identities([DEV, PROD], repo(DEV, "app/rag-api")) == {
        "dev.example:5000/team/dev/app/rag-api",
        "prod.example/team/app/rag-api",
    }
    assert identities([DEV], "elsewhere.example/x") == {"elsewhere.example/x"}


def built(
    memory: MemoryRegistry, key: SigningKey, name: str, digest: str, parent: tuple[str, str] | None
) -> EvidenceStore:
    place = at(memory, DEV, name)
    place.sign(digest, key)
    place.attest(digest, predicates.PROVENANCE, provenance_of(parent), key)
    return place


def test_the_chain_down_to_the_base(memory: MemoryRegistry, key: SigningKey) -> None:
    built(memory, key, "base", BASE, None)
    app = built(memory, key, "app", APP, (repo(DEV, "base"), BASE))
    chain = verify_chain(
        cast(RegistryClient, memory),
        [DEV, PROD],
        app.location,
        APP,
        key.verifying_key(),
        builders=[BUILDER],
    )
    assert [(v.repository, v.digest) for v in chain] == [
        (repo(DEV, "app"), APP),
        (repo(DEV, "base"), BASE),
    ]


def test_a_revoked_base_refuses_the_app(memory: MemoryRegistry, key: SigningKey) -> None:
    base = built(memory, key, "base", BASE, None)
    app = built(memory, key, "app", APP, (repo(DEV, "base"), BASE))
    base.attest(
        BASE,
        predicates.LIFECYCLE,
        predicates.lifecycle_predicate(revoked=True, reason="CVE-2026-1", by="sec", at=AT),
        key,
    )
    with pytest.raises(
        VerificationError,
        match=f"{APP}: in its chain of parents, .*/base@{BASE} is revoked: CVE-2026-1",
    ):
        verify_chain(
            cast(RegistryClient, memory), [DEV], app.location, APP, key.verifying_key(), builders=[]
        )
    later = AT.replace(hour=13)
    base.attest(
        BASE,
        predicates.LIFECYCLE,
        predicates.lifecycle_predicate(revoked=False, reason="not affected", by="sec", at=later),
        key,
    )
    assert (
        len(
            verify_chain(
                cast(RegistryClient, memory),
                [DEV],
                app.location,
                APP,
                key.verifying_key(),
                builders=[],
            )
        )
        == 2
    )


def test_an_unsigned_parent_refuses_the_app(memory: MemoryRegistry, key: SigningKey) -> None:
    app = built(memory, key, "app", APP, (repo(DEV, "base"), BASE))
    with pytest.raises(
        VerificationError, match=f"in its chain of parents, .*/base@{BASE} is not signed"
    ):
        verify_chain(
            cast(RegistryClient, memory), [DEV], app.location, APP, key.verifying_key(), builders=[]
        )


def test_an_external_parent_ends_the_chain(memory: MemoryRegistry, key: SigningKey) -> None:
    app = built(memory, key, "app", APP, ("docker.io/library/debian", BASE))
    chain = verify_chain(
        cast(RegistryClient, memory), [DEV], app.location, APP, key.verifying_key(), builders=[]
    )
    assert len(chain) == 1


def test_no_provenance_and_an_endless_chain(memory: MemoryRegistry, key: SigningKey) -> None:
    app = at(memory, DEV, "app")
    app.sign(APP, key)
    with pytest.raises(VerificationError, match="has no provenance attestation"):
        verify_chain(
            cast(RegistryClient, memory), [DEV], app.location, APP, key.verifying_key(), builders=[]
        )
    app.attest(
        APP, predicates.PROVENANCE, provenance_of((repo(DEV, "app"), APP)), key
    )  # its own parent
    with pytest.raises(VerificationError, match=f"longer than {MAX_DEPTH} images"):
        verify_chain(
            cast(RegistryClient, memory), [DEV], app.location, APP, key.verifying_key(), builders=[]
        )


def lifecycle(revoked: bool, hour: int) -> dict[str, Any]:
    reason = "CVE-2026-1" if revoked else "not affected"
    return predicates.lifecycle_predicate(
        revoked=revoked, reason=reason, by="sec", at=AT.replace(hour=hour)
    )


def test_own_attestations_name_the_layers_before_them(
    memory: MemoryRegistry, key: SigningKey
) -> None:
    """imagefactory's own types carry ``previous`` (the layers the ``.att`` held, sorted);
    the provenance and the SBOM, whose formats are others', do not."""
    app = built(memory, key, "app", APP, None)
    app.attest(APP, predicates.LIFECYCLE, lifecycle(True, 10), key)
    app.attest(APP, predicates.LIFECYCLE, lifecycle(False, 11), key)
    app.attest(APP, predicates.PROVENANCE, provenance_of(None), key)
    layers = [x.digest for x in memory.layers(repo(DEV, "app"), attestation_tag(APP)).layers]
    verified = verify_digest(
        app, APP, key.verifying_key(), identities={repo(DEV, "app")}, builders=[]
    )
    assert [p.get("previous") for p in verified.predicates(predicates.LIFECYCLE)] == [
        layers[:1],
        sorted(layers[:2]),
    ]
    assert all("previous" not in p for p in verified.predicates(predicates.PROVENANCE))


def test_a_layer_removed_from_before_a_later_attestation_is_refused(
    memory: MemoryRegistry, key: SigningKey
) -> None:
    """Fails before the fix: the revocation's layer removed (no key needed), the digest
    verified and read as not revoked. The lifting attested after it names it: refused."""
    app = built(memory, key, "app", APP, None)
    app.attest(APP, predicates.LIFECYCLE, lifecycle(True, 10), key)
    app.attest(APP, "urn:test", {"later": True}, key)  # not imagefactory's: names nothing
    app.attest(APP, predicates.LIFECYCLE, lifecycle(True, 12), key)
    tag = attestation_tag(APP)
    revocation = memory.layers(repo(DEV, "app"), tag).layers[1]
    memory.rewrite(repo(DEV, "app"), tag, lambda layers: [x for x in layers if x != revocation])
    with pytest.raises(
        VerificationError,
        match=rf"{repo(DEV, 'app')}@{APP}: attestation 2 \({predicates.LIFECYCLE}, at "
        rf"2026-12-01T12:00:00Z\) names layer {revocation.digest} which "
        rf"{repo(DEV, 'app')}:{tag} no longer holds: a layer was removed",
    ):
        verify_digest(app, APP, key.verifying_key(), identities={repo(DEV, "app")}, builders=[])
    with pytest.raises(VerificationError, match="a layer was removed"):
        verify_chain(
            cast(RegistryClient, memory), [DEV], app.location, APP, key.verifying_key(), builders=[]
        )


def test_reordered_layers_and_copies_still_verify(memory: MemoryRegistry, key: SigningKey) -> None:
    """``previous`` is a set, not an order: a reordered ``.att`` verifies (the readers take the
    latest by signed time), and so does a copy, whose layers are byte for byte the same."""
    app = built(memory, key, "app", APP, None)
    app.attest(APP, predicates.LIFECYCLE, lifecycle(True, 10), key)
    app.attest(APP, predicates.LIFECYCLE, lifecycle(False, 11), key)
    prod = at(memory, PROD, "app")
    prod.attest(APP, predicates.LIFECYCLE, lifecycle(False, 9), key)  # held there before
    app.copy_to(APP, prod)
    names = {repo(DEV, "app"), repo(PROD, "app")}
    copied = verify_digest(prod, APP, key.verifying_key(), identities=names, builders=[])
    assert len(copied.attestations) == 4
    memory.rewrite(repo(DEV, "app"), attestation_tag(APP), lambda layers: layers[::-1])
    verify_digest(app, APP, key.verifying_key(), identities=names, builders=[])


def test_an_append_keeps_the_layers_its_attestation_names(
    memory: MemoryRegistry, key: SigningKey
) -> None:
    """A layer named under ``previous`` is put back when another writer's PUT dropped it between
    the read that named it and the append's own read."""
    app = built(memory, key, "app", APP, None)
    tag = attestation_tag(APP)
    named = memory.layers(repo(DEV, "app"), tag).layers
    reads = 0
    original = memory.manifest

    def drop_after_the_first_read(
        registry: Registry, repository: str, reference: str
    ) -> tuple[bytes, str] | None:
        nonlocal reads
        found = original(registry, repository, reference)
        reads += 1
        if reads == 1:  # the read that names the layers: then a stale PUT drops them
            memory.manifests[(repository, reference)] = ArtifactManifest(()).manifest()
        return found

    memory.manifest = drop_after_the_first_read  # type: ignore[method-assign]
    app.attest(APP, predicates.LIFECYCLE, lifecycle(True, 10), key)
    memory.manifest = original  # type: ignore[method-assign]
    held = memory.layers(repo(DEV, "app"), tag).layers
    assert held[: len(named)] == named
    verify_digest(app, APP, key.verifying_key(), identities={repo(DEV, "app")}, builders=[])


@pytest.mark.parametrize(
    ("count", "size", "refused"),
    [(store.LAYER_LIMIT + 1, 10, "layers, more than"), (5, store.BLOB_LIMIT, "bytes of blobs")],
)
def test_a_tag_grown_past_the_limits_is_refused_before_its_blobs_are_read(
    memory: MemoryRegistry, count: int, size: int, refused: str
) -> None:
    """Anyone with push access can grow a .att: the reader refuses it by its manifest alone
    (the memory registry holds none of the blobs: reading one would be a KeyError)."""
    layers = tuple(
        Layer(dsse.ENVELOPE_MEDIA_TYPE, "sha256:" + f"{n:064x}", size, ()) for n in range(count)
    )
    tag = attestation_tag(APP)
    memory.manifests[(repo(DEV, "app"), tag)] = ArtifactManifest(layers).manifest()
    with pytest.raises(VerificationError, match=refused):
        at(memory, DEV, "app").read(APP)
