"""cosign's key-based image signature: the "simple signing" payload, its layer, its check.

The payload is what sigstore/sigstore pkg/signature/payload ``Cosign.MarshalJSON`` writes (Go's
``json.Marshal`` of ``SimpleContainerImage``: compact, fields in struct order, ``optional`` a map
with sorted keys or ``null``):

    {"critical":{"identity":{"docker-reference":REPO},"image":{"docker-manifest-digest":DIGEST},
     "type":"cosign container image signature"},"optional":null}

It is signed as it is (no canonicalisation: the verifier checks the bytes it fetched) and kept as
a layer ``application/vnd.dev.cosign.simplesigning.v1+json`` of the ``sha256-<hex>.sig`` manifest,
the DER signature standard-base64 in the annotation ``dev.cosignproject.cosign/signature``.
``cosign verify --key cosign.pub --insecure-ignore-tlog REPO@DIGEST`` accepts such a signature
(the Rekor bundle annotation is optional with that flag).

The verifier does what cosign's does (pkg/cosign/verify.go, verifiers.go): some layer's signature
verifies against the key over its blob, and that payload's type is cosign's and its
``docker-manifest-digest`` is the digest asked about; the ``docker-reference`` is checked too when
the caller names the repository (cosign ignores it; promotion across registries changes it).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imagefactory.signing.keys import SigningKey, VerificationError, VerifyingKey
from imagefactory.signing.oci import SIGNATURE_ANNOTATION, ArtifactManifest, Layer, blob_of, go_json

PAYLOAD_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_TYPE = "cosign container image signature"


def payload(repository: str, digest: str, optional: Mapping[str, str] | None = None) -> bytes:
    """The payload bytes cosign signs for ``repository@digest`` (``repository`` as
    ``registry/path``, the form go-containerregistry's ``Repository.Name()`` gives)."""
    return go_json(
        {
            "critical": {
                "identity": {"docker-reference": repository},
                "image": {"docker-manifest-digest": digest},
                "type": SIGNATURE_TYPE,
            },
            "optional": None if optional is None else dict(sorted(optional.items())),
        }
    )


@dataclass(frozen=True)
class Signed:
    """A signature made: the payload blob to upload and its layer descriptor."""

    payload: bytes
    layer: Layer


def sign(
    key: SigningKey, repository: str, digest: str, optional: Mapping[str, str] | None = None
) -> Signed:
    """A cosign signature of ``repository@digest``: append ``layer`` to the ``.sig`` manifest
    (``ArtifactManifest.append``) and upload ``payload`` as its blob."""
    body = payload(repository, digest, optional)
    signature = base64.b64encode(key.sign(body)).decode("ascii")
    return Signed(body, Layer.of(PAYLOAD_MEDIA_TYPE, body, {SIGNATURE_ANNOTATION: signature}))


@dataclass(frozen=True)
class VerifiedSignature:
    """What a signature that verified says: the digest and repository it names, its optional
    claims."""

    digest: str
    repository: str
    optional: tuple[tuple[str, str], ...]


def verify(
    manifest: ArtifactManifest,
    blobs: Mapping[str, bytes],
    key: VerifyingKey,
    *,
    digest: str,
    repository: str | None = None,
    what: str = "signature",
) -> VerifiedSignature:
    """The first signature layer of ``manifest`` that ``key`` made over a payload naming
    ``digest`` (and ``repository``, if given); VerificationError when there is none, saying why
    each layer failed."""
    reasons: list[str] = []
    for index, layer in enumerate(manifest.layers):
        if layer.media_type != PAYLOAD_MEDIA_TYPE:
            continue
        try:
            return _verify_layer(layer, blobs, key, digest, repository, what)
        except VerificationError as exc:
            reasons.append(f"layer {index}: {exc.message}")
    if not reasons:
        raise VerificationError(f"{what}: no cosign signature layer for {digest}")
    raise VerificationError(
        f"{what}: no valid signature of {digest} by {key.source}:\n  " + "\n  ".join(reasons)
    )


def _verify_layer(
    layer: Layer,
    blobs: Mapping[str, bytes],
    key: VerifyingKey,
    digest: str,
    repository: str | None,
    what: str,
) -> VerifiedSignature:
    body = blob_of(layer, blobs, what=what)
    encoded = layer.annotation(SIGNATURE_ANNOTATION)
    if not encoded:
        raise VerificationError(f"no {SIGNATURE_ANNOTATION} annotation")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise VerificationError(f"the signature is not base64 ({exc})") from exc
    if not key.verifies(signature, body):
        raise VerificationError("the signature does not verify with the key")
    critical, optional = _claims(body)
    named = critical["image"]["docker-manifest-digest"]
    if named != digest:
        raise VerificationError(f"the payload signs {named}, not {digest}")
    reference = critical["identity"]["docker-reference"]
    if repository is not None and reference != repository:
        raise VerificationError(f"the payload names repository {reference}, not {repository}")
    return VerifiedSignature(named, reference, optional)


def _claims(body: bytes) -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
    """The ``critical`` section and the ``optional`` map of a payload, shape-checked as
    containers/image does (exactly ``critical`` and ``optional``)."""
    try:
        document = json.loads(body)
        if set(document) != {"critical", "optional"}:
            raise ValueError("the payload is not exactly critical + optional")
        critical = document["critical"]
        if critical["type"] != SIGNATURE_TYPE:
            raise ValueError(f"the payload type is {critical['type']!r}")
        if not isinstance(critical["image"]["docker-manifest-digest"], str) or not isinstance(
            critical["identity"]["docker-reference"], str
        ):
            raise ValueError("the payload's digest or reference is not a string")
        optional = document["optional"] or {}
        if not isinstance(optional, dict):
            raise ValueError("the payload's optional section is not a map")
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(f"not a cosign signature payload ({exc})") from exc
    return critical, tuple(sorted((str(k), str(v)) for k, v in optional.items()))
