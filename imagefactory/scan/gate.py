"""``imagefactory gate``: one image's scan judged by the project's policy, the verdict attested.

The digest judged is the one ``IMAGE@sha256:…`` names, else the one its build recorded in
state; it lives in the build registry's repository of the image. The findings come from a
scanner's report (:mod:`imagefactory.scan.reports`) or from the offline OSV matcher over the
image's SBOM (:mod:`imagefactory.scan.osv`; default: the one its build kept,
``project.paths.sbom_file``). The report, and the SBOM, must name the digest judged: one that
names another digest, or none (a scan of a tarball, a VEX document about no image), is
refused, as nothing shows it to be about this digest. With ``signing:`` and its key at hand the verdict, passed or
failed, is attested to the digest (predicate type ``SCAN_VERDICT``) in the build repository,
whose evidence push reads and promotions carry along; and, for ``--env ENV``, also in the
repository a promotion into ENV reads its evidence from (the first registry of the environment
before ENV), so that a digest scanned again after it left the build registry is judged by the
new verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from imagefactory.errors import UserError
from imagefactory.evidence.keys import signing_enabled, signing_key
from imagefactory.evidence.predicates import SCAN_VERDICT
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.project.naming import build_registry, repository
from imagefactory.project.paths import sbom_file
from imagefactory.project.targets import Target, target
from imagefactory.registry.client import registry_session
from imagefactory.spec.catalog import Catalog

from . import osv
from .findings import ScanReport
from .policy import evaluate
from .reports import read_report
from .verdict import Verdict


@dataclass(frozen=True)
class GateRequest:
    """What to judge by: a scanner's ``report`` (``fmt``, and trivy's ``scanner_info``), or
    the OSV advisories in ``osv`` matched against the CycloneDX ``sbom`` (None: the one the
    build kept); for ``environment`` (None: for every environment)."""

    report: Path | None = None
    fmt: str = "auto"
    scanner_info: Path | None = None
    osv: Path | None = None
    sbom: Path | None = None
    environment: str | None = None


@dataclass(frozen=True)
class GateOutcome:
    verdict: Verdict
    attested_in: tuple[str, ...]  # the repositories whose .att holds the verdict; none: unsigned


def gate(
    catalog: Catalog, image: str, request: GateRequest, *, now: datetime | None = None
) -> GateOutcome:
    """The verdict on ``image``'s scan, attested when signing is configured and its key set."""
    if request.environment is not None:
        catalog.environment(request.environment)  # UserError naming the environments
    chosen = target(catalog, image)
    report = _findings(catalog, chosen, request)
    _require_digest(
        report.subjects,
        report.source,
        "a scan",
        chosen,
        hint=f"scan the digest itself: trivy image --format json {chosen.reference}, or grype "
        f"registry:{chosen.reference} -o json (`imagefactory gate IMAGE --reference` prints it)",
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


def _findings(catalog: Catalog, chosen: Target, request: GateRequest) -> ScanReport:
    if (request.report is None) == (request.osv is None):
        raise UserError(
            "name what to judge by: a scanner's report (--report FILE) or OSV advisories "
            "(--osv DIR [--sbom FILE]), one of them",
            hint="imagefactory gate IMAGE --report trivy.json",
        )
    if request.report is not None:
        return read_report(request.report, request.fmt, scanner_info=request.scanner_info)
    assert request.osv is not None
    sbom = osv.read_sbom(request.sbom or _kept_sbom(catalog, chosen))
    _require_digest(
        sbom.subjects,
        sbom.source,
        "the SBOM",
        chosen,
        hint=f"imagefactory sbom {chosen.image.ref}@{chosen.digest} --out sbom.json writes the "
        "digest's SBOM",
    )
    return osv.match(sbom, osv.load_advisories(request.osv), str(request.osv))


def _kept_sbom(catalog: Catalog, chosen: Target) -> Path:
    """The SBOM the build of ``chosen``'s digest kept under the work folder."""
    path = sbom_file(catalog, chosen.digest)
    if not path.is_file():
        raise UserError(
            f"--osv matches the image's packages, and no SBOM of {chosen.digest} is kept here: "
            "name its SBOM with --sbom FILE",
            hint=f"imagefactory sbom {chosen.image.ref}@{chosen.digest} --out sbom.json writes it",
        )
    return path


def _require_digest(
    subjects: tuple[str, ...], source: str, what: str, chosen: Target, *, hint: str
) -> None:
    """Refuse ``source`` (``what``: "a scan", "the SBOM") unless it names ``chosen``'s digest
    among the digests it is about (``subjects``)."""
    if chosen.digest in subjects:
        return
    if not subjects:
        raise UserError(
            f"{source} names no image digest: it can't be shown to be {what} of {chosen.reference}",
            hint=hint,
        )
    raise UserError(
        f"{source} is {what} of {', '.join(subjects)}, not of {chosen.reference}", hint=hint
    )
