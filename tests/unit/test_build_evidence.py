"""What a build writes beside its digest (imagefactory.build.evidence, facts, image_sbom): the
SLSA facts read from a fake CI job and a real git checkout (its remote's credentials never
recorded), the SBOM of a tar in ``docker image save``'s layout that the tests build (a shared
layer as a symlink, a whiteout, the files the spec copies), hostile archives refused, the calls
into the evidence store, and a missing required key refused before anything is built.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import shlex
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from imagefactory.build import evidence as build_evidence
from imagefactory.build import sbom_lookup
from imagefactory.build.bootstrap import release_hashes, releases_path, rootfs_path
from imagefactory.build.docker import Engine
from imagefactory.build.evidence import BuildEvidence
from imagefactory.build.facts import RunFacts, build_facts, strip_credentials
from imagefactory.build.image_sbom import copied_files, saved_archive_root
from imagefactory.build.run import BuildOptions, BuildRun
from imagefactory.errors import UserError
from imagefactory.evidence.predicates import PROVENANCE, SBOM
from imagefactory.evidence.verify import Verified
from imagefactory.project.naming import REVISION_LABEL
from imagefactory.project.paths import sbom_file
from imagefactory.project.recipe import mmdebstrap_argv
from imagefactory.registry.client import RegistryClient
from imagefactory.render.dockerfile import ParentPin
from imagefactory.sbom import document
from imagefactory.sbom.rootfs import RootFiles
from imagefactory.signing.dsse import VerifiedAttestation
from imagefactory.signing.keys import VerificationError
from imagefactory.signing.provenance import BuildFacts, parent_of, predicate
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.models import Bootstrap
from imagefactory.spec.parents import BootstrapParent

from .helpers import run, serve
from .test_build_scheduling import Recorder

DIGEST = "sha256:" + "d" * 64
PARENT_DIGEST = "sha256:" + "e" * 64
PARENT = ParentPin(f"reg.test:5000/lab/base@{PARENT_DIGEST}", "base", PARENT_DIGEST)
TAG = "reg.test:5000/lab/app:content-0123456789abcdef01234567"
SECRET = "glcbt-64_s3cr3tT0ken"
OS_RELEASE = b'ID=debian\nVERSION_ID="12"\n'
STATUS = b"""\
Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.0.15-1~deb12u1

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: 1:1.2.13.dfsg-1
"""
RELEASE = b"Origin: Debian\nSuite: stable\nCodename: bookworm\n"
CI_VARIABLES = {
    "CI": "true",
    "GITLAB_CI": "true",
    "CI_SERVER_URL": "https://gitlab.bank.test",
    "CI_PROJECT_PATH": "platform/catalog",
    "CI_RUNNER_ID": "42",
    "CI_JOB_URL": "https://gitlab.bank.test/platform/catalog/-/jobs/7",
    "CI_COMMIT_REF_NAME": "release/1.x",
}


# ------------------------------------------------------------------------------- fixtures


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def key_pair(folder: Path) -> str:
    """A fresh P-256 pair: the public key written as ``folder/cosign.pub``, the private PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    folder.mkdir(parents=True, exist_ok=True)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (folder / "cosign.pub").write_bytes(public)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def write_catalog(root: Path, *, signing: bool) -> Catalog:
    """A catalog of two images in a git checkout of its own: ``app`` (pip requirements, a copied
    file and a copied folder) on an external parent pinned by digest, and ``base``, bootstrapped."""
    project: dict[str, Any] = {
        "project": "lab",
        "registries": {"dev": {"url": "reg.test:5000", "namespace": "lab", "tls_verify": False}},
        "environments": [{"name": "dev", "registries": ["dev"]}],
    }
    if signing:
        project["signing"] = {"public_key": "cosign.pub"}
    root.mkdir(parents=True, exist_ok=True)
    (root / "imagefactory.yaml").write_text(yaml.safe_dump(project))
    folder = root / "images" / "app"
    (folder / "conf").mkdir(parents=True)
    (folder / "app.py").write_text("print('hello')\n")
    (folder / "conf" / "a.ini").write_text("[a]\n")
    (folder / "conf" / "b.ini").write_text("[b]\n")
    image = {
        "name": "app",
        "version": "1.2.3",
        "from": f"reg.test:5000/lab/base@{PARENT_DIGEST}",
        "pip": ["requests==2.32.3", "idna==3.10"],
        "files": [
            {"src": "app.py", "dest": "/opt/app/app.py"},
            {"src": "conf", "dest": "/etc/app"},
        ],
    }
    (folder / "image.yaml").write_text(yaml.safe_dump(image))
    (root / "images" / "base").mkdir()
    base = {"name": "base", "version": "1.0.0", "bootstrap": {"suite": "bookworm"}, "user": "root"}
    (root / "images" / "base" / "image.yaml").write_text(yaml.safe_dump(base))
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "catalog")
    return load_catalog(root)


