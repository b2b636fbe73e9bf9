"""The evidence bundle: everything the registry and the audit log hold about one digest, in one
JSON file that is checked offline, with the public key alone (docs/supply-chain.md).

The file (``FORMAT``) holds the image, the environment and the repository it was read from, the
digest; the ``.sig`` and ``.att`` manifests of the digest (their bytes, base64, and their
digests); every blob they reference (base64, by digest: signature payloads, DSSE envelopes,
configs); the audit records of that image and digest; the verification summary (what the
evidence says: who signed for which repository, which attestations, the builder and the parent,
the test results, the releases, the scan verdicts, the revocations); and a seal.

The seal is a DSSE envelope, signed with the project's signing key when the bundle is made,
around an in-toto statement about the digest whose predicate (``SEAL_TYPE``) holds the sha256 of
each section of the bundle: the audit records are not signed in the registry, so the seal is what
makes an edited one fail. ``verify`` re-checks, in this order, the manifests against their
digests, every blob against its digest, the signatures and the attestations (signature, subject,
predicate type), that no attestation names a layer the ``.att`` manifest no longer holds
(``verify.check_previous``), the seal (which names the section edited after the bundle was made)
and the summary against the evidence; the summary lists the test runs by their signed time. The
bytes are deterministic: sorted keys, blobs by digest, audit records in log order, and the seal
signed with RFC 6979 deterministic ECDSA where the ``cryptography`` build has it (elsewhere the
seal alone differs between two exports).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from imagefactory.atomic import read_regular
from imagefactory.evidence.predicates import (
    LIFECYCLE,
    PROVENANCE,
    RELEASE,
    SCAN_VERDICT,
    TEST_RESULT,
    parse_lifecycle,
    parse_test_result,
)
from imagefactory.evidence.verify import Verified, check_previous, revocation
from imagefactory.signing import dsse, simplesigning
from imagefactory.signing.keys import (
    SigningKey,
    VerificationError,
    VerifyingKey,
    read_verifying_key,
)
from imagefactory.signing.oci import (
    ArtifactManifest,
    attestation_tag,
    parse_manifest,
    sha256_digest,
    signature_tag,
)
from imagefactory.signing.provenance import parent_of

FORMAT = "urn:imagefactory:evidence-bundle:v1"
SEAL_TYPE = "urn:imagefactory:predicate:evidence-bundle:v1"
#: The most bytes of a bundle read (SBOMs of large images are a few MiB; base64 adds a third).
BUNDLE_LIMIT = 512 * 1024 * 1024
_HINT = "make it again: imagefactory evidence IMAGE --env ENV --out FILE (never edit a bundle)"
#: The sections the seal covers, and how a message names them.
_SECTIONS = {
    "subject": "image, environment, repository or digest was",
    "signatures": ".sig manifest was",
    "attestations": ".att manifest was",
    "blobs": "blobs were",
    "audit": "audit records were",
    "summary": "verification summary was",
}


@dataclass(frozen=True)
class Contents:
    """What a bundle holds, as read from the registry and the audit log."""

    image: str  # the catalog ref
    environment: str
    repository: str  # HOST/PATH the evidence was read from
    digest: str
    signatures: ArtifactManifest  # the .sig manifest (no layers: no tag)
    attestations: ArtifactManifest  # the .att manifest (no layers: no tag)
    blobs: Mapping[str, bytes]  # every layer's blob, by digest
    audit: Sequence[Mapping[str, Any]]  # the audit lines of this image and digest, as written


@dataclass(frozen=True)
class Report:
    """A bundle that verified (it is intact): what it is about and what its evidence says;
    ``problems``, why that evidence does not make the digest releasable (revoked, its latest
    test run failed, no provenance, no release into the environment). ``ok``: none."""

    image: str
    environment: str
    repository: str
    digest: str
    summary: Mapping[str, Any]
    audit: tuple[Mapping[str, Any], ...]
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


class _Deterministic(SigningKey):
    """The signing key, signing with RFC 6979 nonces: the same bytes sign to the same seal."""

    def sign(self, data: bytes) -> bytes:
        try:
            return self.key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        except UnsupportedAlgorithm:  # an OpenSSL before 3.2: a valid, randomised signature
            return super().sign(data)


def export(contents: Contents, key: SigningKey) -> bytes:
    """The bundle of ``contents``, sealed with ``key``. The evidence is verified first with the
    key's public half (VerificationError: a bundle never holds evidence that does not verify)."""
    sections = _sections(contents, key.verifying_key())
    seal = dsse.envelope(
        _Deterministic(key.key, key.source),
        dsse.statement(contents.repository, contents.digest, SEAL_TYPE, _seal_predicate(sections)),
    )
    document = {
        "format": FORMAT,
        **sections["subject"],
        **{name: value for name, value in sections.items() if name != "subject"},
        "seal": base64.b64encode(seal).decode("ascii"),
    }
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def verify_file(path: Path, key_path: Path) -> Report:
    """``verify`` of the bundle in file ``path`` with the PEM public key in file ``key_path``:
    nothing else is read (no registry, no catalog)."""
    key = read_verifying_key(key_path)
    return verify(
        read_regular(path, what="evidence bundle", limit=BUNDLE_LIMIT), key, source=str(path)
    )


