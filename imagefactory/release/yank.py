"""Yank and unyank: mark a version of an image bad (or good again), and move its aliases.

``yank`` records why a version is bad (in state, which the release gate reads: a yanked version
is never pushed or promoted again) and moves ``X.Y``, ``X`` and ``latest`` (with the image's
variant suffix) back to the highest good release of their line, in every registry of every
environment that holds the image. ``unyank`` removes the mark and runs the same computation, so
the aliases move forward again.

The ``X.Y.Z`` tag of a yanked version stays (immutable, evidence). An alias whose line has no
good version left is left where it is (a registry of the distribution API can only delete a
manifest, with every tag on it) and reported. GitOps pins do not change: a deployed yanked
digest stays deployed until a good version is promoted over it.

Moving an alias is a release step: every environment whose aliases move that has ``approval``
needs an approver (``gate.approver``, as for a promotion: ``--approve``, or in CI only the
environment's protected deployment job), recorded in the audit record; an unyank also passes
the release gate (``gate.require``: a passing test run, four eyes) with every digest its aliases
move onto, in every environment they move in. A version whose latest test run failed never
gets its aliases back.

Written ahead like push and promote: an intent in the audit log (with the reason) before the
first alias moves, then state, then the done record. An intent left open (a crash, a kill, a
full disk) is completed by the next yank or unyank of that image.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import partial

import semver

from imagefactory import git
from imagefactory.errors import UserError
from imagefactory.evidence.predicates import Lifecycle
from imagefactory.project.naming import build_registry, content_tag, repository, variant_suffix
from imagefactory.project.paths import audit_log, state_file
from imagefactory.project.state import ImageRecord, TestRecord, YankRecord, load_state
from imagefactory.registry.client import RegistryClient, registry_session
from imagefactory.release import aliases, audit, gate
from imagefactory.release.audit import AuditRecord
from imagefactory.release.environments import registries_of
from imagefactory.release.evidence import Evidence, evidence_for
from imagefactory.release.record import failure_recorded, finish, one_at_a_time, written_ahead
from imagefactory.scan.verdict import Verdict
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.grammar import CONTROL
from imagefactory.spec.revocations import load_revocations

YANK, UNYANK = "yank", "unyank"
#: The audit record's source and target: every environment (never an environment's name, so a
#: push or a promotion never mistakes an open yank for its own interrupted step).
EVERY_ENVIRONMENT = "*"
MAX_REASON = 500


@dataclass(frozen=True)
class YankResult:
    """One yank or unyank (or, with --dry-run, what it would do)."""

    action: str  # yank | unyank
    ref: str
    version: str
    digest: str
    reason: str | None
    changes: tuple[aliases.AliasChange, ...]
    deployed: tuple[str, ...]  # environments that hold this version: it stays deployed there
    completed: tuple[str, ...]  # interrupted yanks and unyanks of the image this run completed
    audit_id: str | None = None  # set once it is recorded; None: a dry run, or nothing to do
    approver: str | None = None  # who approved it (None: no environment it moves needs one)

    @property
    def left(self) -> list[str]:
        """The aliases that keep naming a yanked digest: their line has no good version."""
        return sorted({c.reference for c in self.changes if c.action == aliases.LEFT})


def yank(
    catalog: Catalog,
    image: CatalogImage,
    version: str,
    reason: str | None,
    *,
    dry_run: bool,
    approve: bool = False,
    approver: str | None = None,
) -> YankResult:
    """Mark ``version`` of ``image`` bad for ``reason`` and move its aliases back to the highest
    good version everywhere, approved (where an environment whose aliases move needs it) with
    ``approve`` by ``approver`` (see ``gate.approver``). ``reason`` may be left out only to
    complete an interrupted yank of that version (its reason is in the audit log)."""
    return _run(
        catalog, image, YANK, version, reason, dry_run=dry_run, approve=approve, named=approver
    )


def unyank(
    catalog: Catalog,
    image: CatalogImage,
    version: str,
    reason: str | None,
    *,
    dry_run: bool,
    approve: bool = False,
    approver: str | None = None,
) -> YankResult:
    """Mark ``version`` of ``image`` good again and move its aliases to the highest good version
    everywhere (forward onto it, where it is the highest), through the release gate in every
    environment they move in (a passing test run of the digest; approved as for ``yank``)."""
    return _run(
        catalog, image, UNYANK, version, reason, dry_run=dry_run, approve=approve, named=approver
    )


def _run(
    catalog: Catalog,
    image: CatalogImage,
    action: str,
    version: str,
    reason: str | None,
    *,
    dry_run: bool,
    approve: bool,
    named: str | None,
) -> YankResult:
    version = _version(version)
    reason = _reason(reason)
    approvers = {
        env.name: gate.approver(env, catalog.root, approve=approve, named=named)
        for env in catalog.project.environments
    }
    with ExitStack() as locks:  # no push or promotion moves an alias of the image meanwhile
        for step in ("push", "promote", YANK):
            locks.enter_context(one_at_a_time(catalog, step, image.ref))
        pending = [] if dry_run else _interrupted(catalog, image.ref)
        if reason is None and action == YANK and not any(p.version == version for p in pending):
            raise UserError(
                f"a yank needs a reason: why is {image.ref} {version} bad?",
                hint=f"imagefactory yank {image.ref} {version} --reason 'CVE-… in libfoo'",
            )
        targets = [
            r for env in catalog.project.environments for _, r in registries_of(catalog, env)
        ]
        with registry_session(catalog, targets) as client:
            done = [
                _apply(catalog, client, image, i, approvers, dry_run=False, logged=True)
                for i in pending
            ]
            completed = tuple(p.id for p in pending)
            if pending and (pending[-1].action, pending[-1].version) == (action, version):
                return replace(done[-1], completed=completed)  # it completes this very step
            record = _record_of(catalog, image.ref)
            if action == UNYANK and version not in record.yanked:
                raise UserError(
                    f"{image.ref} {version} is not yanked",
                    hint=f"yanked versions: {', '.join(sorted(record.yanked)) or 'none'}",
                )
            places = aliases.repositories(catalog, client, image)
            digest = (
                record.yanked[version].digest
                if action == UNYANK
                else _digest_of(catalog, client, image, record, places, version)
            )
            intent = _intent(catalog, action, image.ref, version, digest, reason, record)
            result = _apply(
                catalog, client, image, intent, approvers, dry_run=dry_run, places=places
            )
    return replace(result, completed=completed)


def _version(text: str) -> str:
    try:
        version = semver.Version.parse(text)
    except (ValueError, TypeError) as exc:
        raise UserError(
            f"'{text}' is not a version (MAJOR.MINOR.PATCH, as the registry's X.Y.Z tags name it)",
            hint="imagefactory status lists the versions each environment holds",
        ) from exc
    return str(version.replace(build=None))


def _reason(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    if CONTROL.search(text) or len(text) > MAX_REASON:
        raise UserError(
            f"the reason must be one line of at most {MAX_REASON} characters, without control "
            "characters",
            hint="name the problem and where it is tracked, e.g. --reason 'CVE-2026-1234, INC-42'",
        )
    return text.strip()


def _record_of(catalog: Catalog, ref: str) -> ImageRecord:
    record = load_state(state_file(catalog)).images.get(ref)
    if record is None:
        raise UserError(
            f"the state file has no record of {ref}, so it cannot record a yank of it",
            hint=f"build it in this checkout first (imagefactory build {ref}), or restore the "
            "state file from the last CI artifact",
        )
    return record


def _interrupted(catalog: Catalog, ref: str) -> list[AuditRecord]:
    """The open yank and unyank intents of ``ref``, oldest first, with their reasons (read
    back as a reason given now would be)."""
    return [
        replace(i, reason=_reason(i.reason))
        for i in audit.interrupted(audit_log(catalog))
        if i.image == ref and i.action in (YANK, UNYANK)
    ]


def _intent(
    catalog: Catalog,
    action: str,
    ref: str,
    version: str,
    digest: str,
    reason: str | None,
    record: ImageRecord,
) -> AuditRecord:
    """The audit record of this step; a yank of a version already yanked keeps its reason."""
    held = record.yanked.get(version)
    if action == YANK and held is not None:
        reason = held.reason
    return audit.new_record(
        action=action,
        image=ref,
        version=version,
        digest=digest,
        source=EVERY_ENVIRONMENT,
        target=EVERY_ENVIRONMENT,
        tags=[],
        git_revision=git.revision(catalog.root),
        approver=None,
        identity=gate.identity(catalog.root),
        reason=reason,
    )


def _digest_of(
    catalog: Catalog,
    client: RegistryClient,
    image: CatalogImage,
    record: ImageRecord,
    places: list[aliases.Repository],
    version: str,
) -> str:
    """The digest of ``version``: its X.Y.Z tag in the first registry that holds it, else the
    content state gave that version, by its content tag in the build registry."""
    tag = f"{version}{variant_suffix(image.spec.variant)}"
    for place in places:
        if tag in place.tags:
            digest = client.digest(place.registry, f"{place.repository}:{tag}")
            if digest is not None:
                return digest
    content = record.versions.get(version)
    if content is not None:
        build = build_registry(catalog.project)
        found = client.digest(build, f"{repository(build, image.spec.name)}:{content_tag(content)}")
        if found is not None:
            return found
    known = sorted(
        {
            *record.versions,
            *(str(v) for p in places for v in aliases.versions_in(catalog, image, p)),
        }
    )
    raise UserError(
        f"{image.ref} has no version {version} in state or in any registry of its environments",
        hint=f"its versions: {', '.join(known[-10:]) or 'none yet'}",
    )


def _apply(
    catalog: Catalog,
    client: RegistryClient,
    image: CatalogImage,
    intent: AuditRecord,
    approvers: Mapping[str, str | None],
    *,
    dry_run: bool,
    places: list[aliases.Repository] | None = None,
    logged: bool = False,
) -> YankResult:
    """Plan the aliases with ``intent`` applied to the yanked versions in state (in ``places``;
    None: read them), let the moves through the gate (``approvers``: each environment's, as
    ``gate.approver`` named them), and (unless a dry run, or nothing changes) write them ahead:
    the intent, the aliases, state, done. ``logged``: ``intent`` is an interrupted one, already
    in the audit log; it is completed (and closed, even when nothing is left to change)."""
    record = _record_of(catalog, intent.image)
    yanked = set(record.yanked)
    if intent.action == YANK:
        yanked.add(intent.version)
    else:
        yanked.discard(intent.version)
    changes = aliases.plan(
        catalog, client, image, places or aliases.repositories(catalog, client, image), yanked
    )
    moved = [c for c in changes if c.action in ("create", "move")]
    approved = _approved(catalog, intent, moved, approvers)
    already = (intent.version in record.yanked) == (intent.action == YANK)
    result = YankResult(
        intent.action,
        intent.image,
        intent.version,
        intent.digest,
        intent.reason,
        tuple(changes),
        tuple(e for e, held in record.environments.items() if held.version == intent.version),
        (),
        approver=approved,
    )
    if dry_run or (already and not moved and not logged):
        return result
    if not logged:
        intent = replace(
            intent,
            tags=sorted({c.tag for c in moved}),
            registries=sorted({c.registry for c in moved}),
            approver=approved,
        )
    with failure_recorded(catalog, intent) if logged else written_ahead(catalog, intent):
        aliases.write(catalog, client, moved)
    on_it = sorted(
        c.reference for c in changes if c.action == aliases.LEFT and c.previous == intent.digest
    )
    finish(
        catalog,
        intent,
        record,
        update=partial(_yanked, on_it),
        written="the aliases are moved and verified",
    )
    return replace(result, audit_id=intent.id)


def _approved(
    catalog: Catalog,
    intent: AuditRecord,
    moved: list[aliases.AliasChange],
    approvers: Mapping[str, str | None],
) -> str | None:
    """Who approved the aliases ``moved`` by ``intent`` (None: no environment they move in
    needs an approval); ``gate.Refused`` unless each of those environments with ``approval``
    has its approver, and (an unyank) each digest they move onto passes the gate there."""
    unyanked = intent.action == UNYANK
    evidence = _Unyanked(evidence_for(catalog), intent.image, intent.version) if unyanked else None
    what = f"the {intent.action} of {intent.image} {intent.version}"
    names = set()
    for name in sorted({e for change in moved for e in change.environments}):
        _, env = catalog.environment(name)
        if evidence is not None:
            for change in moved:
                assert change.version is not None and change.digest is not None  # not left
                if name in change.environments:
                    candidate = gate.Candidate(intent.image, change.version, change.digest, env)
                    gate.require(
                        evidence,
                        candidate,
                        approver=approvers[name],
                        listed=load_revocations(catalog),
                    )
        if env.approval:
            names.add(gate.require_approver(env, what, approvers[name]))
    return ", ".join(sorted(names)) or None


@dataclass(frozen=True)
class _Unyanked:
    """``evidence`` as it is once ``version`` of ``ref`` is unyanked: what an unyank's moves
    pass the gate on."""

    evidence: Evidence
    ref: str
    version: str

    def test_of(self, ref: str, digest: str) -> TestRecord | None:
        return self.evidence.test_of(ref, digest)

    def yank_of(self, ref: str, version: str) -> YankRecord | None:
        if (ref, version) == (self.ref, self.version):
            return None
        return self.evidence.yank_of(ref, version)

    def pusher_of(self, ref: str, digest: str) -> tuple[str, ...]:
        return self.evidence.pusher_of(ref, digest)

    def revocation_of(self, ref: str, digest: str) -> Lifecycle | None:
        return self.evidence.revocation_of(ref, digest)

    def verdict_of(self, ref: str, digest: str, env: str) -> Verdict | None:
        return self.evidence.verdict_of(ref, digest, env)

    def where(self, ref: str, digest: str) -> str:
        return self.evidence.where(ref, digest)


def _yanked(left: list[str], intent: AuditRecord, current: ImageRecord) -> ImageRecord:
    """``current`` with ``intent`` recorded: the yank, with the aliases ``left`` on its digest
    (a version yanked again keeps its first record); or its removal."""
    yanked = dict(current.yanked)
    if intent.action == UNYANK:
        yanked.pop(intent.version, None)
    else:
        held = yanked.get(intent.version)
        yanked[intent.version] = (
            held.model_copy(update={"aliases_left": left})
            if held is not None
            else YankRecord(
                version=intent.version,
                digest=intent.digest,
                reason=intent.reason or "",
                by=intent.identity or intent.who,
                at=intent.at,
                audit_id=intent.id,
                aliases_left=left,
            )
        )
    return current.model_copy(update={"yanked": yanked})
