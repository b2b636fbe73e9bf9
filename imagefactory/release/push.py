"""Push built images into the first environment.

``push`` gives an image its version (``versioning.choose_version``: never an X.Y.Z reused for
other content), copies the built digest to every registry of the first environment under its
immutable tags (``X.Y.Z<suffix>``, ``git-<sha><suffix>``) and the aliases that may move,
verifies the digest there, and records the release in state and the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import semver

from imagefactory import git
from imagefactory.errors import UserError
from imagefactory.project.naming import CONTENT_LABEL, build_registry, repository
from imagefactory.project.paths import state_file
from imagefactory.project.plan import built_records
from imagefactory.project.state import ImageRecord, load_state
from imagefactory.registry.client import RegistryClient, registry_session
from imagefactory.release.environments import environment, registries_of, sibling_suffixes
from imagefactory.release.record import (
    Release,
    Step,
    nothing_to_do,
    one_at_a_time,
    record_release,
)
from imagefactory.release.resume import interrupted, resume
from imagefactory.release.tags import TagChange, action_for, write_tags
from imagefactory.release.versioning import choose_version, plan_tags, tag_versions, variant_suffix
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.models import Environment, Registry


def push_images(
    catalog: Catalog,
    images: list[CatalogImage],
    env_name: str | None,
    *,
    dry_run: bool,
    force: bool,
    on_release: Callable[[Release], None],
) -> list[Release]:
    """Push each built image of ``images`` into ``env_name`` (None: the first environment, the
    only one a push may go to); ``on_release`` sees each release as it is done."""
    environments = catalog.project.environments
    if env_name is None:
        env_name = environments[0].name if environments else "dev"
    position, env = environment(catalog, env_name)
    if position != 0:
        raise UserError(
            f"push goes to the first environment ({environments[0].name}); {env_name} is "
            "reached by promotion",
            hint=f"imagefactory promote IMAGE --to {env_name}",
        )
    state = load_state(state_file(catalog))
    records = built_records(catalog, images, state)
    targets = tuple(registries_of(catalog, env))
    releases = []
    with registry_session(catalog, [r for _, r in targets]) as client:
        run = _PushRun(
            catalog,
            client,
            env,
            targets,
            build_registry(catalog.project),
            git.revision(catalog.root),
            dry_run,
            force,
        )
        for image, record in records:
            release = run.push(image, record)
            on_release(release)
            releases.append(release)
    return releases


@dataclass(frozen=True)
class _PushRun:
    """What every image of one ``push`` shares: where it goes, and how."""

    catalog: Catalog
    client: RegistryClient
    env: Environment
    targets: tuple[tuple[str, Registry], ...]  # the environment's registries, by name
    build: Registry  # where the built images are
    revision: str | None  # the commit the catalog is at (its git- tag), None outside git
    dry_run: bool
    force: bool

    def push(self, image: CatalogImage, record: ImageRecord) -> Release:
        """Version, tag, write and record one built image (or, dry, plan it); or complete its
        push that was interrupted, when the audit log holds one."""
        with one_at_a_time(self.catalog, "push", image.ref):
            pending = interrupted(self.catalog, image.ref, self.env.name)
            if pending is not None:
                source = (self.build, f"{record.repository}@{pending.digest}")
                return resume(
                    self.catalog, self.client, image, pending, record, source, dry_run=self.dry_run
                )
            return self._push(image, record)

    def _push(self, image: CatalogImage, record: ImageRecord) -> Release:
        assert record.digest is not None and record.repository is not None
        suffix = variant_suffix(image.spec.variant)
        existing = {
            name: self.client.tags(registry, repository(registry, image.spec.name))
            for name, registry in self.targets
        }
        others = sibling_suffixes(self.catalog, image)
        versions = [v for tags in existing.values() for v in tag_versions(tags, suffix, others)]
        assigned = {
            **record.versions,
            **self._assigned_in_registry(image, versions, record.content_hash),
        }
        choice = choose_version(
            image.spec.version, record.content_hash, assigned, {str(v) for v in versions}
        )
        short_sha = self.revision[:8] if self.revision else None
        plan = plan_tags(choice.version, suffix, versions, short_sha)
        changes = []
        for name, registry in self.targets:
            repo = repository(registry, image.spec.name)
            for tag in (*plan.immutable, *plan.aliases):
                previous = (
                    self.client.digest(registry, f"{repo}:{tag}") if tag in existing[name] else None
                )
                change = TagChange(
                    name,
                    repo,
                    tag,
                    action_for(previous, record.digest),
                    previous,
                    tag in plan.immutable,
                )
                if change.moves_immutable and not self.force:
                    raise UserError(
                        f"{repo}:{tag} already exists with another digest ({previous})",
                        hint="an immutable tag is never moved; bump the version, or pass --force "
                        "(recorded in the audit log)",
                    )
                changes.append(change)
        release = Release(
            image.ref, str(choice.version), record.digest, choice.reason, tuple(changes)
        )
        if self.dry_run or nothing_to_do(release, record.environments.get(self.env.name)):
            return release
        source = f"{record.repository}@{record.digest}"
        forced = self.force and any(c.moves_immutable for c in changes)
        return record_release(
            self.catalog,
            Step.push(self.env.name, forced=forced),
            release,
            record,
            lambda: write_tags(self.client, self.catalog, self.build, source, changes),
            revision=self.revision,
        )

    def _assigned_in_registry(
        self, image: CatalogImage, versions: list[semver.Version], content_hash: str
    ) -> dict[str, str]:
        """Versions of the spec's MAJOR.MINOR line that the registry already gives to this
        content (read from the content-hash label), so a pipeline without the previous state
        does not mistake its own earlier push for other content."""
        spec = semver.Version.parse(image.spec.version)
        line = sorted(
            {v for v in versions if (v.major, v.minor) == (spec.major, spec.minor)}, reverse=True
        )
        _, registry = self.targets[0]
        repo = repository(registry, image.spec.name)
        suffix = variant_suffix(image.spec.variant)
        for version in line:
            label = self.client.label(registry, f"{repo}:{version}{suffix}", CONTENT_LABEL)
            if label == content_hash:
                return {str(version): content_hash}
        return {}
