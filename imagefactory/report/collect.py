"""What ``imagefactory report`` shows, read from where each datum is kept; nothing invented.

Per image: its parent chain (the catalog), its last build, test runs, size and the size of the
build before (state), the version and digest each environment holds (state) with the push or
promotion that put it there (the audit log's done record: when, by whom, approved by whom),
yanks (state), revocations (the audit log and revocations.yaml), the SBOM's package counts (the
copy each build keeps), and, unless ``offline``, the signed evidence of each placement (the
checks of ``imagefactory verify``, attestation counts, scan-gate verdicts, read from the
registry) and the pending Debian updates (``imagefactory outdated``). A datum none of those
holds is None (the report says "not recorded"); a source that could not be read says why.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any

from imagefactory.atomic import read_regular
from imagefactory.errors import ImageFactoryError
from imagefactory.evidence.bundle import summarize
from imagefactory.evidence.check import Check, check_image
from imagefactory.freshness.outdated import Pending, outdated
from imagefactory.project.paths import audit_log, sbom_file, state_file
from imagefactory.project.state import ImageRecord, load_state
from imagefactory.registry.client import RegistryClient, registry_session
from imagefactory.release import audit
from imagefactory.release.revoke import revocations
from imagefactory.sbom.diff import cyclonedx_components
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.parents import describe_parent

#: The most bytes of a kept SBOM read for its package counts.
SBOM_LIMIT = 256 * 1024 * 1024
#: What the signed evidence keeps of ``evidence.bundle.summarize`` (the rest is the bundle's).
_EVIDENCE_KEYS = ("attestations", "tests", "releases", "scans", "revoked", "revocations")


@dataclass(frozen=True)
class TestRun:
    digest: str
    passed: bool
    at: str
    checks: int


@dataclass(frozen=True)
class Sbom:
    digest: str
    packages: int  # every component
    deb: int  # Debian packages (pkg:deb purls)
    pypi: int  # Python distributions (pkg:pypi purls)


@dataclass(frozen=True)
class Build:
    digest: str | None
    version: str
    at: str | None
    seconds: float | None
    size_bytes: int | None
    previous_size_bytes: int | None  # the build before this one
    sbom: Sbom | None


@dataclass(frozen=True)
class Release:
    """The audit log's done record of the push or promotion that put a digest in place."""

    action: str  # push | promote
    source: str  # "build", or the environment promoted from
    at: str
    who: str
    identity: str | None
    approver: str | None
    forced: bool
    ci_job_url: str | None
    audit_id: str


@dataclass(frozen=True)
class Evidence:
    """The signed evidence of a placement in its environment's registries (``verify``)."""

    verified: bool | None  # every check passed; None: could not be read (``error``)
    checks: tuple[Check, ...]
    summary: dict[str, Any] | None  # the first registry's verified evidence, summarized
    error: str | None = None


@dataclass(frozen=True)
class Placement:
    env: str
    version: str | None
    digest: str | None
    tags: tuple[str, ...]
    at: str | None  # when state recorded it
    tested: bool  # the digest has a passing test run of its own
    release: Release | None
    yanked: str | None  # why its version is yanked
    revoked: str | None  # why its digest is revoked
    sbom: Sbom | None
    evidence: Evidence | None  # None: offline, unsigned, or nothing placed


@dataclass(frozen=True)
class Freshness:
    suite: str | None  # None: its chain does not start at a bootstrap
    packages: int
    pending: int
    security: int
    updates: tuple[Pending, ...]


@dataclass(frozen=True)
class ImageReport:
    ref: str
    version: str  # the catalog's
    chain: tuple[str, ...]  # the image, its catalog parents, then its origin
    build: Build | None
    tests: tuple[TestRun, ...]  # by time
    environments: tuple[Placement, ...]  # in promotion order
    yanked: tuple[dict[str, object], ...]  # version, digest, reason, by, at
    revoked: tuple[dict[str, str], ...]  # digest, reason
    freshness: Freshness | None


