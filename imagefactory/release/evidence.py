"""What the release gate reads to decide: the evidence about a digest, behind one interface.

Without ``signing:`` the evidence is this checkout's state file (test runs per digest, yanks)
and audit log (who pushed a digest): ``LocalEvidence``. With it, the evidence is the signed
attestations the registry holds for the digest (``RegistryEvidence``), so any checkout or runner
sees the same truth: the test run from the test-result attestation, who pushed it from the
release attestation of its push into the first environment, its revocation and its scan
verdicts from theirs; every attestation is verified (``evidence.verify.verify_digest``: the
digest's signature by the project's key, each attestation's envelope and subject) before one is
read, and a tampered one is an error. Yanks stay in state in both. The state file keeps its
test runs as a cache of what this checkout ran.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Protocol

from imagefactory.evidence import predicates
from imagefactory.evidence.keys import builders, signing_enabled, verifying_key
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.evidence.verify import NoEvidence, Verified, identities, verify_digest
from imagefactory.project.naming import build_registry, repository
from imagefactory.project.paths import audit_log, state_file
from imagefactory.project.state import State, TestRecord, YankRecord, load_state
from imagefactory.registry.client import RegistryClient
from imagefactory.release import audit
from imagefactory.scan.verdict import Verdict, parse_predicate
from imagefactory.signing.keys import VerifyingKey
from imagefactory.signing.oci import attestation_tag
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.models import Registry


class Evidence(Protocol):
    """What is known about the digests of a catalog's images, from wherever it is kept."""

    def test_of(self, ref: str, digest: str) -> TestRecord | None:
        """The latest test run of ``digest`` of image ``ref``; None: never tested."""

    def yank_of(self, ref: str, version: str) -> YankRecord | None:
        """Why version ``version`` of ``ref`` was marked bad; None: it was not."""

    def pusher_of(self, ref: str, digest: str) -> tuple[str, ...]:
        """Who pushed ``digest`` of ``ref`` into the first environment (last): every name the
        push record gives them (its identity, as approvals name people (``gate.identity``), and
        the account or CI login); empty: nobody did, as far as this evidence knows."""

    def revocation_of(self, ref: str, digest: str) -> predicates.Lifecycle | None:
        """Why ``digest`` of ``ref`` was revoked; None: it was not."""

    def verdict_of(self, ref: str, digest: str, env: str) -> Verdict | None:
        """The latest scan verdict (by its time) of ``digest`` of ``ref`` that holds for
        environment ``env`` (one made for ``env``, or for any environment); None: none does."""

    def where(self, ref: str, digest: str) -> str:
        """Where this evidence about ``digest`` of ``ref`` is looked for (for messages)."""


@dataclass(frozen=True)
class LocalEvidence:
    """Evidence from this checkout's state file and audit log: no revocations, no verdicts
    (those are signed attestations only)."""

    state: State
    pushes: dict[tuple[str, str], tuple[str, ...]]  # (ref, digest) → the last pusher's names
    source: str = "this checkout's state file and audit log"

    def test_of(self, ref: str, digest: str) -> TestRecord | None:
        record = self.state.images.get(ref)
        return record.test_of(digest) if record else None

    def yank_of(self, ref: str, version: str) -> YankRecord | None:
        record = self.state.images.get(ref)
        return record.yanked.get(version) if record else None

    def pusher_of(self, ref: str, digest: str) -> tuple[str, ...]:
        return self.pushes.get((ref, digest), ())

    def revocation_of(self, ref: str, digest: str) -> predicates.Lifecycle | None:
        return None

    def verdict_of(self, ref: str, digest: str, env: str) -> Verdict | None:
        return None

    def where(self, ref: str, digest: str) -> str:
        return f"{self.source} (signing is not configured)"


