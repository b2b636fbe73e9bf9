"""The release path on signed evidence, for real: the example catalog (which signs: its
``signing:`` section, a key pair the session made with ``imagefactory keygen``) tested, pushed,
promoted and verified against the authenticated registry on 127.0.0.1:5000.

* ``pushed`` (once per module): a copy of the session build, its three images tested (each run
  attested into the build repository) and pushed into a dev namespace of this module's own. The
  build's own namespace (where the session build signed and attested each digest, and where the
  provenance of a child names its parent) stays one of the copy's registries (``build``, in no
  environment), so the chain of parents verifies down to the base.
* Each promotion test takes a private copy of it, with preprod and prod in namespaces of the
  test's own (``promoted``), and its state without test runs: the gate must take the test run
  from the signed attestation. What one test tampers with, no other test reads.

Tampering is done as someone with write access to the registry, and not to the key, would: a
``.sig`` replaced by a signature of another key, one byte of a statement changed (its layer and
blob rewritten consistently, so only the signature can tell), a version tag re-pointed at
another digest. promote and verify refuse each with a message naming what is wrong, and nothing
is written into the next environment.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from imagefactory.evidence import predicates
from imagefactory.evidence.keys import verifying_key
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.evidence.verify import verify_digest
from imagefactory.project.naming import repository
from imagefactory.registry.client import RegistryClient, registry_session
from imagefactory.signing import simplesigning
from imagefactory.signing.dsse import ENVELOPE_MEDIA_TYPE
from imagefactory.signing.keys import SigningKey, read_signing_key
from imagefactory.signing.oci import (
    MANIFEST_MEDIA_TYPE,
    ArtifactManifest,
    Layer,
    attestation_tag,
    signature_tag,
)
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.loader import load_catalog

from .helpers.example import ExampleBuild, copy_built_example, imagefactory

pytestmark = pytest.mark.integration

BASE, RUNTIME, APP = "base/debian12", "runtime/llm:cpu", "app/rag-api"
REFS = (BASE, RUNTIME, APP)
TIMEOUT = 600  # three images tested, or copied with their evidence, on a small machine
CREDENTIALS = ("IMAGEFACTORY_REGISTRY_USER", "IMAGEFACTORY_REGISTRY_PASSWORD")


def namespaces(root: Path, session: str, **stages: str) -> None:
    """Point the copy's registries (by name) at namespaces ``it-<session>/<path>``; the build's
    namespace stays a registry of the copy (``build``), in no environment."""
    path = root / "imagefactory.yaml"
    project = yaml.safe_load(path.read_text())
    registries = project["registries"]
    registries.setdefault("build", dict(registries["dev"]))
    for stage, where in stages.items():
        registries[stage]["namespace"] = f"it-{session}/{where}"
    path.write_text(yaml.safe_dump(project, sort_keys=False))


def succeeded(proc: Any) -> None:
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout[-3000:]}"
        f"\n--- stderr ---\n{proc.stderr[-4000:]}"
    )


def refused(proc: Any) -> str:
    """What a command that must have been refused (exit 1, no traceback) said, one line."""
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, f"exit {proc.returncode}\n{output[-4000:]}"
    assert "Traceback" not in output, output[-4000:]
    return " ".join(output.split())


def records(root: Path) -> dict[str, Any]:
    images = json.loads((root / ".imagefactory" / "state.json").read_text())["images"]
    assert isinstance(images, dict)
    return images


@dataclass(frozen=True)
class Pushed:
    root: Path
    env: dict[str, str]  # the session's: registry credentials, the signing key's file
    digests: dict[str, str]  # ref → the digest tested and pushed
    version: str  # of the app


@pytest.fixture(scope="module")
def pushed(example_build: ExampleBuild, tmp_path_factory: pytest.TempPathFactory) -> Pushed:
    root = copy_built_example(example_build, tmp_path_factory.mktemp("supply-chain") / "catalog")
    namespaces(root, example_build.session, dev="supply-chain/dev")
    env = dict(example_build.env)
    succeeded(imagefactory(root, "test", *REFS, "--json", env=env, timeout=TIMEOUT))
    succeeded(imagefactory(root, "push", *REFS, "--json", env=env, timeout=TIMEOUT))
    state = records(root)
    return Pushed(
        root,
        env,
        {ref: state[ref]["digest"] for ref in REFS},
        state[APP]["environments"]["dev"]["version"],
    )


@pytest.fixture
def registry_access(pushed: Pushed, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry credentials in this process, for the library calls of a test."""
    for name in CREDENTIALS:
        monkeypatch.setenv(name, pushed.env[name])


