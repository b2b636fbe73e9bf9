"""The evidence of a digest where it lives: its ``.sig`` and ``.att`` tags in a repository.

An ``EvidenceStore`` is one repository of one registry (a ``Location``). It signs a digest
(a cosign simple-signing layer whose identity is the repository), attests it (a DSSE layer),
copies a digest's evidence into another repository, and reads back what the registry holds. The
formats are ``signing``'s; the bytes move through ``registry`` (the HTTP API: skopeo does not
carry ``.att``).

Appending is read-modify-write on one tag, and the registry API has no conditional write: two
writers that read the same manifest each put theirs, and the second drops the first's layer.
So after its PUT a writer reads the tag back, and once more after a short pause; when a layer
it wrote or saw is missing, it merges every layer it has seen with what is there and writes
again (a bounded number of times). The same layer is not added twice (a retried append is
harmless). A writer whose read and PUT lie further apart than the pause can still drop a layer
another confirmed: without a conditional write nothing rules that out, and it shows as a missing
attestation (refused), never as a false one.

The order and the set of the layers are not signed, so an attestation of imagefactory's own
types (``predicates.CHAINED``) names, under ``previous``, the sorted digests of the layers the
``.att`` held when it was written (read just before; a layer another writer adds meanwhile is
not in it: the list is a lower bound), and the append keeps those layers. A layer removed from
before a later attestation then shows (``verify.verify_digest`` refuses the digest).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from imagefactory.errors import ImageFactoryError
from imagefactory.evidence import predicates
from imagefactory.parallel import at_once
from imagefactory.registry.client import RegistryClient
from imagefactory.signing import dsse, simplesigning
from imagefactory.signing.keys import SigningKey, VerificationError
from imagefactory.signing.oci import (
    MANIFEST_MEDIA_TYPE,
    ArtifactManifest,
    Layer,
    attestation_tag,
    parse_manifest,
    signature_tag,
)
from imagefactory.spec.models import Registry

#: The most bytes one evidence blob may have (an SBOM of a large image is a few MiB).
BLOB_LIMIT = 64 * 1024 * 1024
#: The most bytes all the blobs of one tag may have together, and the most layers it may have:
#: a tag anyone with push access can grow must not make a reader fetch without end.
TAG_LIMIT = 256 * 1024 * 1024
LAYER_LIMIT = 1024
#: How many times an append writes before it gives up on a tag other writers keep changing.
RETRIES = 8
#: Seconds between a write and its second read-back (another writer's PUT lands in it).
SETTLE = 0.15
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class EvidenceConflict(ImageFactoryError):
    """Other writers kept changing a tag while an append wrote it (exit 3: run again)."""


@dataclass(frozen=True)
class Location:
    """One repository of one registry: ``repository`` is ``HOST/PATH``, as
    ``project.naming.repository`` gives it."""

    registry: Registry
    repository: str


@dataclass(frozen=True)
class Artifacts:
    """What the registry holds for one digest: the ``.sig`` and ``.att`` layers (empty when a tag
    is not there) and the blob of every layer, by digest (checked against it)."""

    signatures: ArtifactManifest
    attestations: ArtifactManifest
    blobs: Mapping[str, bytes]


_EMPTY = ArtifactManifest(())


class EvidenceStore:
    def __init__(self, client: RegistryClient, location: Location) -> None:
        self.client = client
        self.location = location
        #: What each tag held when this store read it, until it appends to it: verifying and
        #: then signing a digest reads its ``.sig`` once.
        self._read: dict[str, tuple[ArtifactManifest, dict[str, bytes]]] = {}

    def sign(self, digest: str, key: SigningKey) -> None:
        """A signature of ``digest`` by ``key`` with this repository as its identity, appended
        to the ``.sig`` unless one is there already."""
        missing = self._signature_missing(digest, key)
        if missing:
            self._append(signature_tag(digest), [], new=missing)

    def _signature_missing(self, digest: str, key: SigningKey) -> list[tuple[Layer, bytes]]:
        """A signature of ``digest`` by ``key`` with this repository as its identity, unless
        the ``.sig`` holds one already (then none)."""
        manifest, blobs = self._read_tag(signature_tag(digest))
        try:
            simplesigning.verify(
                manifest,
                blobs,
                key.verifying_key(),
                digest=digest,
                repository=self.location.repository,
            )
        except VerificationError:
            signed = simplesigning.sign(key, self.location.repository, digest)
            return [(signed.layer, signed.payload)]
        return []

    def attest(
        self, digest: str, predicate_type: str, predicate: Mapping[str, Any], key: SigningKey
    ) -> None:
        """An attestation of ``predicate`` about ``digest`` (subject: this repository), signed
        by ``key``, appended to the ``.att``; of a ``predicates.CHAINED`` type, with the layers
        the ``.att`` holds now named under ``previous`` (and kept by the append)."""
        tag = attestation_tag(digest)
        held = self._manifest(tag).layers
        if predicate_type in predicates.CHAINED:
            predicate = {**predicate, predicates.PREVIOUS: sorted({x.digest for x in held})}
        attested = dsse.attest(key, self.location.repository, digest, predicate_type, predicate)
        self._append(tag, [], new=[(attested.layer, attested.envelope)], keep=held)

    def copy_to(
        self, digest: str, target: EvidenceStore, *, sign: SigningKey | None = None
    ) -> None:
        """Every ``.sig`` and ``.att`` layer of ``digest`` here appended to ``target``'s (what
        it holds is kept), the blobs copied (mounted within one registry); with ``sign``, the
        target's own signature of it (``target.sign``) in the same write of its ``.sig``. The
        two tags are written at once (each append waits for its read-back to settle)."""
        source = self.read(digest)
        same_registry = target.location.registry.url == self.location.registry.url
        mount_from = self.location.repository if same_registry else None
        own = target._signature_missing(digest, sign) if sign is not None else []
        appends = [
            partial(
                target._append,
                tag,
                [(layer, source.blobs[layer.digest]) for layer in manifest.layers],
                mount_from=mount_from,
                new=extra,
            )
            for tag, manifest, extra in (
                (signature_tag(digest), source.signatures, own),
                (attestation_tag(digest), source.attestations, []),
            )
            if manifest.layers or extra
        ]
        at_once(appends)

    def merge(self, tag: str, items: Iterable[tuple[Layer, bytes]]) -> None:
        """The layers of ``items`` (with their blobs) appended to ``tag`` (``.sig`` or ``.att``),
        what it holds kept: evidence of one digest from elsewhere (an air-gap archive) joined to
        what this repository holds of it."""
        self._append(tag, items)

    def read(self, digest: str) -> Artifacts:
        """The ``.sig`` and ``.att`` of ``digest`` here, with their blobs."""
        signatures, signature_blobs = self._read_tag(signature_tag(digest))
        attestations, attestation_blobs = self._read_tag(attestation_tag(digest))
        return Artifacts(signatures, attestations, {**signature_blobs, **attestation_blobs})

    def _read_tag(self, tag: str) -> tuple[ArtifactManifest, dict[str, bytes]]:
        if tag not in self._read:
            self._read[tag] = self._fetch_tag(tag)
        return self._read[tag]

    def _fetch_tag(self, tag: str) -> tuple[ArtifactManifest, dict[str, bytes]]:
        manifest = self._manifest(tag)
        where = f"{self.location.repository}:{tag}"
        if len(manifest.layers) > LAYER_LIMIT:
            raise VerificationError(
                f"{where}: {len(manifest.layers)} layers, more than the {LAYER_LIMIT} read"
            )
        total = sum({layer.digest: layer.size for layer in manifest.layers}.values())
        if total > TAG_LIMIT:
            raise VerificationError(
                f"{where}: {total} bytes of blobs, more than the {TAG_LIMIT // 2**20} MiB read"
            )
        blobs: dict[str, bytes] = {}
        for index, layer in enumerate(manifest.layers):
            if layer.digest not in blobs:
                blobs[layer.digest] = self._blob(tag, index, layer)
        return manifest, blobs

    def _manifest(self, tag: str) -> ArtifactManifest:
        where = f"{self.location.repository}:{tag}"
        found = self.client.manifest(self.location.registry, self.location.repository, tag)
        return _EMPTY if found is None else parse_manifest(found[0], what=where)

    def _blob(self, tag: str, index: int, layer: Layer) -> bytes:
        where = f"{self.location.repository}:{tag}: layer {index}"
        if _DIGEST.fullmatch(layer.digest) is None:
            raise VerificationError(f"{where}: {layer.digest!r} is not a sha256 digest")
        if layer.size > BLOB_LIMIT:
            raise VerificationError(
                f"{where}: {layer.size} bytes, more than the {BLOB_LIMIT // 2**20} MiB read"
            )
        return self.client.blob(
            self.location.registry, self.location.repository, layer.digest, limit=BLOB_LIMIT
        )

    def _append(
        self,
        tag: str,
        items: Iterable[tuple[Layer, bytes]],
        *,
        mount_from: str | None = None,
        new: Iterable[tuple[Layer, bytes]] = (),
        keep: Iterable[Layer] = (),
    ) -> None:
        """Append the layers of ``items`` (their blobs mounted from ``mount_from`` when given)
        and of ``new`` (blobs made here, uploaded) to ``tag``, keeping every layer the tag held
        at any read of this append, and those of ``keep`` (read before it)."""
        self._read.pop(tag, None)
        registry, repository = self.location.registry, self.location.repository
        ours: list[Layer] = []
        for (layer, blob), source in [
            *((item, mount_from) for item in items),
            *((item, None) for item in new),
        ]:
            self.client.upload_blob(registry, repository, blob, mount_from=source)
            ours.append(layer)
        seen: list[Layer] = [layer for layer in keep if layer not in ours]
        for _ in range(RETRIES):
            current = self._manifest(tag)
            merged = current
            for layer in (*seen, *ours):
                merged = merged.append(layer)
            seen = [layer for layer in merged.layers if layer not in ours]
            if merged != current:
                self.client.upload_blob(registry, repository, merged.config())
                self.client.put_manifest(
                    registry, repository, tag, merged.manifest(), MANIFEST_MEDIA_TYPE
                )
            if self._holds(tag, merged.layers):
                time.sleep(SETTLE * (1 + random.random()))
                if self._holds(tag, merged.layers):
                    return
        raise EvidenceConflict(
            f"{repository}:{tag} kept changing while evidence was appended to it "
            f"({RETRIES} writes)",
            hint="another job writes evidence for this digest at the same time: run this again",
        )

    def _holds(self, tag: str, layers: Iterable[Layer]) -> bool:
        held = self._manifest(tag).layers
        return all(layer in held for layer in layers)
