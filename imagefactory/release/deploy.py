"""Deploy a released digest through the GitOps repository: ``imagefactory gitops update``
behind the release gate, and the pin a release makes once it is recorded.

``gitops update`` pins only a digest the environment's registry holds under a version tag
(``X.Y.Z<suffix>``), with the version read from that tag (never from image.yaml or state), and
only through ``gate.require``: a passing test run of exactly that digest (always, whatever
``release.require_tests`` lets a push do), a version not yanked, the environment's approval
rule (with ``signing:``, the gate reads the signed evidence the environment's registry holds
for the digest: ``evidence.RegistryEvidence``, and its chain of parents, none revoked:
``attach.verified_chain``). The pin is written ahead in the audit log (action ``pin``): the
intent before the GitOps repository is touched, then a done (or failed) record; the commit
names the intent's id. A refusal writes nothing: no audit record, no clone, no commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from imagefactory import git
from imagefactory.errors import UserError
from imagefactory.evidence.store import Location
from imagefactory.gitops import repo
from imagefactory.gitops.manifests import application
from imagefactory.gitops.pin import PinResult, pin_digest, pin_if_deployed
from imagefactory.gitops.update import check_digest
from imagefactory.project.naming import repository, variant_suffix
from imagefactory.project.paths import audit_log
from imagefactory.project.state import unwritable
from imagefactory.registry.client import RegistryClient, registry_session
from imagefactory.release import audit, gate
from imagefactory.release.attach import verified_chain
from imagefactory.release.audit import AuditRecord
from imagefactory.release.environments import registries_of, sibling_suffixes
from imagefactory.release.evidence import evidence_for
from imagefactory.release.record import Release, Shipped, written_ahead
from imagefactory.release.versioning import tag_versions
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.models import Environment
from imagefactory.spec.revocations import load_revocations

NOTHING_PINNED = "nothing was pinned"


@dataclass(frozen=True)
class Deployment:
    """One ``gitops update`` that passed the gate: what was pinned, as which version, approved
    by whom, under which audit record."""

    pin: PinResult
    version: str
    tag: str  # the version tag of the environment's registry that names the digest
    approver: str | None
    audit_id: str

    def as_dict(self) -> dict[str, object]:
        return {
            **self.pin.as_dict(),
            "version": self.version,
            "tag": self.tag,
            "approver": self.approver,
            "audit_id": self.audit_id,
        }


@dataclass(frozen=True)
class _Held:
    """Where the environment holds the digest: its first registry (the one the overlay's
    ``newName`` pulls from), by name, and the version tag naming the digest there."""

    registry: str
    version: str
    tag: str


def deploy(
    catalog: Catalog, ref: str, env_name: str, digest: str, *, approve: bool, approver: str | None
) -> Deployment:
    """Pin ``digest`` of the application ``ref`` in ``env_name``'s overlay, once the release
    gate let it through (``approve``, ``approver``: ``--approve`` and ``--approver``, read by
    ``gate.approver`` as for a promotion). Raises ``gate.Refused`` or UserError, having written
    nothing, when it may not go there."""
    check_digest(digest)
    _, env = catalog.environment(env_name)
    approved_by = gate.approver(env, catalog.root, approve=approve, named=approver)
    settings = repo.settings_for_run(catalog)
    settings.environment(env_name)
    image = application(catalog, ref)
    _, registry = registries_of(catalog, env)[0]
    with registry_session(catalog, [registry]) as client:
        held = _held(client, catalog, image, env, digest)
        # with signing:, the digest's chain of parents verified there too, none revoked
        where = Location(registry, repository(registry, image.spec.name))
        listed = load_revocations(catalog)
        verified_chain(catalog, client, where, digest, listed)
        candidate = gate.Candidate(image.ref, held.version, digest, env)
        gate.require(  # with signing:, the evidence the environment's registry holds
            evidence_for(catalog, client=client, at=registry),
            candidate,
            approver=approved_by,
            listed=listed,
            scan_required=env_name in catalog.project.scan.require,
        )
    intent = audit.new_record(
        action="pin",
        image=image.ref,
        version=held.version,
        digest=digest,
        source=env_name,
        target=env_name,
        tags=[held.tag],
        git_revision=git.revision(catalog.root),
        approver=approved_by,
        registries=[held.registry],
    )
    with written_ahead(catalog, intent, nothing=NOTHING_PINNED):
        pin = pin_digest(
            catalog,
            image.ref,
            env_name,
            digest,
            version=held.version,
            audit_id=intent.id,
            settings=settings,
        )
    path = audit_log(catalog)
    try:
        for record in _closed_by(path, intent):
            audit.append(path, record)
    except OSError as exc:
        then = f"the pin is made, and the audit log holds its intent {intent.id} without its done record"
        raise unwritable(path, exc, then) from exc
    return Deployment(pin, held.version, held.tag, approved_by, intent.id)


def _closed_by(path: Path, intent: AuditRecord) -> list[AuditRecord]:
    """The records a pin made under ``intent`` appends: its done record, and one for each pin
    of that image into that environment left open before (a crash, a kill): done when it was
    this very digest, failed (superseded) when it was another."""
    earlier = [
        i
        for i in audit.interrupted(path)
        if i.action == intent.action
        and (i.image, i.target) == (intent.image, intent.target)
        and i.id != intent.id
    ]
    return [
        audit.follow_up(intent, audit.DONE),
        *(
            audit.follow_up(i, audit.DONE)
            if i.digest == intent.digest
            else audit.follow_up(i, audit.FAILED, f"superseded by the pin {intent.id}")
            for i in earlier
        ),
    ]


def _held(
    client: RegistryClient, catalog: Catalog, image: CatalogImage, env: Environment, digest: str
) -> _Held:
    """The highest version tag under which ``env``'s first registry holds ``digest`` of
    ``image``; a UserError when it holds the digest under none."""
    name, registry = registries_of(catalog, env)[0]
    repo_name = repository(registry, image.spec.name)
    suffix = variant_suffix(image.spec.variant)
    if client.digest(registry, f"{repo_name}@{digest}") is None:
        raise UserError(
            f"{env.name}'s registry ({name}) does not hold {repo_name}@{digest}",
            hint=f"only a digest pushed or promoted to {env.name} is pinned there: "
            f"imagefactory status {image.ref} lists what each environment holds",
        )
    versions = tag_versions(
        client.tags(registry, repo_name), suffix, sibling_suffixes(catalog, image)
    )
    for version in reversed(versions):
        tag = f"{version}{suffix}"
        if client.digest(registry, f"{repo_name}:{tag}") == digest:
            return _Held(name, str(version), tag)
    raise UserError(
        f"{repo_name}@{digest} is in {env.name}'s registry ({name}) under no version tag "
        f"(X.Y.Z{suffix})",
        hint="a digest gets its version when it is pushed or promoted: imagefactory push, "
        "imagefactory promote",
    )


def pin_release(
    catalog: Catalog, release: Release, env_name: str, *, done: Literal["pushed", "promoted"]
) -> Shipped:
    """``release`` (a push into the first environment, a promotion into the next), pinned in
    ``env_name``'s overlay when gitops.yaml deploys the image there; nothing is pinned when it
    does not, when nothing was recorded (a dry run, nothing to do), or when the version is
    yanked by now (the gate's evidence is read again right before the pin; ``not_pinned``
    says so). The release already passed the gate; the caller holds its lock. A pin that fails
    is a UserError that says the release itself is recorded, and how to pin it again."""
    if release.audit_id is None:
        return Shipped(release, None)
    yank = evidence_for(catalog).yank_of(release.ref, release.version)
    if yank is not None:
        return Shipped(release, None, not_pinned=f"yanked since: {yank.reason} (by {yank.by})")
    try:
        pin = pin_if_deployed(
            catalog,
            release.ref,
            env_name,
            release.digest,
            version=release.version,
            audit_id=release.audit_id,
        )
    except UserError as exc:
        _, env = catalog.environment(env_name)
        raise UserError(
            f"{release.ref} {release.version} was {done} to {env_name} (audit record "
            f"{release.audit_id}), but pinning it in the GitOps repo failed: {exc.message}",
            hint="fix that, then: "
            + audit.pin_command(env_name, release.ref, release.digest, approval=env.approval),
        ) from exc
    return Shipped(release, pin)