@pytest.fixture
def outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def tar_bytes(entries: list[tuple[str, bytes | None, str | None]]) -> bytes:
    """A tar of (name, content, symlink target): content None and a target is a symlink."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content, target in entries:
            info = tarfile.TarInfo(name)
            if target is not None:
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
            else:
                data = content or b""
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def saved_image(path: Path, manifest: object, members: dict[str, bytes | str]) -> Path:
    """A tar in docker image save's layout: manifest.json and ``members`` (bytes: a file; str:
    a symlink to that target)."""
    entries: list[tuple[str, bytes | None, str | None]] = [
        ("manifest.json", json.dumps(manifest).encode(), None)
    ]
    for name, value in members.items():
        entries.append((name, None, value) if isinstance(value, str) else (name, value, None))
    path.write_bytes(tar_bytes(entries))
    return path


def layers() -> dict[str, bytes | str]:
    """Three layers as Docker 20.10 saves them: the second removes a stale package database
    with a whiteout and adds the apt lists; the third is the second again (a symlink)."""
    base = tar_bytes(
        [
            ("etc/os-release", OS_RELEASE, None),
            ("var/lib/dpkg/status", STATUS, None),
            ("var/lib/dpkg/status.d/stale", b"Package: stale\nVersion: 1\n", None),
        ]
    )
    second = tar_bytes(
        [
            ("var/lib/dpkg/status.d/.wh.stale", b"", None),
            ("var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", RELEASE, None),
        ]
    )
    return {"aaa/layer.tar": base, "bbb/layer.tar": second, "ccc/layer.tar": "../bbb/layer.tar"}


MANIFEST = [
    {
        "Config": "c.json",
        "RepoTags": [TAG],
        "Layers": ["aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar"],
    }
]


# ------------------------------------------------------------------------------- facts


@pytest.mark.parametrize(
    ("url", "stripped"),
    [
        (
            f"https://gitlab-ci-token:{SECRET}@gitlab.bank.test/platform/catalog.git",
            "https://gitlab.bank.test/platform/catalog.git",
        ),
        (
            f"https://oauth2:{SECRET}@gitlab.bank.test:8443/a/b.git",
            "https://gitlab.bank.test:8443/a/b.git",
        ),
        (
            f"https://gitlab.bank.test/a/b.git?private_token={SECRET}#x",
            "https://gitlab.bank.test/a/b.git",
        ),
        (f"ssh://git:{SECRET}@[2001:db8::1]:2222/a/b.git", "ssh://[2001:db8::1]:2222/a/b.git"),
        (
            "git@gitlab.bank.test:platform/catalog.git",
            "ssh://gitlab.bank.test/platform/catalog.git",
        ),
        ("/srv/git/catalog.git", "/srv/git/catalog.git"),
    ],
)
def test_the_catalog_uri_carries_no_credentials(url: str, stripped: str) -> None:
    assert strip_credentials(url) == stripped


def test_a_ci_build_names_the_runner_the_job_and_the_ref(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = write_catalog(tmp_path, signing=False)
    git(
        tmp_path,
        "remote",
        "add",
        "origin",
        f"https://gitlab-ci-token:{SECRET}@gitlab.bank.test/platform/catalog.git",
    )
    for name, value in CI_VARIABLES.items():
        monkeypatch.setenv(name, value)
    commit = git(tmp_path, "rev-parse", "HEAD")
    shared = RunFacts.of(tmp_path, f"{commit}-dirty")
    assert shared == RunFacts(
        catalog_uri="https://gitlab.bank.test/platform/catalog.git",
        catalog_ref="release/1.x",
        commit=commit,
        dirty=True,
        builder_id="https://gitlab.bank.test/platform/catalog/-/runners/42",
        invocation_id="https://gitlab.bank.test/platform/catalog/-/jobs/7",
    )
    facts = facts_of(catalog, shared, RootFiles({}, {}))
    document_text = json.dumps(predicate(facts))
    assert SECRET not in document_text
    definition = predicate(facts)["buildDefinition"]
    assert definition["externalParameters"]["catalog"] == {
        "uri": "https://gitlab.bank.test/platform/catalog.git",
        "ref": "release/1.x",
        "path": "images/app/image.yaml",
    }
    assert definition["internalParameters"]["catalog_dirty"] == "true"
    assert definition["resolvedDependencies"][0]["digest"] == {"gitCommit": commit}


def test_outside_ci_the_builder_is_the_user_at_the_host(tmp_path: Path, outside_ci: None) -> None:
    write_catalog(tmp_path, signing=False)
    git(tmp_path, "remote", "add", "upstream", "git@gitlab.bank.test:platform/catalog.git")
    git(tmp_path, "checkout", "--quiet", "-b", "topic")
    commit = git(tmp_path, "rev-parse", "HEAD")
    shared = RunFacts.of(tmp_path, commit)
    assert shared.catalog_uri == "ssh://gitlab.bank.test/platform/catalog.git"  # the only remote
    assert shared.catalog_ref == "topic"
    assert not shared.dirty
    assert shared.builder_id.startswith("local:") and "@" in shared.builder_id
    assert shared.invocation_id.startswith("urn:uuid:")
    assert RunFacts.of(tmp_path, commit).invocation_id != shared.invocation_id  # one per run


def test_a_checkout_without_a_remote_is_named_by_its_path(tmp_path: Path, outside_ci: None) -> None:
    write_catalog(tmp_path, signing=False)
    git(tmp_path, "checkout", "--quiet", "--detach")
    shared = RunFacts.of(tmp_path, None)
    assert shared.catalog_uri == tmp_path.resolve().as_uri()
    assert (shared.catalog_ref, shared.commit) == ("HEAD", "")


def facts_of(catalog: Catalog, shared: RunFacts, root: RootFiles) -> BuildFacts:
    start = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)
    return build_facts(
        catalog,
        catalog.images["app"],
        shared,
        parent=PARENT,
        root=root,
        started_on=start,
        finished_on=start + datetime.timedelta(minutes=3),
    )


def test_the_dependencies_are_the_parent_the_apt_lists_and_the_pip_requirements(
    tmp_path: Path, outside_ci: None
) -> None:
    catalog = write_catalog(tmp_path, signing=False)
    lists = "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease"
    root = RootFiles({lists: RELEASE, "var/lib/apt/lists/x_Packages": b"Package: x\n"}, {})
    facts = facts_of(catalog, RunFacts.of(tmp_path, None), root)
    document_ = predicate(facts)
    dependencies = document_["buildDefinition"]["resolvedDependencies"]
    assert [d["name"] for d in dependencies] == [
        "catalog",
        "parent",
        "debian-release",
        "pip-requirements",
    ]
    assert dependencies[1]["uri"] == f"pkg:docker/reg.test:5000/lab/base@{PARENT_DIGEST}"
    assert dependencies[2] == {
        "name": "debian-release",
        "uri": f"file:///{lists}",
        "digest": {"sha256": hashlib.sha256(RELEASE).hexdigest()},
    }
    requirements = b"requests==2.32.3\nidna==3.10\n"
    assert dependencies[3]["digest"] == {"sha256": hashlib.sha256(requirements).hexdigest()}
    assert parent_of(document_) == PARENT_DIGEST
    assert document_["runDetails"]["metadata"]["startedOn"] == "2026-12-01T10:00:00Z"


# ------------------------------------------------------------------------------- the SBOM


def test_the_sbom_of_a_saved_image_lists_its_packages_files_and_parent(
    tmp_path: Path,
) -> None:
    catalog = write_catalog(tmp_path / "catalog", signing=False)
    archive = saved_image(tmp_path / "image.tar", MANIFEST, layers())
    root = saved_archive_root(archive, tmp_path)
    assert "var/lib/dpkg/status.d/stale" not in root.files  # the whiteout applied
    text = document.sbom_json(
        root,
        document.ImageIdentity("reg.test:5000/lab/app", "1.2.3", DIGEST),
        timestamp=datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC),
        parent=document.ParentImage(PARENT.reference, PARENT_DIGEST),
        files=copied_files(catalog, catalog.images["app"]),
    )
    document.validate(text)
    components = json.loads(text)["components"]
    assert {c["name"]: c.get("purl") for c in components if c["type"] == "library"} == {
        "libssl3": "pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&distro=debian-12&upstream=openssl",
        "zlib1g": "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib",
    }
    files = {c["name"]: c for c in components if c["type"] == "file"}
    assert sorted(files) == ["/etc/app/a.ini", "/etc/app/b.ini", "/opt/app/app.py"]
    assert files["/opt/app/app.py"]["hashes"] == [
        {"alg": "SHA-256", "content": hashlib.sha256(b"print('hello')\n").hexdigest()}
    ]
    assert files["/etc/app/a.ini"]["properties"] == [
        {"name": "imagefactory:source", "value": "images/app/conf/a.ini"}
    ]
    parents = [c for c in components if c["type"] == "container"]
    assert [p["hashes"][0]["content"] for p in parents] == ["e" * 64]
    assert list(tmp_path.glob("layer*")) == []  # each layer removed once read


@pytest.mark.parametrize(
    ("manifest", "members", "message"),
    [
        ([{"Layers": ["missing/layer.tar"]}], {}, "holds no 'missing/layer.tar'"),
        ([{"Layers": ["a/layer.tar"]}], {"a/layer.tar": "../../etc/passwd"}, "links outside"),
        ([{"Layers": ["a/layer.tar"]}], {"a/layer.tar": "../a/layer.tar"}, "more than 8 symlinks"),
        ([{"Layers": []}, {"Layers": []}], {}, "exactly one image"),
        ({"Layers": []}, {}, "exactly one image"),
        ([{"Layers": "a/layer.tar"}], {}, "no list of layers"),
        ([{"Layers": ["a/layer.tar"]}], {"a/layer.tar": b"not a tar"}, "cannot read the layer"),
    ],
)
def test_a_hostile_archive_is_refused(
    tmp_path: Path, manifest: object, members: dict[str, bytes | str], message: str
) -> None:
    archive = saved_image(tmp_path / "image.tar", manifest, members)
    with pytest.raises(UserError, match=message):
        saved_archive_root(archive, tmp_path)


def test_an_archive_without_a_json_manifest_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "image.tar"
    archive.write_bytes(tar_bytes([("manifest.json", b"{not json", None)]))
    with pytest.raises(UserError, match=r"manifest\.json is not JSON"):
        saved_archive_root(archive, tmp_path)
    archive.write_bytes(b"no tar at all")
    with pytest.raises(UserError, match="not an image archive"):
        saved_archive_root(archive, tmp_path)


def test_the_sbom_cache_file_is_named_by_a_digest_only(tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path, signing=False)
    assert sbom_file(catalog, DIGEST).name == f"sha256-{'d' * 64}.cdx.json"
    for bad in ("sha256:../../x", "sha512:" + "d" * 64, "d" * 64):
        with pytest.raises(UserError, match="not a manifest digest"):
            sbom_file(catalog, bad)


# ------------------------------------------------------------------------------- the wiring


class SavingEngine(Engine):
    """An engine whose ``save`` writes the test's archive (and remembers what it saved)."""

    def __init__(self, archive: bytes) -> None:
        super().__init__(None, "docker")
        self.archive = archive
        self.saved: list[str] = []

    def save(self, reference: str, target: Path) -> None:
        self.saved.append(reference)
        target.write_bytes(self.archive)


