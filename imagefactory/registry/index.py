"""An OCI image index assembled through the registry API from per-platform manifests.

Each platform's image is pushed on its own (``docker build --platform``, then a push); the
image's content tag then points at an index that names each of them with its ``platform``, so
``docker pull`` (and every copy, :mod:`imagefactory.registry.copy`) finds the one for its machine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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
    entry = _entry(document, name)
    if entry is None:
        raise UserError(
            f"{repository}@{digest} has no manifest for {name}",
            hint=f"build it with docker build --platform {name}",
        )
    return str(entry["digest"]), str(entry["mediaType"]), int(entry["size"])


def platform_digests(
    store: ManifestStore, repository: str, digest: str, platforms: Sequence[str]
) -> dict[str, str]:
    """The digest of each of ``platforms`` in the index ``repository@digest`` (what a content
    tag found in the registry holds); a UserError when it is not there or not an index of them."""
    got = store.manifest(repository, digest)
    document: dict[str, Any] = json.loads(got[0]) if got is not None else {}
    entries = {name: _entry(document, name) for name in platforms}
    missing = [name for name, entry in entries.items() if entry is None]
    if missing:
        raise UserError(
            f"{repository}@{digest} is not an index of {', '.join(platforms)}: "
            f"it has no manifest for {', '.join(missing)}",
            hint="its content tag was written by something else than imagefactory build; "
            "delete that tag and build again",
        )
    return {name: str(entry["digest"]) for name, entry in entries.items() if entry is not None}


def _entry(document: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """The entry of an index ``document`` for platform ``name``; None when it has none."""
    wanted = PLATFORMS[name].oci()
    for entry in document.get("manifests") or []:
        found = entry.get("platform") or {}
        if all(found.get(key) == value for key, value in wanted.items()):
            return dict(entry)
    return None
