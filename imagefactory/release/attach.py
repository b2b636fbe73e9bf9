"""The evidence a push or promotion carries along, written around its tags (inside the step's
write-ahead, so that ``resume`` completes it too): for each repository the step writes the digest
to, the digest's signatures and attestations copied from where it came from (``.sig`` and
``.att``, merged into what the target holds: skopeo does not carry ``.att``) and a signature with
the target's identity, all BEFORE the tags are written, so whoever pulls a new tag (admission
too) finds the digest signed; then the tags; then the release attestation (environment, version,
tags, who, approver, from where), AFTER them: a step whose tags lose a race (an immutable tag
taken meanwhile) attests no release. Nothing without ``signing:``, or without the key where
``signing.required`` is off (then only the tags are written).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from imagefactory.evidence import predicates
from imagefactory.evidence.keys import builders, signing_enabled, signing_key, verifying_key
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.evidence.verify import Verified, refuse_listed, verify_chain
from imagefactory.parallel import at_once
from imagefactory.registry.client import RegistryClient
from imagefactory.release import audit
from imagefactory.release.record import Release, Step
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.revocations import Revocations


def attach_release(
    catalog: Catalog,
    client: RegistryClient,
    source: Location,
    step: Step,
    release: Release,
    write_tags: Callable[[], None],
) -> None:
    """Copy ``release``'s digest's evidence from ``source`` into each repository its tags go
    to and sign the digest there, then ``write_tags``, then attest the release ``step`` made
    (only ``write_tags`` when nothing is signed)."""
    key = signing_key(catalog)
    if key is None:
        write_tags()
        return
    origin = EvidenceStore(client, source)
    targets = sorted({(c.registry, c.repository) for c in release.changes})
    stores = [
        EvidenceStore(client, Location(catalog.project.registries[name], repository))
        for name, repository in targets
    ]

    def carry(store: EvidenceStore) -> None:
        if store.location != source:
            origin.copy_to(release.digest, store, sign=key)
        else:
            store.sign(release.digest, key)

    at_once([partial(carry, store) for store in stores])
    write_tags()
    predicate = predicates.release_predicate(
        environment=step.target,
        version=release.version,
        tags=sorted({change.tag for change in release.changes}),
        identity=step.identity or audit.actor(),
        approver=step.approver,
        from_environment=None if step.action == "push" else step.source,
        at=datetime.now(UTC),
    )
    # every repository at once: each append waits for its own read-back to settle
    at_once(
        [
            partial(store.attest, release.digest, predicates.RELEASE, predicate, key)
            for store in stores
        ]
    )


def verified_chain(
    catalog: Catalog, client: RegistryClient, origin: Location, digest: str, listed: Revocations
) -> Verified | None:
    """``digest``'s evidence at ``origin``, verified down the chain of its parents to the
    bootstrap, none revoked there nor in ``listed`` (the catalog's revocations.yaml, as the
    step read it for its gate; a ``VerificationError`` otherwise); None: nothing to check without ``signing:``."""
    if not signing_enabled(catalog):
        return None
    chain = verify_chain(
        client,
        list(catalog.project.registries.values()),
        origin,
        digest,
        verifying_key(catalog),
        builders=builders(catalog),
    )
    for parent in chain[1:]:
        refuse_listed(listed, parent.digest, f"its parent {parent.repository}@{parent.digest}")
    return chain[0]
