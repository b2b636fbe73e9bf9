"""imagefactory.scan.reports and .vex: real trivy, grype and CycloneDX documents into findings
(tests/unit/fixtures/scan/README.md names each source), and hostile ones refused by key."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from imagefactory.errors import UserError
from imagefactory.scan.reports import read_report

FIXTURES = Path(__file__).parent / "fixtures" / "scan"
GRYPE_DIGEST = "sha256:ca738abb87a8d58f112d3400ebb079b61ceae7dc290beb34bda735be4b1941d5"


def load(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / name).read_text())
    assert isinstance(data, dict)
    return data


def write(tmp_path: Path, data: object, name: str = "report.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_trivy_report_of_debian_buster(tmp_path: Path) -> None:
    info = write(
        tmp_path,
        {
            "Version": "0.58.1",
            "VulnerabilityDB": {"Version": 2, "UpdatedAt": "2026-11-30T06:12:32.123456789Z"},
        },
        "version.json",
    )
    report = read_report(FIXTURES / "trivy-debian-buster.json", scanner_info=info)
    assert report.scanner.name == "trivy"
    assert report.scanner.version == "0.58.1"
    assert report.scanner.db_built == datetime(2026, 11, 30, 6, 12, 32, 123456, tzinfo=UTC)
    bash, idn = report.findings
    assert (bash.id, bash.package, bash.installed, bash.severity) == (
        "CVE-2019-18276",
        "bash",
        "5.0-4",
        "low",
    )
    assert (bash.fixed, bash.fix_state) == ("", "not_fixed")  # Status: affected, no fix
    assert bash.purl == "pkg:deb/debian/bash@5.0-4?arch=amd64&distro=debian-10.1"
    assert (idn.severity, idn.fixed, idn.fix_state) == ("critical", "2.0.5-1+deb10u1", "fixed")
    assert idn.aliases == ("DSA-4613-1",)  # VendorIDs
    assert report.subjects == ()  # a tarball: no digest named


def test_trivy_without_version_output_has_no_database_time(tmp_path: Path) -> None:
    assert read_report(FIXTURES / "trivy-debian-buster.json").scanner.db_built is None
    data = load("trivy-debian-buster.json")
    data["Trivy"] = {"Version": "0.70.0"}  # newer releases name themselves in the report
    scanner = read_report(write(tmp_path, data)).scanner
    assert (scanner.version, scanner.db_built) == ("0.70.0", None)


def test_trivy_not_affected_is_left_out_and_repo_digests_are_subjects(tmp_path: Path) -> None:
    data = load("trivy-debian-buster.json")
    data["Results"][0]["Vulnerabilities"][0]["Status"] = "not_affected"
    data["Metadata"]["RepoDigests"] = ["registry.test:5000/app/x@" + GRYPE_DIGEST]
    report = read_report(write(tmp_path, data))
    assert [f.id for f in report.findings] == ["CVE-2019-18224"]
    assert report.subjects == (GRYPE_DIGEST,)


def test_grype_report_with_v6_database_status(tmp_path: Path) -> None:
    data = load("grype-image.json")
    data["descriptor"]["db"] = {
        "status": {"schemaVersion": "v6.0.2", "built": "2026-11-29T11:12:37Z", "valid": True}
    }
    report = read_report(write(tmp_path, data))
    assert report.scanner.db_built == datetime(2026, 11, 29, 11, 12, 37, tzinfo=UTC)
    one, two = report.findings
    assert (one.id, one.severity, one.fixed, one.fix_state) == (
        "CVE-1999-0001",
        "low",
        "1.2.1",
        "fixed",
    )
    assert (two.id, two.severity, two.fix_state, two.purl) == (
        "CVE-1999-0002",
        "critical",
        "unknown",
        "pkg:deb/package-2@2.2.2",
    )
    assert report.subjects == (GRYPE_DIGEST,)


def test_grype_report_with_v5_database(tmp_path: Path) -> None:
    data = load("grype-image.json")
    data["descriptor"]["db"] = {"built": "2024-01-02T03:04:05Z", "schemaVersion": 5}
    built = read_report(write(tmp_path, data)).scanner.db_built
    assert built == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_vex_not_affected_clears_and_exploitable_stays() -> None:
    assert read_report(FIXTURES / "vex-not-affected.json").findings == ()
    report = read_report(FIXTURES / "vex-affected.json")
    (log4j,) = report.findings
    assert (log4j.id, log4j.package, log4j.installed, log4j.severity) == (
        "CVE-2021-44228",
        "DEF",
        "1.0",
        "critical",
    )
    assert log4j.fix_state == "fixed"  # response: update
    assert report.scanner.db_built == datetime(2022, 3, 3, tzinfo=UTC)


def test_vex_affects_a_purl_through_a_bom_link(tmp_path: Path) -> None:
    data = load("vex-not-affected.json")
    data["vulnerabilities"][0]["analysis"]["state"] = "in_triage"
    (finding,) = read_report(write(tmp_path, data)).findings
    assert (finding.package, finding.installed, finding.severity) == (
        "jackson-databind",
        "2.10.0",
        "high",  # the most severe rating
    )
    assert finding.fix_state == "wont_fix"


@pytest.mark.parametrize(
    ("component", "subjects"),
    [
        (  # trivy's --format cyclonedx of a registry image (docs/docs/supply-chain/sbom.md)
            {
                "type": "container",
                "name": "alpine:3.15",
                "version": "",
                "purl": f"pkg:oci/alpine@{GRYPE_DIGEST}?repository_url=index.docker.io%2Flibrary"
                "%2Falpine&arch=amd64",
            },
            (GRYPE_DIGEST,),
        ),
        (  # syft's: the manifest digest as the container's version
            {"type": "container", "name": "user-image-input", "version": GRYPE_DIGEST},
            (GRYPE_DIGEST,),
        ),
        ({"type": "application", "name": "DEF", "version": "1.0"}, ()),
        ({"type": "container", "name": "image.tar", "version": "sha256:00"}, ()),
    ],
)
def test_a_cyclonedx_document_names_the_image_of_its_metadata_component(
    tmp_path: Path, component: dict[str, str], subjects: tuple[str, ...]
) -> None:
    data = load("vex-affected.json")
    data["metadata"]["component"] = {**component, "bom-ref": "product-DEF"}
    assert read_report(write(tmp_path, data)).subjects == subjects


def test_the_format_can_be_named_and_must_fit(tmp_path: Path) -> None:
    assert read_report(FIXTURES / "vex-affected.json", "cyclonedx-vex").findings
    with pytest.raises(UserError, match="unknown report format 'sarif'"):
        read_report(FIXTURES / "vex-affected.json", "sarif")
    with pytest.raises(UserError, match="descriptor: expected an object, found null"):
        read_report(FIXTURES / "trivy-debian-buster.json", "grype")


@pytest.mark.parametrize(
    ("fixture", "change", "message"),
    [
        (
            "trivy-debian-buster.json",
            lambda d: d.update(SchemaVersion=3),
            "SchemaVersion: trivy report schema 3",
        ),
        (
            "trivy-debian-buster.json",
            lambda d: d["Results"][0]["Vulnerabilities"][1].update(Severity="SEVERE"),
            r"Results\[0\]\.Vulnerabilities\[1\]\.Severity: unknown severity",
        ),
        (
            "trivy-debian-buster.json",
            lambda d: d["Results"][0]["Vulnerabilities"][0].pop("VulnerabilityID"),
            r"Vulnerabilities\[0\]\.VulnerabilityID: expected a non-empty string, found null",
        ),
        (
            "trivy-debian-buster.json",
            lambda d: d["Results"][0].update(Vulnerabilities={"a": 1}),
            r"Results\[0\]\.Vulnerabilities: expected a list, found an object",
        ),
        (
            "trivy-debian-buster.json",
            lambda d: d["Results"][0]["Vulnerabilities"][0].update(Status="maybe"),
            "unknown trivy status 'maybe'",
        ),
        (
            "grype-image.json",
            lambda d: d["matches"][0]["vulnerability"]["fix"].update(state="soon"),
            r"matches\[0\]\.vulnerability\.fix\.state: unknown grype fix state",
        ),
        (
            "grype-image.json",
            lambda d: d["descriptor"].update(name="syft"),
            "written by syft, not grype",
        ),
        (
            "grype-image.json",
            lambda d: d["descriptor"].update(db={"status": {"built": "yesterday"}}),
            r"descriptor\.db\.status\.built: expected an RFC 3339 time",
        ),
        (
            "vex-affected.json",
            lambda d: d.update(specVersion="1.3"),
            "specVersion: CycloneDX '1.3' is not read here",
        ),
        (
            "vex-affected.json",
            lambda d: d["vulnerabilities"][0]["analysis"].update(state="fine"),
            "unknown analysis state 'fine'",
        ),
    ],
)
def test_a_malformed_report_is_refused_by_key(
    tmp_path: Path, fixture: str, change: Any, message: str
) -> None:
    data = load(fixture)
    change(data)
    path = write(tmp_path, data)
    with pytest.raises(UserError, match=message) as raised:
        read_report(path)
    assert str(path) in raised.value.message  # names the file


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[1, 2]", "expected an object, found a list"),
        (b'{"SchemaVersion": 2,', "is not JSON"),
        (b"\xff\xfe", "is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "is not JSON"),
        (b'{"bomFormat": "SPDX"}', "neither a trivy report"),
    ],
)
def test_not_a_report_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_report(path)


def test_a_fifo_is_not_read(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="not a regular file"):
        read_report(fifo)


def test_scanner_info_is_for_trivy_only(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--scanner-info is trivy's version output"):
        read_report(FIXTURES / "grype-image.json", scanner_info=FIXTURES / "grype-image.json")
