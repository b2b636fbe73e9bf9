"""``imagefactory gate``: one image's scan judged by the project's policy, the verdict attested.

The digest judged is the one ``IMAGE@sha256:…`` names, else the one its build recorded in
state; it lives in the build registry's repository of the image. The findings come from a
scanner's report (:mod:`imagefactory.scan.reports`; a report that names the digests it scanned
must name this one) or from the offline OSV matcher over the image's SBOM
(:mod:`imagefactory.scan.osv`). With ``signing:`` and its key at hand the verdict, passed or
failed, is attested to the digest (predicate type ``SCAN_VERDICT``) in the build repository,
whose evidence push reads and promotions carry along; and, for ``--env ENV``, also in the
repository a promotion into ENV reads its evidence from (the first registry of the environment
before ENV), so that a digest scanned again after it left the build registry is judged by the
new verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from imagefactory.errors import UserError
from imagefactory.evidence.keys import signing_enabled, signing_key
from imagefactory.evidence.predicates import SCAN_VERDICT
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.project.naming import build_registry, repository
from imagefactory.project.paths import state_file
from imagefactory.project.state import load_state
from imagefactory.registry.client import registry_session
from imagefactory.spec.catalog import Catalog, CatalogImage

from . import osv
from .findings import ScanReport
from .policy import evaluate
from .reports import read_report
from .verdict import Verdict

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class GateRequest:
    """What to judge by: a scanner's ``report`` (``fmt``, and trivy's ``scanner_info``), or
    the OSV advisories in ``osv`` matched against the CycloneDX ``sbom``; for ``environment``
    (None: for every environment)."""

    report: Path | None = None
    fmt: str = "auto"
    scanner_info: Path | None = None
    osv: Path | None = None
    sbom: Path | None = None
    environment: str | None = None


@dataclass(frozen=True)
class Target:
    image: CatalogImage
    repository: str  # HOST/PATH in the build registry
    digest: str

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"


@dataclass(frozen=True)
class GateOutcome:
    verdict: Verdict
    attested_in: tuple[str, ...]  # the repositories whose .att holds the verdict; none: unsigned


def target(catalog: Catalog, image: str) -> Target:
    """The image ``IMAGE`` or ``IMAGE@sha256:…`` names and the digest judged."""
    ref, _, digest = image.partition("@")
    matches = catalog.select([ref])
    if len(matches) != 1:
        raise UserError(
            f"'{ref}' has variants; name one: {', '.join(m.ref for m in matches)}",
            hint="the gate judges one digest of one image",
        )
    chosen = matches[0]
    if not digest:
        record = load_state(state_file(catalog)).images.get(chosen.ref)
        digest = record.digest if record is not None and record.digest else ""
        if not digest:
            raise UserError(
                f"no build of {chosen.ref} is recorded in state, so there is no digest to judge",
                hint=f"build it first (imagefactory build {chosen.ref}), or name the digest: "
                f"{chosen.ref}@sha256:…",
            )
    if not _DIGEST.fullmatch(digest):
        raise UserError(f"{digest!r} is not a manifest digest", hint="expected sha256:<64 hex>")
    registry = build_registry(catalog.project)
    return Target(chosen, repository(registry, chosen.spec.name), digest)


def gate(
    catalog: Catalog, image: str, request: GateRequest, *, now: datetime | None = None
) -> GateOutcome:
    """The verdict on ``image``'s scan, attested when signing is configured and its key set."""
    if request.environment is not None:
        catalog.environment(request.environment)  # UserError naming the environments
    chosen = target(catalog, image)
    report = _findings(request)
    if report.subjects and chosen.digest not in report.subjects:
        raise UserError(
            f"{report.source} is a scan of {', '.join(report.subjects)}, not of {chosen.reference}",
            hint=f"scan the digest being judged: {chosen.reference}",
        )
    verdict = evaluate(
        report,
        catalog.project.scan,
        ref=chosen.image.ref,
        image=chosen.reference,
        environment=request.environment,
        now=now or datetime.now(UTC),
    )
    key = signing_key(catalog) if signing_enabled(catalog) else None
    if key is None:
        return GateOutcome(verdict, ())
    locations = _locations(catalog, chosen, request.environment)
    with registry_session(catalog, [place.registry for place in locations]) as client:
        for place in locations:
            store = EvidenceStore(client, place)
            store.attest(chosen.digest, SCAN_VERDICT, verdict.predicate(), key)
    return GateOutcome(verdict, tuple(place.repository for place in locations))


def _locations(catalog: Catalog, chosen: Target, environment: str | None) -> list[Location]:
    """Where the verdict is attested: the build repository, and the repository a promotion
    into ``environment`` reads its evidence from when that is another one."""
    places = [Location(build_registry(catalog.project), chosen.repository)]
    if environment is not None:
        position, _ = catalog.environment(environment)
        if position > 0:
            source = catalog.project.environments[position - 1]
            registry = catalog.project.registries[source.registries[0]]
            place = Location(registry, repository(registry, chosen.image.spec.name))
            if place.repository != chosen.repository:
                places.append(place)
    return places


def _findings(request: GateRequest) -> ScanReport:
    if (request.report is None) == (request.osv is None):
        raise UserError(
            "name what to judge by: a scanner's report (--report FILE) or OSV advisories "
            "(--osv DIR --sbom FILE), one of them",
            hint="imagefactory gate IMAGE --report trivy.json",
        )
    if request.report is not None:
        return read_report(request.report, request.fmt, scanner_info=request.scanner_info)
    if request.sbom is None:
        raise UserError(
            "--osv matches the image's packages: name its SBOM with --sbom FILE",
            hint="imagefactory sbom IMAGE --out sbom.json writes it",
        )
    assert request.osv is not None
    packages = osv.sbom_packages(request.sbom)
    return osv.match(packages, osv.load_advisories(request.osv), str(request.osv))
