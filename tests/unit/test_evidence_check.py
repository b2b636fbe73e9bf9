"""``imagefactory verify`` on a catalog whose registry is held in memory: every check ok, and
each failing on its own (a moved tag, a failed test run, no release into the environment, a
revocation) with exit 1 and the others still reported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import Result

from imagefactory.evidence import check, predicates
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.evidence.verify import Verified
from imagefactory.project.state import EnvironmentRecord, ImageRecord, State, save_state
from imagefactory.registry.client import RegistryClient
from imagefactory.release import attach
from imagefactory.release.record import Release, Step
from imagefactory.release.tags import TagChange
from imagefactory.signing.keys import SigningKey, VerificationError
from imagefactory.signing.oci import attestation_tag, signature_tag
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.models import Registry
from imagefactory.spec.revocations import load_revocations

from .helpers import run
from .test_evidence_store import MemoryRegistry, provenance_of

DEV = Registry(url="dev.example:5000", namespace="team/dev", tls_verify=False)
REPO = "dev.example:5000/team/dev/app/tiny"
DIGEST, OTHER = "sha256:" + "d" * 64, "sha256:" + "e" * 64
PARENT = "base.example/library/busybox@sha256:" + "f" * 64
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LATER = AT.replace(hour=13)


@dataclass
class TaggedRegistry(MemoryRegistry):
    tags: dict[str, str] = field(default_factory=dict)  # HOST/PATH:TAG → digest

    def digest(self, registry: Registry, reference: str) -> str | None:
        return self.tags.get(reference)


@dataclass(frozen=True)
class Setup:
    root: Path
    memory: TaggedRegistry
    key: SigningKey
    store: EvidenceStore


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    key = SigningKey(ec.generate_private_key(ec.SECP256R1()), "test")
    root = tmp_path / "catalog"
    (root / "keys").mkdir(parents=True)
    (root / "keys" / "cosign.pub").write_bytes(
        key.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    project = {
        "project": "p",
        "registries": {"dev": {"url": DEV.url, "namespace": DEV.namespace, "tls_verify": False}},
        "environments": [{"name": "dev", "registries": ["dev"]}],
        "signing": {"public_key": "keys/cosign.pub", "builders": ["local:"]},
    }
    (root / "imagefactory.yaml").write_text(yaml.safe_dump(project))
    (root / "images" / "app").mkdir(parents=True)
    image = {"name": "app/tiny", "version": "1.0.0", "from": PARENT, "user": "root"}
    (root / "images" / "app" / "image.yaml").write_text(yaml.safe_dump(image))
    record = ImageRecord(
        content_hash="sha256:" + "0" * 64,
        inputs={},
        version="1.0.0",
        environments={
            "dev": EnvironmentRecord(
                version="1.0.0", digest=DIGEST, tags=["1.0.0"], registries=["dev"], at="now"
            )
        },
    )
    save_state(root / ".imagefactory" / "state.json", State(images={"app/tiny": record}))
    memory = TaggedRegistry(tags={f"{REPO}:1.0.0": DIGEST})

    @contextmanager
    def session(*_: object) -> Iterator[TaggedRegistry]:
        yield memory

    monkeypatch.setattr(check, "registry_session", session)
    store = EvidenceStore(cast_client(memory), Location(DEV, REPO))
    store.sign(DIGEST, key)
    store.attest(DIGEST, predicates.PROVENANCE, provenance_predicate(), key)
    store.attest(DIGEST, predicates.TEST_RESULT, run_result(passed=True), key)
    store.attest(DIGEST, predicates.RELEASE, released("1.0.0"), key)
    return Setup(root, memory, key, store)


def cast_client(memory: MemoryRegistry) -> RegistryClient:
    return memory  # type: ignore[return-value]


def provenance_predicate() -> dict[str, object]:
    base, _, digest = PARENT.partition("@")
    return provenance_of((base, digest), builder="local:me@host")


def run_result(*, passed: bool, at: datetime = AT) -> dict[str, object]:
    return predicates.result_predicate(
        passed=passed,
        passed_tests=["command:true"] if passed else [],
        failed_tests=[] if passed else ["command:true"],
        spec_path="images/app/image.yaml",
        spec_sha256="1" * 64,
        url=None,
        at=at,
    )


def released(version: str) -> dict[str, object]:
    return predicates.release_predicate(
        environment="dev",
        version=version,
        tags=[version],
        identity="ci",
        approver=None,
        from_environment=None,
        at=AT,
    )


def verify(root: Path, *args: str) -> tuple[Result, dict[str, object]]:
    result = run(root, "verify", "app/tiny", *args, "--json")
    return result, json.loads(result.stdout)


def results(document: dict[str, object]) -> dict[str, str]:
    checks = document["checks"]
    assert isinstance(checks, list)
    return {c["check"]: c["result"] for c in checks}


def test_every_check_passes(setup: Setup) -> None:
    result, document = verify(setup.root)
    assert result.exit_code == 0, result.output
    assert document["ok"] is True and document["digests"] == {REPO: DIGEST}
    assert set(results(document).values()) == {"ok"}
    assert list(results(document)) == [
        "tag",
        "signature and attestations",
        "provenance",
        "chain",
        "tests",
        "release",
        "revocation",
    ]
    text = run(setup.root, "verify", "app/tiny")
    assert text.exit_code == 0 and "verified" in text.stdout and "local:me@host" in text.stdout


def test_a_moved_tag(setup: Setup) -> None:
    """The tag names another digest, signed and tested too, but never released as 1.0.0."""
    setup.memory.tags[f"{REPO}:1.0.0"] = OTHER
    setup.store.sign(OTHER, setup.key)
    setup.store.attest(OTHER, predicates.PROVENANCE, provenance_predicate(), setup.key)
    setup.store.attest(OTHER, predicates.TEST_RESULT, run_result(passed=True), setup.key)
    setup.store.attest(OTHER, predicates.RELEASE, released("0.9.0"), setup.key)
    result, document = verify(setup.root)
    assert result.exit_code == 1 and document["ok"] is False
    checks = {c["check"]: c for c in document["checks"]}  # type: ignore[attr-defined]
    assert checks["tag"]["result"] == "failed" and "the tag was moved" in checks["tag"]["detail"]
    assert checks["release"]["result"] == "failed"
    assert "into dev as 1.0.0 (the releases into dev it has: 0.9.0)" in checks["release"]["detail"]


def test_an_unsigned_digest_skips_the_rest(setup: Setup) -> None:
    setup.memory.tags[f"{REPO}:1.0.0"] = OTHER
    result, document = verify(setup.root)
    assert result.exit_code == 1
    found = results(document)
    assert found["signature and attestations"] == "failed" and found["chain"] == "skipped"


def test_a_failed_test_run_after_the_passed_one(setup: Setup) -> None:
    later = run_result(passed=False, at=LATER)
    setup.store.attest(DIGEST, predicates.TEST_RESULT, later, setup.key)
    result, document = verify(setup.root)
    assert result.exit_code == 1
    found = results(document)
    assert found.pop("tests") == "failed" and set(found.values()) == {"ok"}


def test_an_old_passed_run_appended_again_after_the_failed_one(setup: Setup) -> None:
    """Fails before the fix: the latest run was the last layer, and whoever may write to the
    registry (no key needed) can append the old PASSED layer again after the FAILED one."""
    setup.store.attest(
        DIGEST, predicates.TEST_RESULT, run_result(passed=False, at=LATER), setup.key
    )
    tag = attestation_tag(DIGEST)
    setup.memory.rewrite(REPO, tag, lambda layers: [*layers, layers[1]])  # the PASSED run
    result, document = verify(setup.root)
    assert result.exit_code == 1
    checks = {c["check"]: c for c in document["checks"]}  # type: ignore[attr-defined]
    assert checks["tests"]["result"] == "failed"  # the latest by its signed time
    assert checks["tests"]["detail"] == "its latest test run failed: command:true"
    assert checks["signature and attestations"]["result"] == "ok"  # each layer is genuine


def test_a_failed_run_removed_from_before_a_later_attestation(setup: Setup) -> None:
    """Fails before the fix: removing the FAILED run's layer left the PASSED one the latest.
    The release attested after it names it under ``previous``: the removal shows."""
    setup.store.attest(
        DIGEST, predicates.TEST_RESULT, run_result(passed=False, at=LATER), setup.key
    )
    setup.store.attest(DIGEST, predicates.RELEASE, released("1.0.0"), setup.key)
    tag = attestation_tag(DIGEST)
    failed = setup.memory.layers(REPO, tag).layers[3]
    setup.memory.rewrite(REPO, tag, lambda layers: [x for x in layers if x != failed])
    result, document = verify(setup.root)
    assert result.exit_code == 1
    checks = {c["check"]: c for c in document["checks"]}  # type: ignore[attr-defined]
    assert checks["signature and attestations"]["result"] == "failed"
    assert checks["signature and attestations"]["detail"] == (
        f"{REPO}@{DIGEST}: attestation 3 ({predicates.RELEASE}, at 2026-12-01T12:00:00Z) names "
        f"layer {failed.digest} which {REPO}:{tag} no longer holds: a layer was removed"
    )
    assert checks["tests"]["result"] == "skipped"


def test_revoked(setup: Setup) -> None:
    revoked = predicates.lifecycle_predicate(revoked=True, reason="CVE-1", by="sec", at=AT)
    setup.store.attest(DIGEST, predicates.LIFECYCLE, revoked, setup.key)
    result, document = verify(setup.root)
    assert result.exit_code == 1
    assert results(document)["revocation"] == "failed" and results(document)["chain"] == "failed"


def test_a_digest_the_catalog_lists_as_revoked(setup: Setup) -> None:
    """Fails before the fix: with its lifecycle layer removed from the registry (or never
    written), a digest revocations.yaml lists verified as not revoked."""
    (setup.root / "revocations.yaml").write_text(
        "revoked:\n"
        f"  - image: app/tiny\n    digest: '{DIGEST}'\n    reason: CVE-2\n    by: sec\n"
        '    at: "2026-12-01T12:00:00+00:00"\n'
    )
    result, document = verify(setup.root)
    assert result.exit_code == 1
    checks = {c["check"]: c for c in document["checks"]}  # type: ignore[attr-defined]
    assert checks["revocation"]["result"] == "failed"
    assert checks["revocation"]["detail"] == (
        f"{DIGEST} is revoked: CVE-2 (by sec; listed in revocations.yaml:2)"
    )
    assert checks["signature and attestations"]["result"] == "ok"


def test_a_digest_given_and_an_unknown_environment(setup: Setup) -> None:
    result, _ = verify(setup.root, "--env", "dev")
    assert result.exit_code == 0
    given = run(setup.root, "verify", f"app/tiny@{DIGEST}", "--json")
    assert given.exit_code == 0 and "tag" not in results(json.loads(given.stdout))
    bad = run(setup.root, "verify", "app/tiny@sha256:xyz")
    assert bad.exit_code == 2 and "sha256:<64 hex digits>" in bad.output
    unknown = run(setup.root, "verify", "app/tiny", "--env", "prod")
    assert unknown.exit_code == 1 and "no environment 'prod'" in unknown.output


def test_no_state_says_which_digest_to_name(setup: Setup) -> None:
    (setup.root / ".imagefactory" / "state.json").unlink()
    result = run(setup.root, "verify", "app/tiny")
    assert result.exit_code == 1 and "imagefactory verify app/tiny@sha256:" in result.output


def test_the_release_chain_refuses_a_parent_the_catalog_lists(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails before the fix: push, promote and gitops update read the parents' revocations
    from the registry only, so a child built on a base the catalog lists went through."""
    base = "sha256:" + "b" * 64
    chain = (Verified(DIGEST, REPO, ()), Verified(base, "dev.example:5000/team/dev/base", ()))
    monkeypatch.setattr(attach, "verify_chain", lambda *args, **kwargs: chain)
    catalog = load_catalog(setup.root)
    origin = Location(DEV, REPO)
    client = cast_client(setup.memory)
    assert (
        attach.verified_chain(catalog, client, origin, DIGEST, load_revocations(catalog))
        == chain[0]
    )
    (setup.root / "revocations.yaml").write_text(
        "revoked:\n"
        f"  - image: app/tiny\n    digest: '{base}'\n    reason: CVE-3\n    by: sec\n"
        '    at: "2026-12-01T12:00:00+00:00"\n'
    )
    with pytest.raises(VerificationError, match=r"its parent dev.example:5000/team/dev/base@"):
        attach.verified_chain(catalog, client, origin, DIGEST, load_revocations(catalog))