def verify(data: bytes, key: VerifyingKey, *, source: str) -> Report:
    """The report of the bundle ``data`` (read from ``source``, for messages) once everything in
    it verified with ``key``; VerificationError naming what does not, otherwise."""
    document = _document(data, source)
    subject = {name: _text(document, name, source) for name in _SUBJECT}
    digest, repository = subject["digest"], subject["repository"]
    blobs = _blobs(document.get("blobs"), source)
    signatures = _manifest(document, "signatures", signature_tag(digest), source)
    attestations = _manifest(document, "attestations", attestation_tag(digest), source)
    audit = document.get("audit")
    if not isinstance(audit, list) or not all(isinstance(line, dict) for line in audit):
        raise VerificationError(f"{source}: 'audit' is not a list of records", hint=_HINT)
    contents = Contents(
        subject["image"],
        subject["environment"],
        repository,
        digest,
        signatures,
        attestations,
        blobs,
        audit,
    )
    summary = _summary(contents, key, source)  # signatures and attestations, layer by layer
    _check_seal(document, key, source)
    if document.get("summary") != summary:  # sealed so by whoever holds the key
        raise VerificationError(
            f"{source}: the verification summary does not say what the evidence says",
            hint=_HINT,
        )
    return Report(
        subject["image"],
        subject["environment"],
        repository,
        digest,
        summary,
        tuple(audit),
        _problems(summary, subject["environment"]),
    )


def _problems(summary: Mapping[str, Any], environment: str) -> tuple[str, ...]:
    """Why the evidence of an intact bundle does not make its digest releasable."""
    problems = []
    if summary["revoked"]:
        problems.append("the digest is revoked")
    tests = summary["tests"]
    if not tests:
        problems.append("no test-result attestation: the digest was not tested")
    elif tests[-1]["result"] == "FAILED":
        problems.append("its latest test run failed")
    if not summary["provenance"]:
        problems.append("no provenance attestation")
    if not any(r.get("environment") == environment for r in summary["releases"]):
        problems.append(f"no release attestation puts the digest into {environment}")
    return tuple(problems)


_SUBJECT = ("image", "environment", "repository", "digest")


def _sections(contents: Contents, key: VerifyingKey) -> dict[str, Any]:
    """The bundle's sections (as the file holds them, and as the seal hashes them)."""
    manifests = {"signatures": contents.signatures, "attestations": contents.attestations}
    blobs = dict(contents.blobs)
    encoded: dict[str, Any] = {}
    for name, manifest in manifests.items():
        if not manifest.layers:
            encoded[name] = None
            continue
        data = manifest.manifest()
        config = manifest.config()
        blobs[sha256_digest(config)] = config
        encoded[name] = {
            "digest": sha256_digest(data),
            "manifest": base64.b64encode(data).decode("ascii"),
        }
    referenced = {layer.digest for manifest in manifests.values() for layer in manifest.layers} | {
        sha256_digest(m.config()) for m in manifests.values() if m.layers
    }
    return {
        "subject": {
            "image": contents.image,
            "environment": contents.environment,
            "repository": contents.repository,
            "digest": contents.digest,
        },
        **encoded,
        "blobs": {
            digest: base64.b64encode(blobs[digest]).decode("ascii")
            for digest in sorted(referenced)
            if digest in blobs
        },
        "audit": [dict(line) for line in contents.audit],
        "summary": _summary(contents, key, contents.repository),
    }


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _seal_predicate(sections: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "sections": {name: sha256_digest(_canonical(sections[name])) for name in _SECTIONS},
    }


def _check_seal(document: Mapping[str, Any], key: VerifyingKey, source: str) -> None:
    """The seal verifies with ``key``, is about the bundle's digest, and every section hashes to
    what it says; VerificationError naming the first section that does not."""
    where = f"{source}: the seal"
    envelope = _decode(document.get("seal"), where)
    body = dsse.open_envelope(envelope, key, what=where)
    sealed = dsse.verify_statement(body, digest=str(document["digest"]), what=where)
    predicate = sealed.predicate
    if sealed.predicate_type != SEAL_TYPE or not isinstance(predicate, dict):
        raise VerificationError(f"{where} is not an evidence bundle seal", hint=_HINT)
    subject = {name: document.get(name) for name in _SUBJECT}
    found = {name: document.get(name) for name in _SECTIONS if name != "subject"}
    actual = _seal_predicate({"subject": subject, **found})["sections"]
    expected = predicate.get("sections")
    for name, words in _SECTIONS.items():
        if not isinstance(expected, dict) or expected.get(name) != actual[name]:
            raise VerificationError(
                f"{source}: the {words} changed after the bundle was sealed "
                f"(sha256 now {actual[name][7:19]}…, sealed {str((expected or {}).get(name))[7:19]}…)",
                hint=_HINT,
            )


