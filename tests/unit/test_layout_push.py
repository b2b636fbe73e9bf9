"""An OCI layout archive pushed into a registry (``LayoutReader.push``, which is
``copy.copy_image`` from the archive), against a registry in memory: platform manifests by
digest before the index, blobs the registry holds skipped, the others streamed from the archive
several at once (each stream its own bytes), a failed upload tried again from its start."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from imagefactory.errors import UserError
from imagefactory.registry import copy
from imagefactory.registry.copy import Blob, Side
from imagefactory.registry.http import RegistryRequestError, Upload
from imagefactory.registry.layout import Entry, LayoutWriter, layout_index, read_layout
from imagefactory.spec.models import Registry

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CHUNK = 1000  # what the registry reads at a time: streams read at once interleave


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class MemoryTarget:
    """The registry API a copy writes through. The first ``together`` uploads wait for each
    other (a sequential push never gets past the first); ``fail_once``: a blob whose first
    upload is answered 503 after half of it is read."""

    together: int
    held: set[str] = field(default_factory=set)
    fail_once: str | None = None
    registry: Registry = field(default_factory=lambda: Registry(url="target.invalid"))
    received: dict[str, bytes] = field(default_factory=dict)
    uploads: list[str] = field(default_factory=list)
    manifests: list[tuple[str, str]] = field(default_factory=list)  # (tag, media type)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._meet = threading.Barrier(self.together, timeout=10)

    def has_blob(self, repository: str, digest: str) -> bool:
        return digest in self.held or digest in self.received

    def mount_blob(self, repository: str, digest: str, source: str) -> bool:
        raise AssertionError("nothing is mounted from an archive")

    def put_blob(self, repository: str, digest: str, upload: Upload) -> None:
        with self._lock:
            self.uploads.append(digest)
            first = len(self.uploads) <= self.together
        if first:
            self._meet.wait()
        upload.file.seek(0)
        data = b""
        while chunk := upload.file.read(CHUNK):
            data += chunk
            if digest == self.fail_once and len(data) >= upload.size // 2:
                self.fail_once = None
                raise RegistryRequestError("PUT", f"/v2/{repository}/blobs", 503, "busy")
        assert sha(data) == digest and len(data) == upload.size, "the stream held other bytes"
        with self._lock:
            self.received[digest] = data

    def put_manifest(self, repository: str, tag: str, body: bytes, media_type: str) -> str:
        assert media_type == INDEX or all(
            d["digest"] in self.held or d["digest"] in self.received
            for d in [json.loads(body)["config"], *json.loads(body)["layers"]]
        ), "a manifest is put after its blobs"
        self.manifests.append((tag, media_type))
        return sha(body)


@dataclass(frozen=True)
class Archive:
    path: Path
    entry: Entry
    platforms: list[str]  # the platform manifests' digests
    blobs: dict[str, bytes]  # digest → bytes, every config and layer


def descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": sha(data), "size": len(data)}


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    """An index of two platforms, each a config and three layers (one layer shared)."""
    shared = b"shared layer " * 4000
    blobs: dict[str, bytes] = {sha(shared): shared}
    platforms, manifests = [], []
    path = tmp_path / "image.oci.tar"
    with path.open("wb") as stream:
        writer = LayoutWriter(stream)
        for arch in ("amd64", "arm64"):
            config = json.dumps({"architecture": arch, "os": "linux"}).encode()
            layers = [shared, *(f"{arch} layer {n} ".encode() * (3000 + n) for n in range(2))]
            for data in (config, *layers):
                blobs[sha(data)] = data
                writer.add_stream(Blob(sha(data), len(data)), io.BytesIO(data))
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": MANIFEST,
                    "config": descriptor("application/vnd.oci.image.config.v1+json", config),
                    "layers": [descriptor(LAYER, data) for data in layers],
                }
            ).encode()
            platforms.append(writer.add_bytes(manifest))
            manifests.append({**descriptor(MANIFEST, manifest), "platform": {"os": "linux"}})
        index = json.dumps(
            {"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}
        ).encode()
        entry = Entry("app/rag-api:1.0.0", writer.add_bytes(index), INDEX, len(index))
        writer.close(layout_index([entry]), {})
    return Archive(path, entry, platforms, blobs)


def push(archive: Archive, target: MemoryTarget, lines: list[str]) -> str:
    with read_layout(archive.path) as reader:
        return reader.push(archive.entry, Side(target, "team/app"), "1.0.0", lines.append)  # type: ignore[arg-type]


def test_blobs_stream_from_the_archive_at_once_and_the_index_comes_last(
    archive: Archive,
) -> None:
    held = sha(b'{"architecture": "arm64", "os": "linux"}')  # arm64's config is there already
    target = MemoryTarget(together=copy.PARALLEL, held={held})
    lines: list[str] = []
    assert push(archive, target, lines) == archive.entry.digest
    assert target.manifests == [(d, MANIFEST) for d in archive.platforms] + [("1.0.0", INDEX)]
    assert target.received == {d: b for d, b in archive.blobs.items() if d != held}
    assert held not in target.uploads  # the registry held it: not sent
    # amd64's four blobs, then arm64's two of its own (its config held, the shared layer sent)
    assert len(target.uploads) == len(lines) == 6
    assert all(line.startswith("team/app: blob ") and line.endswith(" MB") for line in lines)


def test_an_upload_answered_as_failing_is_sent_again_from_its_start(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(copy, "BACKOFF_S", 0.0)
    shared = next(d for d, b in archive.blobs.items() if b.startswith(b"shared"))
    target = MemoryTarget(together=1, fail_once=shared)
    assert push(archive, target, []) == archive.entry.digest
    assert target.uploads.count(shared) == 2 and target.received[shared] == archive.blobs[shared]


def test_an_archive_cut_short_while_it_is_read_is_a_clear_error(archive: Archive) -> None:
    """Checked when opened, then truncated (another writer) while a blob streams from it."""
    digest, blob = max(archive.blobs.items(), key=lambda item: len(item[1]))
    with read_layout(archive.path) as reader, pytest.raises(UserError, match="cut short"):
        stream = reader.open_blob(Blob(digest, len(blob)))
        os.truncate(archive.path, archive.path.read_bytes().index(blob) + len(blob) // 2)
        stream.read()
