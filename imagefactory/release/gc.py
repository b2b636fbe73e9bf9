"""``gc``: delete what no retention rule keeps, with its signatures and attestations.

What it reads (every environment's, whichever one it deletes in: a digest kept anywhere is
kept everywhere): the tags of each catalog image's repository in every registry, the digests
they name, the GitOps overlays (a fresh clone), the state file, the audit log, the catalog's
``revocations.yaml`` and, with ``signing:``, each candidate's verified evidence (its signed
times, its revocation). ``retention.decide`` says what goes and why the rest stays.

What it writes, per manifest, ahead like every release step: an audit intent (action ``gc``,
the tags, the reason) before the manifest is deleted (distribution's ``DELETE
/v2/<name>/manifests/<digest>``, which takes every tag on it), then its ``.sig`` and ``.att``
manifests, then the done record. An intent left open (a kill, a lost connection) is completed
first by the next run: whatever of the three deletions had not happened happens; a deletion of
what is gone already is a no-op. At most ``limit`` deletions per run (the rest: the next run's).

Right before it deletes in a repository it lists the repository's tags again: a digest that
gained a tag meanwhile (a push, a promotion, a yank moving an alias back) is skipped. One gc
at a time per checkout; run it where no release runs at the same time, and where the release
state lives: yanks are kept in state and the audit log (not yet attested), so a checkout
without them knows a revocation (revocations.yaml, the signed lifecycle) but not a yank. The
registry's storage shrinks only when its own garbage collection runs (docs/retention.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import semver

from imagefactory import git
from imagefactory.errors import UserError
from imagefactory.evidence import predicates
from imagefactory.evidence.keys import builders, signing_enabled, verifying_key
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.evidence.verify import NoEvidence, identities, verify_digest
from imagefactory.gitops.drift import pinned_digests
from imagefactory.project.hashing import content_inputs
from imagefactory.project.naming import (
    BASE_DIGEST_LABEL,
    CONTENT_TAG_PREFIX,
    build_registry,
    content_tag,
    repository,
    variant_suffix,
)
from imagefactory.project.paths import audit_log, state_file
from imagefactory.project.retention import retention_of
from imagefactory.project.state import State, load_state, unwritable
from imagefactory.registry.client import RegistryClient, registry_session
from imagefactory.release import audit
from imagefactory.release.audit import AuditRecord
from imagefactory.release.gc_limit import DEFAULT_LIMIT
from imagefactory.release.record import one_at_a_time, written_ahead
from imagefactory.release.retention import Decision, Facts, Manifest, decide
from imagefactory.release.versioning import parse_version_tag
from imagefactory.signing.keys import VerificationError
from imagefactory.signing.oci import attestation_tag, signature_tag
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.models import Registry, Retention
from imagefactory.spec.revocations import load_revocations

GC = "gc"
NOTHING_DELETED = "nothing was deleted"
#: Tags imagefactory writes besides versions and aliases (build/publish.py: STAGING_TAG_PREFIX).
BUILD_TAG_PREFIXES = (CONTENT_TAG_PREFIX, "staging-", "git-")
_EVIDENCE_TAG = re.compile(r"sha256-([0-9a-f]{64})\.(sig|att|sbom)")
_ALIAS = re.compile(r"(?:latest|[0-9]+(?:\.[0-9]+)?)")


@dataclass(frozen=True)
class Deletion:
    """A manifest gc deletes (or, dry, would): with the evidence manifests that went with it."""

    decision: Decision
    size_bytes: int | None  # its config and layers (layers a kept image shares stay)
    evidence: tuple[str, ...] = ()  # the .sig / .att tags deleted with it
    audit_id: str | None = None  # None: not deleted (dry run)


@dataclass(frozen=True)
class GcReport:
    dry_run: bool
    scope: tuple[str, ...]  # the environments deleted in
    deletions: tuple[Deletion, ...]
    kept: tuple[Decision, ...]
    left: tuple[Decision, ...] = ()  # over the limit: the next run deletes them
    skipped: tuple[tuple[Decision, str], ...] = ()  # tagged meanwhile: (decision, the tag)
    completed: tuple[str, ...] = ()  # the interrupted deletions this run completed (audit ids)


def collect_garbage(
    catalog: Catalog,
    env_name: str | None,
    *,
    dry_run: bool,
    limit: int = DEFAULT_LIMIT,
    on_delete: Callable[[Deletion], None] = lambda _: None,
) -> GcReport:
    """Delete, in ``env_name`` (None: every environment), what no retention rule keeps; or,
    ``dry_run``, say what would go and why everything else stays. ``on_delete`` sees each
    deletion as it is done."""
    if limit < 1:
        raise UserError("--limit must be at least 1", hint="the most manifests one run deletes")
    environments = catalog.project.environments
    scope = tuple(e.name for e in environments if env_name in (None, e.name))
    if env_name is not None:
        catalog.environment(env_name)  # an unknown name: a UserError listing the known ones
    registries = {
        name: catalog.project.registries[name] for e in environments for name in e.registries
    }
    now = datetime.now(UTC)
    with (
        one_at_a_time(catalog, GC, "catalog"),
        registry_session(catalog, list(registries.values())) as client,
    ):
        completed = () if dry_run else _complete_interrupted(catalog, client)
        run = _Run(catalog, client)
        manifests = run.inventory()
        retentions = {e.name: retention_of(catalog.project, e) for e in environments}
        facts = run.facts(manifests, retentions)
        decisions = decide(manifests, facts, retentions, run.parent_of, now)
        doomed = [d for d in decisions if d.deleted and d.manifest.environment in scope]
        kept = tuple(d for d in decisions if not d.deleted and d.manifest.environment in scope)
        doomed.sort(key=lambda d: facts.last_seen[d.manifest.digest])  # the oldest first
        now_doomed, left = doomed[:limit], tuple(doomed[limit:])
        if dry_run:
            deletions = tuple(Deletion(d, run.size_of(d.manifest)) for d in now_doomed)
            return GcReport(True, scope, deletions, kept, left, completed=completed)
        deleted, skipped = run.delete(now_doomed, on_delete)
        return GcReport(False, scope, deleted, kept, left, skipped, completed)


@dataclass
class _Run:
    catalog: Catalog
    client: RegistryClient
    _tags: dict[tuple[str, str], dict[str, str]] = field(
        default_factory=dict
    )  # repo → tag → digest
    _parents: dict[str, str | None] = field(default_factory=dict)

    def inventory(self) -> list[Manifest]:
        """Every manifest of every catalog image's repository in every environment's
        registries, with its tags sorted into kinds."""
        found = []
        project = self.catalog.project
        names = sorted({i.spec.name for i in self.catalog.images.values()})
        for env in project.environments:
            for registry_name in env.registries:
                registry = project.registries[registry_name]
                for name in names:
                    repo = repository(registry, name)
                    tags = self._read_tags(registry_name, registry, repo)
                    found += self._manifests(env.name, registry_name, repo, name, tags)
        return found

    def _read_tags(self, registry_name: str, registry: Registry, repo: str) -> dict[str, str]:
        """Each tag of ``repo`` but the evidence ones → the digest it names (a HEAD each)."""
        held = {}
        for tag in self.client.tags(registry, repo):
            if _EVIDENCE_TAG.fullmatch(tag):
                continue
            digest = self.client.digest(registry, f"{repo}:{tag}")
            if digest is not None:  # deleted meanwhile
                held[tag] = digest
        self._tags[(registry_name, repo)] = held
        return held

    def _read_again(self, m: Manifest) -> dict[str, str]:
        """``m``'s repository's tags as they are now, a HEAD only for those that can name
        another digest than when listed: new ones and aliases (version, build and git tags are
        write-once)."""
        registry = self.catalog.project.registries[m.registry]
        known = self._tags[(m.registry, m.repository)]
        suffixes = self._suffixes(m.image)
        now = {}
        for tag in self.client.tags(registry, m.repository):
            if _EVIDENCE_TAG.fullmatch(tag):
                continue
            if tag in known and tag_kind(tag, suffixes)[0] in ("version", "build"):
                now[tag] = known[tag]
                continue
            digest = self.client.digest(registry, f"{m.repository}:{tag}")
            if digest is not None:
                now[tag] = digest
        return now

    def _suffixes(self, name: str) -> list[str]:
        """The variant suffixes of the images in ``name``'s repository, the longest first."""
        found = {
            variant_suffix(i.spec.variant)
            for i in self.catalog.images.values()
            if i.spec.name == name
        }
        return sorted(found, key=len, reverse=True)

    def _manifests(
        self, env: str, registry: str, repo: str, name: str, tags: dict[str, str]
    ) -> list[Manifest]:
        suffixes = self._suffixes(name)
        by_digest: dict[str, list[str]] = {}
        for tag, digest in tags.items():
            by_digest.setdefault(digest, []).append(tag)
        found = []
        for digest, named in sorted(by_digest.items()):
            versions: list[semver.Version] = []
            aliases: list[str] = []
            foreign: list[str] = []
            suffix = ""
            for tag in sorted(named):
                kind, tag_suffix, version = tag_kind(tag, suffixes)
                if version is not None:
                    versions.append(version)
                    suffix = tag_suffix
                elif kind == "alias":
                    aliases.append(tag)
                elif kind == "foreign":
                    foreign.append(tag)
            found.append(
                Manifest(
                    env,
                    registry,
                    repo,
                    name,
                    digest,
                    tuple(sorted(named)),
                    tuple(sorted(versions)),
                    suffix,
                    tuple(aliases),
                    tuple(foreign),
                )
            )
        return found

    def facts(self, manifests: list[Manifest], retentions: Mapping[str, Retention | None]) -> Facts:
        """What protects digests: GitOps pins, state, the audit log, revocations.yaml, the
        catalog's current builds and (with signing:) each candidate's evidence."""
        state = load_state(state_file(self.catalog))
        pinned: dict[str, list[str]] = {}
        for pin in pinned_digests(self.catalog):
            pinned.setdefault(pin.digest, []).append(f"{pin.env} ({pin.image}, GitOps)")
        recorded: dict[str, list[str]] = {}
        seen: dict[str, datetime] = {}
        held: dict[str, tuple[datetime, str]] = {}
        _from_state(state, recorded, seen, held)
        _from_audit(audit.read(audit_log(self.catalog)), seen, held)
        for listed in load_revocations(self.catalog).listed:
            entry = listed.entry
            _saw(seen, entry.digest, entry.at)
            _hold(held, entry.digest, entry.at, f"revoked ({listed.location})")
        facts = Facts(
            pinned={d: tuple(w) for d, w in pinned.items()},
            recorded={d: tuple(w) for d, w in recorded.items()},
            current=self._current(),
            last_seen=seen,
            held=held,
        )
        if not signing_enabled(self.catalog):
            return facts
        unverified: dict[str, str] = {}
        protected = set(facts.pinned) | set(facts.recorded) | set(facts.current)
        for m in manifests:
            if retentions.get(m.environment) is None or m.digest in protected or m.aliases:
                continue
            self._evidence(m, seen, held, unverified)
        return Facts(facts.pinned, facts.recorded, facts.current, seen, held, unverified)

    def _current(self) -> frozenset[str]:
        """The digests the build registry holds under the content tags of the catalog as it is
        (what the next build would reuse)."""
        build = build_registry(self.catalog.project)
        build_name = self.catalog.project.environments[0].registries[0]
        found = set()
        for ref, inputs in content_inputs(self.catalog).items():
            repo = repository(build, self.catalog.images[ref].spec.name)
            digest = self._tags.get((build_name, repo), {}).get(content_tag(inputs.content_hash))
            if digest is not None:
                found.add(digest)
        return frozenset(found)

    def _evidence(
        self,
        m: Manifest,
        seen: dict[str, datetime],
        held: dict[str, tuple[datetime, str]],
        unverified: dict[str, str],
    ) -> None:
        """The signed times and revocation of ``m``'s digest in its repository."""
        registry = self.catalog.project.registries[m.registry]
        try:
            verified = verify_digest(
                EvidenceStore(self.client, Location(registry, m.repository)),
                m.digest,
                verifying_key(self.catalog),
                identities=identities(self.catalog.project.registries.values(), m.repository),
                builders=builders(self.catalog),
            )
        except NoEvidence:
            return
        except VerificationError as exc:
            unverified[m.digest] = exc.message
            return
        for provenance in verified.predicates(predicates.PROVENANCE):
            finished = ((provenance.get("runDetails") or {}).get("metadata") or {}).get(
                "finishedOn"
            )
            if isinstance(finished, str):
                _saw(seen, m.digest, _parse(finished))
        for run in map(predicates.parse_test_result, verified.predicates(predicates.TEST_RESULT)):
            _saw(seen, m.digest, run.at)
        for release in map(predicates.parse_release, verified.predicates(predicates.RELEASE)):
            _saw(seen, m.digest, release.at)
        for record in map(predicates.parse_lifecycle, verified.predicates(predicates.LIFECYCLE)):
            _saw(seen, m.digest, record.at)
            if record.revoked:
                _hold(held, m.digest, record.at, "revoked (signed lifecycle attestation)")

    def parent_of(self, m: Manifest) -> str | None:
        """The digest ``m`` was built on (its base.digest label; the config is covered by the
        digest), read once per digest."""
        if m.digest not in self._parents:
            registry = self.catalog.project.registries[m.registry]
            label = self.client.label(registry, f"{m.repository}@{m.digest}", BASE_DIGEST_LABEL)
            self._parents[m.digest] = label or None
        return self._parents[m.digest]

    def size_of(self, m: Manifest) -> int | None:
        """The sizes its manifest names: config and layers (an index: its manifests')."""
        registry = self.catalog.project.registries[m.registry]
        found = self.client.manifest(registry, m.repository, m.digest)
        if found is None:
            return None
        try:
            document = json.loads(found[0])
            parts = [document.get("config") or {}, *(document.get("layers") or [])]
            parts += document.get("manifests") or []
            return sum(int(p.get("size") or 0) for p in parts if isinstance(p, dict))
        except (ValueError, TypeError, AttributeError):
            return None

    def delete(
        self, doomed: list[Decision], on_delete: Callable[[Deletion], None]
    ) -> tuple[tuple[Deletion, ...], tuple[tuple[Decision, str], ...]]:
        """Delete each of ``doomed``, written ahead; skip one a tag named meanwhile."""
        revision = git.revision(self.catalog.root)
        deleted, skipped = [], []
        fresh: dict[tuple[str, str], dict[str, str]] = {}
        for decision in doomed:
            m = decision.manifest
            registry = self.catalog.project.registries[m.registry]
            place = (m.registry, m.repository)
            if place not in fresh:  # the repository's tags again, right before deleting in it
                fresh[place] = self._read_again(m)
            gained = sorted(t for t, d in fresh[place].items() if d == m.digest and t not in m.tags)
            if gained:
                skipped.append((decision, gained[0]))
                continue
            size = self.size_of(m)
            intent = audit.new_record(
                action=GC,
                image=m.image,
                version=", ".join(f"{v}{m.suffix}" for v in m.versions),
                digest=m.digest,
                source=m.environment,
                target=m.environment,
                tags=list(m.tags),
                git_revision=revision,
                approver=None,
                registries=[m.registry],
                reason=decision.why,
            )
            with written_ahead(self.catalog, intent, nothing=NOTHING_DELETED):
                evidence = _delete(self.client, registry, m.repository, m.digest)
            _done(self.catalog, intent)
            done = Deletion(decision, size, evidence, intent.id)
            on_delete(done)
            deleted.append(done)
        return tuple(deleted), tuple(skipped)