class RecordingStore:
    """The evidence store's writes, recorded (the real store: tests/unit/test_evidence_store.py
    and the integration tests)."""

    calls: ClassVar[list[tuple[str, ...]]] = []
    attested: ClassVar[dict[str, Any]] = {}

    def __init__(self, client: object, location: Any) -> None:
        self.repository = location.repository

    def sign(self, digest: str, key: object) -> None:
        self.calls.append(("sign", self.repository, digest))

    def attest(self, digest: str, predicate_type: str, predicate_: Any, key: object) -> None:
        self.calls.append(("attest", self.repository, digest, predicate_type))
        self.attested[predicate_type] = predicate_


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[RecordingStore]]:
    RecordingStore.calls, RecordingStore.attested = [], {}
    monkeypatch.setattr(build_evidence, "EvidenceStore", RecordingStore)
    yield RecordingStore


def signed_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Catalog:
    (tmp_path / "catalog").mkdir()
    pem = key_pair(tmp_path / "catalog")
    monkeypatch.setenv("IMAGEFACTORY_SIGNING_KEY", pem)
    return write_catalog(tmp_path / "catalog", signing=True)


def test_a_build_signs_and_attests_its_provenance_and_sbom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: type[RecordingStore], outside_ci: None
) -> None:
    catalog = signed_catalog(tmp_path, monkeypatch)
    commit = git(catalog.root, "rev-parse", "HEAD")
    engine = SavingEngine(saved_image(tmp_path / "image.tar", MANIFEST, layers()).read_bytes())
    evidence = BuildEvidence(
        catalog,
        cast(RegistryClient, None),
        catalog.project.registries["dev"],
        {REVISION_LABEL: commit},
    )
    evidence.built(engine, catalog.images["app"], TAG, DIGEST, PARENT, time.monotonic() - 90)
    repository = "reg.test:5000/lab/app"
    assert engine.saved == [TAG]  # the local image built, not a pull
    assert store.calls == [
        ("sign", repository, DIGEST),
        ("attest", repository, DIGEST, PROVENANCE),
        ("attest", repository, DIGEST, SBOM),
    ]
    cached = sbom_file(catalog, DIGEST).read_text()
    document.validate(cached)
    assert store.attested[SBOM] == json.loads(cached)  # the same document, locally and attested
    provenance = store.attested[PROVENANCE]
    assert parent_of(provenance) == PARENT_DIGEST
    assert provenance["buildDefinition"]["resolvedDependencies"][0]["digest"] == {
        "gitCommit": commit
    }
    metadata = provenance["runDetails"]["metadata"]
    started, finished = (
        datetime.datetime.fromisoformat(metadata[k]) for k in ("startedOn", "finishedOn")
    )
    assert 89 <= (finished - started).total_seconds() <= 92
    assert list((catalog.root / ".imagefactory" / "sbom").glob("sbom-*")) == []  # work folder gone


