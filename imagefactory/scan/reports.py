"""Scanner reports into findings: trivy JSON (schema 2), grype JSON, CycloneDX VEX.

The fields read, and where they are defined:

* **trivy** (aquasecurity/trivy pkg/types/report.go; the integration test goldens
  ``integration/testdata/*.json.golden``): ``SchemaVersion`` (2; any other is refused),
  ``Trivy.Version`` (newer releases), ``ArtifactName`` and ``Metadata.RepoDigests`` (the
  ``REPO@sha256:…`` scanned; ``Metadata.ImageID`` is the config digest, not the manifest's, and
  ``trivy sbom`` or a scan of a tarball names neither), ``Results[].Vulnerabilities[]``
  with ``VulnerabilityID``, ``PkgName``, ``PkgIdentifier.PURL``, ``InstalledVersion``,
  ``FixedVersion``, ``Status`` and ``Severity``. A trivy report does not say how old its
  database was: that is in ``trivy version --format json`` (``VulnerabilityDB.UpdatedAt``),
  read from ``scanner_info``.
* **grype** (anchore/grype grype/presenter/models, cmd/grype/cli/commands/root.go ``dbInfo``):
  ``descriptor.name`` (``grype``), ``descriptor.version``, ``descriptor.db.status.built`` (DB
  schema v6; ``descriptor.db.built`` before), ``source.target.manifestDigest``/``repoDigests``
  (a ``source.type`` other than ``image``: a path or purl, names no digest),
  ``matches[]`` with ``vulnerability.{id, severity, fix.{state, versions}}``,
  ``relatedVulnerabilities[].id`` and ``artifact.{name, version, purl}``.
* **CycloneDX VEX**: :mod:`imagefactory.scan.vex`.

``Status: not_affected`` (trivy) means a VEX statement already cleared the finding: it is left
out, as trivy leaves it out of its table.
"""

from __future__ import annotations

from pathlib import Path

from imagefactory.errors import UserError
from imagefactory.spec.models import Severity

from .document import Node, read_json
from .findings import Finding, FixState, Scanner, ScanReport
from .formats import FORMATS
from .vex import is_cyclonedx, read_vex

TRIVY_SCHEMA = 2
#: trivy's ``Status`` values (pkg/types/vulnerability.go) and what each says about a fix.
_TRIVY_STATUS: dict[str, FixState] = {
    "unknown": "unknown",
    "affected": "not_fixed",
    "under_investigation": "not_fixed",
    "fix_deferred": "not_fixed",
    "will_not_fix": "wont_fix",
    "end_of_life": "wont_fix",
    "fixed": "fixed",
}
_TRIVY_SEVERITY: dict[str, Severity] = {
    "CRITICAL": "critical",
    "HIGH": "high",
    "MEDIUM": "medium",
    "LOW": "low",
    "UNKNOWN": "unknown",
}
_GRYPE_SEVERITY: dict[str, Severity] = {
    "Critical": "critical",
    "High": "high",
    "Medium": "medium",
    "Low": "low",
    "Negligible": "low",
    "Unknown": "unknown",
}
_GRYPE_FIX: dict[str, FixState] = {
    "fixed": "fixed",
    "not-fixed": "not_fixed",
    "wont-fix": "wont_fix",
    "unknown": "unknown",
    "": "unknown",
}