#: The evidence of an image in an environment (``_evidence`` through the report's session).
EvidenceOf = Callable[[CatalogImage, str], Evidence]


@dataclass(frozen=True)
class CatalogReport:
    project: str
    generated_at: str
    environments: tuple[str, ...]
    offline: bool
    signed: bool  # the project signs (signing: is set)
    images: tuple[ImageReport, ...]  # in build order
    incomplete: tuple[dict[str, str], ...]  # interrupted steps: image, action, target, at, who
    notes: tuple[str, ...]  # sources that could not be read, and why


def collect(catalog: Catalog, *, offline: bool) -> CatalogReport:
    """The report of every image of ``catalog``; ``offline``: no registry, no mirror."""
    with ExitStack() as stack:
        return _collect(catalog, offline, None if offline else _session(catalog, stack))


def _session(catalog: Catalog, stack: ExitStack) -> RegistryClient | ImageFactoryError:
    """One registry session, open until ``stack`` closes, on every environment's registries
    (and the build registry): the evidence and the pending updates of every image are read
    through it. The error instead when it cannot open."""
    registries = [
        catalog.project.registries[name]
        for env in catalog.project.environments
        for name in env.registries
    ]
    try:
        return stack.enter_context(registry_session(catalog, registries))
    except ImageFactoryError as exc:
        return exc


def _evidence_reader(session: RegistryClient | ImageFactoryError, catalog: Catalog) -> EvidenceOf:
    """The evidence of an image in an environment, through ``session``; the session's error
    for each one where it could not open."""
    if isinstance(session, ImageFactoryError):
        message = session.message
        return lambda image, env: Evidence(None, (), None, error=message)
    return partial(_evidence, catalog, session)


def _collect(
    catalog: Catalog, offline: bool, session: RegistryClient | ImageFactoryError | None
) -> CatalogReport:
    signed = catalog.project.signing is not None
    evidence = None if session is None or not signed else _evidence_reader(session, catalog)
    state = load_state(state_file(catalog)).images
    log = audit_log(catalog)
    lines = audit.read(log)
    completed = audit.done_of(lines)
    done = {str(line["id"]): line for line in completed}
    revoked = revocations(catalog, completed)
    notes: list[str] = []
    fresh = {} if session is None else _freshness(catalog, notes, session)
    images = []
    for image in catalog.in_build_order():
        record = state.get(image.ref)
        environments = tuple(
            _placement(catalog, image, record, env.name, done, revoked, evidence)
            for env in catalog.project.environments
        )
        images.append(
            ImageReport(
                ref=image.ref,
                version=image.spec.version,
                chain=(*(i.ref for i in catalog.lineage(image.ref)), _origin(catalog, image)),
                build=_build(catalog, record),
                tests=_tests(record),
                environments=environments,
                yanked=tuple(
                    y.model_dump(include={"version", "digest", "reason", "by", "at"})
                    for y in sorted((record.yanked if record else {}).values(), key=_at)
                ),
                revoked=tuple(
                    {"digest": digest, "reason": reason}
                    for (ref, digest), reason in sorted(revoked.items())
                    if ref == image.ref
                ),
                freshness=fresh.get(image.ref),
            )
        )
    incomplete = tuple(
        {"image": i.image, "action": i.action, "target": i.target, "at": i.at, "who": i.who}
        for i in audit.interrupted_of(lines, log)
    )
    return CatalogReport(
        project=catalog.project.project,
        generated_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        environments=tuple(env.name for env in catalog.project.environments),
        offline=offline,
        signed=signed,
        images=tuple(images),
        incomplete=incomplete,
        notes=tuple(notes),
    )


def _at(record: Any) -> str:
    return str(record.at)


def _origin(catalog: Catalog, image: CatalogImage) -> str:
    return describe_parent(catalog.lineage(image.ref)[-1].parent)