@dataclass
class RegistryEvidence:
    """Evidence from the signed attestations of each digest, each repository's verified once;
    yanks from ``state``. They are read in the image's repository in ``registry`` (the source
    environment's first registry for a promotion, the environment's for a pin) and in the
    digest's home, the repository the build put it in (as state records it; the only one read
    when ``registry`` is None, for a push, or is that repository): the evidence travels with the
    digest, but test re-runs and re-scans are attested in the home only. The two are merged:
    the latest test run, lifecycle record, scan verdict and push by their signed time, across
    both. A home that holds no evidence of the digest at all (an image promoted from another
    catalog's build) leaves the other's alone; one that does not verify refuses the step, as
    the other does."""

    catalog: Catalog
    state: State
    client: RegistryClient
    registry: Registry | None
    key: VerifyingKey
    #: (repository, digest) → its verified evidence; None: the home holds none
    _verified: dict[tuple[str, str], Verified | None] = field(default_factory=dict)

    def test_of(self, ref: str, digest: str) -> TestRecord | None:
        runs = self._predicates(ref, digest, predicates.TEST_RESULT)
        run = predicates.latest(map(predicates.parse_test_result, runs))
        if run is None:
            return None
        at = run.at.astimezone(UTC).isoformat(timespec="seconds")
        return TestRecord(digest=digest, passed=run.passed, checks=run.checks, at=at)

    def yank_of(self, ref: str, version: str) -> YankRecord | None:
        record = self.state.images.get(ref)
        return record.yanked.get(version) if record else None

    def pusher_of(self, ref: str, digest: str) -> tuple[str, ...]:
        first = self.catalog.project.environments[0].name
        releases = self._predicates(ref, digest, predicates.RELEASE)
        push = predicates.latest(
            release
            for release in map(predicates.parse_release, releases)
            if release.environment == first and release.from_environment is None
        )
        return (push.identity,) if push is not None else ()

    def revocation_of(self, ref: str, digest: str) -> predicates.Lifecycle | None:
        records = self._predicates(ref, digest, predicates.LIFECYCLE)
        latest = predicates.latest(map(predicates.parse_lifecycle, records))
        return latest if latest is not None and latest.revoked else None

    def verdict_of(self, ref: str, digest: str, env: str) -> Verdict | None:
        where = self.where(ref, digest)
        verdicts = [
            parse_predicate(entry, f"a scan verdict in {where}")
            for entry in self._predicates(ref, digest, predicates.SCAN_VERDICT)
        ]
        return predicates.latest(v for v in verdicts if v.environment in (None, env))

    def where(self, ref: str, digest: str) -> str:
        tag = attestation_tag(digest)
        places = " and ".join(f"{place.repository}:{tag}" for place in self._places(ref))
        return f"the signed attestations {places}"

    def _places(self, ref: str) -> list[Location]:
        """Where the evidence of ``ref`` is read: in ``registry``, then the home (once)."""
        record = self.state.images.get(ref)
        build = build_registry(self.catalog.project)
        if record is None or record.repository is None:
            home = Location(build, repository(build, self._name(ref)))
        else:
            home = Location(build, record.repository)
        if self.registry is None:
            return [home]
        there = Location(self.registry, repository(self.registry, self._name(ref)))
        return [there] if there.repository == home.repository else [there, home]

    def _name(self, ref: str) -> str:
        return self.catalog.images[ref].spec.name

    def _predicates(self, ref: str, digest: str, predicate_type: str) -> tuple[object, ...]:
        """The predicates of ``predicate_type`` in each place read, the first place's first."""
        first, *home = self._places(ref)
        found = [self._verified_at(first, digest, required=True)]
        found += [self._verified_at(place, digest, required=False) for place in home]
        return tuple(p for v in found if v is not None for p in v.predicates(predicate_type))

    def _verified_at(self, place: Location, digest: str, *, required: bool) -> Verified | None:
        """The evidence of ``digest`` in ``place``, verified (once); a VerificationError, which
        refuses the step, when it does not verify; None when ``place`` holds none and it is not
        ``required``."""
        key = (place.repository, digest)
        if key not in self._verified:
            try:
                self._verified[key] = verify_digest(
                    EvidenceStore(self.client, place),
                    digest,
                    self.key,
                    identities=identities(
                        self.catalog.project.registries.values(), place.repository
                    ),
                    builders=builders(self.catalog),
                )
            except NoEvidence:
                if required:
                    raise
                self._verified[key] = None
        return self._verified[key]


def evidence_for(
    catalog: Catalog,
    state: State | None = None,
    client: RegistryClient | None = None,
    *,
    at: Registry | None = None,
    verified: Iterable[Verified] = (),
) -> Evidence:
    """The evidence for ``catalog``'s images, as of now; ``state``: the state file as the
    caller has just read it (under its lock), not read again. With ``signing:`` and a
    ``client`` (the command's registry session), the registry's signed evidence at ``at`` and
    where the build put each image (``RegistryEvidence``); else this checkout's state and audit
    log (a caller without a session reads only yanks, which state holds either way).
    ``verified``: evidence the caller has just verified (not read again)."""
    state = state if state is not None else load_state(state_file(catalog))
    if client is not None and signing_enabled(catalog):
        key = verifying_key(catalog)
        given: dict[tuple[str, str], Verified | None] = {
            (v.repository, v.digest): v for v in verified
        }
        return RegistryEvidence(catalog, state, client, at, key, given)
    pushes = {
        (str(line["image"]), str(line["digest"])): tuple(
            dict.fromkeys(str(n) for n in (line.get("identity"), line.get("who")) if n)
        )
        for line in audit.completed(audit_log(catalog))
        if line.get("action") == "push"
    }
    return LocalEvidence(state, pushes, f"this checkout's {state_file(catalog).name} and audit log")
