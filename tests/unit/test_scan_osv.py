"""imagefactory.scan.osv: an SBOM's Debian and PyPI packages matched offline against OSV
advisories the tests write (a real GitHub advisory, tests/unit/fixtures/scan/README.md, and
Debian ones shaped as osv-schema's Debian converter writes them)."""

from __future__ import annotations

import json
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from imagefactory.errors import UserError
from imagefactory.scan import osv

FIXTURES = Path(__file__).parent / "fixtures" / "scan"
#: The purls as syft (and imagefactory sbom) writes them: source package and version in
#: ``upstream``, the release in ``distro``.
PURLS = [
    "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&upstream=openssl&distro=debian-12",
    "pkg:deb/debian/libc6@2.36-9%2Bdeb12u3?arch=amd64&upstream=glibc&distro=debian-12",
    "pkg:deb/debian/login@1%3A4.13%2Bdfsg1-1%2Bb1?arch=amd64"
    "&upstream=shadow%401%3A4.13%2Bdfsg1-1&distro=debian-12",
    "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12",
    "pkg:pypi/jinja2@3.1.2",
    "pkg:pypi/pyyaml@6.0.1",
]


def dsa(identifier: str, package: str, events: list[dict[str, str]], **more: Any) -> dict[str, Any]:
    """A Debian advisory as osv-schema tools/debian/convert_debian.py writes one."""
    ecosystem = more.pop("ecosystem", "Debian:12")
    return {
        "schema_version": "1.6.0",
        "id": identifier,
        "modified": more.pop("modified", "2026-11-20T10:00:00Z"),
        "aliases": more.pop("aliases", []),
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
                **more,
            }
        ],
    }


def sbom(tmp_path: Path, purls: list[str] = PURLS) -> Path:
    path = tmp_path / "sbom.json"
    components = [{"type": "library", "name": p, "purl": p, "bom-ref": p} for p in purls]
    components.append({"type": "container", "name": "parent", "purl": "pkg:oci/x@sha256:00"})
    path.write_text(
        json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": components})
    )
    return path


def advisories(tmp_path: Path, *records: dict[str, Any]) -> Path:
    folder = tmp_path / "osv"
    (folder / "Debian").mkdir(parents=True, exist_ok=True)
    for record in records:
        (folder / "Debian" / f"{record['id']}.json").write_text(json.dumps(record))
    return folder


def scan(tmp_path: Path, folder: Path, purls: list[str] = PURLS) -> dict[str, Any]:
    report = osv.match(osv.read_sbom(sbom(tmp_path, purls)), osv.load_advisories(folder), "x")
    return {(f.id, f.package): f for f in report.findings}


def test_debian_advisories_match_the_source_package_of_the_release(tmp_path: Path) -> None:
    folder = advisories(
        tmp_path,
        dsa(
            "DSA-5678-1",
            "openssl",
            [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}],
            aliases=["CVE-2024-0727"],
            ecosystem_specific={"urgency": "high"},
        ),
        dsa(
            "DSA-5514-1", "glibc", [{"introduced": "0"}, {"fixed": "2.36-9+deb12u3"}]
        ),  # fixed at it
        dsa(
            "DSA-5514-2",
            "glibc",
            [{"introduced": "0"}, {"fixed": "2.31-13+deb11u7"}],
            ecosystem="Debian:11",
        ),
        dsa("DSA-9000-1", "shadow", [{"introduced": "0"}, {"last_affected": "1:4.13+dfsg1-1"}]),
        dsa("DSA-9001-1", "shadow", [{"introduced": "0"}, {"last_affected": "4.99"}]),  # epoch 0
        dsa("DSA-9002-1", "bash", [{"introduced": "0"}]),  # no fix yet
    )
    found = scan(tmp_path, folder)
    assert set(found) == {
        ("DSA-5678-1", "libssl3"),
        ("DSA-9000-1", "login"),
        ("DSA-9002-1", "bash"),
    }
    libssl = found["DSA-5678-1", "libssl3"]
    assert (libssl.installed, libssl.fixed, libssl.fix_state) == (
        "3.0.11-1~deb12u2",
        "3.0.13-1~deb12u1",
        "fixed",
    )
    assert (libssl.severity, libssl.aliases) == ("high", ("CVE-2024-0727",))
    assert libssl.purl == PURLS[0]
    bash = found["DSA-9002-1", "bash"]
    assert (bash.fixed, bash.fix_state, bash.severity) == ("", "not_fixed", "unknown")


