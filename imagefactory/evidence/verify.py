"""Verification of a digest's evidence, and of its chain of parents down to the bootstrap.

``verify_digest`` checks what one repository holds for one digest: a signature by the key over
that digest whose identity is one of the image's repositories, every attestation signed by the
key about that digest (one tampered layer fails the lot: never skipped), and the builder of
every provenance on the allow-list. ``verify_chain`` does that for the digest, then for the
parent its provenance names (in the parent's own repository), and so on down to a base built
without a parent (bounded: ``MAX_DEPTH``). A parent outside the project's registries (an
external image pinned by digest) ends the chain: imagefactory did not build it, and the
provenance that names it is signed. A revoked digest anywhere in the chain is refused.

Each attestation is signed, but the order and the set of the ``.att``'s layers are not, so
``verify_digest`` also refuses a digest whose attestation names under ``previous`` a layer the
``.att`` no longer holds (``check_previous``: a layer was removed). The limit, honestly: removing
the last layer(s), after which nothing was attested, leaves no trace in the registry alone (there
is no transparency log here); a re-appended old layer is harmless, as every reader takes the
latest record by its signed time (``predicates.latest``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imagefactory.evidence.predicates import (
    LIFECYCLE,
    PROVENANCE,
    Lifecycle,
    latest,
    parse_lifecycle,
    previous_of,
)
from imagefactory.evidence.store import Artifacts, EvidenceStore, Location
from imagefactory.project.naming import repository as repository_of
from imagefactory.registry.client import RegistryClient
from imagefactory.signing import dsse, provenance, simplesigning
from imagefactory.signing.dsse import VerifiedAttestation
from imagefactory.signing.keys import VerificationError, VerifyingKey
from imagefactory.signing.oci import ArtifactManifest, attestation_tag, signature_tag
from imagefactory.spec.models import Registry
from imagefactory.spec.revocations import Revocations

#: The most images one chain may have (an app on a runtime on a base is three).
MAX_DEPTH = 32
_PARENT_URI = "pkg:docker/"


class NoEvidence(VerificationError):
    """The repository holds no evidence of the digest at all: neither a ``.sig`` nor a
    ``.att``."""


@dataclass(frozen=True)
class Verified:
    """A digest whose evidence in ``repository`` verified: its attestations, in the order of
    the ``.att``'s layers (each signed by the key, its subject the digest; the order itself is
    not signed)."""

    digest: str
    repository: str
    attestations: tuple[VerifiedAttestation, ...]

    def predicates(self, predicate_type: str) -> tuple[Mapping[str, Any], ...]:
        """The predicates of ``predicate_type``, in the order of the layers."""
        return tuple(a.predicate for a in self.attestations if a.predicate_type == predicate_type)


def verify_digest(
    store: EvidenceStore,
    digest: str,
    key: VerifyingKey,
    *,
    identities: Collection[str],
    builders: Sequence[str],
) -> Verified:
    """The evidence ``store`` holds for ``digest``, verified (VerificationError otherwise):
    ``identities`` are the repositories a signature may name (the image's, in the project's
    registries), ``builders`` the builder ids a provenance may name (``builder_allowed``)."""
    where = f"{store.location.repository}@{digest}"
    artifacts = store.read(digest)
    if not artifacts.signatures.layers:
        unsigned = NoEvidence if not artifacts.attestations.layers else VerificationError
        raise unsigned(
            f"{where} is not signed: the registry holds no {signature_tag(digest)}",
            hint="imagefactory signs what it builds and pushes where signing: is set; is this "
            "the digest meant (a tag moved onto another digest names that one)?",
        )
    _signature(artifacts, key, digest, identities, where)
    attestations = dsse.verify(
        artifacts.attestations,
        artifacts.blobs,
        key,
        digest=digest,
        what=f"{where}: {attestation_tag(digest)}",
    )
    holder = f"{store.location.repository}:{attestation_tag(digest)}"
    check_previous(artifacts.attestations, attestations, where=where, holder=holder)
    for attestation in attestations:
        if not isinstance(attestation.predicate, dict):
            raise VerificationError(
                f"{where}: a {attestation.predicate_type} attestation's predicate is not an object"
            )
        if attestation.predicate_type == PROVENANCE:
            _check_builder(attestation.predicate, builders, where)
    return Verified(digest, store.location.repository, attestations)


def check_previous(
    manifest: ArtifactManifest,
    attestations: Sequence[VerifiedAttestation],
    *,
    where: str,
    holder: str,
) -> None:
    """VerificationError unless every layer an attestation of the ``.att`` ``manifest``
    (verified: ``attestations``, one per layer) names under ``previous`` is still one of its
    layers. ``where`` (the digest) and ``holder`` (the ``.att``) are for the message."""
    held = {layer.digest for layer in manifest.layers}
    for index, attestation in enumerate(attestations):
        named = previous_of(attestation.predicate_type, attestation.predicate)
        gone = next((layer for layer in named if layer not in held), None)
        if gone is not None:
            at = attestation.predicate.get("at")
            raise VerificationError(
                f"{where}: attestation {index} ({attestation.predicate_type}, at {at}) names "
                f"layer {gone} which {holder} no longer holds: a layer was removed",
                hint="whoever can write to the registry removed a signed attestation (a failed "
                "test run, a revocation, a verdict?): find out who; the image's other "
                "repositories may still hold it",
            )


def verify_chain(
    client: RegistryClient,
    registries: Collection[Registry],
    location: Location,
    digest: str,
    key: VerifyingKey,
    *,
    builders: Sequence[str],
) -> tuple[Verified, ...]:
    """``digest`` in ``location`` and every parent its provenance names, each verified in its
    own repository with the identities of that image in ``registries`` (the project's), none
    revoked; the digest first, the base last."""
    chain: list[Verified] = []
    top = f"{location.repository}@{digest}"
    for _ in range(MAX_DEPTH):
        try:
            verified = verify_digest(
                EvidenceStore(client, location),
                digest,
                key,
                identities=identities(registries, location.repository),
                builders=builders,
            )
            _not_revoked(verified)
            parent = _parent(verified)
        except VerificationError as exc:
            if not chain:
                raise
            raise VerificationError(
                f"{top}: in its chain of parents, {exc.message}", hint=exc.hint
            ) from None
        chain.append(verified)
        if parent is None:
            return tuple(chain)
        parent_location = _location(registries, parent[0])
        if parent_location is None:  # an external parent: not imagefactory's to verify
            return tuple(chain)
        location, digest = parent_location, parent[1]
    raise VerificationError(f"{top}: the chain of parents is longer than {MAX_DEPTH} images")


def identities(registries: Collection[Registry], repository: str) -> frozenset[str]:
    """The repositories of the image in ``repository`` across ``registries``: the identities
    its signatures may name (a promotion signs it for each)."""
    found = _location(registries, repository)
    if found is None:
        return frozenset({repository})
    name = repository.removeprefix(_prefix(found.registry))
    return frozenset({repository, *(repository_of(r, name) for r in registries)})


def builder_allowed(builder_id: str, builders: Sequence[str]) -> bool:
    """``builder_id`` is one of ``builders``, or starts with one ending in ``/`` or ``:``; any
    builder when ``builders`` is empty (signing.builders)."""
    if not builders:
        return True
    return any(
        builder_id == entry or (entry.endswith(("/", ":")) and builder_id.startswith(entry))
        for entry in builders
    )


def revocation(verified: Verified) -> Lifecycle | None:
    """The latest lifecycle record of a verified digest (by its time; of two at one time, the
    one written last), None when it has none. ``revoked`` on it says whether the digest is."""
    return latest(parse_lifecycle(p) for p in verified.predicates(LIFECYCLE))


def refuse_listed(listed: Revocations, digest: str, what: str) -> None:
    """A VerificationError when the catalog's revocations.yaml lists ``digest`` (``what``: how
    the message names it), whatever the registry holds: an entry's removal shows in review,
    a lifecycle layer's in no log."""
    entry = listed.of(digest)
    if entry is not None:
        raise VerificationError(
            f"{what} is revoked: {entry.entry.reason} (by {entry.entry.by}; listed in "
            f"{entry.location})"
        )


