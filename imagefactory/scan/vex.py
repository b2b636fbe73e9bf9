"""CycloneDX vulnerability documents (VEX, or a BOM with ``vulnerabilities``) into findings.

Read as the CycloneDX 1.4 to 1.6 JSON schema defines them (CycloneDX/specification
schema/bom-1.6.schema.json; examples in CycloneDX/bom-examples VEX/): ``bomFormat``
``CycloneDX``, ``specVersion`` (an older or newer one is refused), ``components[]`` (to resolve
``bom-ref``\\ s), ``metadata.timestamp`` (when the analysis was written: the gate's "database
time" for a VEX document), ``metadata.component`` (the image it is about: :func:`image_digests`;
the gate judges no document that names none) and ``vulnerabilities[]`` with ``id``,
``ratings[].severity``, ``analysis.{state, response}``, ``affects[].ref`` and
``affects[].versions[]``.

An ``analysis.state`` of ``not_affected``, ``false_positive``, ``resolved`` or
``resolved_with_pedigree`` clears the finding (it is left out); ``exploitable``, ``in_triage``
or none keeps it. A finding is fixed when an ``affects`` entry names an ``unaffected`` version,
or the response lists ``update``; ``will_not_fix`` makes it a won't-fix. An ``affects`` ref is a
``bom-ref`` of the document, a BOM-Link (``urn:cdx:…/1#bom-ref``) or a purl.
"""

from __future__ import annotations

from packageurl import PackageURL

from imagefactory.spec.models import Severity
from imagefactory.spec.parents import DIGEST_PATTERN

from .document import Node
from .findings import Finding, FixState, Scanner, ScanReport, rank

SPEC_VERSIONS = ("1.4", "1.5", "1.6")
_CLEARED = frozenset({"not_affected", "false_positive", "resolved", "resolved_with_pedigree"})
_STATES = _CLEARED | {"exploitable", "in_triage"}
_SEVERITY: dict[str, Severity] = {
    "critical": "critical",
    "high": "high",
    "medium": "medium",
    "low": "low",
    "info": "low",
    "none": "low",
    "unknown": "unknown",
}


def is_cyclonedx(root: Node) -> bool:
    return root.mapping().get("bomFormat") == "CycloneDX"


def read_vex(root: Node) -> ScanReport:
    if not is_cyclonedx(root):
        raise root.get("bomFormat").error(
            "is not a CycloneDX document", hint="expected bomFormat: CycloneDX"
        )
    spec = root.get("specVersion")
    if spec.value not in SPEC_VERSIONS:
        raise spec.error(
            f"CycloneDX {spec.value!r} is not read here (only {', '.join(SPEC_VERSIONS)})",
            hint="vulnerabilities entered CycloneDX in 1.4; write the document as 1.4 to 1.6",
        )
    components = {
        c.optional_text("bom-ref"): c for c in _components(root) if c.optional_text("bom-ref")
    }
    metadata = root.get("metadata")
    findings = [
        finding
        for vulnerability in root.items("vulnerabilities")
        for finding in _findings(vulnerability, components)
    ]
    tools = metadata.get("tools") if metadata.present() else None
    return ScanReport(
        Scanner(_tool(tools), "", metadata.time("timestamp") if metadata.present() else None),
        tuple(findings),
        image_digests(root),
        root.source,
    )


def _components(root: Node) -> list[Node]:
    """Every component of the document, nested ones too (bounded by the document's size)."""
    found: list[Node] = []
    pending = root.items("components")
    metadata = root.get("metadata")
    if metadata.present() and metadata.get("component").present():
        pending.append(metadata.get("component"))
    while pending:
        component = pending.pop()
        found.append(component)
        pending += component.items("components")
    return found


def _findings(vulnerability: Node, components: dict[str, Node]) -> list[Finding]:
    analysis = vulnerability.get("analysis")
    state = analysis.optional_text("state") if analysis.present() else ""
    if state and state not in _STATES:
        raise analysis.get("state").error(
            f"unknown analysis state {state!r}",
            hint=f"expected one of: {', '.join(sorted(_STATES))}",
        )
    if state in _CLEARED:
        return []
    responses = analysis.texts("response") if analysis.present() else []
    severity = _severity(vulnerability)
    identifier = vulnerability.text("id")
    found = []
    for affected in vulnerability.items("affects"):
        package, installed, purl = _package(affected.text("ref"), components)
        fixed = [
            v.optional_text("version")
            for v in affected.items("versions")
            if v.optional_text("status") == "unaffected" and v.optional_text("version")
        ]
        fix_state: FixState = "unknown"
        if fixed or "update" in responses:
            fix_state = "fixed"
        elif "will_not_fix" in responses:
            fix_state = "wont_fix"
        found.append(
            Finding(
                id=identifier,
                package=package,
                installed=installed,
                severity=severity,
                purl=purl,
                fixed=fixed[0] if fixed else "",
                fix_state=fix_state,
            )
        )
    return found


def _severity(vulnerability: Node) -> Severity:
    """The most severe of the vulnerability's ratings; unknown when it has none."""
    found: Severity = "unknown"
    for rating in vulnerability.items("ratings"):
        word = rating.optional_text("severity")
        if not word:
            continue
        if word not in _SEVERITY:
            raise rating.get("severity").error(
                f"unknown severity {word!r}", hint=f"expected one of: {', '.join(_SEVERITY)}"
            )
        if found == "unknown" or rank(_SEVERITY[word]) < rank(found):
            found = _SEVERITY[word]
    return found


def _package(ref: str, components: dict[str, Node]) -> tuple[str, str, str]:
    """The name, version and purl ``ref`` points at."""
    local = ref.partition("#")[2] if ref.startswith("urn:cdx:") else ref
    component = components.get(local)
    if component is not None:
        return (
            component.optional_text("name") or local,
            component.optional_text("version"),
            component.optional_text("purl"),
        )
    if local.startswith("pkg:"):
        try:
            purl = PackageURL.from_string(local)
        except ValueError:
            return local, "", ""
        return purl.name, purl.version or "", local
    return local, "", ""


def _tool(tools: Node | None) -> str:
    """The name of the tool that wrote the document (1.5+ ``tools.components``, or 1.4's list)."""
    if tools is None or not tools.present():
        return "cyclonedx-vex"
    if isinstance(tools.value, list):
        entries = [Node(tools.source, f"{tools.path}[{i}]", v) for i, v in enumerate(tools.value)]
    else:
        entries = tools.items("components")
    for entry in entries:
        if isinstance(entry.value, dict) and entry.optional_text("name"):
            return entry.optional_text("name")
    return "cyclonedx-vex"


def image_digests(root: Node) -> tuple[str, ...]:
    """The image digests the CycloneDX document ``root`` says it describes: those its
    ``metadata.component`` names as an OCI purl (``pkg:oci/NAME@sha256:…``, as ``imagefactory
    sbom`` and trivy write it) or, a container, as its version (as syft writes it)."""
    metadata = root.get("metadata")
    if not metadata.present() or not metadata.get("component").present():
        return ()
    component = metadata.get("component")
    names = []
    if component.optional_text("type") == "container":
        names.append(component.optional_text("version"))
    purl = component.optional_text("purl")
    if purl.startswith("pkg:oci/"):
        try:
            names.append(PackageURL.from_string(purl).version or "")
        except ValueError as exc:
            raise component.get("purl").error(f"is not a package URL: {exc}") from exc
    return tuple(dict.fromkeys(name for name in names if DIGEST_PATTERN.fullmatch(name)))
