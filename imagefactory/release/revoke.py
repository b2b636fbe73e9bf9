"""Revoke a digest: a signed lifecycle attestation (``status: revoked``) in every repository of
the image that holds it, so that the release gate, ``imagefactory verify`` and admission refuse
it wherever they read its evidence; with ``descendants``, every catalog image built on it too.

Descendants are found through the catalog (the images whose parent is the revoked one's): their
candidate digests are what state records of them (the built digest, each environment's, each
tested one) and what the tags of their repositories name; a candidate is a descendant when its
signed provenance names the revoked digest as its parent, or (an image without provenance) when
its ``org.opencontainers.image.base.digest`` label does (the label is in the image config, which
the digest covers). The walk goes on from each descendant found.

Written ahead like every release step: per digest an audit intent (action ``revoke``, with the
reason) before the first attestation, a done record after the last (a failed one with the
error). A revocation left open is completed by running it again (an attestation already written
is written once more: the log of a revocation is append-only). Nothing is rolled back: a GitOps
pin or a tag naming a revoked digest stays (HCP Packer's channel rollback breaks plans); the
blast radius (the environments that still hold it: state's records and the GitOps overlays)
is reported instead. ``status`` and ``gitops diff`` mark such pins from the audit log's revoke
records and the catalog's revocations file.

Each digest revoked is listed in the catalog's ``revocations.yaml`` too (``spec.revocations``):
an attestation can be dropped from the registry without the key, an entry of the catalog only
through a reviewed merge request, and the release gate refuses a listed digest whatever the
registry holds. The user commits the file. Per digest the order is: audit intent, attestations,
the entry (once: a digest already listed is not listed again), done; the file is checked before
the first intent, so that it takes the entries. One revocation at a time in the project (the
file is shared).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from imagefactory import git
from imagefactory.atomic import read_inside, write_atomically
from imagefactory.errors import UserError
from imagefactory.evidence import predicates
from imagefactory.evidence.keys import builders, signing_enabled, signing_key, verifying_key
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.evidence.verify import identities, verify_digest
from imagefactory.gitops.drift import pinned_digests
from imagefactory.project.naming import BASE_DIGEST_LABEL, repository
from imagefactory.project.paths import audit_log, state_file
from imagefactory.project.state import State, load_state, unwritable
from imagefactory.registry.client import RegistryClient, registry_session
from imagefactory.release import audit
from imagefactory.release.audit import AuditRecord
from imagefactory.release.record import one_at_a_time, written_ahead
from imagefactory.release.yank import EVERY_ENVIRONMENT, MAX_REASON
from imagefactory.signing.keys import SigningKey, VerificationError, VerifyingKey
from imagefactory.signing.provenance import parent_of
from imagefactory.spec.catalog import Catalog, CatalogImage, is_application
from imagefactory.spec.grammar import CONTROL
from imagefactory.spec.revocations import (
    REVOCATIONS_FILE,
    Entry,
    Listed,
    appended,
    load_revocations,
    revocations_file,
)

REVOKE = "revoke"
NOTHING_REVOKED = "nothing was revoked"


@dataclass(frozen=True)
class Target:
    """One digest to revoke: the image, the digest, the repositories that hold it, and the
    revoked digest it descends from (None: the one the command names)."""

    image: CatalogImage
    digest: str
    places: tuple[Location, ...]
    parent: str | None = None


@dataclass(frozen=True)
class Revoked:
    ref: str
    digest: str
    repositories: tuple[str, ...]  # where the lifecycle attestation is (or would be) written
    parent: str | None  # the revoked digest it was built on; None: the one named
    audit_id: str | None  # None: a dry run
    listed: str | None  # where revocations.yaml lists it (FILE:LINE); None: a dry run
    added: bool  # listed by this run (False: it was already, or a dry run)


@dataclass(frozen=True)
class Pin:
    """An environment that still holds a revoked digest, and who says so (state, gitops)."""

    ref: str
    digest: str
    env: str
    source: str  # "state" | "gitops"


@dataclass(frozen=True)
class Revocation:
    reason: str
    revoked: tuple[Revoked, ...]
    pinned: tuple[Pin, ...]  # the blast radius
    completed: tuple[str, ...]  # earlier revoke intents of these digests this run closed

    @property
    def to_commit(self) -> str | None:
        """The catalog file this run changed, for the user to commit; None: it changed none."""
        return REVOCATIONS_FILE if any(r.added for r in self.revoked) else None


def revoke(
    catalog: Catalog,
    ref: str,
    digest: str,
    reason: str | None,
    *,
    descendants: bool,
    dry_run: bool,
) -> Revocation:
    """Revoke ``digest`` of image ``ref`` (and, with ``descendants``, every catalog image built
    on it, recursively) for ``reason``: a signed lifecycle attestation into every repository
    that holds each digest, written ahead in the audit log; and the blast radius."""
    why = (reason or "").strip()
    if not why or CONTROL.search(why) or len(why) > MAX_REASON:
        raise UserError(
            f"a revocation needs a reason (one line of at most {MAX_REASON} characters): why "
            f"must {ref}@{digest} never be deployed?",
            hint=f"imagefactory revoke {ref}@{digest} --reason 'CVE-… in libfoo, INC-42'",
        )
    if not signing_enabled(catalog):
        raise UserError(
            "a revocation is a signed lifecycle attestation, and this project signs nothing",
            hint=f"configure signing: in {catalog.project_file.name} (docs/supply-chain.md)",
        )
    image = catalog.one(ref)
    key = None if dry_run else _key(catalog)
    public = verifying_key(catalog)
    state = load_state(state_file(catalog))
    registries = list({r.url: r for r in catalog.project.registries.values()}.values())
    with registry_session(catalog, registries) as client:
        places = _holding(client, _locations(catalog, image), digest)
        if not places:
            raise UserError(
                f"no repository of {image.ref} holds {digest}",
                hint=f"the digests each environment holds: imagefactory status {image.ref}",
            )
        targets = [Target(image, digest, places)]
        if descendants:
            lookup = _RegistryLineage(catalog, client, state, public)
            targets += search(catalog, image, digest, lookup)
        pinned = blast_radius(catalog, state, [(t.image, t.digest) for t in targets])
        if dry_run:
            revoked = tuple(_revoked(t, None, None) for t in targets)
            return Revocation(why, revoked, pinned, ())
        assert key is not None
        with one_at_a_time(catalog, REVOKE, REVOCATIONS_FILE):
            _check_listable(catalog, targets, why)
            pending = _open(catalog, targets)
            done = tuple(_write(catalog, client, key, t, why, state) for t in targets)
            _close(catalog, pending)
    return Revocation(why, done, pinned, tuple(i.id for i in pending))


def _key(catalog: Catalog) -> SigningKey:
    key = signing_key(catalog)
    if key is None:
        settings = catalog.project.signing
        variable = settings.private_key_env if settings else "IMAGEFACTORY_SIGNING_KEY"
        raise UserError(
            "a revocation is signed, and the signing key is not set",
            hint=f"set {variable} (the PEM private key, or a file holding it); "
            "--dry-run shows what would be revoked without it",
        )
    return key


def _locations(catalog: Catalog, image: CatalogImage) -> list[Location]:
    """Every repository of ``image``: one per registry of the project (the environments' and
    so the build registry), each once."""
    found: dict[str, Location] = {}
    for registry in catalog.project.registries.values():
        place = Location(registry, repository(registry, image.spec.name))
        found.setdefault(place.repository, place)
    return list(found.values())


def _holding(
    client: RegistryClient, places: Iterable[Location], digest: str
) -> tuple[Location, ...]:
    return tuple(
        p for p in places if client.digest(p.registry, f"{p.repository}@{digest}") is not None
    )


class Lineage(Protocol):
    """What the descendant search asks: an image's candidate digests, the repositories that
    hold one, and the parent digest it was built on (None: unknown)."""

    def candidates(self, image: CatalogImage) -> Sequence[str]: ...

    def holders(self, image: CatalogImage, digest: str) -> tuple[Location, ...]: ...

    def parent(
        self, image: CatalogImage, digest: str, places: Sequence[Location]
    ) -> str | None: ...


def search(catalog: Catalog, image: CatalogImage, digest: str, lookup: Lineage) -> list[Target]:
    """Every descendant of ``image`` at ``digest``, breadth first: each catalog child's
    candidate digest whose parent (``lookup.parent``) is a revoked digest, and theirs in turn."""
    found: list[Target] = []
    queue = [(image, digest)]
    seen = {(image.ref, digest)}
    while queue:
        parent, parent_digest = queue.pop(0)
        for child in (i for i in catalog.images.values() if i.parent_ref == parent.ref):
            for candidate in lookup.candidates(child):
                if (child.ref, candidate) in seen:
                    continue
                places = lookup.holders(child, candidate)
                if places and lookup.parent(child, candidate, places) == parent_digest:
                    seen.add((child.ref, candidate))
                    found.append(Target(child, candidate, places, parent_digest))
                    queue.append((child, candidate))
    return found


@dataclass
class _RegistryLineage:
    """The descendant search against the registries and state."""

    catalog: Catalog
    client: RegistryClient
    state: State
    key: VerifyingKey

    def candidates(self, image: CatalogImage) -> list[str]:
        found: dict[str, None] = {}
        record = self.state.images.get(image.ref)
        if record is not None:
            known = [record.digest, *(e.digest for e in record.environments.values())]
            found.update(dict.fromkeys(d for d in [*known, *record.test_runs] if d))
        for place in _locations(self.catalog, image):
            for tag in self.client.tags(place.registry, place.repository):
                if tag.startswith("sha256-"):  # .sig, .att and the like: evidence, not images
                    continue
                held = self.client.digest(place.registry, f"{place.repository}:{tag}")
                if held is not None:
                    found[held] = None
        return list(found)

    def holders(self, image: CatalogImage, digest: str) -> tuple[Location, ...]:
        return _holding(self.client, _locations(self.catalog, image), digest)

    def parent(self, image: CatalogImage, digest: str, places: Sequence[Location]) -> str | None:
        """The parent the signed provenance of ``digest`` names; without one, its label's."""
        for place in places:
            try:
                verified = verify_digest(
                    EvidenceStore(self.client, place),
                    digest,
                    self.key,
                    identities=identities(
                        self.catalog.project.registries.values(), place.repository
                    ),
                    builders=builders(self.catalog),
                )
            except VerificationError:
                continue  # unsigned, or built before signing: the label says
            for predicate in verified.predicates(predicates.PROVENANCE):
                try:
                    return parent_of(predicate)
                except ValueError:
                    continue
        place = places[0]
        label = self.client.label(place.registry, f"{place.repository}@{digest}", BASE_DIGEST_LABEL)
        return label or None


