"""Push built images into the first environment.

``push`` gives an image its version (``versioning.choose_version``: never an X.Y.Z reused for
other content), lets it through the release gate (``gate.require``: a passing test run of
exactly the built digest, unless ``release.require_tests`` is off or ``--force``, which the
audit log records; a version not yanked), copies the built digest to every registry of the
first environment under its immutable tags (``X.Y.Z<suffix>``, ``git-<sha><suffix>``) and the
aliases that may move, verifies the digest there, and records the release in state and the
audit log. With ``signing:``, the gate reads the digest's signed test attestation from the
build registry (``evidence.RegistryEvidence``) after the digest's chain of parents verified
(``attach.verified_chain``: a revoked parent refuses the push, as it refuses a promotion), and
the push, with its tags, copies the digest's
evidence into every repository it wrote to, signs it there and attests the release
(``attach.attach_release``). Where gitops.yaml deploys the image into that environment, a tested
digest is then pinned in its overlay; an untested one (``--force``, or ``release.require_tests`` off) is not:
``gitops update`` would refuse it too. State, the gate's evidence, the push and its pin are all
read and made under the image's push lock (``one_at_a_time``), which a yank of the image takes
too: no yank lands between the gate and the pin, and two pushes of an image pin in the order
they pushed.

``git-<sha>`` names the commit that built the digest: the ``org.opencontainers.image.revision``
label of the built image, read from the build registry (not the checkout's HEAD, which may have
moved since). A build from an uncommitted tree (``<sha>-dirty``) gets no git- tag; in GitLab CI
its push is refused, and so is a push from an uncommitted tree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import semver

from imagefactory import git
from imagefactory.ci_env import in_gitlab_ci
from imagefactory.errors import UserError
from imagefactory.evidence.keys import signing_key
from imagefactory.evidence.store import Location
from imagefactory.project.naming import (
    CONTENT_LABEL,
    REVISION_LABEL,
    build_registry,
    repository,
    variant_suffix,
)
from imagefactory.project.paths import state_file, work_dir
from imagefactory.project.plan import built_records
from imagefactory.project.state import ImageRecord, load_state
from imagefactory.registry.client import RegistryClient, registry_session
from imagefactory.release import audit, gate
from imagefactory.release.aliases import good_versions
from imagefactory.release.attach import attach_release, verified_chain
from imagefactory.release.deploy import pin_release
from imagefactory.release.environments import registries_of, sibling_suffixes
from imagefactory.release.evidence import Evidence, evidence_for
from imagefactory.release.record import (
    Release,
    Shipped,
    Step,
    nothing_to_do,
    one_at_a_time,
    record_release,
)
from imagefactory.release.resume import interrupted, resume
from imagefactory.release.tags import plan_changes, write_tags
from imagefactory.release.versioning import choose_version, plan_tags, tag_versions
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.models import Environment, Registry
from imagefactory.spec.revocations import load_revocations

_DIRTY = "-dirty"
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_COMMIT_FIRST = "commit the change, then build, test and push that commit"
UNTESTED_NOT_PINNED = "untested (gitops update needs a passing test)"


def push_images(
    catalog: Catalog,
    images: list[CatalogImage],
    env_name: str | None,
    *,
    dry_run: bool,
    force: bool,
    on_release: Callable[[Shipped], None],
) -> list[Shipped]:
    """Push each built image of ``images`` into ``env_name`` (None: the first environment, the
    only one a push may go to) and pin it there in the GitOps repository when gitops.yaml
    deploys it there; ``on_release`` sees each as it is done. A pin that fails is a UserError
    that says the push itself is recorded, and how to pin again."""
    environments = catalog.project.environments
    if env_name is None:
        env_name = environments[0].name if environments else "dev"
    position, env = catalog.environment(env_name)
    if position != 0:
        raise UserError(
            f"push goes to the first environment ({environments[0].name}); {env_name} is "
            "reached by promotion",
            hint=f"imagefactory promote IMAGE --to {env_name}",
        )
    revision = git.revision(catalog.root)
    if (
        in_gitlab_ci()
        and revision is not None
        and git.dirty(catalog.root, ignore=[work_dir(catalog)])
    ):
        raise UserError(
            f"the checkout at {catalog.root} has uncommitted changes: a CI push releases only "
            "committed builds",
            hint=_COMMIT_FIRST,
        )
    # refused before anything is pushed when one of them is not built; each is read again
    # under its lock
    built_records(catalog, images, load_state(state_file(catalog)))
    signing_key(catalog)  # and when signing needs a key this run lacks
    targets = tuple(registries_of(catalog, env))
    releases = []
    with registry_session(catalog, [r for _, r in targets]) as client:
        run = _PushRun(
            catalog,
            client,
            env,
            targets,
            build_registry(catalog.project),
            revision,
            gate.identity(catalog.root),
            dry_run,
            force,
        )
        for image in images:
            shipped = run.push(image)
            on_release(shipped)
            releases.append(shipped)
    return releases


@dataclass(frozen=True)
class _PushRun:
    """What every image of one ``push`` shares: where it goes, and how."""

    catalog: Catalog
    client: RegistryClient
    env: Environment
    targets: tuple[tuple[str, Registry], ...]  # the environment's registries, by name
    build: Registry  # where the built images are
    revision: str | None  # the commit the catalog is at (for the audit log), None outside git
    identity: str  # who pushes, as approvals name people
    dry_run: bool
    force: bool

    def push(self, image: CatalogImage) -> Shipped:
        """Version, tag, write, record and pin one built image (or, dry, plan it); or complete
        its push that was interrupted, when the audit log holds one. State and evidence are
        read under the lock, and the pin is made under it."""
        with one_at_a_time(self.catalog, "push", image.ref):
            state = load_state(state_file(self.catalog))
            [(_, record)] = built_records(self.catalog, [image], state)
            evidence = evidence_for(self.catalog, state, self.client)
            pending = interrupted(self.catalog, "push", image.ref, self.env.name)
            if pending is not None:
                source = (self.build, f"{record.repository}@{pending.digest}")
                release = resume(
                    self.catalog, self.client, image, pending, record, source, dry_run=self.dry_run
                )
            else:
                release = self._push(image, record, evidence)
            return self._pinned(release, evidence)

    def _pinned(self, release: Release, evidence: Evidence) -> Shipped:
        """``release`` and its pin in the GitOps overlay: only a tested digest is pinned (as
        ``gitops update`` would), so a forced push of an untested one is recorded, not
        deployed."""
        candidate = gate.Candidate(release.ref, release.version, release.digest, self.env)
        if release.audit_id is not None and not gate.tested(evidence, candidate):
            return Shipped(release, None, not_pinned=UNTESTED_NOT_PINNED)
        return pin_release(self.catalog, release, self.env.name, done="pushed")

    def _push(self, image: CatalogImage, record: ImageRecord, evidence: Evidence) -> Release:
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
        origin = Location(self.build, record.repository)
        # with signing:, the digest's evidence and its parents' down to the bootstrap, none
        # revoked (as a promotion checks): a revoked base blocks a child built on it
        listed = load_revocations(self.catalog)
        verified_chain(self.catalog, self.client, origin, record.digest, listed)
        candidate = gate.Candidate(image.ref, str(choice.version), record.digest, self.env)
        required = self.catalog.project.release.require_tests
        untested = required and not gate.tested(evidence, candidate)
        gate.require(
            evidence,
            candidate,
            approver=None,
            listed=listed,
            tests_required=required and not self.force,
            approval=False,
            scan_required=self.env.name in self.catalog.project.scan.require,
        )
        plan = plan_tags(
            choice.version,
            suffix,
            good_versions(versions, record.yanked),  # an alias never stays on a yanked one
            self._built_commit(image, record),
        )
        changes = []
        for name, registry in self.targets:
            changes += plan_changes(
                self.client,
                (name, registry),
                repository(registry, image.spec.name),
                (*plan.immutable, *plan.aliases),
                plan.immutable,
                record.digest,
                existing=existing[name],
                hint="an immutable tag is never moved; bump the version, or pass --force "
                "(recorded in the audit log)",
                force=self.force,
            )
        release = Release(
            image.ref, str(choice.version), record.digest, choice.reason, tuple(changes)
        )
        if self.dry_run or nothing_to_do(release, record.environments.get(self.env.name)):
            return release
        overrides = (
            *((audit.UNTESTED,) if untested else ()),
            *((audit.IMMUTABLE_TAG,) if any(c.moves_immutable for c in changes) else ()),
        )
        step = Step.push(self.env.name, identity=self.identity, overrides=overrides)
        return record_release(
            self.catalog,
            step,
            release,
            record,
            lambda: self._write(origin, step, release),
            revision=self.revision,
        )

    def _write(self, source: Location, step: Step, release: Release) -> None:
        """The push's writes: its tags, with the evidence they carry around them."""
        reference = f"{source.repository}@{release.digest}"
        changes = list(release.changes)
        attach_release(
            self.catalog,
            self.client,
            source,
            step,
            release,
            lambda: write_tags(self.client, self.catalog, self.build, reference, changes),
        )

    def _built_commit(self, image: CatalogImage, record: ImageRecord) -> str | None:
        """The commit that built ``record``'s digest, as its revision label names it; None
        (no git- tag) for a build outside git or from an uncommitted tree, which in CI is
        refused."""
        label = self.client.label(
            self.build, f"{record.repository}@{record.digest}", REVISION_LABEL
        )
        if label is not None and label.endswith(_DIRTY) and in_gitlab_ci():
            raise UserError(
                f"{image.ref} ({record.digest}) was built from an uncommitted tree ({label}): "
                "a CI push releases only committed builds",
                hint=_COMMIT_FIRST,
            )
        return label if label is not None and _SHA.fullmatch(label) else None

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
