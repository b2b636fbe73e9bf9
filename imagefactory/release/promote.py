"""Promote an image into the next environment, and pin it in the GitOps repository.

``promote`` takes the digest the previous environment holds, lets it through the release gate
(``gate.require``: a passing test run of exactly that digest, a version not yanked, the target's
approval rule: an approver, with ``four_eyes`` not who pushed it), copies it (never a rebuild,
never a skipped environment), verifies it again, records it in state and the audit log, and then
pins it in the GitOps repository when gitops.yaml deploys the image there: all under the image's
promotion lock (``one_at_a_time``), which a yank of the image takes too, so no yank lands
between the gate and the pin.

With ``signing:`` the digest's evidence in the source environment is verified first, down the
chain of its parents to the bootstrap (``evidence.verify.verify_chain``: signatures, attestations,
builders, revocations), the gate reads it there and in the build repository, where test
re-runs and re-scans are attested (``evidence.RegistryEvidence``: the latest signed test run,
who pushed it, its revocation and scan verdict, across both), and the promotion, with its
tags, copies that evidence into every repository of the target, signs the digest there and
attests the release with its approver (``attach.attach_release``).
"""

from __future__ import annotations

from collections.abc import Collection

import semver

from imagefactory import git
from imagefactory.errors import UserError
from imagefactory.evidence.keys import signing_key
from imagefactory.evidence.store import Location
from imagefactory.project.naming import repository, variant_suffix
from imagefactory.project.paths import state_file
from imagefactory.project.state import EnvironmentRecord, load_state
from imagefactory.registry.client import RegistryClient, registry_session
from imagefactory.release import gate
from imagefactory.release.aliases import good_versions
from imagefactory.release.attach import attach_release, verified_chain
from imagefactory.release.deploy import pin_release
from imagefactory.release.environments import registries_of, sibling_suffixes
from imagefactory.release.evidence import evidence_for
from imagefactory.release.record import (
    Release,
    Shipped,
    Step,
    nothing_to_do,
    one_at_a_time,
    record_release,
)
from imagefactory.release.resume import interrupted, resume
from imagefactory.release.tags import TagChange, plan_changes, write_tags
from imagefactory.release.versioning import plan_tags, tag_versions
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.models import Environment, Registry
from imagefactory.spec.revocations import load_revocations


def promote(
    catalog: Catalog,
    image: CatalogImage,
    to_env: str,
    *,
    approve: bool,
    dry_run: bool,
    approver: str | None = None,
) -> Shipped:
    """Promote ``image`` into ``to_env`` and pin it there in the GitOps repository, approved
    (where ``to_env`` needs it) with ``approve`` by ``approver`` (None: as git config names
    whoever runs it; see ``gate.approver``). A pin that fails is a UserError that says the
    promotion itself is recorded, and how to pin again."""
    position, target_env = catalog.environment(to_env)
    if position == 0:
        raise UserError(
            f"{to_env} is the first environment: images reach it with push, not promote",
            hint=f"imagefactory push {image.ref}",
        )
    source_env = catalog.project.environments[position - 1]
    approved_by = gate.approver(
        target_env, catalog.root, approve=approve, named=approver, ref=image.ref
    )
    signing_key(catalog)  # refused before anything is copied when signing needs a key it lacks
    with one_at_a_time(catalog, "promote", image.ref):
        release = _copy(catalog, image, source_env, target_env, approved_by, dry_run=dry_run)
        return pin_release(catalog, release, to_env, done="promoted")


def _copy(
    catalog: Catalog,
    image: CatalogImage,
    source_env: Environment,
    target_env: Environment,
    approved_by: str | None,
    *,
    dry_run: bool,
) -> Release:
    """Copy what ``source_env`` holds of ``image`` into ``target_env`` through the gate, and
    record it (or, dry, plan it); or complete the promotion that was interrupted there. The
    caller holds the image's promotion lock."""
    to_env = target_env.name
    state = load_state(state_file(catalog))
    record = state.images.get(image.ref)
    held = record.environments.get(source_env.name) if record else None
    if record is None or held is None:
        raise UserError(
            f"{image.ref} is not in {source_env.name}, so it cannot go to {to_env}",
            hint=f"environments are never skipped: first get it into {source_env.name}",
        )
    source_name, source_registry = registries_of(catalog, source_env)[0]
    source_repo = repository(source_registry, image.spec.name)
    version_tag = f"{held.version}{variant_suffix(image.spec.variant)}"
    targets = registries_of(catalog, target_env)
    with registry_session(catalog, [source_registry, *(r for _, r in targets)]) as client:
        pending = interrupted(catalog, "promote", image.ref, to_env)
        if pending is not None:
            copied = (source_registry, f"{source_repo}@{pending.digest}")
            return resume(catalog, client, image, pending, record, copied, dry_run=dry_run)
        digest = client.digest(source_registry, f"{source_repo}:{version_tag}")
        if digest is None:
            raise UserError(
                f"{source_repo}:{version_tag} is gone from {source_env.name} ({source_name})",
                hint="push or promote it there again",
            )
        origin = Location(source_registry, source_repo)
        listed = load_revocations(catalog)
        top = verified_chain(catalog, client, origin, digest, listed)
        gate.require(
            evidence_for(
                catalog,
                state,
                client,
                at=source_registry,
                verified=[top] if top is not None else [],
            ),
            gate.Candidate(image.ref, held.version, digest, target_env),
            approver=approved_by,
            listed=listed,
            scan_required=to_env in catalog.project.scan.require,
        )
        changes = _promotion_changes(
            catalog, client, image, targets, held, digest, yanked=record.yanked
        )
        release = Release(
            image.ref, held.version, digest, f"{source_env.name} → {to_env}", tuple(changes)
        )
        if dry_run or nothing_to_do(release, record.environments.get(to_env)):
            return release
        step = Step.promotion(
            source_env.name,
            to_env,
            identity=gate.identity(catalog.root),
            approver=approved_by,
        )
        source = f"{source_repo}@{digest}"

        def tags() -> None:
            write_tags(client, catalog, source_registry, source, changes)

        def write() -> None:
            attach_release(catalog, client, origin, step, release, tags)

        return record_release(
            catalog, step, release, record, write, revision=git.revision(catalog.root)
        )


def _promotion_changes(
    catalog: Catalog,
    client: RegistryClient,
    image: CatalogImage,
    targets: list[tuple[str, Registry]],
    held: EnvironmentRecord,
    digest: str,
    *,
    yanked: Collection[str],
) -> list[TagChange]:
    """The tags of the promoted ``digest`` in each registry of the target: its immutable ones,
    and the aliases it is the highest good version of (``yanked`` versions hold none)."""
    suffix = variant_suffix(image.spec.variant)
    version = semver.Version.parse(held.version)
    others = sibling_suffixes(catalog, image)
    git_tags = tuple(t for t in held.tags if t.startswith("git-"))
    changes: list[TagChange] = []
    for name, registry in targets:
        repo = repository(registry, image.spec.name)
        existing = client.tags(registry, repo)
        good = good_versions(tag_versions(existing, suffix, others), yanked)
        plan = plan_tags(version, suffix, good, None)
        immutable = (*plan.immutable, *git_tags)
        changes += plan_changes(
            client,
            (name, registry),
            repo,
            (*immutable, *plan.aliases),
            immutable,
            digest,
            existing=existing,
            hint="an immutable tag is never moved by a promotion",
        )
    return changes
