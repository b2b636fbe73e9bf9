"""Revocation: the descendant search over the example catalog's lineage (base/debian12 →
runtime/llm:cpu and :cuda → app/rag-api) with candidate digests and parents of the test's own,
the audit record's command, and ``status`` marking a revoked digest from the audit log's revoke
records (the registry side runs in tests/integration/test_revoke.py)."""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from imagefactory.errors import SpecError, UserError
from imagefactory.evidence import predicates
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.project.paths import audit_log, state_file
from imagefactory.project.state import EnvironmentRecord, ImageRecord, State, load_state, save_state
from imagefactory.release import audit
from imagefactory.release import revoke as revoke_module
from imagefactory.release.revoke import REVOKE, Pin, blast_radius, revocations, revoke, search
from imagefactory.signing import dsse
from imagefactory.signing.keys import SigningKey
from imagefactory.signing.oci import attestation_tag
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.models import Registry
from imagefactory.spec.revocations import REVOCATIONS_FILE, load_revocations

from .conftest import without_shell_less
from .helpers import run, serve
from .test_evidence_store import MemoryRegistry
from .test_gitops_repo import make_remote, pin, write_settings


def d(char: str) -> str:
    return "sha256:" + char * 64


BASE = d("b")
HERE = Location(Registry(url="127.0.0.1:5000"), "127.0.0.1:5000/x")


@dataclass
class FakeLineage:
    """Candidates per image ref, the parent of each (ref, digest), the digests nowhere held."""

    candidates_of: Mapping[str, Sequence[str]]
    parents: Mapping[tuple[str, str], str | None]
    missing: set[str] = field(default_factory=set)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def candidates(self, image: CatalogImage) -> Sequence[str]:
        return self.candidates_of.get(image.ref, [])

    def holders(self, image: CatalogImage, digest: str) -> tuple[Location, ...]:
        return () if digest in self.missing else (HERE,)

    def parent(self, image: CatalogImage, digest: str, places: Sequence[Location]) -> str | None:
        self.asked.append((image.ref, digest))
        return self.parents.get((image.ref, digest))


@pytest.fixture
def catalog(catalog_dir: Path) -> Catalog:
    return load_catalog(catalog_dir)


def test_descendants_are_the_candidates_built_on_a_revoked_digest_recursively(
    catalog: Catalog,
) -> None:
    lineage = FakeLineage(
        {
            "runtime/llm:cpu": [d("1"), d("2")],
            "runtime/llm:cuda": [d("3")],
            "app/rag-api": [d("4"), d("5")],
        },
        {
            ("runtime/llm:cpu", d("1")): BASE,
            ("runtime/llm:cpu", d("2")): d("0"),  # another base build
            ("runtime/llm:cuda", d("3")): BASE,
            ("app/rag-api", d("4")): d("1"),
            ("app/rag-api", d("5")): d("2"),
        },
    )

    found = search(catalog, catalog.images["base/debian12"], BASE, lineage)

    assert [(t.image.ref, t.digest, t.parent) for t in found] == [
        ("runtime/llm:cpu", d("1"), BASE),
        ("runtime/llm:cuda", d("3"), BASE),
        ("app/rag-api", d("4"), d("1")),
    ]
    assert all(t.places == (HERE,) for t in found)


def test_an_unknown_parent_or_a_digest_held_nowhere_is_no_descendant(catalog: Catalog) -> None:
    lineage = FakeLineage(
        {"runtime/llm:cpu": [d("1"), d("2")], "app/rag-api": [d("4")]},
        {("runtime/llm:cpu", d("1")): None, ("runtime/llm:cpu", d("2")): BASE},
        missing={d("2")},
    )

    assert search(catalog, catalog.images["base/debian12"], BASE, lineage) == []
    assert ("runtime/llm:cpu", d("2")) not in lineage.asked  # not held: nothing to read


def test_an_image_revoked_at_the_bottom_of_the_chain_has_no_descendants(
    catalog: Catalog,
) -> None:
    lineage = FakeLineage({"base/debian12": [BASE]}, {("base/debian12", BASE): BASE})
    assert search(catalog, catalog.images["app/rag-api"], d("4"), lineage) == []
    assert lineage.asked == []