def read_report(path: Path, fmt: str = "auto", *, scanner_info: Path | None = None) -> ScanReport:
    """The findings of the report at ``path`` in format ``fmt`` (``auto``: told by its keys).
    ``scanner_info``: the output of ``trivy version --format json`` (trivy only)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown report format '{fmt}'", hint=f"one of: {', '.join(FORMATS)}")
    root = read_json(path, what="the scan report")
    kind = detect(root) if fmt == "auto" else fmt
    if scanner_info is not None and kind != "trivy":
        raise UserError(
            f"--scanner-info is trivy's version output, but {path} is a {kind} report",
            hint="grype and CycloneDX documents carry their database time themselves",
        )
    if kind == "trivy":
        info = read_json(scanner_info, what="trivy's version output") if scanner_info else None
        return _trivy(root, info)
    if kind == "grype":
        return _grype(root)
    return read_vex(root)


def detect(root: Node) -> str:
    """The format of the document ``root``, from the keys each scanner writes."""
    document = root.mapping()
    if "SchemaVersion" in document:
        return "trivy"
    if "matches" in document and "descriptor" in document:
        return "grype"
    if is_cyclonedx(root):
        return "cyclonedx-vex"
    raise root.error(
        "is neither a trivy report (SchemaVersion), a grype report (matches, descriptor) "
        "nor a CycloneDX document (bomFormat)",
        hint="scan with `trivy image --format json` or `grype -o json`, or pass --format",
    )


# --------------------------------------------------------------------------- trivy


def _trivy(root: Node, info: Node | None) -> ScanReport:
    schema = root.get("SchemaVersion")
    if schema.value != TRIVY_SCHEMA:
        raise schema.error(
            f"trivy report schema {schema.value!r} is not read here (only {TRIVY_SCHEMA})",
            hint="write the report with a trivy release that writes SchemaVersion 2 (0.20 and later)",
        )
    version = root.get("Trivy").optional_text("Version") if root.get("Trivy").present() else ""
    built = None
    if info is not None:
        version = version or info.optional_text("Version")
        built = info.get("VulnerabilityDB").time("UpdatedAt")
    findings = [
        finding
        for result in root.items("Results")
        for vulnerability in result.items("Vulnerabilities")
        if (finding := _trivy_finding(vulnerability)) is not None
    ]
    metadata = root.get("Metadata")
    names = metadata.texts("RepoDigests") if metadata.present() else []
    names.append(root.optional_text("ArtifactName"))
    return ScanReport(
        Scanner("trivy", version, built), tuple(findings), _digests(names), root.source
    )


def _trivy_finding(node: Node) -> Finding | None:
    status = node.optional_text("Status")
    if status == "not_affected":
        return None
    if status and status not in _TRIVY_STATUS:
        raise node.get("Status").error(
            f"unknown trivy status {status!r}",
            hint=f"expected one of: not_affected, {', '.join(_TRIVY_STATUS)}",
        )
    fixed = node.optional_text("FixedVersion")
    identifier = node.get("PkgIdentifier")
    return Finding(
        id=node.text("VulnerabilityID"),
        package=node.text("PkgName"),
        installed=node.optional_text("InstalledVersion"),
        severity=_severity(node, "Severity", _TRIVY_SEVERITY),
        purl=identifier.optional_text("PURL") if identifier.present() else "",
        fixed=fixed,
        fix_state="fixed" if fixed else _TRIVY_STATUS.get(status, "unknown"),
        aliases=tuple(node.texts("VendorIDs")),
    )


# --------------------------------------------------------------------------- grype


def _grype(root: Node) -> ScanReport:
    descriptor = root.get("descriptor")
    name = descriptor.optional_text("name")
    if name != "grype":
        raise descriptor.get("name").error(
            f"the report was written by {name or 'an unnamed tool'}, not grype",
            hint="pass a report of `grype -o json`, or the right --format",
        )
    database = descriptor.get("db")
    built = None
    if database.present():
        status = database.get("status")
        built = status.time("built") if status.present() else database.time("built")
    findings = [_grype_finding(match) for match in root.items("matches")]
    target = root.get("source").get("target") if root.get("source").present() else None
    names: list[str] = []
    if target is not None and isinstance(target.value, dict):
        names = [target.optional_text("manifestDigest"), *target.texts("repoDigests")]
    return ScanReport(
        Scanner("grype", descriptor.optional_text("version"), built),
        tuple(findings),
        _digests(names),
        root.source,
    )


def _grype_finding(node: Node) -> Finding:
    vulnerability, artifact = node.get("vulnerability"), node.get("artifact")
    fix = vulnerability.get("fix")
    state = fix.optional_text("state") if fix.present() else ""
    if state not in _GRYPE_FIX:
        raise fix.get("state").error(
            f"unknown grype fix state {state!r}", hint=f"expected one of: {', '.join(_GRYPE_FIX)}"
        )
    versions = fix.texts("versions") if fix.present() else []
    return Finding(
        id=vulnerability.text("id"),
        package=artifact.text("name"),
        installed=artifact.optional_text("version"),
        severity=_severity(vulnerability, "severity", _GRYPE_SEVERITY),
        purl=artifact.optional_text("purl"),
        fixed=versions[0] if versions else "",
        fix_state=_GRYPE_FIX[state],
        aliases=tuple(r.text("id") for r in node.items("relatedVulnerabilities")),
    )


# --------------------------------------------------------------------------- shared


def _severity(node: Node, key: str, words: dict[str, Severity]) -> Severity:
    word = node.optional_text(key)
    if not word:
        return "unknown"
    if word not in words:
        raise node.get(key).error(
            f"unknown severity {word!r}", hint=f"expected one of: {', '.join(words)}"
        )
    return words[word]


def _digests(names: list[str]) -> tuple[str, ...]:
    """The manifest digests among ``names`` (``repo@sha256:…`` or a bare ``sha256:…``)."""
    found = []
    for name in names:
        digest = name.rpartition("@")[2]
        if digest.startswith("sha256:") and digest not in found:
            found.append(digest)
    return tuple(found)