def _summary(contents: Contents, key: VerifyingKey, source: str) -> dict[str, Any]:
    """What the evidence says, each signature and attestation layer verified with ``key``."""
    digest, blobs = contents.digest, contents.blobs
    identities = []
    for index, layer in enumerate(contents.signatures.layers):
        if layer.media_type != simplesigning.PAYLOAD_MEDIA_TYPE:
            continue
        signed = simplesigning.verify(
            ArtifactManifest((layer,)),
            blobs,
            key,
            digest=digest,
            what=f"{source}: the .sig manifest: layer {index}",
        )
        identities.append(signed.repository)
    if contents.repository not in identities:
        raise VerificationError(
            f"{source}: no signature of {digest} by {key.source} names {contents.repository}",
            hint="the digest was not signed for this repository (push and promote sign it)",
        )
    attested = dsse.verify(
        contents.attestations,
        blobs,
        key,
        digest=digest,
        what=f"{source}: the .att manifest",
    )
    holder = f"{contents.repository}:{attestation_tag(digest)} (as the bundle holds it)"
    check_previous(contents.attestations, attested, where=source, holder=holder)
    return summarize(
        Verified(digest, contents.repository, tuple(attested)), identities, len(contents.audit)
    )


def summarize(verified: Verified, identities: list[str], audit: int) -> dict[str, Any]:
    """What verified evidence says: the attestations by type, the provenance, the test runs
    (latest last), releases, scan verdicts and revocations (the bundle's summary)."""
    attested = verified.attestations

    def of(kind: str) -> list[dict[str, Any]]:
        return [
            a.predicate
            for a in attested
            if a.predicate_type == kind and isinstance(a.predicate, dict)
        ]

    counts: dict[str, int] = {}
    for attestation in attested:
        counts[attestation.predicate_type] = counts.get(attestation.predicate_type, 0) + 1
    provenance = []
    for predicate in of(PROVENANCE):
        try:
            parent = parent_of(predicate)
        except ValueError:
            parent = None
        provenance.append(
            {"builder": _field(predicate, "runDetails", "builder", "id"), "parent": parent}
        )
    latest = revocation(verified)  # the latest lifecycle record, by its signed time
    # the runs by their signed time (the order of the layers is not signed), the latest last
    runs = sorted(of(TEST_RESULT), key=lambda p: parse_test_result(p).at)
    lifecycle = [p for p in of(LIFECYCLE) if parse_lifecycle(p).revoked]
    return {
        "signed_for": sorted(set(identities)),
        "attestations": dict(sorted(counts.items())),
        "provenance": provenance,
        "tests": [{"result": p["result"], "at": p["at"]} for p in runs],
        "releases": [
            {
                name: p.get(name)
                for name in ("environment", "version", "from", "identity", "approver")
            }
            for p in of(RELEASE)
        ],
        "scans": [
            {name: p.get(name) for name in ("passed", "environment", "threshold", "at")}
            for p in of(SCAN_VERDICT)
        ],
        "revoked": latest is not None and latest.revoked,
        "revocations": [{"reason": p.get("reason"), "at": p.get("at")} for p in lifecycle],
        "audit_records": audit,
    }


def _field(value: Any, *path: str) -> Any:
    """``value[path[0]][path[1]]…``, None where a step is missing or not a map."""
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def _document(data: bytes, source: str) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise VerificationError(f"{source}: not a JSON document ({exc})", hint=_HINT) from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise VerificationError(
            f"{source}: not an imagefactory evidence bundle (format {FORMAT})", hint=_HINT
        )
    return document


def _text(document: Mapping[str, Any], name: str, source: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise VerificationError(f"{source}: '{name}' is missing or not a string", hint=_HINT)
    return value


def _decode(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise VerificationError(f"{what} is not base64 text", hint=_HINT)
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise VerificationError(f"{what} is not base64 ({exc})", hint=_HINT) from exc


def _blobs(value: Any, source: str) -> dict[str, bytes]:
    """Every blob, each checked against the digest it is filed under."""
    if not isinstance(value, dict):
        raise VerificationError(f"{source}: 'blobs' is not a map of digest to base64", hint=_HINT)
    blobs = {}
    for digest, text in value.items():
        data = _decode(text, f"{source}: the blob {digest}")
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise VerificationError(
                f"{source}: the blob {digest} does not match its digest (its bytes are {actual})",
                hint=_HINT,
            )
        blobs[digest] = data
    return blobs


def _manifest(document: Mapping[str, Any], name: str, tag: str, source: str) -> ArtifactManifest:
    """The ``name`` manifest (the ``tag`` of the digest), checked against its digest; an empty
    one when the bundle says there is none."""
    entry = document.get(name)
    if entry is None:
        return ArtifactManifest(())
    where = f"{source}: the {tag} manifest"
    if not isinstance(entry, dict):
        raise VerificationError(f"{where} is not a map of digest and manifest", hint=_HINT)
    data = _decode(entry.get("manifest"), where)
    if sha256_digest(data) != entry.get("digest"):
        raise VerificationError(
            f"{where} does not match its digest {entry.get('digest')} (its bytes are "
            f"{sha256_digest(data)})",
            hint=_HINT,
        )
    return parse_manifest(data, what=where)