def attested(*predicate_types: str) -> Verified:
    """What ``verify_digest`` answers for a digest with these attestations."""
    return Verified(
        DIGEST,
        "reg.test:5000/lab/app",
        tuple(VerifiedAttestation(t, {}, ("reg.test:5000/lab/app",)) for t in predicate_types),
    )


def test_a_reused_image_with_a_signed_provenance_is_only_signed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: type[RecordingStore]
) -> None:
    catalog = signed_catalog(tmp_path, monkeypatch)
    asked: list[tuple[str, frozenset[str]]] = []

    def verify(store_: object, digest: str, key: object, **policy: Any) -> Verified:
        asked.append((digest, frozenset(policy["identities"])))
        return attested(PROVENANCE, SBOM)

    monkeypatch.setattr(build_evidence, "verify_digest", verify)
    evidence = BuildEvidence(
        catalog, cast(RegistryClient, None), catalog.project.registries["dev"], {}
    )
    assert evidence.reused(TAG, DIGEST) is None
    assert asked == [(DIGEST, frozenset({"reg.test:5000/lab/app"}))]
    assert store.calls == [("sign", "reg.test:5000/lab/app", DIGEST)]


def test_a_reused_digest_without_a_signed_provenance_is_not_signed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: type[RecordingStore]
) -> None:
    """Fails before the fix: whatever the content tag named (pushed by anyone able to push to
    the build registry) was signed with the project's key."""
    catalog = signed_catalog(tmp_path, monkeypatch)
    evidence = BuildEvidence(
        catalog, cast(RegistryClient, None), catalog.project.registries["dev"], {}
    )

    def unsigned(*args: object, **kwargs: object) -> Verified:
        raise VerificationError("reg.test:5000/lab/app@sha256:… is not signed")

    monkeypatch.setattr(build_evidence, "verify_digest", unsigned)
    why = evidence.reused(TAG, DIGEST)
    assert why is not None and why.startswith(build_evidence.NOT_SIGNED) and "is not signed" in why
    monkeypatch.setattr(build_evidence, "verify_digest", lambda *a, **k: attested(SBOM))
    assert evidence.reused(TAG, DIGEST) == build_evidence.NOT_SIGNED  # signed, but no provenance
    assert store.calls == []