def _revoked_in_log(catalog: Catalog, digest: str, reason: str) -> audit.AuditRecord:
    intent = audit.new_record(
        action=REVOKE,
        image="app/rag-api",
        version="0.3.0",
        digest=digest,
        source="*",
        target="*",
        tags=[],
        git_revision=None,
        approver=None,
        reason=reason,
    )
    audit.append(audit_log(catalog), intent)
    return intent


def test_only_a_revocation_done_is_one_and_an_open_one_says_how_to_complete_it(
    catalog: Catalog,
) -> None:
    intent = _revoked_in_log(catalog, d("4"), "CVE-1 'quoted'")
    assert revocations(catalog) == {}
    assert intent.command() == (
        f"imagefactory revoke app/rag-api@{d('4')} --reason 'CVE-1 '\"'\"'quoted'\"'\"''"
    )
    audit.append(audit_log(catalog), audit.follow_up(intent, audit.DONE))
    assert revocations(catalog) == {("app/rag-api", d("4")): "CVE-1 'quoted'"}


def test_status_marks_a_revoked_digest_an_environment_still_holds(catalog: Catalog) -> None:
    held = EnvironmentRecord(
        version="0.3.0", digest=d("4"), tags=["0.3.0"], registries=["dev"], at="then"
    )
    record = ImageRecord(
        content_hash=d("c"), inputs={}, version="0.3.0", environments={"dev": held}
    )
    save_state(state_file(catalog), State(images={"app/rag-api": record}))
    intent = _revoked_in_log(catalog, d("4"), "CVE-1")
    audit.append(audit_log(catalog), audit.follow_up(intent, audit.DONE))

    result = run(catalog.root, "status", "app/rag-api", "--json")

    assert result.exit_code == 0, result.output
    placements = json.loads(result.stdout)["images"]["app/rag-api"]
    assert placements["dev"]["revoked"] is True
    assert placements["preprod"]["revoked"] is False
    assert "REVOKED" in run(catalog.root, "status", "app/rag-api").stdout


@pytest.mark.parametrize("reason", [None, " ", "two\nlines"])
def test_a_revocation_needs_a_one_line_reason(catalog: Catalog, reason: str | None) -> None:
    with pytest.raises(UserError, match="reason"):
        revoke(catalog, "app/rag-api", d("4"), reason, descendants=False, dry_run=True)


def test_an_unsigned_project_cannot_revoke(catalog: Catalog) -> None:
    result = run(catalog.root, "revoke", f"app/rag-api@{d('4')}", "--reason", "CVE-1")
    assert result.exit_code == 1
    assert "signs nothing" in result.output and "Traceback" not in result.output


def test_gitops_diff_marks_a_revoked_pin_and_the_blast_radius_names_it(
    catalog_dir: Path, tmp_path: Path
) -> None:
    without_shell_less(catalog_dir)  # one application: one row to check
    write_settings(catalog_dir, tmp_path / "deployments.git")
    make_remote(catalog_dir, tmp_path)
    pin(catalog_dir, "dev", d("4"))
    catalog = load_catalog(catalog_dir)
    intent = _revoked_in_log(catalog, d("4"), "CVE-1")
    audit.append(audit_log(catalog), audit.follow_up(intent, audit.DONE))

    result = run(catalog_dir, "gitops", "diff", "--env", "dev", "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["revoked_pins"] == [
        {"image": "app/rag-api", "digest": d("4"), "reason": "CVE-1"}
    ]
    assert [row["pinned"] for row in document["images"]] == [d("4")]
    assert "REVOKED" in run(catalog_dir, "gitops", "diff", "--env", "dev").stdout
    assert (
        json.loads(run(catalog_dir, "gitops", "diff", "--env", "preprod", "--json").stdout)[
            "revoked_pins"
        ]
        == []
    )

    state = load_state(state_file(catalog))
    image = catalog.images["app/rag-api"]
    assert blast_radius(catalog, state, [(image, d("4"))]) == (
        Pin("app/rag-api", d("4"), "dev", "gitops"),
    )
    assert blast_radius(catalog, state, [(image, d("5"))]) == ()


DEV = "127.0.0.1:5000/bank-ai-lab/dev/app/rag-api"