def test_a_real_pypi_advisory(tmp_path: Path) -> None:
    folder = advisories(tmp_path)
    (folder / "PyPI").mkdir()
    (folder / "PyPI" / "GHSA-h5c8-rqwp-cp95.json").write_bytes(
        (FIXTURES / "osv-GHSA-h5c8-rqwp-cp95.json").read_bytes()
    )
    found = scan(tmp_path, folder)
    jinja = found["GHSA-h5c8-rqwp-cp95", "jinja2"]
    assert (jinja.fixed, jinja.severity, jinja.aliases) == ("3.1.3", "medium", ("CVE-2024-22195",))
    assert scan(tmp_path, folder, ["pkg:pypi/Jinja2@3.1.3"]) == {}  # the fixed version


def test_ranges_follow_the_schema_evaluation(tmp_path: Path) -> None:
    events = [{"introduced": "1.0"}, {"fixed": "2.0"}, {"introduced": "3.0"}, {"limit": "3.5"}]
    folder = advisories(tmp_path)
    (folder / "PyPI").mkdir()
    record = {
        "id": "PYSEC-1",
        "modified": "2026-11-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "PyYAML"},
                "ranges": [
                    {"type": "GIT", "events": [{"introduced": "abc123"}]},
                    {"type": "ECOSYSTEM", "events": events},
                ],
                "versions": ["0.9"],
            }
        ],
    }
    (folder / "PyPI" / "PYSEC-1.json").write_text(json.dumps(record))

    def hit(version: str) -> bool:
        return bool(scan(tmp_path, folder, [f"pkg:pypi/pyyaml@{version}"]))

    assert [
        v for v in ("0.5", "0.9", "1.0", "1.9", "2.0", "2.5", "3.0", "3.5", "4.0") if hit(v)
    ] == [
        "0.9",  # listed
        "1.0",
        "1.9",
        "3.0",  # introduced again, up to the limit (exclusive)
    ]


def test_withdrawn_other_ecosystems_and_zip_archives(tmp_path: Path) -> None:
    withdrawn = dsa("DSA-1-1", "openssl", [{"introduced": "0"}])
    withdrawn["withdrawn"] = "2026-01-01T00:00:00Z"
    npm = dsa("GHSA-npm", "openssl", [{"introduced": "0"}], ecosystem="npm")
    folder = advisories(tmp_path, withdrawn, npm)
    with zipfile.ZipFile(folder / "Debian" / "all.zip", "w") as archive:
        archive.writestr(
            "DSA-2-1.json",
            json.dumps(
                dsa("DSA-2-1", "openssl", [{"introduced": "0"}], modified="2026-11-29T08:00:00Z")
            ),
        )
    report = osv.match(osv.read_sbom(sbom(tmp_path)), osv.load_advisories(folder), str(folder))
    assert [f.id for f in report.findings] == ["DSA-2-1"]
    assert report.scanner.name == "imagefactory-osv"
    assert report.scanner.db_built == datetime(2026, 11, 29, 8, tzinfo=UTC)  # the newest record


def test_an_empty_mirror_has_no_time(tmp_path: Path) -> None:
    folder = advisories(tmp_path)
    nothing = osv.Sbom("sbom.json", (), ())
    assert osv.match(nothing, osv.load_advisories(folder), "x").scanner.db_built is None


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            dsa("X-1", "openssl", [{"introduced": "0", "fixed": "1.0"}]),
            r"affected\[0\]\.ranges\[0\]\.events\[0\]: expected one of introduced",
        ),
        (
            {**dsa("X-2", "openssl", [{"fixed": "1.0"}]), "schema_version": "2.0.0"},
            "OSV schema 2.0.0 is not read here",
        ),
        (
            {"id": "X-3", "affected": [{"package": {"ecosystem": "Debian:12"}}]},
            r"affected\[0\]\.package\.name: expected a non-empty string",
        ),
        ({"id": "X-4", "affected": "openssl"}, "affected: expected a list"),
        (
            {"id": "X-5", "modified": "last week", "affected": []},
            "modified: expected an RFC 3339 time",
        ),
    ],
)
def test_a_malformed_advisory_is_refused_naming_file_and_key(
    tmp_path: Path, record: dict[str, Any], message: str
) -> None:
    folder = advisories(tmp_path, record)
    with pytest.raises(UserError, match=message) as raised:
        osv.load_advisories(folder)
    assert f"{record['id']}.json" in raised.value.message