@contextmanager
def opened(root: Path) -> Iterator[tuple[Catalog, RegistryClient]]:
    catalog = load_catalog(root)
    with registry_session(catalog, list(catalog.project.registries.values())) as client:
        yield catalog, client


def store_of(catalog: Catalog, client: RegistryClient, stage: str, ref: str) -> EvidenceStore:
    registry = catalog.project.registries[stage]
    name = catalog.images[ref].spec.name
    return EvidenceStore(client, Location(registry, repository(registry, name)))


def session_key(env: dict[str, str]) -> SigningKey:
    """The session's private key (``registry_env`` names its file)."""
    return read_signing_key(Path(env["IMAGEFACTORY_SIGNING_KEY"]))


def verified_in(catalog: Catalog, store: EvidenceStore, digest: str) -> Any:
    """The evidence of ``digest`` in ``store``, verified with a signature for that very
    repository (the identity the step wrote for it)."""
    assert catalog.project.signing is not None
    return verify_digest(
        store,
        digest,
        verifying_key(catalog),
        identities={store.location.repository},
        builders=catalog.project.signing.builders,
    )


# --- push ------------------------------------------------------------------------------------


def test_push_signs_and_attests_every_digest_where_it_went(
    pushed: Pushed, registry_access: None
) -> None:
    with opened(pushed.root) as (catalog, client):
        for ref in REFS:
            verified = verified_in(
                catalog, store_of(catalog, client, "dev", ref), pushed.digests[ref]
            )
            kinds = {a.predicate_type for a in verified.attestations}
            everything = {predicates.PROVENANCE, predicates.SBOM, predicates.TEST_RESULT}
            assert everything | {predicates.RELEASE} <= kinds, (ref, kinds)
            runs = map(predicates.parse_test_result, verified.predicates(predicates.TEST_RESULT))
            run = predicates.latest(runs)
            assert run is not None and run.passed
            release = predicates.parse_release(verified.predicates(predicates.RELEASE)[-1])
            assert (release.environment, release.from_environment) == ("dev", None)
            assert release.version == records(pushed.root)[ref]["environments"]["dev"]["version"]
    succeeded(imagefactory(pushed.root, "verify", APP, "--env", "dev", env=pushed.env))


# --- promote ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Promoted:
    root: Path
    env: dict[str, str]
    digest: str  # the app's
    version: str


@pytest.fixture
def promoted(pushed: Pushed, example_build: ExampleBuild, tmp_path: Path, request: Any) -> Promoted:
    """A private copy of ``pushed`` whose app is promoted into a preprod of the test's own; its
    state has no test runs (as a checkout that did not run the tests)."""
    root = tmp_path / "catalog"
    shutil.copytree(pushed.root, root, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.removeprefix("test_"))[:48].strip("-")
    namespaces(
        root,
        example_build.session,
        preprod=f"supply-chain/{name}/preprod",
        prod=f"supply-chain/{name}/prod",
    )
    state_path = root / ".imagefactory" / "state.json"
    state = json.loads(state_path.read_text())
    for record in state["images"].values():
        record.pop("test_runs", None)
        record.pop("tests", None)
    state_path.write_text(json.dumps(state))
    succeeded(
        imagefactory(root, "promote", APP, "--to", "preprod", env=pushed.env, timeout=TIMEOUT)
    )
    return Promoted(root, pushed.env, pushed.digests[APP], pushed.version)


def promote_to_prod(promoted: Promoted) -> Any:
    return imagefactory(
        promoted.root,
        "promote",
        APP,
        "--to",
        "prod",
        "--approve",
        env=promoted.env,
        timeout=TIMEOUT,
    )


def prod_is_empty(promoted: Promoted) -> None:
    with opened(promoted.root) as (catalog, client):
        prod = catalog.project.registries["prod"]
        assert client.tags(prod, repository(prod, "app/rag-api")) == []