def _signature(
    artifacts: Artifacts,
    key: VerifyingKey,
    digest: str,
    allowed: Collection[str],
    where: str,
) -> simplesigning.VerifiedSignature:
    what = f"{where}: {signature_tag(digest)}"
    found = simplesigning.verify(
        artifacts.signatures, artifacts.blobs, key, digest=digest, what=what
    )
    if found.repository in allowed:
        return found
    for identity in sorted(allowed):  # another layer may be signed for an allowed identity
        try:
            return simplesigning.verify(
                artifacts.signatures,
                artifacts.blobs,
                key,
                digest=digest,
                repository=identity,
                what=what,
            )
        except VerificationError:
            continue
    raise VerificationError(
        f"{what}: signed by the key for {found.repository}, which is not one of this image's "
        f"repositories ({', '.join(sorted(allowed))})",
        hint="a signature names the repository it was made for: was this evidence copied from "
        "another image?",
    )


def _check_builder(predicate: Mapping[str, Any], builders: Sequence[str], where: str) -> None:
    try:
        builder_id = predicate["runDetails"]["builder"]["id"]
    except (KeyError, TypeError):
        builder_id = None
    if not isinstance(builder_id, str):
        raise VerificationError(f"{where}: a provenance names no runDetails.builder.id")
    if not builder_allowed(builder_id, builders):
        raise VerificationError(
            f"{where}: built by {builder_id}, which signing.builders does not allow "
            f"({', '.join(builders)})",
            hint="only images built by the allowed builders (CI runners) are trusted; add this "
            "builder to signing.builders if it is one of yours",
        )


