"""Which manifests ``gc`` deletes and why each other one is kept: pure rules over what the
registries, the GitOps repository, state and the audit log say (``gc.py`` gathers it).

A manifest is one digest in one repository of one environment's registry. It is kept when a
rule protects it, and every rule that does is named:

* ``retention``: its environment deletes nothing (``retention_of`` is None);
* ``foreign tag``: a tag imagefactory does not write names it (someone else's: left alone);
* ``alias``: an ``X.Y``, ``X`` or ``latest`` tag of any environment names the digest;
* ``pinned``: a GitOps overlay pins the digest;
* ``recorded``: state says an environment holds the digest, or that it is the image's last build;
* ``current``: it is the build the catalog describes now (its content tag);
* ``version``: it is among the ``keep_versions`` highest versions of its ``MAJOR.MINOR`` line
  in its repository (per variant suffix);
* ``young``: its last known activity (built, tested, pushed, promoted, yanked, revoked: signed
  evidence, state and the audit log) is less than ``keep_days`` old;
* ``age unknown``: nothing says when it was made (kept: gc never guesses);
* ``held``: it was yanked or revoked less than ``hold_days`` ago (the audit hold);
* ``unverified``: its evidence does not verify (kept for whoever investigates);
* ``kept elsewhere``: the same digest is kept in another environment's repository;
* ``parent``: it is the parent, transitively, of a kept digest (its provenance chain must verify).

The last two spread: they are applied until nothing changes. Everything else is deleted,
with its ``.sig`` and ``.att``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import semver

from imagefactory.spec.models import Retention

#: The reasons ``_spread`` gives (one manifest's ``kept elsewhere`` does not spread again).
SPREAD = ("kept elsewhere:",)
#: How many rounds of ``kept elsewhere`` and ``parent`` at most (each round adds a parent
#: generation or an environment; catalogs are a few levels deep).
MAX_ROUNDS = 64


@dataclass(frozen=True)
class Manifest:
    """One digest in one repository, with the tags that name it there (evidence tags aside)."""

    environment: str
    registry: str  # its name in imagefactory.yaml
    repository: str  # HOST/NAMESPACE/NAME
    image: str  # the catalog image name
    digest: str
    tags: tuple[str, ...]
    versions: tuple[semver.Version, ...] = ()  # what its version tags carry (X.Y.Z[-pre])
    suffix: str = ""  # the variant suffix its version tags have
    aliases: tuple[str, ...] = ()  # its X.Y, X, latest tags
    foreign: tuple[str, ...] = ()  # tags imagefactory does not write

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.registry, self.repository, self.digest)


@dataclass(frozen=True)
class Facts:
    """What protects digests, across every environment (digest → what says so)."""

    pinned: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # → "prod app/rag-api"
    recorded: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # → "preprod (state)"
    current: Collection[str] = ()  # the catalog's current builds
    last_seen: Mapping[str, datetime] = field(default_factory=dict)  # → the newest activity
    held: Mapping[str, tuple[datetime, str]] = field(default_factory=dict)  # → when, what
    unverified: Mapping[str, str] = field(default_factory=dict)  # → why it does not verify


@dataclass(frozen=True)
class Decision:
    """A manifest and why it is kept (``reasons``), or why it goes (``why``, reasons empty)."""

    manifest: Manifest
    reasons: tuple[str, ...]
    why: str | None = None

    @property
    def deleted(self) -> bool:
        return not self.reasons


def decide(
    manifests: Iterable[Manifest],
    facts: Facts,
    retentions: Mapping[str, Retention | None],
    parent_of: Callable[[Manifest], str | None],
    now: datetime,
) -> list[Decision]:
    """Every manifest's decision, kept ones with every rule that keeps them. ``retentions``:
    each environment's (``project.retention.retention_of``); ``parent_of``: the parent digest a
    manifest was built on (its ``base.digest`` label), asked only of kept ones."""
    manifests = sorted(manifests, key=lambda m: (m.environment, m.repository, m.digest))
    reasons = {m.key: own_reasons(m, facts, retentions.get(m.environment), now) for m in manifests}
    for m, top in _top_versions(manifests, retentions).items():
        reasons[m.key] += (top,)
    _spread(manifests, reasons, parent_of)
    return [
        Decision(m, tuple(reasons[m.key]), None if reasons[m.key] else _why(m, facts, retentions))
        for m in manifests
    ]


def own_reasons(
    m: Manifest, facts: Facts, retention: Retention | None, now: datetime
) -> tuple[str, ...]:
    """The rules that keep ``m`` on its own (all but ``version``, ``kept elsewhere`` and
    ``parent``)."""
    found: list[str] = []
    if retention is None:
        found.append(f"retention: {m.environment} deletes nothing (no retention: setting)")
    found += [f"foreign tag: {tag} (not imagefactory's)" for tag in m.foreign]
    found += [f"alias: {tag}" for tag in m.aliases]
    found += [f"pinned: {where}" for where in facts.pinned.get(m.digest, ())]
    found += [f"recorded: {where}" for where in facts.recorded.get(m.digest, ())]
    if m.digest in facts.current:
        found.append("current: the build the catalog describes now")
    if m.digest in facts.unverified:
        found.append(f"unverified: {facts.unverified[m.digest]}")
    days = retention.keep_days if retention is not None else None
    seen = facts.last_seen.get(m.digest)
    if seen is None:
        found.append("age unknown: nothing says when it was built or released")
    elif days is not None and now - seen < timedelta(days=days):
        found.append(f"young: last activity {seen:%Y-%m-%d}, less than {days} days ago")
    hold = facts.held.get(m.digest)
    if hold is not None and retention is not None:
        when, what = hold
        if now - when < timedelta(days=retention.hold_days):
            found.append(f"held: {what} {when:%Y-%m-%d}, kept {retention.hold_days} days after")
    return tuple(found)


def _top_versions(
    manifests: list[Manifest], retentions: Mapping[str, Retention | None]
) -> dict[Manifest, str]:
    """The manifests among the ``keep_versions`` highest versions of their line, per
    repository and variant suffix: what the ``version`` rule says of each."""
    lines: dict[tuple[str, str, str, int, int], list[tuple[semver.Version, Manifest]]] = {}
    for m in manifests:
        for version in m.versions:
            key = (m.registry, m.repository, m.suffix, version.major, version.minor)
            lines.setdefault(key, []).append((version, m))
    kept: dict[Manifest, str] = {}
    for (_, _, suffix, major, minor), entries in lines.items():
        retention = retentions.get(entries[0][1].environment)
        if retention is None:
            continue
        ranked = sorted(entries, key=lambda entry: entry[0], reverse=True)
        for version, m in ranked[: retention.keep_versions]:
            kept.setdefault(
                m,
                f"version: {version}{suffix} is among the {retention.keep_versions} highest "
                f"of {major}.{minor}",
            )
    return kept


def _spread(
    manifests: list[Manifest],
    reasons: dict[tuple[str, str, str], tuple[str, ...]],
    parent_of: Callable[[Manifest], str | None],
) -> None:
    """Add ``kept elsewhere`` and ``parent`` to every manifest they hold for, until nothing
    changes (bounded): a manifest kept already is told these reasons too."""
    by_digest: dict[str, list[Manifest]] = {}
    for m in manifests:
        by_digest.setdefault(m.digest, []).append(m)
    parents: dict[tuple[str, str, str], str | None] = {}

    def add(target: Manifest, reason: str) -> bool:
        if reason in reasons[target.key]:
            return False
        reasons[target.key] += (reason,)
        return True

    for _ in range(MAX_ROUNDS):
        changed = False
        for m in manifests:
            if not reasons[m.key]:
                continue
            own = [r for r in reasons[m.key] if not r.startswith(SPREAD)]
            for other in by_digest[m.digest]:
                if other.environment != m.environment and own:
                    changed |= add(other, f"kept elsewhere: in {m.environment} ({m.repository})")
            if m.key not in parents:
                parents[m.key] = parent_of(m)
            for held in by_digest.get(parents[m.key] or "", []):
                changed |= add(held, f"parent: of {m.repository}@{m.digest}")
        if not changed:
            return


def _why(m: Manifest, facts: Facts, retentions: Mapping[str, Retention | None]) -> str:
    """Why a manifest no rule keeps goes, in the retention's words."""
    retention = retentions.get(m.environment)
    assert retention is not None  # a manifest of an environment without retention is kept
    seen = facts.last_seen[m.digest]  # one without a known age is kept
    age = f"last activity {seen:%Y-%m-%d}, over {retention.keep_days} days ago"
    if not m.versions:
        return f"an unreleased build ({', '.join(m.tags) or 'untagged'}): {age}"
    versions = ", ".join(f"{v}{m.suffix}" for v in m.versions)
    return (
        f"{versions}: not among the {retention.keep_versions} highest of its line; {age}; "
        "no alias, pin, state record or kept child names it"
    )