def blast_radius(
    catalog: Catalog, state: State, targets: Sequence[tuple[CatalogImage, str]]
) -> tuple[Pin, ...]:
    """The environments that still hold each of ``targets``: state's environment records, and
    the GitOps overlays of applications (a fresh clone, when gitops.yaml exists)."""
    pins = []
    for image, digest in targets:
        record = state.images.get(image.ref)
        for env, held in record.environments.items() if record else []:
            if held.digest == digest:
                pins.append(Pin(image.ref, digest, env, "state"))
    if any(is_application(image.spec.name) for image, _ in targets):
        wanted = {(image.ref, digest) for image, digest in targets}
        pins += [
            Pin(p.image, p.digest, p.env, "gitops")
            for p in pinned_digests(catalog)
            if (p.image, p.digest) in wanted
        ]
    return tuple(pins)


def _revoked(target: Target, audit_id: str | None, listed: tuple[Listed, bool] | None) -> Revoked:
    return Revoked(
        target.image.ref,
        target.digest,
        tuple(p.repository for p in target.places),
        target.parent,
        audit_id,
        listed[0].location if listed else None,
        listed[1] if listed else False,
    )


def _entry(target: Target, reason: str, by: str, at: datetime) -> Entry:
    """The catalog entry of ``target``; a UserError (nothing written) when it cannot be one."""
    try:
        return Entry(
            image=target.image.ref,
            digest=target.digest,
            reason=reason,
            by=by,
            at=at.replace(microsecond=0),
            built_on=target.parent,
        )
    except ValidationError as exc:
        raise UserError(
            f"{target.image.ref}@{target.digest} cannot be listed in {REVOCATIONS_FILE}: "
            + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()),
            hint="who revokes is named by GITLAB_USER_LOGIN in CI, else USER: one line of at "
            "most 200 characters",
        ) from exc