def _not_revoked(verified: Verified) -> None:
    record = revocation(verified)
    if record is not None and record.revoked:
        raise VerificationError(
            f"{verified.repository}@{verified.digest} is revoked: {record.reason} "
            f"(by {record.by}, {record.at.isoformat()})",
            hint="a revoked digest, or an image built on one, is not released: build one on a "
            "fixed parent",
        )


def _parent(verified: Verified) -> tuple[str, str] | None:
    """(repository, digest) of the parent the provenance names; None for a base built without
    one. Every provenance of the digest must name the same parent."""
    where = f"{verified.repository}@{verified.digest}"
    provenances = verified.predicates(PROVENANCE)
    if not provenances:
        raise VerificationError(
            f"{where} has no provenance attestation",
            hint="imagefactory attests the provenance of what it builds; was it built elsewhere?",
        )
    parents = {_named_parent(p, where) for p in provenances}
    if len(parents) != 1:
        raise VerificationError(f"{where}: its provenances name different parents")
    return parents.pop()


def _named_parent(predicate: Mapping[str, Any], where: str) -> tuple[str, str] | None:
    try:
        digest = provenance.parent_of(predicate)
    except ValueError:
        raise VerificationError(f"{where}: a provenance is not imagefactory's") from None
    if digest is None:
        return None
    for dependency in predicate["buildDefinition"]["resolvedDependencies"]:
        if dependency.get("name") == "parent":
            uri = dependency.get("uri")
            repository, _, named = str(uri).removeprefix(_PARENT_URI).rpartition("@")
            if not str(uri).startswith(_PARENT_URI) or named != digest or not repository:
                raise VerificationError(
                    f"{where}: the provenance's parent uri {uri!r} is not "
                    f"{_PARENT_URI}<repository>@{digest}"
                )
            return repository, digest
    raise AssertionError("unreachable: parent_of found the parent")


def _location(registries: Collection[Registry], repository: str) -> Location | None:
    """The project registry ``repository`` lies in (the longest namespace that holds it)."""
    holding = [r for r in registries if repository.startswith(_prefix(r))]
    if not holding:
        return None
    return Location(max(holding, key=lambda r: len(_prefix(r))), repository)


def _prefix(registry: Registry) -> str:
    return repository_of(registry, "") + "/"
