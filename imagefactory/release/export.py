"""``imagefactory export``: an environment's digests, with their evidence, in one OCI layout
archive for an air-gapped network (``imagefactory import`` on the other side; docs/airgap.md).

For each image the environment holds (as state records it; named ones, or all it holds), the
digest its first registry holds under the released version's tag, which must be the one state
records; not listed in revocations.yaml, and its evidence verified there as ``imagefactory
verify`` does (``evidence.verify.verify_digest``): an archive never carries a digest whose
evidence does not verify. Then the manifests, blobs and ``.sig``/``.att`` artifacts are
streamed into the archive (``registry.layout``), and the index of what it holds is signed with
the project's key (``evidence.transfer``). The archive is written beside ``out`` and renamed
into place once whole.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from imagefactory.errors import UserError
from imagefactory.evidence.keys import builders, signing_enabled, signing_key, verifying_key
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.evidence.transfer import (
    SIGNED_INDEX,
    Manifest,
    Shipped,
    TransferIndex,
    seal,
)
from imagefactory.evidence.verify import identities, refuse_listed, verify_digest
from imagefactory.project.naming import repository, variant_suffix
from imagefactory.project.paths import state_file
from imagefactory.project.state import EnvironmentRecord, load_state
from imagefactory.registry.client import RegistryClient, registry_session
from imagefactory.registry.copy import Progress
from imagefactory.registry.layout import Entry, LayoutWriter, layout_index
from imagefactory.release.environments import registries_of
from imagefactory.signing.keys import SigningKey
from imagefactory.signing.oci import attestation_tag, signature_tag
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.models import Registry
from imagefactory.spec.revocations import load_revocations


@dataclass(frozen=True)
class Planned:
    """One image to export: its version, the digest and where it is read from."""

    image: CatalogImage
    version: str
    tag: str
    repository: str
    digest: str
    evidence: tuple[str, ...]  # the .sig and .att tags the registry holds


@dataclass(frozen=True)
class Exported:
    environment: str
    images: tuple[Planned, ...]
    path: Path | None  # None: a dry run
    blobs: int = 0
    size: int = 0  # bytes of every blob together


def export_environment(
    catalog: Catalog,
    env_name: str,
    patterns: list[str],
    out: Path,
    *,
    dry_run: bool,
    progress: Progress,
) -> Exported:
    """Export what ``env_name`` holds of the images ``patterns`` name (none: every image it
    holds) into the archive ``out``; with ``dry_run``, what would be exported, checked the
    same way, nothing written."""
    _, env = catalog.environment(env_name)
    if not signing_enabled(catalog):
        raise UserError(
            "an air-gap archive carries signed evidence and a signed index, and this project "
            "signs nothing",
            hint=f"configure signing: in {catalog.project_file.name} (docs/supply-chain.md)",
        )
    key = signing_key(catalog)
    if key is None and not dry_run:
        raise UserError(
            "the archive's index is signed with the signing key, and it is not set",
            hint="export in the job that holds the key (its variable: signing.private_key_env)",
        )
    held = _held(catalog, env_name, patterns)
    _, registry = registries_of(catalog, env)[0]
    with registry_session(catalog, [registry]) as client:
        planned = tuple(
            _checked(catalog, client, registry, image, record) for image, record in held
        )
        if dry_run:
            return Exported(env_name, planned, None)
        assert key is not None
        return _write(catalog, client, registry, env_name, planned, out, progress, key)


def _held(
    catalog: Catalog, env_name: str, patterns: list[str]
) -> list[tuple[CatalogImage, EnvironmentRecord]]:
    state = load_state(state_file(catalog))
    found = []
    for image in catalog.select(patterns):
        record = state.images.get(image.ref)
        held = record.environments.get(env_name) if record else None
        if held is not None:
            found.append((image, held))
        elif patterns:
            raise UserError(
                f"state records no version of {image.ref} in {env_name}",
                hint=f"what each environment holds: imagefactory status {image.ref}",
            )
    if not found:
        raise UserError(
            f"state records no image in {env_name}: nothing to export",
            hint="promote images there first (imagefactory status shows what is where)",
        )
    return found


def _checked(
    catalog: Catalog,
    client: RegistryClient,
    registry: Registry,
    image: CatalogImage,
    held: EnvironmentRecord,
) -> Planned:
    repo = repository(registry, image.spec.name)
    tag = f"{held.version}{variant_suffix(image.spec.variant)}"
    digest = client.digest(registry, f"{repo}:{tag}")
    if digest != held.digest:
        raise UserError(
            f"{repo}:{tag} holds {digest or 'nothing'}, but state records {held.digest} there",
            hint="a released version's tag never moves: find out who wrote it; "
            f"imagefactory verify {image.ref} shows what the registry holds",
        )
    refuse_listed(load_revocations(catalog), digest, f"{image.ref}@{digest}")
    verify_digest(
        EvidenceStore(client, Location(registry, repo)),
        digest,
        verifying_key(catalog),
        identities=identities(catalog.project.registries.values(), repo),
        builders=builders(catalog),
    )
    tags = (signature_tag(digest), attestation_tag(digest))
    present = tuple(t for t in tags if client.digest(registry, f"{repo}:{t}") is not None)
    return Planned(image, held.version, tag, repo, digest, present)


def _write(
    catalog: Catalog,
    client: RegistryClient,
    registry: Registry,
    env_name: str,
    planned: tuple[Planned, ...],
    out: Path,
    progress: Progress,
    key: SigningKey,
) -> Exported:
    if out.is_symlink():
        raise UserError(f"{out} is a symlink: the archive is never written through one")
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.parent / f".{out.name}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        with os.fdopen(os.open(temp, flags, 0o644), "wb") as stream:
            writer = LayoutWriter(stream)
            entries: list[Entry] = []
            shipped = []
            for plan in planned:
                progress(f"[{plan.image.ref}] {plan.repository}@{plan.digest}")
                found: list[Manifest] = []
                for tag in (plan.tag, *plan.evidence):
                    own, listed = client.export_image(
                        registry,
                        plan.repository,
                        plan.digest if tag == plan.tag else tag,
                        writer,
                        f"{plan.image.spec.name}:{tag}",
                        progress,
                    )
                    entries.append(listed)
                    found.append(Manifest(own.digest, own.media_type, own.size))
                evidence = dict(zip(plan.evidence, found[1:], strict=True))
                shipped.append(
                    Shipped(
                        image=plan.image.ref,
                        name=plan.image.spec.name,
                        version=plan.version,
                        tag=plan.tag,
                        repository=plan.repository,
                        manifest=found[0],
                        signatures=evidence.get(signature_tag(plan.digest)),
                        attestations=evidence.get(attestation_tag(plan.digest)),
                    )
                )
            index = TransferIndex(
                project=catalog.project.project,
                environment=env_name,
                created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                images=tuple(shipped),
                blobs=dict(writer.blobs),
            )
            layout = layout_index(entries)
            writer.close(layout, {SIGNED_INDEX: seal(index, layout, key)})
            stream.flush()
            os.fsync(stream.fileno())
        temp.replace(out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return Exported(env_name, planned, out, len(index.blobs), sum(index.blobs.values()))