def _check_listable(catalog: Catalog, targets: Sequence[Target], reason: str) -> None:
    """Refuse, before anything is written, a revocations file that does not load or that the
    entries of ``targets`` cannot be appended to."""
    revocations = load_revocations(catalog)
    now = datetime.now(UTC)
    entries = [_entry(t, reason, audit.actor(), now) for t in targets]
    appended(revocations.path, _text(catalog), entries)


def _text(catalog: Catalog) -> str | None:
    data = read_inside(catalog.root, REVOCATIONS_FILE)
    return None if data is None else data.decode("utf-8")


def _list(catalog: Catalog, entry: Entry, intent: AuditRecord) -> tuple[Listed, bool]:
    """``entry`` in the catalog's revocations file (appended, unless already listed), and
    whether this added it. A failure leaves ``intent`` open, its attestations written."""
    path = revocations_file(catalog)
    then = (
        f"the revocation of {intent.image}@{intent.digest} is attested, and the audit log holds "
        f"its intent {intent.id} without its done record: run `{intent.command()}` again to "
        "complete it"
    )
    try:
        found = load_revocations(catalog).entry(entry.image, entry.digest)
        if found is not None:
            return found, False
        text = appended(path, _text(catalog), [entry])
        write_atomically(path, text.encode("utf-8"), mode=0o644, root=catalog.root)
        added = load_revocations(catalog).entry(entry.image, entry.digest)
    except OSError as exc:
        raise unwritable(path, exc, then) from exc
    except UserError as exc:
        raise UserError(exc.message, hint=f"{exc.hint or 'fix it'}; {then}") from exc
    assert added is not None  # appended() read it back
    return added, True


