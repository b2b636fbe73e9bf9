"""A build that reuses an image from its own engine (imagefactory.build.evidence,
``BuildEvidence.reused_local``): pushed into a repository that holds no evidence of it, it is
described like a build, marked as a reuse, with its parent and its bootstrap's Release files
read from the image's labels; a digest the registry held is not described (only signed when a
signed provenance is there already); evidence that verifies already is not written twice.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

import pytest

from imagefactory.build import evidence as build_evidence
from imagefactory.build.bootstrap import (
    RELEASES_LABEL,
    labelled_releases,
    releases_label,
    releases_path,
    rootfs_path,
)
from imagefactory.build.docker import BuiltImage
from imagefactory.build.publish import Published
from imagefactory.build.run import BuildOptions, BuildRun
from imagefactory.errors import UserError
from imagefactory.evidence.predicates import PROVENANCE, SBOM
from imagefactory.evidence.verify import Verified
from imagefactory.project.naming import BASE_DIGEST_LABEL, REVISION_LABEL
from imagefactory.registry.client import RegistryClient
from imagefactory.signing.keys import VerificationError
from imagefactory.signing.provenance import parent_of
from imagefactory.spec.parents import BootstrapParent

from .test_build_evidence import (
    DIGEST,
    IN_RELEASES,
    MANIFEST,
    PARENT_DIGEST,
    RecordingStore,
    SavingEngine,
    attested,
    layers,
    saved_image,
    signed_catalog,
    store,
)
from .test_build_scheduling import Recorder

__all__ = ["store"]  # the fixture, used by name

LOCAL_ID = "sha256:" + "1" * 64
BUILT_AT = "0123456789abcdef0123456789abcdef01234567"


class LocalEngine(SavingEngine):
    """An engine holding one local image (``LOCAL_ID``, with ``labels``) found by its content
    label; what it is asked to tag and build is recorded."""

    def __init__(self, archive: bytes, labels: dict[str, str]) -> None:
        super().__init__(archive)
        self.labels = labels
        self.tagged: list[tuple[str, str]] = []
        self.built_labels: list[dict[str, str]] = []

    def local_image(self, content_hash: str) -> BuiltImage | None:
        return BuiltImage(LOCAL_ID, 1)

    def tag(self, source: str, tag: str) -> None:
        self.tagged.append((source, tag))

    def image_config(self, reference: str, *, hint: str) -> tuple[dict[str, Any], int]:
        assert reference == LOCAL_ID
        return {"Labels": self.labels}, 1

    def build(self, context: Path, tag: str, **options: Any) -> BuiltImage:
        self.built_labels.append(dict(options["labels"]))
        return BuiltImage(LOCAL_ID, 1)


def unverified(*args: object, **kwargs: object) -> Verified:
    raise VerificationError("reg.test:5000/lab/app@sha256:… is not signed")


def reuse_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    labels: dict[str, str],
    published: Published,
) -> tuple[BuildRun, LocalEngine]:
    """A signed build run whose registry lacks the content tags, whose engine holds the image
    (``labels``), and whose push of it gives ``published``."""
    catalog = signed_catalog(tmp_path, monkeypatch)
    engine = LocalEngine(
        saved_image(tmp_path / "image.tar", MANIFEST, layers()).read_bytes(), labels
    )
    build = BuildRun(catalog, cast(RegistryClient, None), BuildOptions(), Recorder())
    monkeypatch.setitem(build.__dict__, "engine", engine)  # the cached_property
    monkeypatch.setattr(build, "_publish", lambda tag: published)
    monkeypatch.setattr(build, "_record", lambda *args: None)
    for image in catalog.images.values():
        build.known_remote[build.tag_of(image)] = None
    return build, engine


def test_a_local_image_reused_into_an_empty_repository_is_described_as_a_reuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: type[RecordingStore]
) -> None:
    """Fails before the fix: the pushed local image was left unsigned and undescribed (its
    descendants' chain check then refused them)."""
    monkeypatch.setattr(build_evidence, "verify_digest", unverified)
    labels = {BASE_DIGEST_LABEL: PARENT_DIGEST, REVISION_LABEL: BUILT_AT}
    build, engine = reuse_run(tmp_path, monkeypatch, labels, Published(DIGEST, DIGEST))
    app = build.catalog.images["app"]
    outcome = build.one(app)
    assert (outcome.status, outcome.digest) == ("reused", DIGEST)
    assert outcome.detail == "reused the local image, pushed"  # nothing left unsigned
    tag = build.tag_of(app)
    assert engine.tagged == [(LOCAL_ID, tag)] and engine.saved == [tag]
    repository = tag.rpartition(":")[0]
    assert store.calls == [
        ("sign", repository, DIGEST),
        ("attest", repository, DIGEST, PROVENANCE),
        ("attest", repository, DIGEST, SBOM),
    ]
    provenance = store.attested[PROVENANCE]
    assert parent_of(provenance) == PARENT_DIGEST
    internal = provenance["buildDefinition"]["internalParameters"]
    assert internal["reused_local_image"] == LOCAL_ID
    assert internal["reused_revision"] == BUILT_AT
    assert [d["name"] for d in provenance["buildDefinition"]["resolvedDependencies"]] == [
        "catalog",
        "parent",
        "debian-release",  # the one the image itself holds (layers())
        "pip-requirements",
    ]


def test_a_reused_local_base_names_the_release_files_its_label_keeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: type[RecordingStore]
) -> None:
    monkeypatch.setattr(build_evidence, "verify_digest", unverified)
    labels = {BASE_DIGEST_LABEL: "", **releases_label(IN_RELEASES)}
    build, _ = reuse_run(tmp_path, monkeypatch, labels, Published(DIGEST, DIGEST))
    base = build.catalog.images["base"]
    assert isinstance(base.parent, BootstrapParent)
    cache = build.catalog.root / ".imagefactory" / "cache"
    cache.mkdir(parents=True)
    rootfs = rootfs_path(base.parent.bootstrap, build.catalog.project.build, cache)
    releases_path(rootfs).write_text(f"{'9' * 64}  other_InRelease\n")  # bootstrapped again since
    outcome = build.one(base)
    assert outcome.status == "reused" and outcome.detail == "reused the local image, pushed"
    provenance = store.attested[PROVENANCE]
    assert parent_of(provenance) is None
    releases = [
        (d["uri"].rpartition("/")[2], d["digest"]["sha256"])
        for d in provenance["buildDefinition"]["resolvedDependencies"]
        if d["name"] == "debian-release"
    ]
    assert releases[: len(IN_RELEASES)] == IN_RELEASES  # the label's, not the cache's
    assert ("other_InRelease", "9" * 64) not in releases
    assert "reused_revision" not in provenance["buildDefinition"]["internalParameters"]