def test_promote_copies_the_evidence_signs_it_for_preprod_and_verify_passes_there(
    promoted: Promoted, registry_access: None
) -> None:
    """The state of this checkout has no test run at all: the gate took the pass from the
    signed attestation (evidence over state)."""
    assert not any(r.get("test_runs") or r.get("tests") for r in records(promoted.root).values())
    with opened(promoted.root) as (catalog, client):
        verified = verified_in(catalog, store_of(catalog, client, "preprod", APP), promoted.digest)
        kinds = {a.predicate_type for a in verified.attestations}
        assert {predicates.PROVENANCE, predicates.SBOM, predicates.TEST_RESULT} <= kinds
        releases = [predicates.parse_release(p) for p in verified.predicates(predicates.RELEASE)]
        assert [(r.environment, r.from_environment) for r in releases] == [
            ("dev", None),  # copied along from dev
            ("preprod", "dev"),
        ]
    succeeded(imagefactory(promoted.root, "verify", APP, "--env", "preprod", env=promoted.env))
    succeeded(promote_to_prod(promoted))  # and on, by the evidence preprod holds


def run_result(*, passed: bool, at: datetime) -> dict[str, Any]:
    """A test-result predicate of the app, run at ``at``."""
    check = "commands:rag-api --version"
    return predicates.result_predicate(
        passed=passed,
        passed_tests=[check] if passed else [],
        failed_tests=[] if passed else [check],
        spec_path="images/app/rag-api/image.yaml",
        spec_sha256="0" * 64,
        url=None,
        at=at,
    )


def test_a_failed_test_attestation_blocks_the_promotion(
    promoted: Promoted, registry_access: None
) -> None:
    """A rerun that failed, recorded in another checkout: only its attestation is here."""
    with opened(promoted.root) as (catalog, client):
        store = store_of(catalog, client, "preprod", APP)
        failed = run_result(passed=False, at=datetime.now(UTC))
        store.attest(promoted.digest, predicates.TEST_RESULT, failed, session_key(promoted.env))
        where = f"{store.location.repository}:{attestation_tag(promoted.digest)}"
    said = refused(promote_to_prod(promoted))
    assert f"failed its tests (looked in the signed attestations {where} and " in said
    prod_is_empty(promoted)


def test_a_failed_rerun_in_the_build_repository_blocks_the_promotion(
    promoted: Promoted, registry_access: None
) -> None:
    """Fails before the fix: a promotion read the source environment's copy alone, and
    ``imagefactory test`` attests a re-run in the build repository only."""
    key = session_key(promoted.env)
    now = datetime.now(UTC).replace(microsecond=0)
    with opened(promoted.root) as (catalog, client):
        build = store_of(catalog, client, "build", APP)
        build.attest(promoted.digest, predicates.TEST_RESULT, run_result(passed=False, at=now), key)
        try:
            said = refused(promote_to_prod(promoted))
            where = f"{build.location.repository}:{attestation_tag(promoted.digest)}"
            assert "failed its tests (looked in the signed attestations " in said, said
            assert f" and {where})" in said, said
            prod_is_empty(promoted)
        finally:  # the build repository is the session's: a later pass, for the tests after
            later = run_result(passed=True, at=now + timedelta(seconds=1))
            build.attest(promoted.digest, predicates.TEST_RESULT, later, key)
    succeeded(promote_to_prod(promoted))


def test_an_attestation_removed_from_the_middle_of_the_att_is_refused(
    promoted: Promoted, registry_access: None
) -> None:
    """Fails before the fix: the registry's write access alone (no key) removed the FAILED run
    from preprod's ``.att``, and the PASSED one before it was the latest again. The release
    attested after it names it under ``previous``: promote and verify refuse the digest."""
    with opened(promoted.root) as (catalog, client):
        store = store_of(catalog, client, "preprod", APP)
        failed = run_result(passed=False, at=datetime.now(UTC))
        store.attest(promoted.digest, predicates.TEST_RESULT, failed, session_key(promoted.env))
        held = store.read(promoted.digest).attestations
        gone = held.layers[-1]
        store.attest(
            promoted.digest,
            predicates.LIFECYCLE,
            predicates.lifecycle_predicate(
                revoked=False, reason="not affected", by="sec", at=datetime.now(UTC)
            ),
            session_key(promoted.env),
        )
        layers = tuple(x for x in store.read(promoted.digest).attestations.layers if x != gone)
        put(client, store, attestation_tag(promoted.digest), ArtifactManifest(layers), [])
    said = refused(promote_to_prod(promoted))
    assert f"names layer {gone.digest} which" in said and "a layer was removed" in said, said
    prod_is_empty(promoted)
    checked = imagefactory(
        promoted.root, "verify", APP, "--env", "preprod", "--json", env=promoted.env
    )
    refused(checked)
    assert "a layer was removed" in checked.stdout


