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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from imagefactory.evidence import predicates
from imagefactory.evidence.keys import signing_enabled, verifying_key
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.evidence.verify import Verified, identities, revocation, verify_digest
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
    """Evidence from the signed attestations of each digest in ``registry`` (the source
    environment's first registry, for a promotion; None: where the build put the image, as
    state records it, for a push), verified once per digest; yanks from ``state``."""

    catalog: Catalog
    state: State
    client: RegistryClient
    registry: Registry | None
    key: VerifyingKey
    _verified: dict[tuple[str, str], Verified] = field(default_factory=dict)

    def test_of(self, ref: str, digest: str) -> TestRecord | None:
        runs = self._predicates(ref, digest, predicates.TEST_RESULT)
        if not runs:
            return None
        run = predicates.parse_test_result(runs[-1])
        # a test-result attestation holds no time: the run is the latest by the order written
        return TestRecord(digest=digest, passed=run.passed, checks=run.checks, at="")

    def yank_of(self, ref: str, version: str) -> YankRecord | None:
        record = self.state.images.get(ref)
        return record.yanked.get(version) if record else None

    def pusher_of(self, ref: str, digest: str) -> tuple[str, ...]:
        first = self.catalog.project.environments[0].name
        pushes = [
            release
            for release in map(
                predicates.parse_release, self._predicates(ref, digest, predicates.RELEASE)
            )
            if release.environment == first and release.from_environment is None
        ]
        return (pushes[-1].identity,) if pushes else ()

    def revocation_of(self, ref: str, digest: str) -> predicates.Lifecycle | None:
        latest = revocation(self._verified_at(ref, digest))
        return latest if latest is not None and latest.revoked else None

    def verdict_of(self, ref: str, digest: str, env: str) -> Verdict | None:
        where = self.where(ref, digest)
        verdicts = [
            parse_predicate(entry, f"a scan verdict in {where}")
            for entry in self._predicates(ref, digest, predicates.SCAN_VERDICT)
        ]
        held = [v for v in verdicts if v.environment in (None, env)]
        return max(reversed(held), key=lambda v: v.at) if held else None  # of a tie, the last

    def where(self, ref: str, digest: str) -> str:
        return f"the signed attestations {self._location(ref).repository}:{attestation_tag(digest)}"

    def _location(self, ref: str) -> Location:
        if self.registry is not None:
            return Location(self.registry, repository(self.registry, self._name(ref)))
        record = self.state.images.get(ref)
        build = build_registry(self.catalog.project)
        if record is None or record.repository is None:
            return Location(build, repository(build, self._name(ref)))
        return Location(build, record.repository)

    def _name(self, ref: str) -> str:
        return self.catalog.images[ref].spec.name

    def _predicates(self, ref: str, digest: str, predicate_type: str) -> tuple[object, ...]:
        return self._verified_at(ref, digest).predicates(predicate_type)

    def _verified_at(self, ref: str, digest: str) -> Verified:
        """The evidence of ``digest`` of ``ref``, verified (once); a VerificationError, which
        refuses the step, when it does not verify."""
        verified = self._verified.get((ref, digest))
        if verified is None:
            location = self._location(ref)
            verified = verify_digest(
                EvidenceStore(self.client, location),
                digest,
                self.key,
                identities=identities(
                    self.catalog.project.registries.values(), location.repository
                ),
                builders=builders(self.catalog),
            )
            self._verified[(ref, digest)] = verified
        return verified


def builders(catalog: Catalog) -> list[str]:
    """The builder ids ``signing.builders`` trusts (empty: any)."""
    return catalog.project.signing.builders if catalog.project.signing is not None else []


def evidence_for(
    catalog: Catalog,
    state: State | None = None,
    client: RegistryClient | None = None,
    *,
    at: Registry | None = None,
    verified: Mapping[tuple[str, str], Verified] | None = None,
) -> Evidence:
    """The evidence for ``catalog``'s images, as of now; ``state``: the state file as the
    caller has just read it (under its lock), not read again. With ``signing:`` and a
    ``client`` (the command's registry session), the registry's signed evidence at ``at``
    (default: where the build put each image); else this checkout's state and audit log (a caller without
    a session reads only yanks, which state holds either way). ``verified``: (ref, digest) →
    the evidence the caller has just verified at ``at`` (not read again)."""
    state = state if state is not None else load_state(state_file(catalog))
    if client is not None and signing_enabled(catalog):
        key = verifying_key(catalog)
        return RegistryEvidence(catalog, state, client, at, key, dict(verified or {}))
    pushes = {
        (str(line["image"]), str(line["digest"])): tuple(
            dict.fromkeys(str(n) for n in (line.get("identity"), line.get("who")) if n)
        )
        for line in audit.completed(audit_log(catalog))
        if line.get("action") == "push"
    }
    return LocalEvidence(state, pushes, f"this checkout's {state_file(catalog).name} and audit log")
