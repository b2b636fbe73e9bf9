"""Copy an image by digest through the registry API, in-process: the manifest's exact bytes (so
its digest is preserved), every platform of an index, and each blob once.

Within one registry no blob moves: each is mounted from the source repository (one POST, which
also answers for a blob that is there already) — a promotion is mounts and manifest PUTs.
Across registries each blob is streamed from the source into a temporary file (at most its
descriptor's size, hashed on the way: another digest or size is refused) and from there to the
target, several at a time; a blob the target repository holds already (one HEAD) is skipped.
The manifest is put last, after everything it names, so a tag never names an incomplete image;
an index's platform manifests are put by digest before the index. A request that finds the
registry gone or failing (no answer, 429, 5xx) is tried again, a bounded number of times (a
blob streamed again from its start).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import IO, Any, TypeVar

from imagefactory.parallel import at_once
from imagefactory.registry.http import (
    RegistryHTTP,
    RegistryRequestError,
    Sink,
    Upload,
    transient,
)

T = TypeVar("T")
#: Tries of a request that found the registry gone or failing, a pause doubling from BACKOFF_S.
ATTEMPTS = 3
BACKOFF_S = 0.5
#: Blobs in flight at once across registries (each a stream in and a stream out).
PARALLEL = 4
#: In memory up to this, then on disk, while a blob passes from one registry to the other.
SPOOL_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Side:
    api: RegistryHTTP
    repository: str  # the path in its registry


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int


def copy_image(source: Side, reference: str, target: Side, tag: str) -> str:
    """Copy ``source``'s manifest ``reference`` (a digest or a tag) and what it names to
    ``target`` under ``tag`` (a tag or the digest); the digest copied."""
    found = source.api.manifest(source.repository, reference)
    if found is None:
        raise RegistryRequestError(
            "GET", f"{source.repository}@{reference}", 404, "the source registry does not have it"
        )
    body, media_type = found
    document = _document(body, source.repository, reference)
    if "manifests" in document:  # an index (OCI or Docker's list): its platforms first
        for child in document.get("manifests", []):
            copy_image(source, child["digest"], target, child["digest"])
    else:
        _copy_blobs(source, target, blobs_of(document))
    return retried(lambda: target.api.put_manifest(target.repository, tag, body, media_type))


def blobs_of(document: dict[str, Any]) -> list[Blob]:
    """The config and layers a manifest names, each once (foreign layers, with ``urls``, are
    not in the registry and are not copied)."""
    found: dict[str, Blob] = {}
    for entry in [document.get("config", {}), *document.get("layers", [])]:
        if "digest" in entry and not entry.get("urls"):
            found.setdefault(entry["digest"], Blob(entry["digest"], int(entry.get("size", 0))))
    return list(found.values())


def _copy_blobs(source: Side, target: Side, blobs: list[Blob]) -> None:
    mountable = source.api.registry.url == target.api.registry.url
    if mountable and source.repository != target.repository:  # a mount tells what is there too
        missing = [
            b
            for b in blobs
            if not retried(
                partial(target.api.mount_blob, target.repository, b.digest, source.repository)
            )
        ]
    else:
        missing = [
            b
            for b in blobs
            if not retried(partial(target.api.has_blob, target.repository, b.digest))
        ]
    if not missing:
        return
    at_once(
        [partial(retried, partial(_stream, source, target, b)) for b in missing], limit=PARALLEL
    )


def _stream(source: Side, target: Side, blob: Blob) -> None:
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        fetch_blob(source, blob, spool)
        target.api.put_blob(target.repository, blob.digest, Upload(spool, blob.size))


def fetch_blob(source: Side, blob: Blob, spool: IO[bytes]) -> None:
    """``blob`` of ``source`` streamed into ``spool`` (emptied first): exactly its descriptor's
    size, its digest checked on the way; a registry error otherwise."""
    sink = Sink(spool, blob.size)
    source.api.read_blob(source.repository, blob.digest, sink)
    if sink.written != blob.size:
        raise RegistryRequestError(
            "GET",
            f"{source.repository}@{blob.digest}",
            "wrong size",
            f"{sink.written} bytes, the manifest says {blob.size}",
        )


def retried(call: Callable[[], T]) -> T:
    """``call()``, tried again while the registry is gone or failing, ATTEMPTS times in all."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return call()
        except RegistryRequestError as exc:
            if not transient(exc.status):
                raise
            if attempt == ATTEMPTS:
                raise RegistryRequestError(
                    exc.method, exc.url, exc.status, f"{exc.body} (after {ATTEMPTS} attempts)"
                ) from exc
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
    raise AssertionError("unreachable: the loop returns or raises")


def _document(body: bytes, repository: str, reference: str) -> dict[str, Any]:
    try:
        document = json.loads(body)  # at most MANIFEST_LIMIT bytes: manifest() reads no more
    except ValueError as exc:
        raise RegistryRequestError(
            "GET", f"{repository}@{reference}", "not JSON", "the manifest does not parse"
        ) from exc
    if not isinstance(document, dict):
        raise RegistryRequestError(
            "GET", f"{repository}@{reference}", "not a manifest", "a JSON object was expected"
        )
    return document