def _open(catalog: Catalog, targets: Sequence[Target]) -> list[AuditRecord]:
    """The revoke intents of these digests left open by an earlier run (a crash, a kill)."""
    wanted = {(t.image.ref, t.digest) for t in targets}
    return [
        i
        for i in audit.interrupted(audit_log(catalog))
        if i.action == REVOKE and (i.image, i.digest) in wanted
    ]


def _write(
    catalog: Catalog,
    client: RegistryClient,
    key: SigningKey,
    target: Target,
    reason: str,
    state: State,
) -> Revoked:
    """The lifecycle attestation of ``target`` in each repository that holds it and its entry
    in the catalog's revocations file, written ahead: intent, attestations, entry, done."""
    why = reason
    if target.parent is not None:
        why = f"{reason} (built on the revoked {target.parent})"
    record = state.images.get(target.image.ref)
    versions = sorted(
        {
            e.version
            for e in (record.environments.values() if record else [])
            if e.digest == target.digest
        }
    )
    intent = audit.new_record(
        action=REVOKE,
        image=target.image.ref,
        version=", ".join(versions),
        digest=target.digest,
        source=EVERY_ENVIRONMENT,
        target=EVERY_ENVIRONMENT,
        tags=[],
        git_revision=git.revision(catalog.root),
        approver=None,
        registries=sorted(
            name
            for name, registry in catalog.project.registries.items()
            if any(p.registry == registry for p in target.places)
        ),
        reason=why,
    )
    now = datetime.now(UTC)
    entry = _entry(target, reason, intent.who, now)
    predicate = predicates.lifecycle_predicate(revoked=True, reason=why, by=intent.who, at=now)
    with written_ahead(catalog, intent, nothing=NOTHING_REVOKED):
        for place in target.places:
            EvidenceStore(client, place).attest(target.digest, predicates.LIFECYCLE, predicate, key)
    listed = _list(catalog, entry, intent)
    _append(catalog, audit.follow_up(intent, audit.DONE), intent)
    return _revoked(target, intent.id, listed)


def _close(catalog: Catalog, pending: Sequence[AuditRecord]) -> None:
    """Close the earlier open intents of the digests just revoked: they are done now."""
    for intent in pending:
        _append(catalog, audit.follow_up(intent, audit.DONE), intent)


def _append(catalog: Catalog, record: AuditRecord, intent: AuditRecord) -> None:
    path = audit_log(catalog)
    try:
        audit.append(path, record)
    except OSError as exc:
        then = (
            f"the revocation of {intent.image}@{intent.digest} is attested, and the audit log "
            f"holds its intent {intent.id} without its done record"
        )
        raise unwritable(path, exc, then) from exc


def revocations(
    catalog: Catalog, done: list[dict[str, Any]] | None = None
) -> dict[tuple[str, str], str]:
    """(image, digest) → why, for every revocation this checkout's audit log records as done
    (``done``: its done records, when the caller read them already) and every entry of the
    catalog's revocations file (what ``status`` and ``gitops diff`` mark; the gate reads the
    registry's attestations and the file)."""
    found = {
        (str(line["image"]), str(line["digest"])): str(line.get("reason") or "")
        for line in (audit.completed(audit_log(catalog)) if done is None else done)
        if line.get("action") == REVOKE
    }
    for item in load_revocations(catalog).listed:
        found.setdefault((item.entry.image, item.entry.digest), item.entry.reason)
    return found
