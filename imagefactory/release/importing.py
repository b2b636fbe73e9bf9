"""``imagefactory import``: an archive of ``imagefactory export`` pushed into an environment's
registries, every digest preserved (docs/airgap.md).

Nothing of the archive is trusted before it is checked, and everything is checked before the
first request to a registry: its members (``registry.layout.read_layout``: a regular file, an
uncompressed tar of layout members only, bounded), the signed index (``evidence.transfer``:
signed by the project's key, about this ``index.json``), that the archive's blobs are exactly
the signed ones with the signed sizes, every blob's bytes against its digest, every manifest
tree complete, and each image one of the catalog's, under its own repository name and version
tag. A version tag the target holds for another digest is refused (write-once).

Then, per image, under its import lock and written ahead (an audit intent before the first
write; a failure closes it as failed, a crash leaves it open and the next import of the
archive completes it): blobs the registry lacks are streamed from the archive, manifests put
byte for byte (children first, the version tag last), the ``.sig``/``.att`` put as they are
(or, where the target holds other evidence of the digest, their layers appended to it), and
the evidence verified in the target (``verify_digest``: the signature, for the repository the
signed index names or one of the image's, every attestation, the builders; not revoked).
State then records the environment holding the digest, and the done record is appended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from imagefactory import git
from imagefactory.errors import UserError
from imagefactory.evidence import predicates
from imagefactory.evidence.keys import builders, signing_key, verifying_key
from imagefactory.evidence.store import BLOB_LIMIT, EvidenceStore, Location
from imagefactory.evidence.transfer import (
    SIGNED_INDEX,
    Manifest,
    Shipped,
    TransferIndex,
    open_index,
)
from imagefactory.evidence.verify import identities, refuse_listed, revocation, verify_digest
from imagefactory.project.naming import repository, variant_suffix
from imagefactory.project.paths import state_file
from imagefactory.project.state import ImageRecord, load_state
from imagefactory.registry.client import RegistryClient, registry_session
from imagefactory.registry.copy import Progress
from imagefactory.registry.layout import INDEX_FILE, Entry, LayoutReader, read_layout
from imagefactory.release import audit, gate
from imagefactory.release.environments import registries_of
from imagefactory.release.record import (
    failure_recorded,
    finish,
    one_at_a_time,
    released,
    written_ahead,
)
from imagefactory.release.resume import interrupted
from imagefactory.signing.keys import SigningKey, VerificationError, VerifyingKey
from imagefactory.signing.oci import parse_manifest
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.models import Registry
from imagefactory.spec.revocations import load_revocations

_HINT = "export it again (imagefactory export) and transfer it unchanged; never edit an archive"


@dataclass(frozen=True)
class Landed:
    """One image of the archive in the target: where, and what the import did there."""

    image: str
    version: str
    digest: str
    repositories: tuple[str, ...]  # HOST/PATH, one per registry of the environment
    action: str  # "import" | "keep" (every registry held it already) | "would import"
    audit_id: str | None = None


@dataclass(frozen=True)
class Imported:
    source: str  # the environment exported from
    environment: str
    images: tuple[Landed, ...]
    blobs: int
    size: int


@dataclass(frozen=True)
class Landing:
    """What every image of one import shares: the archive, its index, where it goes, who acts,
    who approved it, and the key to sign it with there (None: the project's key is not set and
    not required; the evidence then lands as it is)."""

    path: Path
    reader: LayoutReader
    index: TransferIndex
    env: str
    targets: list[tuple[str, Registry]]
    key: VerifyingKey
    signer: SigningKey | None
    identity: str
    approver: str | None
    progress: Progress


def import_archive(
    catalog: Catalog,
    path: Path,
    to_env: str,
    *,
    approve: bool,
    approver: str | None,
    dry_run: bool,
    progress: Progress,
) -> Imported:
    """Check the archive ``path`` whole, then push each image it holds into ``to_env``'s
    registries (``dry_run``: the same checks, and what would be pushed; nothing written). An
    environment with ``approval`` needs an approver (``approve``, ``approver``: as promote)."""
    _, env = catalog.environment(to_env)
    key = verifying_key(catalog)
    signer = signing_key(catalog)  # refused before anything is read where it must sign
    approved_by = gate.approver(env, catalog.root, approve=approve, named=approver)
    if env.approval:
        gate.require_approver(env, f"an import into {to_env}", approved_by)
    targets = registries_of(catalog, env)
    with read_layout(path, frozenset({SIGNED_INDEX})) as reader:
        index = _checked(catalog, reader, key, progress)
        landing = Landing(
            path, reader, index, to_env, targets, key, signer,
            gate.identity(catalog.root), approved_by, progress,
        )  # fmt: skip
        with registry_session(catalog, [r for _, r in targets]) as client:
            # every image's version tag checked before the first write
            held = {s.image: _refuse_other_digests(client, targets, s) for s in index.images}
            landed = []
            for shipped in index.images:
                digest = shipped.manifest.digest
                repos = tuple(repository(r, shipped.name) for _, r in targets)
                there = all(d == digest for d in held[shipped.image]) and not interrupted(
                    catalog, "import", shipped.image, to_env
                )
                if dry_run or there:
                    action = "keep" if there else "would import"
                    landed.append(Landed(shipped.image, shipped.version, digest, repos, action))
                    continue
                audit_id = _land(catalog, client, landing, shipped)
                landed.append(
                    Landed(shipped.image, shipped.version, digest, repos, "import", audit_id)
                )
    return Imported(
        index.environment, to_env, tuple(landed), len(index.blobs), sum(index.blobs.values())
    )


def _checked(
    catalog: Catalog, reader: LayoutReader, key: VerifyingKey, progress: Progress
) -> TransferIndex:
    """The signed index of ``reader``, once the archive holds exactly what it signs."""
    source = reader.source
    index = open_index(reader.file(SIGNED_INDEX), reader.file(INDEX_FILE), key, source=source)
    held = reader.blobs
    for digest in sorted(set(held) ^ set(index.blobs)):
        where = "holds" if digest in held else "lacks"
        raise VerificationError(
            f"{source} {where} the blob {digest}, which its signed index "
            f"{'does not list' if digest in held else 'lists'}",
            hint=_HINT,
        )
    entries = {entry.name: entry for entry in reader.entries()}
    listed = load_revocations(catalog)
    for shipped in index.images:
        _belongs(catalog, shipped, source)
        refuse_listed(listed, shipped.manifest.digest, f"{shipped.image}@{shipped.manifest.digest}")
        for tag, manifest in [(shipped.tag, shipped.manifest), *shipped.evidence()]:
            entry = entries.get(f"{shipped.name}:{tag}")
            if entry is None or not reader.lists(entry, _entry(shipped, manifest)):
                raise VerificationError(
                    f"{source}: index.json lists {shipped.name}:{tag} otherwise than the signed "
                    f"index ({manifest.digest})",
                    hint=_HINT,
                )
            reader.check_tree(_entry(shipped, manifest))
    for number, (digest, size) in enumerate(sorted(index.blobs.items()), 1):
        if held[digest] != size:
            raise VerificationError(
                f"{source}: the blob {digest} has {held[digest]} bytes, the signed index says {size}",
                hint=_HINT,
            )
        if size >= 1024 * 1024:
            progress(
                f"checking blob {number}/{len(index.blobs)} {digest[7:19]} {size / 1e6:.1f} MB"
            )
        reader.check_blob(digest, size)
    return index


def _belongs(catalog: Catalog, shipped: Shipped, source: str) -> None:
    image = catalog.images.get(shipped.image)
    if image is None:
        raise UserError(
            f"{source} holds {shipped.image}, which is not an image of this catalog",
            hint="import into a checkout of the catalog the archive was exported from",
        )
    tag = f"{shipped.version}{variant_suffix(image.spec.variant)}"
    if (shipped.name, shipped.tag) != (image.spec.name, tag):
        raise VerificationError(
            f"{source}: {shipped.image} is filed as {shipped.name}:{shipped.tag}, but this "
            f"catalog names it {image.spec.name}:{tag}",
            hint=_HINT,
        )


def _entry(shipped: Shipped, manifest: Manifest) -> Entry:
    return Entry(shipped.name, manifest.digest, manifest.media_type, manifest.size)


def _refuse_other_digests(
    client: RegistryClient, targets: list[tuple[str, Registry]], shipped: Shipped
) -> list[str | None]:
    """What each target registry holds under the version tag: nothing or this digest; a
    UserError when one holds another (a released version's tag is write-once)."""
    held = []
    for name, registry in targets:
        reference = f"{repository(registry, shipped.name)}:{shipped.tag}"
        digest = client.digest(registry, reference)
        if digest not in (None, shipped.manifest.digest):
            raise UserError(
                f"{reference} ({name}) holds {digest}, not {shipped.manifest.digest} of the "
                "archive: a released version's tag is never moved",
                hint="find out how another digest got that version there; nothing was written",
            )
        held.append(digest)
    return held


def _land(catalog: Catalog, client: RegistryClient, landing: Landing, shipped: Shipped) -> str:
    """Push ``shipped`` into every registry of the environment, sign it there and attest its
    release (with the key), verify it there, record it; the audit id."""
    digest = shipped.manifest.digest
    tags = [shipped.tag, *(tag for tag, _ in shipped.evidence())]
    with one_at_a_time(catalog, "import", shipped.image):
        pending = interrupted(catalog, "import", shipped.image, landing.env)
        if pending is not None and pending.digest == digest:
            intent, ahead = pending, failure_recorded(catalog, pending)
        else:
            intent = audit.new_record(
                action="import",
                image=shipped.image,
                version=shipped.version,
                digest=digest,
                source=landing.index.environment,
                target=landing.env,
                tags=sorted(tags),
                git_revision=git.revision(catalog.root),
                approver=landing.approver,
                identity=landing.identity,
                registries=sorted(name for name, _ in landing.targets),
                archive=str(landing.path),
            )
            ahead = written_ahead(catalog, intent)
        with ahead:
            for _, registry in landing.targets:
                _into(catalog, client, landing, shipped, registry)
        record = load_state(state_file(catalog)).images.get(shipped.image) or ImageRecord(
            content_hash="", inputs={}, version=shipped.version, name=shipped.name
        )
        finish(
            catalog,
            intent,
            record,
            update=released,
            written="the archive's images are pushed and verified",
        )
    return intent.id


def _into(
    catalog: Catalog,
    client: RegistryClient,
    landing: Landing,
    shipped: Shipped,
    registry: Registry,
) -> None:
    """``shipped`` into one registry: the manifest by digest (its blobs streamed), then its
    evidence, its signature for this repository, then the version tag, then the release
    attestation (as a promotion orders them: a new tag names a signed digest); verified."""
    digest, reader, progress = shipped.manifest.digest, landing.reader, landing.progress
    repo = repository(registry, shipped.name)
    progress(f"[{shipped.image}] {repo}@{digest}")
    entry = _entry(shipped, shipped.manifest)
    client.push_layout(reader, entry, registry, repo, digest, progress)
    _evidence(client, reader, registry, repo, shipped, progress)
    store = EvidenceStore(client, Location(registry, repo))
    if landing.signer is not None:
        store.sign(digest, landing.signer)
    client.tag(registry, repo, digest, shipped.tag)
    if landing.signer is not None:
        predicate = predicates.release_predicate(
            environment=landing.env,
            version=shipped.version,
            tags=[shipped.tag],
            identity=landing.identity,
            approver=landing.approver,
            from_environment=landing.index.environment,
            at=datetime.now(UTC),
        )
        store.attest(digest, predicates.RELEASE, predicate, landing.signer)
    _verified(catalog, EvidenceStore(client, store.location), landing.key, shipped)


def _evidence(
    client: RegistryClient,
    reader: LayoutReader,
    registry: Registry,
    repo: str,
    shipped: Shipped,
    progress: Progress,
) -> None:
    """The archive's ``.sig`` and ``.att`` of the digest in ``repo``: put byte for byte where
    the registry holds none (or the same), else their layers appended to what it holds."""
    for tag, manifest in shipped.evidence():
        held = client.digest(registry, f"{repo}:{tag}")
        if held == manifest.digest:
            continue
        if held is None:
            client.push_layout(reader, _entry(shipped, manifest), registry, repo, tag, progress)
            continue
        body, _ = reader.manifest(manifest.digest, manifest.media_type)
        layers = parse_manifest(body, what=f"{reader.source}: {tag}").layers
        items = [(layer, reader.blob(layer.digest, layer.size, BLOB_LIMIT)) for layer in layers]
        EvidenceStore(client, Location(registry, repo)).merge(tag, items)


def _verified(catalog: Catalog, store: EvidenceStore, key: VerifyingKey, shipped: Shipped) -> None:
    """The digest's evidence in ``store`` verifies, and the digest is not revoked."""
    digest, repo = shipped.manifest.digest, store.location.repository
    allowed = identities(catalog.project.registries.values(), repo) | {shipped.repository}
    verified = verify_digest(store, digest, key, identities=allowed, builders=builders(catalog))
    record = revocation(verified)
    if record is not None and record.revoked:
        raise VerificationError(
            f"{repo}@{digest} is revoked: {record.reason} (by {record.by})",
            hint="a revoked digest is not released: export a fixed version",
        )
