"""An OCI image index assembled through the registry API from per-platform manifests.

Each platform's image is pushed on its own (``docker build --platform``, then a push); the
image's content tag then points at an index that names each of them with its ``platform``, so
``docker pull`` (and every copy, :mod:`imagefactory.registry.copy`) finds the one for its machine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from imagefactory.errors import UserError
from imagefactory.spec.platforms import PLATFORMS

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"


class ManifestStore(Protocol):
    """What assembling needs of a registry (:class:`imagefactory.registry.http.RegistryHTTP`)."""

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str] | None: ...

    def put_manifest(self, repository: str, tag: str, body: bytes, media_type: str) -> str: ...


def index_document(entries: Mapping[str, tuple[str, str, int]]) -> bytes:
    """The index of ``entries`` (platform → digest, media type, size of its manifest), in the
    order given: canonical bytes, so the same platforms' manifests give the same digest."""
    document = {
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": [
            {
                "mediaType": media_type,
                "digest": digest,
                "size": size,
                "platform": PLATFORMS[name].oci(),
            }
            for name, (digest, media_type, size) in entries.items()
        ],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def assemble_index(
    store: ManifestStore, repository: str, tag: str, images: Mapping[str, str]
) -> str:
    """Put under ``tag`` the index of ``images`` (platform → the digest its build pushed to
    ``repository``); its digest. A pushed digest that is itself an index (BuildKit adds an
    attestation manifest beside the image) contributes its entry for that platform."""
    entries = {
        name: _platform_manifest(store, repository, name, digest) for name, digest in images.items()
    }
    return store.put_manifest(repository, tag, index_document(entries), INDEX_TYPE)


def _platform_manifest(
    store: ManifestStore, repository: str, name: str, digest: str
) -> tuple[str, str, int]:
    got = store.manifest(repository, digest)
    if got is None:
        raise UserError(
            f"{repository}@{digest} ({name}) is not in the registry",
            hint="build and push that platform again (imagefactory build --push)",
        )
    body, media_type = got
    document: dict[str, Any] = json.loads(body)
    if "manifests" not in document:
        return digest, media_type, len(body)
    wanted = PLATFORMS[name].oci()
    for entry in document["manifests"]:
        found = entry.get("platform") or {}
        if all(found.get(key) == value for key, value in wanted.items()):
            return str(entry["digest"]), str(entry["mediaType"]), int(entry["size"])
    raise UserError(
        f"{repository}@{digest} has no manifest for {name}",
        hint=f"build it with docker build --platform {name}",
    )