def _delete(client: RegistryClient, registry: Registry, repo: str, digest: str) -> tuple[str, ...]:
    """The manifest ``repo@digest``, then its .sig and .att manifests; the evidence tags that
    were there. Each deletion of what is gone already is a no-op (a re-run's)."""
    client.delete(registry, repo, digest)
    gone = []
    for tag in (signature_tag(digest), attestation_tag(digest)):
        held = client.digest(registry, f"{repo}:{tag}")
        if held is not None:
            client.delete(registry, repo, held)
            gone.append(tag)
    return tuple(gone)


def _done(catalog: Catalog, intent: AuditRecord) -> None:
    """The done record of a deletion; one that cannot be written leaves the intent open,
    which the next run completes."""
    path = audit_log(catalog)
    try:
        audit.append(path, audit.follow_up(intent, audit.DONE))
    except OSError as exc:
        raise unwritable(
            path, exc, f"{intent.image}@{intent.digest} is deleted; the next gc records it"
        ) from exc


def _complete_interrupted(catalog: Catalog, client: RegistryClient) -> tuple[str, ...]:
    """Finish every gc deletion the audit log holds an open intent of."""
    completed = []
    for intent in audit.interrupted(audit_log(catalog)):
        if intent.action != GC:
            continue
        registry = _registry_of(catalog, intent)
        _delete(client, registry, repository(registry, intent.image), intent.digest)
        _done(catalog, intent)
        completed.append(intent.id)
    return tuple(completed)


