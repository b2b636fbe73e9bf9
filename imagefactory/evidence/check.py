"""``imagefactory verify``: what an auditor asks of one image in one environment.

For each registry of the environment, in the image's repository there: the digest (given, or
the one the environment's version tag names in the registry, the version read from state), and
then, check by check, its evidence (``verify.verify_digest``), its provenance, its chain of
parents (``verify.verify_chain``), a passing test attestation, a release attestation into the
environment (for that version when the tag was read) and its revocation state. A check that
cannot run because an earlier one failed is reported as skipped; any failure fails the lot.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

from imagefactory.errors import UserError
from imagefactory.evidence.keys import verifying_key
from imagefactory.evidence.predicates import (
    PROVENANCE,
    RELEASE,
    TEST_RESULT,
    latest,
    parse_release,
    parse_test_result,
)
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.evidence.verify import (
    Verified,
    identities,
    refuse_listed,
    revocation,
    verify_chain,
    verify_digest,
)
from imagefactory.project.naming import repository
from imagefactory.project.paths import state_file
from imagefactory.project.state import load_state
from imagefactory.registry.client import RegistryClient, registry_session
from imagefactory.signing.keys import VerificationError, VerifyingKey
from imagefactory.signing.provenance import parent_of
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.models import Environment, Registry, SigningSettings
from imagefactory.spec.revocations import Revocations, load_revocations

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


@dataclass(frozen=True)
class Check:
    repository: str
    name: str
    result: str  # ok, failed or skipped
    detail: str


@dataclass(frozen=True)
class ImageVerification:
    image: str
    environment: str
    digests: dict[str, str]  # repository → the digest verified there
    checks: tuple[Check, ...]
    verified: dict[str, Verified] = field(default_factory=dict)  # repository → its evidence

    @property
    def ok(self) -> bool:
        return all(check.result == OK for check in self.checks)


def check_image(
    catalog: Catalog,
    image: CatalogImage,
    *,
    digest: str | None,
    environment: str | None,
    client: RegistryClient | None = None,
) -> ImageVerification:
    """The checks of ``image`` (at ``digest``, else at the environment's version) in each
    registry of ``environment`` (default: the first), through ``client`` (a session open on
    those registries; None: one opened for this check)."""
    settings = catalog.project.signing
    if settings is None:
        raise UserError(
            f"{catalog.project_file.name} has no signing: section, so nothing is signed to verify",
            hint="configure signing: (docs/supply-chain.md) and push again",
        )
    if environment is None:
        if not catalog.project.environments:
            raise UserError("the project defines no environments to verify an image in")
        environment = catalog.project.environments[0].name
    _, env = catalog.environment(environment)
    recorded = None if digest is not None else _recorded(catalog, image, env)
    key = verifying_key(catalog)
    registries = [catalog.project.registries[name] for name in env.registries]
    listed = load_revocations(catalog)
    checks: list[Check] = []
    digests: dict[str, str] = {}
    verified: dict[str, Verified] = {}
    session = registry_session(catalog, registries) if client is None else nullcontext(client)
    with session as using:
        for registry in registries:
            place = Location(registry, repository(registry, image.spec.name))
            found = _Run(using, catalog, settings, key, env, place, recorded, listed)
            held = digest or found.tagged(checks)
            if held is not None:
                digests[place.repository] = held
                evidence = found.evidence(held, checks)
                if evidence is not None:
                    verified[place.repository] = evidence
    return ImageVerification(image.ref, env.name, digests, tuple(checks), verified)


def _recorded(catalog: Catalog, image: CatalogImage, env: Environment) -> tuple[str, str]:
    """(version, digest) the state says ``env`` holds of ``image``."""
    record = load_state(state_file(catalog)).images.get(image.ref)
    held = None if record is None else record.environments.get(env.name)
    if held is None:
        raise UserError(
            f"the state does not say which version of {image.ref} {env.name} holds",
            hint=f"name the digest: imagefactory verify {image.ref}@sha256:… --env {env.name} "
            "(imagefactory status shows what each environment holds)",
        )
    return held.version, held.digest


@dataclass(frozen=True)
class _Run:
    """The checks in one repository."""

    client: RegistryClient
    catalog: Catalog
    settings: SigningSettings
    key: VerifyingKey
    env: Environment
    place: Location
    recorded: tuple[str, str] | None  # (version, digest) from state; None: a digest was given
    listed: Revocations  # the catalog's revocations.yaml

    @property
    def version(self) -> str | None:
        return None if self.recorded is None else self.recorded[0]

    def tagged(self, checks: list[Check]) -> str | None:
        """The digest the version tag names here (the ``tag`` check: the one state recorded)."""
        assert self.recorded is not None
        version, recorded = self.recorded
        reference = f"{self.place.repository}:{version}"
        held = self.client.digest(self.place.registry, reference)
        if held is None:
            checks.append(Check(self.place.repository, "tag", FAILED, f"{reference} is not there"))
            return None
        if held != recorded:
            detail = (
                f"{reference} names {held}, but {recorded} was released as {version}: "
                "the tag was moved"
            )
            checks.append(Check(self.place.repository, "tag", FAILED, detail))
        else:
            checks.append(Check(self.place.repository, "tag", OK, f"{reference} → {held}"))
        return held

    def evidence(self, digest: str, checks: list[Check]) -> Verified | None:
        """Each check of ``digest``'s evidence into ``checks``; the evidence, when it verified."""
        repo = self.place.repository

        def add(name: str, run: Callable[[], str]) -> bool:
            try:
                detail = run()
            except VerificationError as exc:
                checks.append(Check(repo, name, FAILED, exc.message))
                return False
            checks.append(Check(repo, name, OK, detail))
            return True

        verified: list[Verified] = []

        def evidence() -> str:
            verified.append(
                verify_digest(
                    EvidenceStore(self.client, self.place),
                    digest,
                    self.key,
                    identities=identities(self._registries, repo),
                    builders=self.settings.builders,
                )
            )
            types = sorted({a.predicate_type for a in verified[0].attestations})
            count = len(verified[0].attestations)
            return f"signed; {count} attestations signed for {digest} ({', '.join(types)})"

        later = ("provenance", "chain", "tests", "release", "revocation")
        if not add("signature and attestations", evidence):
            checks.extend(
                Check(repo, name, SKIPPED, "the evidence did not verify") for name in later
            )
            return None
        found = verified[0]
        add("provenance", lambda: _provenance(found))
        add("chain", lambda: self._chain(digest))
        add("tests", lambda: _tests(found))
        add("release", lambda: _release(found, self.env.name, self.version))
        add("revocation", lambda: _revocation(found, self.listed))
        return found

    @property
    def _registries(self) -> list[Registry]:
        return list(self.catalog.project.registries.values())

    def _chain(self, digest: str) -> str:
        chain = verify_chain(
            self.client,
            self._registries,
            self.place,
            digest,
            self.key,
            builders=self.settings.builders,
        )
        for parent in chain[1:]:
            refuse_listed(self.listed, parent.digest, f"the parent {parent.repository}")
        return " → ".join(f"{v.repository}@{v.digest[:19]}…" for v in chain)


def _provenance(verified: Verified) -> str:
    provenances = verified.predicates(PROVENANCE)
    if not provenances:
        raise VerificationError("no provenance attestation")
    latest = provenances[-1]
    try:
        parent = parent_of(latest)
    except ValueError:
        raise VerificationError("the provenance is not imagefactory's") from None
    builder = latest["runDetails"]["builder"]["id"]
    return f"built by {builder}" + (f" on {parent}" if parent else " (a base)")


def _tests(verified: Verified) -> str:
    runs = [parse_test_result(p) for p in verified.predicates(TEST_RESULT)]
    run = latest(runs)  # by its signed time: the order of the layers is not signed
    if run is None:
        raise VerificationError("no test-result attestation: the digest was not tested")
    if not run.passed:
        raise VerificationError(f"its latest test run failed: {', '.join(run.failed_tests)}")
    return (
        f"the latest of {len(runs)} test runs passed ({run.checks} checks, at {run.at.isoformat()})"
    )


def _release(verified: Verified, environment: str, version: str | None) -> str:
    releases = [parse_release(p) for p in verified.predicates(RELEASE)]
    into = [r for r in releases if r.environment == environment]
    last = latest(r for r in into if version is None or r.version == version)
    if last is None:
        said = ", ".join(sorted({r.version for r in into})) or "none"
        wanted = f" as {version}" if version else ""
        raise VerificationError(
            f"no release attestation puts this digest into {environment}{wanted} "
            f"(the releases into {environment} it has: {said})"
        )
    approved = f", approved by {last.approver}" if last.approver else ""
    return f"{last.version} released into {environment} by {last.identity}{approved}"


def _revocation(verified: Verified, listed: Revocations) -> str:
    record = revocation(verified)
    if record is not None and record.revoked:
        raise VerificationError(f"revoked: {record.reason} (by {record.by})")
    refuse_listed(listed, verified.digest, verified.digest)
    return "not revoked" if record is None else f"revocation lifted: {record.reason}"
