"""The signed index of an air-gap archive: what an exported OCI layout holds, signed with the
project's key, so that the other side trusts nothing of the archive it did not sign.

The format is a DSSE envelope (the file ``SIGNED_INDEX`` of the archive) around an in-toto
Statement v1 whose predicate (``PREDICATE_TYPE``) lists the project, the environment exported,
when, each image (catalog ref, repository name, version and version tag, the repository it was
read from, its manifest's digest, media type and size, and its ``.sig``/``.att`` manifests), and
every blob of the archive with its size. Its subjects are the archive's ``index.json`` (by its
sha256: the root of the layout's content-addressed tree) and each image's digest (named by the
repository it came from). Why DSSE and not a cosign simple-signing payload: the signature covers
the payload type (DSSE's PAE), so the index can never pass for an image signature or an
attestation of another kind, and it is the format the project's attestations already use
(``signing.dsse``); any DSSE verifier with the public key reads it (``cosign
verify-blob-attestation --key cosign.pub --type PREDICATE_TYPE --signature
imagefactory-index.json index.json`` checks the subject ``index.json``, untried here).

``open_index`` verifies the envelope with the public key, that a subject is the ``index.json``
given, and every field by its grammar before anything of it is used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from imagefactory.signing import dsse
from imagefactory.signing.keys import SigningKey, VerificationError, VerifyingKey
from imagefactory.signing.oci import attestation_tag, sha256_digest, signature_tag
from imagefactory.spec.models import IMAGE_REF, Identifier, ImageName, is_semver

PREDICATE_TYPE = "urn:imagefactory:predicate:transfer-index:v1"
SIGNED_INDEX = "imagefactory-index.json"
LAYOUT_SUBJECT = "index.json"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_REF = re.compile(IMAGE_REF)
_REPOSITORY = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)+")
_CREATED = re.compile(r"[0-9T:.+Z-]{10,40}")
_KINDS = ("signatures", "attestations")
_HINT = "export it again with the project's signing key (imagefactory export); never edit it"


@dataclass(frozen=True)
class Manifest:
    """A manifest of the archive: its digest, media type and size."""

    digest: str
    media_type: str
    size: int

    def as_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "mediaType": self.media_type, "size": self.size}


@dataclass(frozen=True)
class Shipped:
    """One image of the archive and its evidence (``signatures``, ``attestations``: the
    ``.sig`` and ``.att`` manifests, None where the registry held none)."""

    image: str  # the catalog ref
    name: str  # its repository name below a registry's namespace
    version: str
    tag: str  # the version tag (with the variant's suffix)
    repository: str  # HOST/PATH it was exported from
    manifest: Manifest
    signatures: Manifest | None
    attestations: Manifest | None

    def evidence(self) -> list[tuple[str, Manifest]]:
        """(tag, manifest) of the ``.sig`` and the ``.att`` the archive holds."""
        tags = (signature_tag(self.manifest.digest), attestation_tag(self.manifest.digest))
        return [
            (tag, manifest)
            for tag, manifest in zip(tags, (self.signatures, self.attestations), strict=True)
            if manifest is not None
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "name": self.name,
            "version": self.version,
            "tag": self.tag,
            "repository": self.repository,
            "manifest": self.manifest.as_dict(),
            **{
                kind: None if found is None else found.as_dict()
                for kind, found in zip(_KINDS, (self.signatures, self.attestations), strict=True)
            },
        }


@dataclass(frozen=True)
class TransferIndex:
    project: str
    environment: str  # exported from
    created: str
    images: tuple[Shipped, ...]
    blobs: Mapping[str, int]  # every blob of the archive (manifests too): digest → size

    def predicate(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "environment": self.environment,
            "created": self.created,
            "images": [image.as_dict() for image in self.images],
            "blobs": [{"digest": d, "size": s} for d, s in sorted(self.blobs.items())],
        }


def seal(index: TransferIndex, layout: bytes, key: SigningKey) -> bytes:
    """The DSSE envelope of ``index`` about the archive whose ``index.json`` is ``layout``."""
    subjects = [(LAYOUT_SUBJECT, sha256_digest(layout))]
    subjects += [(image.repository, image.manifest.digest) for image in index.images]
    body = dsse.statement_of(subjects, PREDICATE_TYPE, index.predicate())
    return dsse.envelope(key, body)


def open_index(envelope: bytes, layout: bytes, key: VerifyingKey, *, source: str) -> TransferIndex:
    """The index ``envelope`` signs, once it verifies with ``key`` and names ``layout`` (the
    archive's ``index.json``) as its subject; VerificationError otherwise."""
    where = f"{source}: {SIGNED_INDEX}"
    try:
        body = dsse.open_envelope(envelope, key, what=where)
    except RecursionError:  # JSON nested deeper than Python parses: not an envelope
        raise VerificationError(f"{where}: not a DSSE envelope (nested too deep)") from None
    statement = dsse.verify_statement(body, digest=sha256_digest(layout), what=where)
    if statement.predicate_type != PREDICATE_TYPE:
        raise VerificationError(
            f"{where}: a {statement.predicate_type} statement, not a transfer index", hint=_HINT
        )
    return _parse(statement.predicate, where)


def _parse(predicate: Any, where: str) -> TransferIndex:
    document = _object(predicate, where)
    images = document.get("images")
    blobs = document.get("blobs")
    if not isinstance(images, list) or not images or not isinstance(blobs, list):
        raise VerificationError(f"{where}: no images, or no list of blobs", hint=_HINT)
    sizes: dict[str, int] = {}
    for entry in blobs:
        blob = _object(entry, f"{where}: a blob")
        sizes[_text(blob, "digest", _DIGEST.fullmatch, where)] = _size(blob.get("size"), where)
    shipped = tuple(_image(_object(entry, f"{where}: an image"), where) for entry in images)
    return TransferIndex(
        project=_text(document, "project", _is_identifier, where),
        environment=_text(document, "environment", _is_identifier, where),
        created=_text(document, "created", _CREATED.fullmatch, where),
        images=shipped,
        blobs=sizes,
    )


def _image(entry: Mapping[str, Any], where: str) -> Shipped:
    image = _text(entry, "image", _REF.fullmatch, where)
    at = f"{where}: {image}"
    evidence = []
    for kind in _KINDS:
        value = entry.get(kind)
        evidence.append(None if value is None else _manifest(value, f"{at}: {kind}"))
    return Shipped(
        image=image,
        name=_text(entry, "name", _is_image_name, at),
        version=_text(entry, "version", is_semver, at),
        tag=_text(entry, "tag", _TAG.fullmatch, at),
        repository=_text(entry, "repository", _REPOSITORY.fullmatch, at),
        manifest=_manifest(entry.get("manifest"), f"{at}: manifest"),
        signatures=evidence[0],
        attestations=evidence[1],
    )


def _manifest(value: Any, where: str) -> Manifest:
    entry = _object(value, where)
    media_type = entry.get("mediaType")
    if not isinstance(media_type, str) or len(media_type) > 255:
        raise VerificationError(f"{where}: no mediaType", hint=_HINT)
    return Manifest(
        _text(entry, "digest", _DIGEST.fullmatch, where),
        media_type,
        _size(entry.get("size"), where),
    )


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise VerificationError(f"{where} is not an object", hint=_HINT)
    return value


def _text(entry: Mapping[str, Any], key: str, grammar: Callable[[str], object], where: str) -> str:
    """The text ``entry[key]``, where ``grammar`` holds for it."""
    value = entry.get(key)
    if not isinstance(value, str) or not grammar(value):
        raise VerificationError(
            f"{where}: {key} {json.dumps(value)[:80]} is not what the format allows", hint=_HINT
        )
    return value


def _conforms(adapter: TypeAdapter[str]) -> Callable[[str], bool]:
    """Whether a text passes the spec's ``adapter`` (its pattern and its length)."""

    def check(value: str) -> bool:
        try:
            adapter.validate_python(value)
        except ValidationError:
            return False
        return True

    return check


_is_image_name = _conforms(TypeAdapter(ImageName))
_is_identifier = _conforms(TypeAdapter(Identifier))


def _size(value: Any, where: str) -> int:
    if type(value) is not int or value < 0:
        raise VerificationError(f"{where}: a size {value!r} is not a byte count", hint=_HINT)
    return value