def _registry_of(catalog: Catalog, intent: AuditRecord) -> Registry:
    names = intent.registries
    if len(names) != 1 or names[0] not in catalog.project.registries:
        raise UserError(
            f"the interrupted gc deletion {intent.id} names registries {names}, which "
            "imagefactory.yaml does not define (one expected)",
            hint="restore the registry in imagefactory.yaml, or finish the deletion by hand "
            f"({intent.image}@{intent.digest}) and leave the intent as it is",
        )
    return catalog.project.registries[names[0]]


def _from_state(
    state: State,
    recorded: dict[str, list[str]],
    seen: dict[str, datetime],
    held: dict[str, tuple[datetime, str]],
) -> None:
    for ref, record in state.images.items():
        if record.digest is not None:
            recorded.setdefault(record.digest, []).append(f"the last build of {ref} (state)")
            if record.built_at:
                _saw(seen, record.digest, _parse(record.built_at))
        for env, where in record.environments.items():
            recorded.setdefault(where.digest, []).append(
                f"{env} holds {ref} {where.version} (state)"
            )
            _saw(seen, where.digest, _parse(where.at))
        for digest, run in record.test_runs.items():
            _saw(seen, digest, _parse(run.at))
        for version, yank in record.yanked.items():
            _saw(seen, yank.digest, _parse(yank.at))
            _hold(held, yank.digest, _parse(yank.at), f"yanked {ref} {version} (state)")