# --- tampering -------------------------------------------------------------------------------


def replace_signature(client: RegistryClient, store: EvidenceStore, digest: str) -> None:
    """The .sig replaced by one made with another key (for the right repository and digest)."""
    other = SigningKey(ec.generate_private_key(ec.SECP256R1()), "another key")
    signed = simplesigning.sign(other, store.location.repository, digest)
    put(client, store, signature_tag(digest), ArtifactManifest((signed.layer,)), [signed.payload])


def alter_one_byte(client: RegistryClient, store: EvidenceStore, digest: str) -> None:
    """One byte of the test-result statement changed; the envelope, its blob and the layer
    rewritten to match, so that only the envelope's signature tells."""
    held = store.read(digest).attestations
    index = next(
        i
        for i, layer in enumerate(held.layers)
        if layer.annotation("predicateType") == predicates.TEST_RESULT
    )
    layer = held.layers[index]
    blob = client.blob(
        store.location.registry, store.location.repository, layer.digest, limit=2**24
    )
    envelope = json.loads(blob)
    statement = base64.b64decode(envelope["payload"])
    position = statement.index(b"PASSED")
    changed = statement[:position] + b"p" + statement[position + 1 :]  # "pASSED"
    envelope["payload"] = base64.b64encode(changed).decode("ascii")
    altered = json.dumps(envelope).encode()
    new_layer = Layer.of(ENVELOPE_MEDIA_TYPE, altered, dict(layer.annotations))
    layers = (*held.layers[:index], new_layer, *held.layers[index + 1 :])
    put(
        client,
        store,
        attestation_tag(digest),
        ArtifactManifest(layers),
        [altered],
    )


def put(
    client: RegistryClient,
    store: EvidenceStore,
    tag: str,
    manifest: ArtifactManifest,
    blobs: list[bytes],
) -> None:
    registry, repo = store.location.registry, store.location.repository
    for blob in (*blobs, manifest.config()):
        client.upload_blob(registry, repo, blob)
    client.put_manifest(registry, repo, tag, manifest.manifest(), MANIFEST_MEDIA_TYPE)


@pytest.mark.parametrize(
    ("tampering", "promote_says", "failed_check", "verify_says"),
    [
        ("signature", "no valid signature of", "signature and attestations", "no valid signature"),
        (
            "attestation",
            "no signature verifies with",
            "signature and attestations",
            "no signature verifies with",
        ),
        ("tag", "is not signed: the registry holds no", "tag", "the tag was moved"),
    ],
)
def test_tampered_evidence_is_refused_by_promote_and_verify(
    promoted: Promoted,
    pushed: Pushed,
    registry_access: None,
    tampering: str,
    promote_says: str,
    failed_check: str,
    verify_says: str,
) -> None:
    with opened(promoted.root) as (catalog, client):
        store = store_of(catalog, client, "preprod", APP)
        if tampering == "signature":
            replace_signature(client, store, promoted.digest)
        elif tampering == "attestation":
            alter_one_byte(client, store, promoted.digest)
        else:  # the version tag re-pointed at another digest (the runtime's, copied in)
            build = catalog.project.registries["build"]
            runtime = f"{repository(build, 'runtime/llm')}@{pushed.digests[RUNTIME]}"
            preprod = catalog.project.registries["preprod"]
            client.copy(build, runtime, preprod, f"{store.location.repository}:{promoted.version}")
    said = refused(promote_to_prod(promoted))
    assert promote_says in said, said
    prod_is_empty(promoted)
    checked = imagefactory(
        promoted.root, "verify", APP, "--env", "preprod", "--json", env=promoted.env
    )
    refused(checked)
    document = json.loads(checked.stdout)
    failed = {c["check"]: c["detail"] for c in document["checks"] if c["result"] == "failed"}
    assert document["ok"] is False and verify_says in failed.get(failed_check, ""), document
