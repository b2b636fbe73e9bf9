"""Push built images to the first environment and promote them along the chain, by digest.

``push`` gives an image its version (``versioning.choose_version``: never an X.Y.Z reused for
other content), copies the built digest to every registry of the first environment under its
immutable tags (``X.Y.Z<suffix>``, ``git-<sha><suffix>``) and the aliases that may move, and
verifies the digest there. ``promote`` takes the digest the previous environment holds, refuses
it unless it passed its tests, copies it (never a rebuild, never a skipped environment), and
verifies it again. Both record the result in state and append an audit record.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import semver

from imagefactory import tools
from imagefactory.ci_env import in_gitlab_ci
from imagefactory.errors import UserError
from imagefactory.project.naming import CONTENT_LABEL, build_registry, repository
from imagefactory.project.paths import audit_log, slug, state_file, work_dir
from imagefactory.project.plan import built_records
from imagefactory.project.state import (
    EnvironmentRecord,
    ImageRecord,
    load_state,
    locked_state,
    with_record,
)
from imagefactory.registry.client import RegistryClient, registry_session
from imagefactory.release import audit
from imagefactory.release.versioning import choose_version, plan_tags, tag_versions, variant_suffix
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.models import Environment, Registry


@dataclass(frozen=True)
class TagChange:
    registry: str
    repository: str
    tag: str
    action: str  # create | move | keep
    previous: str | None  # the digest the tag pointed to before
    immutable: bool = False  # X.Y.Z or git-<sha>: never moved without --force


@dataclass(frozen=True)
class Release:
    """One image pushed or promoted (or, with --dry-run, what would be)."""

    ref: str
    version: str
    digest: str
    reason: str
    changes: tuple[TagChange, ...]
    audit_id: str | None = None


def environment(catalog: Catalog, name: str) -> tuple[int, Environment]:
    names = [env.name for env in catalog.project.environments]
    if name not in names:
        raise UserError(
            f"no environment '{name}'", hint=f"environments in promotion order: {' → '.join(names)}"
        )
    return names.index(name), catalog.project.environments[names.index(name)]


def registries_of(catalog: Catalog, env: Environment) -> list[tuple[str, Registry]]:
    return [(name, catalog.project.registries[name]) for name in env.registries]


# --------------------------------------------------------------------------- push


def push_images(
    catalog: Catalog,
    images: list[CatalogImage],
    env_name: str,
    *,
    dry_run: bool,
    force: bool,
    on_release: Callable[[Release], None],
) -> list[Release]:
    position, env = environment(catalog, env_name)
    if position != 0:
        first = catalog.project.environments[0].name
        raise UserError(
            f"push goes to the first environment ({first}); {env_name} is reached by promotion",
            hint=f"imagefactory promote IMAGE --to {env_name}",
        )
    state = load_state(state_file(catalog))
    records = built_records(catalog, images, state)
    targets = registries_of(catalog, env)
    releases = []
    with registry_session(catalog, [r for _, r in targets]) as client:
        for image, record in records:
            release = _push_one(
                catalog, client, image, record, env, targets, dry_run=dry_run, force=force
            )
            on_release(release)
            releases.append(release)
    return releases


def _push_one(
    catalog: Catalog,
    client: RegistryClient,
    image: CatalogImage,
    record: ImageRecord,
    env: Environment,
    targets: list[tuple[str, Registry]],
    *,
    dry_run: bool,
    force: bool,
) -> Release:
    assert record.digest is not None and record.repository is not None
    suffix = variant_suffix(image.spec.variant)
    existing = {
        name: client.tags(registry, repository(registry, image.spec.name))
        for name, registry in targets
    }
    others = sibling_suffixes(catalog, image)
    versions = [v for tags in existing.values() for v in tag_versions(tags, suffix, others)]
    assigned = {
        **record.versions,
        **_assigned_in_registry(client, targets, image, versions, record.content_hash),
    }
    choice = choose_version(
        image.spec.version, record.content_hash, assigned, {str(v) for v in versions}
    )
    plan = plan_tags(choice.version, suffix, versions, git_short_sha(catalog.root))
    changes = []
    for name, registry in targets:
        repo = repository(registry, image.spec.name)
        for tag in (*plan.immutable, *plan.aliases):
            immutable = tag in plan.immutable
            previous = client.digest(registry, f"{repo}:{tag}") if tag in existing[name] else None
            action = (
                "create" if previous is None else ("keep" if previous == record.digest else "move")
            )
            if action == "move" and immutable and not force:
                raise UserError(
                    f"{repo}:{tag} already exists with another digest ({previous})",
                    hint="an immutable tag is never moved; bump the version, or pass --force "
                    "(recorded in the audit log)",
                )
            changes.append(TagChange(name, repo, tag, action, previous, immutable))
    release = Release(image.ref, str(choice.version), record.digest, choice.reason, tuple(changes))
    if dry_run or _nothing_to_do(release, record.environments.get(env.name)):
        return release
    build = build_registry(catalog.project)
    _write_tags(client, catalog, build, f"{record.repository}@{record.digest}", changes)
    return _record_release(
        catalog,
        image.ref,
        release,
        env.name,
        "build",
        record,
        forced=force and any(c.action == "move" and c.immutable for c in changes),
        approver=None,
    )


def _assigned_in_registry(
    client: RegistryClient,
    targets: list[tuple[str, Registry]],
    image: CatalogImage,
    versions: list[semver.Version],
    content_hash: str,
) -> dict[str, str]:
    """Versions of the spec's MAJOR.MINOR line that the registry already gives to this content
    (read from the content-hash label), so a pipeline without the previous state does not
    mistake its own earlier push for other content."""
    spec = semver.Version.parse(image.spec.version)
    line = sorted(
        {v for v in versions if (v.major, v.minor) == (spec.major, spec.minor)}, reverse=True
    )
    _, registry = targets[0]
    repo = repository(registry, image.spec.name)
    suffix = variant_suffix(image.spec.variant)
    for version in line:
        if client.label(registry, f"{repo}:{version}{suffix}", CONTENT_LABEL) == content_hash:
            return {str(version): content_hash}
    return {}


def _nothing_to_do(release: Release, held: EnvironmentRecord | None) -> bool:
    """Every tag already holds the digest and state knows it: no copy, no state, no audit."""
    return (
        held is not None
        and held.digest == release.digest
        and all(change.action == "keep" for change in release.changes)
    )


def _write_tags(
    client: RegistryClient,
    catalog: Catalog,
    source_registry: Registry,
    source: str,
    changes: list[TagChange],
) -> None:
    """Write every tag ``changes`` creates or moves so that it holds ``source``'s digest.

    The image moves at most once per target repository (``skopeo copy``, to its ``git-`` tag
    when there is one); a repository that already holds the digest (the build's own, for a push)
    needs no copy. Every other tag gets the manifest put again under it, a request each, right
    after checking that an immutable tag planned as new is still free: two pushes that chose the
    same version at once leave it to the first (the window is one request, not a copy). At the
    end every written tag must still name the digest; otherwise nothing is recorded.
    """
    repository_of_source, _, digest = source.rpartition("@")
    holding = {(c.registry, c.repository) for c in changes if c.action == "keep"}
    holding |= {(c.registry, c.repository) for c in changes if c.repository == repository_of_source}
    written = sorted(
        (c for c in changes if c.action != "keep"), key=lambda c: not c.tag.startswith("git-")
    )
    for change in written:
        target = catalog.project.registries[change.registry]
        if change.action == "create" and change.immutable:
            taken = client.digest(target, f"{change.repository}:{change.tag}")
            if taken is not None and taken != digest:
                raise UserError(
                    f"{change.repository}:{change.tag} was written by someone else meanwhile "
                    f"({taken})",
                    hint="nothing was recorded; run it again: it will choose the next version",
                )
        if (change.registry, change.repository) in holding:
            client.tag(target, change.repository, digest, change.tag)
        else:
            client.copy(source_registry, source, target, f"{change.repository}:{change.tag}")
            holding.add((change.registry, change.repository))
    _verify(client, catalog, written, digest)


def _verify(
    client: RegistryClient, catalog: Catalog, changes: list[TagChange], digest: str
) -> None:
    for change in changes:
        reference = f"{change.repository}:{change.tag}"
        there = client.digest(catalog.project.registries[change.registry], reference)
        if there != digest:
            raise UserError(
                f"digest mismatch after copy: {reference} is {there}, expected {digest}",
                hint="another writer moved that tag meanwhile, or the registry rewrote the "
                "manifest; nothing was recorded",
            )


def _record_release(
    catalog: Catalog,
    ref: str,
    release: Release,
    env_name: str,
    source: str,
    record: ImageRecord,
    *,
    forced: bool,
    approver: str | None,
) -> Release:
    entry = audit.new_record(
        action="push" if source == "build" else "promote",
        image=ref,
        version=release.version,
        digest=release.digest,
        source=source,
        target=env_name,
        tags=sorted({c.tag for c in release.changes}),
        git_revision=git_revision(catalog.root),
        approver=approver,
        forced=forced,
    )
    path = state_file(catalog)
    with locked_state(path) as save:
        state = load_state(path)
        current = state.images.get(ref, record)
        at = entry.at
        env_record = EnvironmentRecord(
            version=release.version,
            digest=release.digest,
            tags=sorted({c.tag for c in release.changes}),
            registries=sorted({c.registry for c in release.changes}),
            at=at,
            audit_id=entry.id,
        )
        versions = {**current.versions}
        if source == "build":
            versions[release.version] = current.content_hash
        updated = current.model_copy(
            update={
                "versions": versions,
                "environments": {**current.environments, env_name: env_record},
            }
        )
        save(with_record(state, ref, updated))
    audit.append(audit_log(catalog), entry)
    return Release(
        release.ref, release.version, release.digest, release.reason, release.changes, entry.id
    )


def sibling_suffixes(catalog: Catalog, image: CatalogImage) -> list[str]:
    """The tag suffixes of the image's other variants: they share its repository."""
    return [
        variant_suffix(other.spec.variant)
        for other in catalog.images.values()
        if other.spec.name == image.spec.name and other.ref != image.ref
    ]


def git_short_sha(root: Path) -> str | None:
    revision = git_revision(root)
    return revision[:8] if revision else None


def git_revision(root: Path) -> str | None:
    result = tools.run(["git", "-C", root, "rev-parse", "HEAD"], check=False, timeout=30)
    return result.output.strip() if result.returncode == 0 else None


# --------------------------------------------------------------------------- promote


def promote(
    catalog: Catalog, image: CatalogImage, to_env: str, *, approve: bool, dry_run: bool
) -> Release:
    position, target_env = environment(catalog, to_env)
    if position == 0:
        raise UserError(
            f"{to_env} is the first environment: images reach it with push, not promote",
            hint=f"imagefactory push {image.ref}",
        )
    source_env = catalog.project.environments[position - 1]
    approver = _approver(target_env, approve)
    with _promotion_lock(catalog, image.ref):
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
            digest = client.digest(source_registry, f"{source_repo}:{version_tag}")
            if digest is None:
                raise UserError(
                    f"{source_repo}:{version_tag} is gone from {source_env.name} ({source_name})",
                    hint="push or promote it there again",
                )
            if record.tests is None or record.tests.digest != digest or not record.tests.passed:
                raise UserError(
                    f"{image.ref} {held.version} ({digest}) has no passed test record",
                    hint=f"run: imagefactory test {image.ref} (promotion needs the exact digest tested)",
                )
            changes = _promotion_changes(catalog, client, image, targets, held, digest)
            release = Release(
                image.ref, held.version, digest, f"{source_env.name} → {to_env}", tuple(changes)
            )
            if dry_run or _nothing_to_do(release, record.environments.get(to_env)):
                return release
            _write_tags(client, catalog, source_registry, f"{source_repo}@{digest}", changes)
        return _record_release(
            catalog,
            image.ref,
            release,
            to_env,
            source_env.name,
            record,
            forced=False,
            approver=approver,
        )


def _approver(env: Environment, approve: bool) -> str | None:
    if not env.approval:
        return None
    if in_gitlab_ci():
        return audit.actor()  # the protected manual job is the approval; its runner is the approver
    if not approve:
        raise UserError(
            f"promotion to {env.name} needs an approval",
            hint="pass --approve to approve it yourself (recorded in the audit log), "
            "or run the protected manual job in CI",
        )
    return audit.actor()


def _promotion_changes(
    catalog: Catalog,
    client: RegistryClient,
    image: CatalogImage,
    targets: list[tuple[str, Registry]],
    held: EnvironmentRecord,
    digest: str,
) -> list[TagChange]:
    suffix = variant_suffix(image.spec.variant)
    version = semver.Version.parse(held.version)
    changes = []
    for name, registry in targets:
        repo = repository(registry, image.spec.name)
        existing = client.tags(registry, repo)
        versions = tag_versions(existing, suffix, sibling_suffixes(catalog, image))
        git_tags = tuple(t for t in held.tags if t.startswith("git-"))
        plan = plan_tags(version, suffix, versions, None)
        for tag in (*plan.immutable, *git_tags, *plan.aliases):
            immutable = tag in (*plan.immutable, *git_tags)
            previous = client.digest(registry, f"{repo}:{tag}") if tag in existing else None
            if previous is not None and previous != digest and immutable:
                raise UserError(
                    f"{repo}:{tag} already holds another digest ({previous})",
                    hint="an immutable tag is never moved by a promotion",
                )
            action = "create" if previous is None else ("keep" if previous == digest else "move")
            changes.append(TagChange(name, repo, tag, action, previous, immutable))
    return changes


@contextmanager
def _promotion_lock(catalog: Catalog, ref: str) -> Iterator[None]:
    """One promotion of an image at a time; a second one fails at once instead of racing."""
    folder = work_dir(catalog) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder / f"promote-{slug(ref)}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise UserError(
                f"another promotion of {ref} is in progress",
                hint="wait for it to finish, then check: imagefactory status",
            ) from exc
        yield
    finally:
        os.close(descriptor)


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class Placement:
    env: str
    version: str | None
    digest: str | None
    tested: bool


def status(catalog: Catalog, images: list[CatalogImage]) -> dict[str, list[Placement]]:
    """Per image, what each environment holds according to state (after pushes and promotions)."""
    state = load_state(state_file(catalog))
    table = {}
    for image in images:
        record = state.images.get(image.ref)
        row = []
        for env in catalog.project.environments:
            held = record.environments.get(env.name) if record else None
            tested = bool(record and record.tests and held and record.tests.digest == held.digest)
            row.append(
                Placement(
                    env.name, held.version if held else None, held.digest if held else None, tested
                )
            )
        table[image.ref] = row
    return table