def test_a_local_image_built_on_another_parent_digest_is_not_described(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: type[RecordingStore]
) -> None:
    monkeypatch.setattr(build_evidence, "verify_digest", unverified)
    other = "sha256:" + "f" * 64
    build, _ = reuse_run(
        tmp_path, monkeypatch, {BASE_DIGEST_LABEL: other}, Published(DIGEST, DIGEST)
    )
    outcome = build.one(build.catalog.images["app"])
    assert outcome.status == "reused"
    assert outcome.detail.startswith(f"reused the local image, pushed; {build_evidence.NOT_SIGNED}")
    assert f"built on {other}, this run's parent is {PARENT_DIGEST}" in outcome.detail
    assert store.calls == []


def test_a_local_image_whose_content_tag_held_another_digest_is_not_described(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: type[RecordingStore]
) -> None:
    """The content tag names a digest the registry held (another build's): as e010e5d made it,
    signed only when its signed provenance is there, and never described."""
    monkeypatch.setattr(build_evidence, "verify_digest", unverified)
    pushed = "sha256:" + "2" * 64
    build, engine = reuse_run(
        tmp_path, monkeypatch, {BASE_DIGEST_LABEL: PARENT_DIGEST}, Published(DIGEST, pushed)
    )
    outcome = build.one(build.catalog.images["app"])
    assert (outcome.status, outcome.digest) == ("reused", DIGEST)
    assert "not reproducible" in outcome.detail and build_evidence.NOT_SIGNED in outcome.detail
    assert store.calls == [] and engine.saved == []


def test_a_local_image_whose_evidence_verifies_already_is_only_signed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: type[RecordingStore]
) -> None:
    monkeypatch.setattr(build_evidence, "verify_digest", lambda *a, **k: attested(PROVENANCE, SBOM))
    build, engine = reuse_run(
        tmp_path, monkeypatch, {BASE_DIGEST_LABEL: PARENT_DIGEST}, Published(DIGEST, DIGEST)
    )
    outcome = build.one(build.catalog.images["app"])
    assert outcome.detail == "reused the local image, pushed"
    repository = build.tag_of(build.catalog.images["app"]).rpartition(":")[0]
    assert store.calls == [("sign", repository, DIGEST)]  # idempotent: no second provenance
    assert engine.saved == []


def test_a_bootstrapped_build_labels_the_release_files_it_installed_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build, engine = reuse_run(tmp_path, monkeypatch, {}, Published(DIGEST, DIGEST))
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(b"")
    releases_path(rootfs).write_text("".join(f"{h}  {n}\n" for n, h in IN_RELEASES))
    monkeypatch.setattr("imagefactory.build.run.rootfs_tar", lambda *a, **k: rootfs)
    monkeypatch.setattr(build, "_finish", lambda *args: Published(DIGEST, DIGEST))
    base = build.catalog.images["base"]
    build._build(base, build.inputs[base.ref], build.tag_of(base), time.monotonic())
    [labels] = engine.built_labels
    assert labelled_releases(labels) == IN_RELEASES
    assert labels[REVISION_LABEL] == build.revision_labels[REVISION_LABEL]


def test_a_release_label_that_is_not_one_is_refused() -> None:
    assert labelled_releases({}) == []
    assert releases_label([]) == {}
    with pytest.raises(UserError, match="not a Release file's hash"):
        labelled_releases({RELEASES_LABEL: f"../../etc/passwd={'7' * 64}"})
