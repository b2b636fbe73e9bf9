"""Copy an image by digest through the registry API, in-process: the manifest's exact bytes (so
its digest is preserved), every platform of an index, and each blob once. The source is a
``BlobSource``: a repository of a registry (``Side``), or an OCI layout archive (an air-gap
import, ``layout.LayoutReader.push``: each blob the target lacks streamed from the archive).

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
from typing import IO, Any, Protocol, TypeVar

from imagefactory.parallel import at_once
from imagefactory.registry.http import (
    RegistryHTTP,
    RegistryRequestError,
    Sink,
    Upload,
    asked_again,
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


#: Where a copy says which blob it uploads (``REPOSITORY: blob N/M DIGEST SIZE``).
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int


class BlobSource(Protocol):
    """What an image is copied from: a repository of a registry (``Side``) or an OCI layout
    archive (``layout.LayoutReader.push``)."""

    def manifest(self, reference: str, media_type: str | None) -> tuple[bytes, str, dict[str, Any]]:
        """The exact bytes, the media type and the document of the manifest ``reference`` (a
        digest or a tag); ``media_type``: what the index naming it says (None at the top)."""
        ...

    def mount_source(self, target: Side) -> str | None:
        """The repository of ``target``'s registry its blobs can be mounted from; None: none."""
        ...

    def upload(self, blob: Blob, target: Side) -> None:
        """``blob`` streamed into ``target``'s repository (one try)."""
        ...


@dataclass(frozen=True)
class Side:
    """A repository of a registry: where a copy goes, and a source of one."""

    api: RegistryHTTP
    repository: str  # the path in its registry

    def manifest(self, reference: str, media_type: str | None) -> tuple[bytes, str, dict[str, Any]]:
        """The manifest as the registry serves it (its media type the registry's)."""
        found = self.api.manifest(self.repository, reference)
        if found is None:
            raise RegistryRequestError(
                "GET", f"{self.repository}@{reference}", 404, "the source registry does not have it"
            )
        body, served = found
        return body, served, _document(body, self.repository, reference)

    def mount_source(self, target: Side) -> str | None:
        """This repository, when ``target`` is another repository of the same registry."""
        same = self.api.registry.url == target.api.registry.url
        return self.repository if same and self.repository != target.repository else None

    def upload(self, blob: Blob, target: Side) -> None:
        """``blob`` streamed from here through a spooled temporary file (checked on the way)."""
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            fetch_blob(self, blob, spool)
            target.api.put_blob(target.repository, blob.digest, Upload(spool, blob.size))


def copy_image(
    source: BlobSource,
    reference: str,
    target: Side,
    tag: str,
    *,
    media_type: str | None = None,
    progress: Progress | None = None,
) -> str:
    """Copy ``source``'s manifest ``reference`` (a digest or a tag; of ``media_type`` where the
    source asks) and what it names to ``target`` under ``tag`` (a tag or the digest); the
    digest copied. ``progress``: told of each blob uploaded."""
    body, kind, document = source.manifest(reference, media_type)
    if "manifests" in document:  # an index (OCI or Docker's list): its platforms first
        for child in document.get("manifests", []):
            copy_image(
                source,
                child["digest"],
                target,
                child["digest"],
                media_type=child.get("mediaType"),
                progress=progress,
            )
    else:
        _copy_blobs(source, target, blobs_of(document), progress)
    return retried(lambda: target.api.put_manifest(target.repository, tag, body, kind))


def blobs_of(document: dict[str, Any]) -> list[Blob]:
    """The config and layers a manifest names, each once (foreign layers, with ``urls``, are
    not in the registry and are not copied)."""
    found: dict[str, Blob] = {}
    for entry in [document.get("config", {}), *document.get("layers", [])]:
        if "digest" in entry and not entry.get("urls"):
            found.setdefault(entry["digest"], Blob(entry["digest"], int(entry.get("size", 0))))
    return list(found.values())


def _copy_blobs(
    source: BlobSource, target: Side, blobs: list[Blob], progress: Progress | None
) -> None:
    mount_from = source.mount_source(target)

    def held(blob: Blob) -> bool:
        if mount_from is not None:  # a mount tells what is there too
            return target.api.mount_blob(target.repository, blob.digest, mount_from)
        return target.api.has_blob(target.repository, blob.digest)

    missing = [(n, b) for n, b in enumerate(blobs, 1) if not retried(partial(held, b))]

    def send(number: int, blob: Blob) -> None:
        if progress is not None:
            progress(
                f"{target.repository}: blob {number}/{len(blobs)} {blob.digest[7:19]} "
                f"{size_text(blob.size)}"
            )
        retried(partial(source.upload, blob, target))

    at_once([partial(send, number, b) for number, b in missing], limit=PARALLEL)


def size_text(size: int) -> str:
    """``size`` bytes in MB, as progress lines say it."""
    return f"{size / 1e6:.1f} MB"


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
            if not transient(exc.status) or asked_again(exc):  # http asked reads again
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