def _from_audit(
    lines: Iterable[dict[str, Any]],
    seen: dict[str, datetime],
    held: dict[str, tuple[datetime, str]],
) -> None:
    for line in lines:
        digest, at = line.get("digest"), line.get("at")
        if not isinstance(digest, str) or not isinstance(at, str) or line.get("action") == GC:
            continue
        moment = _parse(at)
        _saw(seen, digest, moment)
        if line.get("action") in ("yank", "revoke"):
            what = "yanked" if line["action"] == "yank" else "revoked"
            _hold(held, digest, moment, f"{what} (audit log {line.get('id')})")


def _saw(seen: dict[str, datetime], digest: str, moment: datetime | None) -> None:
    if moment is not None and (digest not in seen or seen[digest] < moment):
        seen[digest] = moment


def _hold(
    held: dict[str, tuple[datetime, str]], digest: str, moment: datetime | None, what: str
) -> None:
    if moment is not None and (digest not in held or held[digest][0] < moment):
        held[digest] = (moment, what)


def _parse(text: str) -> datetime | None:
    """An ISO 8601 time (a naive one is UTC); None when it is not one."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def tag_kind(tag: str, suffixes: list[str]) -> tuple[str, str, semver.Version | None]:
    """What ``tag`` is to imagefactory: ("version", suffix, version), ("alias", suffix, None),
    ("build", "", None) or ("foreign", "", None). ``suffixes``: the variant suffixes of the
    repository's images, the longest first (longest suffix wins)."""
    if tag.startswith(BUILD_TAG_PREFIXES):
        return "build", "", None
    for suffix in suffixes:
        version = parse_version_tag(tag, suffix, suffixes)
        if version is not None:
            return "version", suffix, version
        if tag.endswith(suffix) and _ALIAS.fullmatch(tag[: len(tag) - len(suffix)]):
            return "alias", suffix, None
    return "foreign", "", None