def _build(catalog: Catalog, record: ImageRecord | None) -> Build | None:
    if record is None:
        return None
    return Build(
        digest=record.digest,
        version=record.version,
        at=record.built_at,
        seconds=record.build_seconds,
        size_bytes=record.size_bytes,
        previous_size_bytes=record.previous_size_bytes,
        sbom=_sbom(catalog, record.digest),
    )


def _tests(record: ImageRecord | None) -> tuple[TestRun, ...]:
    if record is None:
        return ()
    runs = [record.tests] if record.tests is not None else []
    runs += list(record.test_runs.values())
    return tuple(sorted((TestRun(r.digest, r.passed, r.at, r.checks) for r in runs), key=_at))


def _sbom(catalog: Catalog, digest: str | None) -> Sbom | None:
    """The package counts of the SBOM the build of ``digest`` kept; None when none is kept."""
    if digest is None:
        return None
    path = sbom_file(catalog, digest)
    if not path.is_file():
        return None
    data = read_regular(path, what="a kept SBOM", limit=SBOM_LIMIT)
    purls = [str(c.get("purl") or "") for c in cyclonedx_components(data, str(path))]
    return Sbom(
        digest,
        len(purls),
        sum(p.startswith("pkg:deb/") for p in purls),
        sum(p.startswith("pkg:pypi/") for p in purls),
    )


def _placement(
    catalog: Catalog,
    image: CatalogImage,
    record: ImageRecord | None,
    env: str,
    done: dict[str, dict[str, Any]],
    revoked: dict[tuple[str, str], str],
    evidence: EvidenceOf | None,
) -> Placement:
    held = None if record is None else record.environments.get(env)
    if record is None or held is None:
        return Placement(env, None, None, (), None, False, None, None, None, None, None)
    run = record.test_of(held.digest)
    yank = record.yanked.get(held.version)
    line = done.get(held.audit_id) if held.audit_id else None
    return Placement(
        env=env,
        version=held.version,
        digest=held.digest,
        tags=tuple(held.tags),
        at=held.at,
        tested=run is not None and run.passed,
        release=None if line is None else _release(line),
        yanked=None if yank is None else yank.reason,
        revoked=revoked.get((image.ref, held.digest)),
        sbom=_sbom(catalog, held.digest),
        evidence=None if evidence is None else evidence(image, env),
    )


def _release(line: dict[str, Any]) -> Release:
    return Release(
        action=str(line.get("action")),
        source=str(line.get("source")),
        at=str(line.get("at")),
        who=str(line.get("who")),
        identity=line.get("identity"),
        approver=line.get("approver"),
        forced=bool(line.get("forced")),
        ci_job_url=line.get("ci_job_url"),
        audit_id=str(line["id"]),
    )


def _evidence(catalog: Catalog, client: RegistryClient, image: CatalogImage, env: str) -> Evidence:
    """What ``imagefactory verify IMAGE --env ENV`` finds; the error when it cannot run."""
    try:
        found = check_image(catalog, image, digest=None, environment=env, client=client)
    except ImageFactoryError as exc:
        return Evidence(None, (), None, error=exc.message)
    first = next(iter(found.verified.values()), None)
    summary = None
    if first is not None:
        said = summarize(first, [first.repository], 0)
        summary = {key: said[key] for key in _EVIDENCE_KEYS}
    return Evidence(found.ok, found.checks, summary)


def _freshness(
    catalog: Catalog, notes: list[str], session: RegistryClient | ImageFactoryError
) -> dict[str, Freshness]:
    """Each built image's pending Debian updates (``imagefactory outdated``, through
    ``session``); a note instead when the mirror, the registry or an SBOM cannot be read."""
    try:
        if isinstance(session, ImageFactoryError):
            raise session
        report = outdated(catalog, [], missing_ok=True, client=session)
    except ImageFactoryError as exc:
        notes.append(f"pending updates not read: {exc.message}")
        return {}
    notes += [f"{i.url}: {i.note} (cached copy used)" for i in report.indexes if i.note]
    return {
        i.image: Freshness(
            i.suite,
            i.packages,
            len(i.pending),
            i.security,
            i.pending,
        )
        for i in report.images
    }