def test_a_version_that_is_not_pep_440_is_refused(tmp_path: Path) -> None:
    folder = advisories(tmp_path)
    record = dsa("PYSEC-2", "jinja2", [{"introduced": "0"}, {"fixed": "three"}], ecosystem="PyPI")
    (folder / "PYSEC-2.json").write_text(json.dumps(record))
    with pytest.raises(UserError, match="'three' is not a PyPI version"):
        osv.load_advisories(folder)


def test_symlinks_are_not_followed_and_special_files_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "DSA-3-1.json").write_text(
        json.dumps(dsa("DSA-3-1", "openssl", [{"introduced": "0"}]))
    )
    folder = advisories(tmp_path)
    (folder / "linked").symlink_to(outside)
    assert osv.load_advisories(folder) == []
    os.mkfifo(folder / "Debian" / "pipe.json")
    with pytest.raises(UserError, match=r"pipe\.json is not a regular file"):
        osv.load_advisories(folder)


def test_an_oversized_zip_member_is_refused(tmp_path: Path) -> None:
    folder = advisories(tmp_path)
    with zipfile.ZipFile(folder / "all.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.json", b" " * (osv.MAX_ADVISORY_BYTES + 1))
    with pytest.raises(UserError, match=r"big\.json is larger than 4 MiB"):
        osv.load_advisories(folder)


def test_the_sbom_names_the_digest_it_describes(tmp_path: Path) -> None:
    path = sbom(tmp_path)
    assert osv.read_sbom(path).subjects == ()  # no metadata.component
    document = json.loads(path.read_text())
    digest = "sha256:" + "c" * 64
    document["metadata"] = {"component": {"type": "container", "name": "x", "version": digest}}
    path.write_text(json.dumps(document))  # as syft writes an image's
    assert osv.read_sbom(path).subjects == (digest,)
    document["metadata"]["component"]["purl"] = "pkg:oci/?a"
    path.write_text(json.dumps(document))
    with pytest.raises(UserError, match=r"metadata\.component\.purl: is not a package URL"):
        osv.read_sbom(path)


def test_the_sbom_must_be_cyclonedx(tmp_path: Path) -> None:
    path = tmp_path / "sbom.json"
    path.write_text(json.dumps({"spdxVersion": "SPDX-2.3"}))
    with pytest.raises(UserError, match="is not a CycloneDX SBOM"):
        osv.read_sbom(path)
    with pytest.raises(UserError, match="does not exist"):
        osv.load_advisories(tmp_path / "nowhere")


def test_an_advisory_with_only_a_cvss_vector_is_rated_by_its_base_score(tmp_path: Path) -> None:
    record = json.loads((FIXTURES / "osv-GHSA-h5c8-rqwp-cp95.json").read_text())
    del record["database_specific"]  # no severity word: the CVSS v3.1 vector (5.4) rates it
    folder = advisories(tmp_path)
    (folder / "GHSA-h5c8-rqwp-cp95.json").write_text(json.dumps(record))
    assert scan(tmp_path, folder)["GHSA-h5c8-rqwp-cp95", "jinja2"].severity == "medium"
    v4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N"
    record["severity"] = [{"type": "CVSS_V4", "score": v4}]
    (folder / "GHSA-h5c8-rqwp-cp95.json").write_text(json.dumps(record))
    assert scan(tmp_path, folder)["GHSA-h5c8-rqwp-cp95", "jinja2"].severity == "unknown"


def test_an_unreadable_folder_is_a_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = advisories(tmp_path)

    def refused(path: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(osv.os, "scandir", refused)  # root reads any folder: refuse it here
    with pytest.raises(UserError, match=r"cannot read the advisory folder .*: Permission denied"):
        osv.load_advisories(folder)