@dataclass
class HoldingRegistry(MemoryRegistry):
    """The evidence registry in memory, which also holds image digests by repository."""

    images: set[str] = field(default_factory=set)  # "repository@digest"

    def digest(self, registry: Registry, reference: str) -> str | None:
        return reference.rpartition("@")[2] if reference in self.images else None


@pytest.fixture
def signed(catalog_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SigningKey]:
    """The example catalog with ``signing:``, its key pair the test's own (the private key's
    PEM text in IMAGEFACTORY_SIGNING_KEY)."""
    key = SigningKey(ec.generate_private_key(ec.SECP256R1()), "test key")
    (catalog_dir / "keys").mkdir()
    (catalog_dir / "keys" / "cosign.pub").write_bytes(
        key.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with (catalog_dir / "imagefactory.yaml").open("a") as project:
        project.write("signing:\n  public_key: keys/cosign.pub\n")
    pem = key.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    monkeypatch.setenv("IMAGEFACTORY_SIGNING_KEY", pem.decode())
    monkeypatch.setattr("imagefactory.evidence.store.SETTLE", 0.0)
    yield key


def test_a_revocation_attests_where_the_digest_is_and_completes_an_interrupted_one(
    catalog_dir: Path, signed: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = load_catalog(without_shell_less(catalog_dir))  # no descendant to search
    memory = serve(monkeypatch, HoldingRegistry(images={f"{DEV}@{d('4')}"}), revoke_module)
    earlier = _revoked_in_log(catalog, d("4"), "CVE-1")  # a run killed after its intent

    result = revoke(catalog, "app/rag-api", d("4"), " CVE-1 ", descendants=True, dry_run=False)

    [done] = result.revoked
    assert (done.ref, done.digest, done.repositories, done.parent) == (
        "app/rag-api",
        d("4"),
        (DEV,),
        None,
    )
    assert result.completed == (earlier.id,) and result.reason == "CVE-1"
    assert [(k[0], k[1]) for k in memory.manifests] == [(DEV, attestation_tag(d("4")))]
    store = EvidenceStore(memory, Location(Registry(url="127.0.0.1:5000"), DEV))  # type: ignore[arg-type]
    held = store.read(d("4"))
    [attested] = dsse.verify(held.attestations, held.blobs, signed.verifying_key(), digest=d("4"))
    assert attested.predicate_type == predicates.LIFECYCLE
    lifecycle = predicates.parse_lifecycle(attested.predicate)
    assert (lifecycle.revoked, lifecycle.reason) == (True, "CVE-1")
    lines = [line for line in audit.read(audit_log(catalog)) if line["action"] == REVOKE]
    assert [(line["id"], line["phase"]) for line in lines] == [
        (earlier.id, "intent"),
        (done.audit_id, "intent"),
        (done.audit_id, "done"),
        (earlier.id, "done"),
    ]
    assert lines[1]["registries"] == ["dev"] and audit.interrupted(audit_log(catalog)) == []
    assert revocations(catalog) == {("app/rag-api", d("4")): "CVE-1"}


def test_a_digest_no_repository_holds_is_refused_before_anything_is_written(
    catalog_dir: Path, signed: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = load_catalog(without_shell_less(catalog_dir))  # no descendant to search
    memory = serve(monkeypatch, HoldingRegistry(), revoke_module)
    with pytest.raises(UserError, match="no repository of app/rag-api holds"):
        revoke(catalog, "app/rag-api", d("4"), "CVE-1", descendants=False, dry_run=False)
    assert memory.manifests == {} and audit.read(audit_log(catalog)) == []


# --- the catalog's revocations file --------------------------------------------------------------


def test_a_revocation_lists_the_digest_in_the_catalog_once(
    catalog_dir: Path, signed: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = load_catalog(without_shell_less(catalog_dir))  # no descendant to search
    memory = serve(monkeypatch, HoldingRegistry(images={f"{DEV}@{d('4')}"}), revoke_module)
    monkeypatch.setenv("USER", "sec-officer")

    first = revoke(catalog, "app/rag-api", d("4"), "CVE-1", descendants=False, dry_run=False)

    file = catalog_dir / REVOCATIONS_FILE
    [listed] = load_revocations(catalog).listed
    entry = listed.entry
    assert (entry.image, entry.digest, entry.reason, entry.by) == (
        "app/rag-api",
        d("4"),
        "CVE-1",
        "sec-officer",
    )
    assert first.revoked[0].listed == listed.location and first.revoked[0].added
    assert first.to_commit == REVOCATIONS_FILE
    text = file.read_text()

    again = run(catalog_dir, "revoke", f"app/rag-api@{d('4')}", "--reason", "CVE-1", "--json")

    assert again.exit_code == 0, again.output
    document = json.loads(again.stdout)
    assert document["commit"] is None  # already listed: the file is as it was
    assert [(r["listed"], r["listed_now"]) for r in document["revoked"]] == [
        (listed.location, False)
    ]
    assert file.read_text() == text
    assert len(memory.manifests) == 1  # the attestation written again, into the same .att


def test_the_text_output_says_to_commit_the_file(
    catalog_dir: Path, signed: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(monkeypatch, HoldingRegistry(images={f"{DEV}@{d('4')}"}), revoke_module)
    dry = run(catalog_dir, "revoke", f"app/rag-api@{d('4')}", "--reason", "CVE-1", "--dry-run")
    assert f"would list each in {REVOCATIONS_FILE}" in dry.stdout
    assert not (catalog_dir / REVOCATIONS_FILE).exists()
    result = run(catalog_dir, "revoke", f"app/rag-api@{d('4')}", "--reason", "CVE-1")
    assert result.exit_code == 0, result.output
    assert f"listed in {REVOCATIONS_FILE}:5" in result.stdout  # below the header's comments
    assert f"commit {REVOCATIONS_FILE} and merge it" in result.stdout


def test_a_broken_revocations_file_is_refused_before_anything_is_written(
    catalog_dir: Path, signed: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = load_catalog(without_shell_less(catalog_dir))  # no descendant to search
    memory = serve(monkeypatch, HoldingRegistry(images={f"{DEV}@{d('4')}"}), revoke_module)
    (catalog_dir / REVOCATIONS_FILE).write_text("revoked: []\n")  # valid, but not appendable
    with pytest.raises(UserError, match="cannot append"):
        revoke(catalog, "app/rag-api", d("4"), "CVE-1", descendants=False, dry_run=False)
    (catalog_dir / REVOCATIONS_FILE).write_text("revoked:\n  - image: app/nope\n")
    with pytest.raises(SpecError, match=r"revocations\.yaml:2: revoked\[0\]\.by: required key"):
        revoke(catalog, "app/rag-api", d("4"), "CVE-1", descendants=False, dry_run=False)
    assert memory.manifests == {} and audit.read(audit_log(catalog)) == []


def test_a_revocation_interrupted_before_its_entry_stays_open_and_completes_when_run_again(
    catalog_dir: Path, signed: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = load_catalog(catalog_dir)
    serve(monkeypatch, HoldingRegistry(images={f"{DEV}@{d('4')}"}), revoke_module)

    def full_disk(*_: object, **__: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(revoke_module, "write_atomically", full_disk)
        with pytest.raises(UserError) as caught:
            revoke(catalog, "app/rag-api", d("4"), "CVE-1", descendants=False, dry_run=False)
    assert f"cannot write {catalog_dir / REVOCATIONS_FILE}" in caught.value.message
    assert "is attested, and the audit log holds its intent" in str(caught.value.hint)
    [open_intent] = audit.interrupted(audit_log(catalog))  # no failed record: it is attested
    assert not (catalog_dir / REVOCATIONS_FILE).exists()

    result = revoke(catalog, "app/rag-api", d("4"), "CVE-1", descendants=False, dry_run=False)

    assert result.completed == (open_intent.id,) and audit.interrupted(audit_log(catalog)) == []
    assert load_revocations(catalog).entry("app/rag-api", d("4")) is not None


def test_status_marks_a_digest_the_catalog_lists_without_any_audit_record(
    catalog: Catalog,
) -> None:
    (catalog.root / REVOCATIONS_FILE).write_text(
        f"revoked:\n  - image: app/rag-api\n    digest: {d('4')}\n    reason: CVE-1\n"
        '    by: sec\n    at: "2026-12-01T10:00:00+00:00"\n'
    )
    assert revocations(catalog) == {("app/rag-api", d("4")): "CVE-1"}
