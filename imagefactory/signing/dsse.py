"""DSSE envelopes with in-toto Statement v1 inside: cosign's attestations.

* PAE (secure-systems-lab/dsse protocol.md): ``DSSEv1 <len(type)> <type> <len(body)> <body>``,
  lengths in ASCII decimal bytes; the signature is over the PAE, never over the bare body.
* The envelope (envelope.md): ``{"payloadType", "payload": base64(body), "signatures":
  [{"keyid", "sig": base64(signature)}]}``; ``keyid`` is empty, as cosign writes it (a verifier
  skips a signature only when both key IDs are set and differ).
* The statement (in-toto/attestation spec/v1/statement.md): ``_type``
  ``https://in-toto.io/Statement/v1``, ``subject`` [{name, digest: {sha256: hex}}],
  ``predicateType``, ``predicate``. cosign itself writes Statement v0.1; its verifier reads both,
  and so does ``verify`` here.
* The layer of the ``sha256-<hex>.att`` manifest (cosign cmd/cosign/cli/attest): media type
  ``application/vnd.dsse.envelope.v1+json``, annotations ``predicateType`` and an empty
  ``dev.cosignproject.cosign/signature``. ``cosign verify-attestation --key cosign.pub
  --insecure-ignore-tlog --type slsaprovenance1`` reads it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imagefactory.signing.keys import SigningKey, VerificationError, VerifyingKey
from imagefactory.signing.oci import SIGNATURE_ANNOTATION, ArtifactManifest, Layer, blob_of, go_json

PAYLOAD_TYPE = "application/vnd.in-toto+json"
ENVELOPE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
#: The statement types a verifier accepts (cosign writes v0.1).
STATEMENT_TYPES = frozenset({STATEMENT_V1, "https://in-toto.io/Statement/v0.1"})
PREDICATE_ANNOTATION = "predicateType"


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding of ``body`` of type ``payload_type``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def statement(name: str, digest: str, predicate_type: str, predicate: Mapping[str, Any]) -> bytes:
    """An in-toto Statement v1 about the image ``name`` (its repository) at ``digest``."""
    return statement_of([(name, digest)], predicate_type, predicate)


def statement_of(
    subjects: Sequence[tuple[str, str]], predicate_type: str, predicate: Mapping[str, Any]
) -> bytes:
    """An in-toto Statement v1 about each ``(name, digest)`` of ``subjects``."""
    entries = []
    for name, digest in subjects:
        algorithm, _, hex_part = digest.partition(":")
        if algorithm != "sha256" or len(hex_part) != 64:
            raise VerificationError(f"not a sha256 digest: {digest!r}")
        entries.append({"name": name, "digest": {"sha256": hex_part}})
    return go_json(
        {
            "_type": STATEMENT_V1,
            "subject": entries,
            "predicateType": predicate_type,
            "predicate": dict(predicate),
        }
    )


def envelope(key: SigningKey, body: bytes, payload_type: str = PAYLOAD_TYPE) -> bytes:
    """The DSSE envelope (JSON bytes) of ``body`` signed by ``key``."""
    signature = key.sign(pae(payload_type, body))
    return go_json(
        {
            "payloadType": payload_type,
            "payload": base64.b64encode(body).decode("ascii"),
            "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode("ascii")}],
        }
    )


@dataclass(frozen=True)
class Attested:
    """An attestation made: the envelope blob to upload and its ``.att`` layer descriptor."""

    envelope: bytes
    layer: Layer


def attest(
    key: SigningKey, name: str, digest: str, predicate_type: str, predicate: Mapping[str, Any]
) -> Attested:
    """A signed attestation about ``name@digest``: append ``layer`` to the ``.att`` manifest
    (``ArtifactManifest.append``, read-modify-write) and upload ``envelope`` as its blob."""
    blob = envelope(key, statement(name, digest, predicate_type, predicate))
    annotations = {PREDICATE_ANNOTATION: predicate_type, SIGNATURE_ANNOTATION: ""}
    return Attested(blob, Layer.of(ENVELOPE_MEDIA_TYPE, blob, annotations))


def _b64decode(text: Any, what: str) -> bytes:
    """Standard or URL-safe base64, padded or not (DSSE allows either)."""
    if not isinstance(text, str):
        raise VerificationError(f"{what} is not a base64 string")
    normalised = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(normalised + "=" * (-len(normalised) % 4), validate=True)
    except binascii.Error as exc:
        raise VerificationError(f"{what} is not base64 ({exc})") from exc


def open_envelope(data: bytes, key: VerifyingKey, *, what: str = "envelope") -> bytes:
    """The body of the DSSE envelope ``data`` once one of its signatures verifies with ``key``
    over the PAE; VerificationError otherwise. Only in-toto payloads are accepted (as cosign)."""
    try:
        document = json.loads(data)
        payload_type, signatures = document["payloadType"], document["signatures"]
        encoded = document["payload"]
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(f"{what}: not a DSSE envelope ({exc})") from exc
    if payload_type != PAYLOAD_TYPE:
        raise VerificationError(f"{what}: payload type {payload_type!r}, not {PAYLOAD_TYPE}")
    if not isinstance(signatures, list) or not signatures:
        raise VerificationError(f"{what}: the envelope has no signatures")
    body = _b64decode(encoded, f"{what}: the payload")
    message = pae(payload_type, body)
    for entry in signatures:
        sig = entry.get("sig") if isinstance(entry, dict) else None
        if key.verifies(_b64decode(sig, f"{what}: a signature"), message):
            return body
    raise VerificationError(f"{what}: no signature verifies with {key.source}")


@dataclass(frozen=True)
class VerifiedAttestation:
    """A statement whose envelope verified and whose subject is the digest asked about."""

    predicate_type: str
    predicate: Any
    subject_names: tuple[str, ...]


def verify_statement(body: bytes, *, digest: str, what: str = "attestation") -> VerifiedAttestation:
    """The statement ``body`` (an opened envelope's), if one of its subjects is ``digest``."""
    hex_part = digest.partition(":")[2]
    try:
        document = json.loads(body)
        kind, subjects = document["_type"], document["subject"]
        predicate_type, predicate = document["predicateType"], document.get("predicate")
        names = tuple(str(s.get("name", "")) for s in subjects)
        matches = any(s["digest"].get("sha256") == hex_part for s in subjects)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise VerificationError(f"{what}: not an in-toto statement ({exc})") from exc
    if kind not in STATEMENT_TYPES:
        raise VerificationError(f"{what}: statement type {kind!r} is not in-toto's")
    if not matches:
        raise VerificationError(f"{what}: its subject is not {digest}")
    if not isinstance(predicate_type, str):
        raise VerificationError(f"{what}: the predicate type is not a string")
    return VerifiedAttestation(predicate_type, predicate, names)


def verify(
    manifest: ArtifactManifest,
    blobs: Mapping[str, bytes],
    key: VerifyingKey,
    *,
    digest: str,
    what: str = "attestations",
) -> tuple[VerifiedAttestation, ...]:
    """Every attestation of the ``.att`` ``manifest``, each verified (envelope signature by
    ``key``, subject ``digest``, the layer's ``predicateType`` annotation equal to the
    statement's). One that fails fails the lot: an altered attestation is never skipped. An
    empty manifest gives ``()``: which predicates must be there is the caller's policy."""
    verified = []
    for index, layer in enumerate(manifest.layers):
        where = f"{what}: layer {index}"
        if layer.media_type != ENVELOPE_MEDIA_TYPE:
            raise VerificationError(f"{where}: media type {layer.media_type}, not a DSSE envelope")
        body = open_envelope(blob_of(layer, blobs, what=where), key, what=where)
        attestation = verify_statement(body, digest=digest, what=where)
        annotated = layer.annotation(PREDICATE_ANNOTATION)
        if annotated != attestation.predicate_type:
            raise VerificationError(
                f"{where}: annotated as {annotated!r} but its statement is {attestation.predicate_type!r}"
            )
        verified.append(attestation)
    return tuple(verified)
