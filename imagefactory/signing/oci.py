"""The OCI manifests cosign keeps signatures and attestations in, byte for byte.

cosign stores the signatures of ``repo@sha256:<hex>`` under the tag ``sha256-<hex>.sig`` and its
attestations under ``sha256-<hex>.att`` (sigstore/cosign specs/SIGNATURE_SPEC.md,
ATTESTATION_SPEC.md): an OCI image manifest with one layer per signature (or DSSE envelope) and
the config go-containerregistry writes for an empty image with those layers appended
(pkg/oci/empty: ``mediaType`` OCI, config ``application/vnd.oci.image.config.v1+json``). The
config lists every layer's digest as a diff ID, so a layer appended means a new config; an
``ArtifactManifest`` is the layer list, and its bytes are made from it. Reproduced exactly: a
real cosign ``.sig`` (tests/unit/fixtures/cosign) has the config bytes this module makes.

Appending is read-modify-write on one tag (the caller retries on a conflict); ``append`` keeps
every layer it was given, verbatim, and adds a layer already there only once (a retry).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imagefactory.signing.keys import VerificationError

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
#: The annotation holding a simple-signing layer's signature (empty on attestation layers).
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
_EPOCH = "0001-01-01T00:00:00Z"  # Go's zero time, what an empty image's config says


def go_json(value: Any) -> bytes:
    """``value`` as Go's ``encoding/json`` writes it: compact, and ``<``, ``>``, ``&``, U+2028
    and U+2029 escaped. Map keys keep the order given: callers give struct fields in their Go
    order and maps sorted, as Go does."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text.encode("utf-8")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hex_of(digest: str) -> str:
    algorithm, _, hex_part = digest.partition(":")
    if (
        algorithm != "sha256"
        or len(hex_part) != 64
        or not all(c in "0123456789abcdef" for c in hex_part)
    ):
        raise VerificationError(f"not a sha256 digest: {digest!r}")
    return hex_part


def signature_tag(digest: str) -> str:
    """The tag cosign keeps ``digest``'s signatures under: ``sha256-<hex>.sig``."""
    return f"sha256-{_hex_of(digest)}.sig"


def attestation_tag(digest: str) -> str:
    """The tag cosign keeps ``digest``'s attestations under: ``sha256-<hex>.att``."""
    return f"sha256-{_hex_of(digest)}.att"


@dataclass(frozen=True)
class Layer:
    """One layer descriptor of a ``.sig``/``.att`` manifest (annotations sorted, as Go writes a
    map)."""

    media_type: str
    digest: str
    size: int
    annotations: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, media_type: str, blob: bytes, annotations: dict[str, str]) -> Layer:
        """The descriptor of ``blob`` (its digest and size come from the bytes themselves)."""
        return cls(media_type, sha256_digest(blob), len(blob), tuple(sorted(annotations.items())))

    def annotation(self, key: str) -> str | None:
        return dict(self.annotations).get(key)

    def descriptor(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "mediaType": self.media_type,
            "size": self.size,
            "digest": self.digest,
        }
        if self.annotations:
            entry["annotations"] = dict(self.annotations)
        return entry


@dataclass(frozen=True)
class ArtifactManifest:
    """The layer list of a ``.sig`` or ``.att`` manifest; its config and manifest bytes follow."""

    layers: tuple[Layer, ...]

    def config(self) -> bytes:
        """The config blob (go-containerregistry's ``ConfigFile`` of an empty image with these
        layers appended: one diff ID and one history entry per layer)."""
        return go_json(
            {
                "architecture": "",
                "created": _EPOCH,
                "history": [{"created": _EPOCH} for _ in self.layers],
                "os": "",
                "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in self.layers]},
                "config": {},
            }
        )

    def manifest(self) -> bytes:
        """The manifest bytes to PUT under the tag (after the config and layer blobs)."""
        config = self.config()
        return go_json(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_MEDIA_TYPE,
                "config": {
                    "mediaType": CONFIG_MEDIA_TYPE,
                    "size": len(config),
                    "digest": sha256_digest(config),
                },
                "layers": [layer.descriptor() for layer in self.layers],
            }
        )

    def append(self, layer: Layer) -> ArtifactManifest:
        """This manifest with ``layer`` added last: every layer kept, the same layer not twice."""
        if layer in self.layers:
            return self
        return ArtifactManifest((*self.layers, layer))


def parse_manifest(data: bytes, *, what: str) -> ArtifactManifest:
    """The layers of the manifest ``data`` (read from the tag ``what``), kept verbatim.

    A Docker-typed manifest (``COSIGN_DOCKER_MEDIA_TYPES=1``) is read too: only the layers
    matter. Anything that is not a manifest with a layer list is refused."""
    try:
        document = json.loads(data)
        layers = tuple(_layer(entry) for entry in document["layers"])
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(f"{what}: not an image manifest with layers ({exc})") from exc
    return ArtifactManifest(layers)


def _layer(entry: Any) -> Layer:
    annotations = entry.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise TypeError("layer annotations are not a map of strings")
    media_type, digest, size = entry["mediaType"], entry["digest"], entry["size"]
    if not isinstance(media_type, str) or not isinstance(digest, str) or type(size) is not int:
        raise TypeError("a layer descriptor lacks mediaType, digest or size")
    return Layer(media_type, digest, size, tuple(sorted(annotations.items())))


def blob_of(layer: Layer, blobs: Mapping[str, bytes], *, what: str) -> bytes:
    """The blob of ``layer`` from ``blobs`` (digest → bytes), checked against the descriptor."""
    blob = blobs.get(layer.digest)
    if blob is None:
        raise VerificationError(f"{what}: the blob {layer.digest} of a layer is missing")
    if sha256_digest(blob) != layer.digest or len(blob) != layer.size:
        raise VerificationError(f"{what}: the blob {layer.digest} does not match its descriptor")
    return blob
