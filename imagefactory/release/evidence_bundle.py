"""``imagefactory evidence``: the evidence bundle of the digest an environment holds, read from
that environment's first registry (the one its deployments pull from) and the audit log, checked
against the project's policy first (``evidence.verify.verify_digest``: the signature for that
repository, every attestation, the builder ids), sealed with the signing key
(``evidence.bundle``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imagefactory.atomic import write_atomically
from imagefactory.errors import UserError
from imagefactory.evidence import bundle
from imagefactory.evidence.keys import builders, signing_enabled, signing_key, verifying_key
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.evidence.verify import identities, verify_digest
from imagefactory.project.naming import repository
from imagefactory.project.paths import audit_log, state_file
from imagefactory.project.state import load_state
from imagefactory.registry.client import registry_session
from imagefactory.release import audit
from imagefactory.release.environments import registries_of
from imagefactory.spec.catalog import Catalog, CatalogImage


@dataclass(frozen=True)
class Exported:
    path: Path
    report: bundle.Report  # what the bundle written says, verified back


def export_evidence(
    catalog: Catalog, image: CatalogImage, env_name: str, out: Path, digest: str | None = None
) -> Exported:
    """Write the evidence bundle of ``digest`` of ``image`` (default: the digest state says
    ``env_name`` holds) as ``env_name``'s first registry keeps it, to ``out``."""
    if not signing_enabled(catalog):
        raise UserError(
            "an evidence bundle holds signatures and attestations, and this project signs nothing",
            hint=f"configure signing: in {catalog.project_file.name} (docs/supply-chain.md)",
        )
    _, env = catalog.environment(env_name)
    digest = digest or _held(catalog, image, env_name)
    key = signing_key(catalog)
    if key is None:
        raise UserError(
            "an evidence bundle is sealed with the signing key, and it is not set",
            hint="make bundles in the CI job that holds the key (its variable: "
            "signing.private_key_env)",
        )
    _, registry = registries_of(catalog, env)[0]
    place = Location(registry, repository(registry, image.spec.name))
    with registry_session(catalog, [registry]) as client:
        if client.digest(registry, f"{place.repository}@{digest}") is None:
            raise UserError(
                f"{place.repository} does not hold {digest}",
                hint=f"the digests each environment holds: imagefactory status {image.ref}",
            )
        store = EvidenceStore(client, place)
        verify_digest(
            store,
            digest,
            verifying_key(catalog),
            identities=identities(catalog.project.registries.values(), place.repository),
            builders=builders(catalog),
        )
        held = store.read(digest)
    records = [
        line
        for line in audit.read(audit_log(catalog))
        if (line.get("image"), line.get("digest")) == (image.ref, digest)
    ]
    contents = bundle.Contents(
        image.ref,
        env_name,
        place.repository,
        digest,
        held.signatures,
        held.attestations,
        held.blobs,
        records,
    )
    data = bundle.export(contents, key)
    write_atomically(out, data)
    return Exported(out, bundle.verify(data, key.verifying_key(), source=str(out)))


def _held(catalog: Catalog, image: CatalogImage, env_name: str) -> str:
    record = load_state(state_file(catalog)).images.get(image.ref)
    held = record.environments.get(env_name) if record else None
    if held is None:
        raise UserError(
            f"state records no digest of {image.ref} in {env_name}",
            hint=f"name the digest: imagefactory evidence {image.ref}@sha256:… --env {env_name}",
        )
    return held.digest