def test_a_build_run_reports_a_reused_digest_it_did_not_sign(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: type[RecordingStore]
) -> None:
    catalog = signed_catalog(tmp_path, monkeypatch)
    monkeypatch.setattr(build_evidence, "verify_digest", lambda *a, **k: attested())
    recorder = Recorder()
    build = BuildRun(catalog, cast(RegistryClient, None), BuildOptions(), recorder)
    build.known_remote[build.tag_of(catalog.images["base"])] = DIGEST
    monkeypatch.setattr(build, "_record", lambda *args: None)
    outcome = build.one(catalog.images["base"])
    assert (outcome.status, outcome.digest) == ("reused", DIGEST)
    assert outcome.detail == f"reused from the registry; {build_evidence.NOT_SIGNED}"
    assert store.calls == []


def test_without_signing_the_sbom_is_kept_and_nothing_is_written_to_the_registry(
    tmp_path: Path, store: type[RecordingStore]
) -> None:
    catalog = write_catalog(tmp_path / "catalog", signing=False)
    engine = SavingEngine(saved_image(tmp_path / "image.tar", MANIFEST, layers()).read_bytes())
    evidence = BuildEvidence(
        catalog, cast(RegistryClient, None), catalog.project.registries["dev"], {}
    )
    evidence.built(engine, catalog.images["app"], TAG, DIGEST, None, time.monotonic())
    evidence.reused(TAG, DIGEST)
    assert store.calls == []
    components = json.loads(sbom_file(catalog, DIGEST).read_text())["components"]
    assert not [c for c in components if c["type"] == "container"]  # no parent named