COPY = "dev.example:5000/team/dev/app/tiny-copy"


def release_into_copy() -> Release:
    """A push of the app's digest as 1.0.0 into another repository, COPY."""
    change = TagChange("dev", COPY, "1.0.0", "create", None, immutable=True)
    return Release("app/tiny", "1.0.0", DIGEST, "why", (change,))


def test_a_release_signs_before_its_tags_and_attests_after_them(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails before the fix: the tags were written first, so a tag was live (and admission
    could pull it) before the digest was signed in its repository."""
    written: list[str] = []
    put = setup.memory.put_manifest

    def recording(registry: Registry, repository: str, tag: str, *rest: Any) -> None:
        written.append(tag)
        put(registry, repository, tag, *rest)

    monkeypatch.setattr(setup.memory, "put_manifest", recording)
    monkeypatch.setattr(attach, "signing_key", lambda catalog: setup.key)
    target, release = COPY, release_into_copy()
    step = Step.push("dev", identity="ci")
    catalog = load_catalog(setup.root)

    attach.attach_release(
        catalog,
        cast_client(setup.memory),
        Location(DEV, REPO),
        step,
        release,
        lambda: written.append("TAGS"),
    )

    sig, att = signature_tag(DIGEST), attestation_tag(DIGEST)
    assert written.index(sig) < written.index("TAGS")  # signed in the target first
    assert written.index(att) < written.index("TAGS")  # the copied evidence too
    assert written[-1] == att  # the release attested last
    held = EvidenceStore(cast_client(setup.memory), Location(DEV, target)).read(DIGEST)
    assert len(held.attestations.layers) == len(setup.store.read(DIGEST).attestations.layers) + 1


def test_a_release_whose_tags_fail_attests_no_release(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(attach, "signing_key", lambda catalog: setup.key)
    target, release = COPY, release_into_copy()

    def lost() -> None:
        raise RuntimeError("1.0.0 was written by someone else meanwhile")

    with pytest.raises(RuntimeError):
        attach.attach_release(
            load_catalog(setup.root),
            cast_client(setup.memory),
            Location(DEV, REPO),
            Step.push("dev", identity="ci"),
            release,
            lost,
        )
    held = EvidenceStore(cast_client(setup.memory), Location(DEV, target)).read(DIGEST)
    # the evidence carried and signed, no release attested
    assert held.signatures.layers
    assert held.attestations.layers == setup.store.read(DIGEST).attestations.layers