def test_a_required_signing_key_that_is_missing_stops_the_build_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = signed_catalog(tmp_path, monkeypatch)
    monkeypatch.delenv("IMAGEFACTORY_SIGNING_KEY")
    with pytest.raises(UserError, match="IMAGEFACTORY_SIGNING_KEY is not set") as raised:
        BuildRun(catalog, cast(RegistryClient, None), BuildOptions(), Recorder())
    assert raised.value.hint and "signing.required: false" in raised.value.hint


# ------------------------------------------------------------------------------- the command


def sbom_text(packages: bytes) -> str:
    root = RootFiles({"etc/os-release": OS_RELEASE, "var/lib/dpkg/status": packages}, {})
    identity = document.ImageIdentity("reg.test:5000/lab/app", "1.2.3", DIGEST)
    return document.sbom_json(root, identity, timestamp=datetime.datetime.now(datetime.UTC))


def test_sbom_reads_the_copy_the_build_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = write_catalog(tmp_path, signing=False)
    sbom_file(catalog, DIGEST).parent.mkdir(parents=True)
    sbom_file(catalog, DIGEST).write_text(sbom_text(STATUS))
    serve(monkeypatch, None, sbom_lookup)  # no registry is asked: the project does not sign
    result = run(tmp_path, "sbom", f"app@{DIGEST}", "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert (answer["source"], answer["reference"]) == ("cache", f"reg.test:5000/lab/app@{DIGEST}")
    assert [c["name"] for c in answer["sbom"]["components"]] == ["libssl3", "zlib1g"]
    text = run(tmp_path, "sbom", f"app@{DIGEST}")
    assert text.exit_code == 0, text.output
    assert f"reg.test:5000/lab/app@{DIGEST} (from cache)" in text.output
    assert "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64" in text.output
    assert text.output.rstrip().endswith("library: 2")
    out = tmp_path / "out.cdx.json"
    result = run(tmp_path, "sbom", f"app@{DIGEST}", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text() == sbom_file(catalog, DIGEST).read_text()  # the bytes, unchanged


def test_sbom_of_an_image_never_built_says_how_to_get_one(tmp_path: Path) -> None:
    write_catalog(tmp_path, signing=False)
    result = run(tmp_path, "sbom", "app")
    assert result.exit_code == 1
    assert "no build of app is recorded in state" in result.output
    assert "imagefactory build app" in result.output
    result = run(tmp_path, "sbom", "app@sha256:../../etc")
    assert result.exit_code == 1 and "not a manifest digest" in result.output


def test_sbom_diff_of_two_files_lists_what_changed(tmp_path: Path) -> None:
    before, after = tmp_path / "a.cdx.json", tmp_path / "b.cdx.json"
    before.write_text(sbom_text(STATUS))
    newer = STATUS.replace(b"Version: 3.0.15-1~deb12u1", b"Version: 3.0.16-1~deb12u1")
    after.write_text(
        sbom_text(
            newer
            + b"\nPackage: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10\n"
        )
    )
    result = run(tmp_path, "sbom", "diff", str(before), str(after), "--json")  # no catalog needed
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert [e["name"] for e in answer["added"]] == ["curl"]
    assert answer["removed"] == []
    assert [(c["name"], c["before"], c["after"]) for c in answer["changed"]] == [
        ("libssl3", "3.0.15-1~deb12u1", "3.0.16-1~deb12u1")
    ]
    text = run(tmp_path, "sbom", "diff", str(before), str(after))
    assert (
        "+ curl 7.88.1-10" in text.output
        and "~ libssl3 3.0.15-1~deb12u1 → 3.0.16-1~deb12u1" in text.output
    )
    assert run(tmp_path, "sbom", "diff", str(before)).exit_code == 2


# ------------------------------------------------------------------------------- the bootstrap

IN_RELEASES = [
    ("deb.debian.org_debian_dists_bookworm_InRelease", "7" * 64),
    ("deb.debian.org_debian-security_dists_bookworm-security_InRelease", "0" * 64),
]


def test_the_bootstrap_keeps_the_hashes_of_the_release_files_it_installed_from(
    tmp_path: Path,
) -> None:
    catalog = write_catalog(tmp_path / "catalog", signing=False)
    recipe, build = Bootstrap(suite="bookworm"), catalog.project.build
    releases = tmp_path / "it's here" / "rootfs.releases"
    argv = mmdebstrap_argv(recipe, build, tmp_path / "rootfs.tar", releases)
    hook, _cleanup = [a for a in argv if a.startswith("--customize-hook=")]
    assert hook == (
        '--customize-hook=cd "$1/var/lib/apt/lists" && sha256sum -- *Release > '
        + shlex.quote(str(releases))
    )  # a customize hook runs before mmdebstrap empties the lists
    rootfs = rootfs_path(recipe, build, tmp_path)
    assert release_hashes(rootfs) == []  # a tar cached before: nothing is claimed
    releases_path(rootfs).write_text("".join(f"{h}  {n}\n" for n, h in IN_RELEASES))
    assert release_hashes(rootfs) == IN_RELEASES
    releases_path(rootfs).write_text(f"{'7' * 64}  ../../etc/passwd\n")
    with pytest.raises(UserError, match="is not a Release file's hash"):
        release_hashes(rootfs)


def test_a_bootstrapped_image_names_its_release_files_in_its_provenance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: type[RecordingStore]
) -> None:
    catalog = signed_catalog(tmp_path, monkeypatch)
    base = catalog.images["base"]
    assert isinstance(base.parent, BootstrapParent)
    cache = catalog.root / ".imagefactory" / "cache"
    cache.mkdir(parents=True)
    rootfs = rootfs_path(base.parent.bootstrap, catalog.project.build, cache)
    releases_path(rootfs).write_text("".join(f"{h}  {n}\n" for n, h in IN_RELEASES))
    engine = SavingEngine(saved_image(tmp_path / "image.tar", MANIFEST, layers()).read_bytes())
    evidence = BuildEvidence(
        catalog, cast(RegistryClient, None), catalog.project.registries["dev"], {}
    )
    evidence.built(engine, base, "reg.test:5000/lab/base:content-1", DIGEST, None, time.monotonic())
    dependencies = store.attested[PROVENANCE]["buildDefinition"]["resolvedDependencies"]
    assert [(d["name"], d["uri"], d["digest"]) for d in dependencies[1:]] == [
        ("debian-release", f"file:///var/lib/apt/lists/{n}", {"sha256": h}) for n, h in IN_RELEASES
    ] + [  # and the one the image itself still holds (layers()), once
        (
            "debian-release",
            "file:///var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease",
            {"sha256": hashlib.sha256(RELEASE).hexdigest()},
        )
    ]
    assert parent_of(store.attested[PROVENANCE]) is None  # bootstrapped: no parent
