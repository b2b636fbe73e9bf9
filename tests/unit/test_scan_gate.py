"""imagefactory gate: the digest judged (state, or IMAGE@digest), the report or the OSV match,
the verdict printed, exit 1 when it fails, and the verdict attested when signing is set."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from imagefactory.evidence.predicates import SCAN_VERDICT
from imagefactory.project.paths import sbom_file, state_file
from imagefactory.project.state import ImageRecord, State, save_state
from imagefactory.sbom import rootfs
from imagefactory.sbom.document import ImageIdentity, sbom_json
from imagefactory.scan import gate as gate_module
from imagefactory.scan.verdict import parse_predicate
from imagefactory.signing.keys import SigningKey
from imagefactory.spec.loader import load_catalog

from .helpers import run

FIXTURES = Path(__file__).parent / "fixtures" / "scan"
DIGEST = "sha256:" + "d" * 64
REPOSITORY = "127.0.0.1:5000/bank-ai-lab/dev/app/rag-api"
SCAN = """
scan:
  threshold: high
  max_db_age_days: 5
"""
EXCEPTION = """
  exceptions:
    - id: CVE-2019-18224
      purl: "pkg:deb/debian/libidn2-0@*"
      images: [app/*]
      reason: idn2_to_ascii_4i is never called with user input
      approver: Jane Doe
      approved: "2026-11-20"
      expires: "2027-01-20"
"""


def project(root: Path, extra: str) -> Path:
    """``root``'s project file without signing:, with ``extra`` appended; app/rag-api built as
    ``DIGEST``."""
    path = root / "imagefactory.yaml"
    text = re.sub(r"^signing:\n(?:[ \t]+.*\n)*", "", path.read_text(), flags=re.MULTILINE)
    path.write_text(text + extra)
    record = ImageRecord(
        content_hash="sha256:" + "0" * 64, inputs={}, version="0.3.0", digest=DIGEST
    )
    save_state(state_file(load_catalog(root)), State(images={"app/rag-api": record}))
    return root


def trivy(tmp_path: Path, updated: str = "2099-01-01T00:00:00Z", **metadata: Any) -> list[str]:
    """--report and --scanner-info of the real trivy report (as of a scan of ``DIGEST``), its
    database built ``updated``."""
    data = json.loads((FIXTURES / "trivy-debian-buster.json").read_text())
    data["Metadata"].update({"RepoDigests": [f"{REPOSITORY}@{DIGEST}"], **metadata})
    report = tmp_path / "trivy.json"
    report.write_text(json.dumps(data))
    info = tmp_path / "trivy-version.json"
    info.write_text(json.dumps({"Version": "0.58.1", "VulnerabilityDB": {"UpdatedAt": updated}}))
    return ["--report", str(report), "--scanner-info", str(info)]


@pytest.fixture(autouse=True)
def _now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gate judges as of 2026-12-01 (the exception above is in force then)."""

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Frozen:
            return cls(2026, 12, 1, 12, 0, tzinfo=UTC)

    monkeypatch.setattr(gate_module, "datetime", Frozen)
    monkeypatch.delenv("IMAGEFACTORY_SIGNING_KEY", raising=False)


def test_a_critical_finding_fails_the_gate(catalog_dir: Path, tmp_path: Path) -> None:
    root = project(catalog_dir, SCAN)
    result = run(root, "gate", "app/rag-api", *trivy(tmp_path, "2026-11-30T06:00:00Z"), "--json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["attested_in"] == []  # signing is not configured
    verdict = parse_predicate(document["verdict"])
    assert verdict.image == f"{REPOSITORY}@{DIGEST}"
    assert [(j.finding.id, j.status) for j in verdict.findings] == [("CVE-2019-18224", "blocking")]
    assert verdict.below_threshold == (("low", 1),)
    assert verdict.environment is None


def test_an_exception_lets_it_pass_with_the_verdict_shown(
    catalog_dir: Path, tmp_path: Path
) -> None:
    root = project(catalog_dir, SCAN + EXCEPTION)
    result = run(
        root, "gate", "app/rag-api", *trivy(tmp_path, "2026-11-30T06:00:00Z"), "--env", "prod"
    )
    assert result.exit_code == 0, result.output
    assert f"{REPOSITORY}@{DIGEST} for prod: passed (threshold high; trivy 0.58.1" in result.stdout
    assert "excepted (CVE-2019-18224)" in result.stdout
    assert "below the threshold: 1 low" in result.stdout


def test_a_stale_database_fails_with_the_reason(catalog_dir: Path, tmp_path: Path) -> None:
    root = project(catalog_dir, SCAN + EXCEPTION)
    result = run(root, "gate", "app/rag-api", *trivy(tmp_path, "2026-11-01T00:00:00Z"))
    assert result.exit_code == 1
    assert "older than scan.max_db_age_days (5)" in result.output
    assert "Traceback" not in result.output


def test_the_reference_for_the_scanner(catalog_dir: Path) -> None:
    root = project(catalog_dir, SCAN)
    result = run(root, "gate", "app/rag-api", "--reference")
    assert (result.exit_code, result.stdout) == (0, f"{REPOSITORY}@{DIGEST}\n")
    other = "sha256:" + "e" * 64
    assert (
        run(root, "gate", f"app/rag-api@{other}", "--reference").stdout == f"{REPOSITORY}@{other}\n"
    )


def test_a_report_of_another_digest_is_refused(catalog_dir: Path, tmp_path: Path) -> None:
    root = project(catalog_dir, SCAN)
    other = "sha256:" + "e" * 64
    result = run(
        root, "gate", "app/rag-api", *trivy(tmp_path, RepoDigests=[f"{REPOSITORY}@{other}"])
    )
    assert result.exit_code == 1
    assert f"is a scan of {other}, not of {REPOSITORY}@{DIGEST}" in result.output


@pytest.mark.parametrize(
    "report",
    [
        {"SchemaVersion": 2},  # trivy: no Results, no Metadata, no ArtifactName
        {"SchemaVersion": 2, "ArtifactName": "sbom.cdx.json", "ArtifactType": "cyclonedx"},
        {"matches": [], "descriptor": {"name": "grype", "version": "0.84.0"}},  # no source
        {
            "matches": [],
            "descriptor": {"name": "grype", "version": "0.84.0"},
            "source": {"type": "sbom-file", "target": "sbom.cdx.json"},
        },
        json.loads((FIXTURES / "vex-affected.json").read_text()),  # about a product, no image
    ],
)
def test_a_report_that_names_no_digest_is_refused(
    catalog_dir: Path, tmp_path: Path, report: dict[str, Any]
) -> None:
    root = project(catalog_dir, "scan:\n  threshold: high\n")
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    result = run(root, "gate", "app/rag-api", "--report", str(path), "--json")
    assert result.exit_code == 1, result.output
    assert (
        f"{path} names no image digest: it can't be shown to be a scan of {REPOSITORY}@{DIGEST}"
        in result.output
    )
    assert f"trivy image --format json {REPOSITORY}@{DIGEST}" in result.output  # the hint
    assert '"verdict"' not in result.stdout


def test_a_vex_document_about_the_digest_is_judged(catalog_dir: Path, tmp_path: Path) -> None:
    root = project(catalog_dir, "scan:\n  threshold: high\n")
    document = json.loads((FIXTURES / "vex-affected.json").read_text())
    document["metadata"]["component"] = {
        "type": "container",
        "name": REPOSITORY,
        "purl": f"pkg:oci/rag-api@{DIGEST}?repository_url={REPOSITORY}",
        "bom-ref": "product-DEF",
    }
    path = tmp_path / "vex.json"
    path.write_text(json.dumps(document))
    result = run(root, "gate", "app/rag-api", "--report", str(path), "--json")
    assert result.exit_code == 1, result.output  # judged: the critical finding blocks
    verdict = json.loads(result.stdout)["verdict"]
    assert [f["id"] for f in verdict["findings"]] == ["CVE-2021-44228"]


VEX = str(FIXTURES / "vex-affected.json")


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["runtime/llm", "--report", VEX], "'runtime/llm' has variants"),
        (["base/debian12", "--report", VEX], "no build of base/debian12 is recorded in state"),
        (["app/rag-api@sha256:abc", "--report", VEX], "'sha256:abc' is not a manifest digest"),
        (["app/rag-api", "--report", VEX, "--env", "qa"], "no environment 'qa'"),
        (["app/rag-api"], "name what to judge by"),
        (["app/rag-api", "--report", VEX, "--osv", "."], "name what to judge by"),
        (["app/rag-api", "--osv", "."], "name its SBOM with --sbom"),
    ],
)
def test_what_cannot_be_judged(catalog_dir: Path, words: list[str], message: str) -> None:
    root = project(catalog_dir, SCAN)
    result = run(root, "gate", *words)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def osv_mirror(tmp_path: Path) -> Path:
    """A fresh OSV mirror holding the real Jinja2 advisory (moderate)."""
    mirror = tmp_path / "osv" / "PyPI"
    mirror.mkdir(parents=True)
    record = json.loads((FIXTURES / "osv-GHSA-h5c8-rqwp-cp95.json").read_text())
    record["modified"] = "2026-11-30T00:00:00Z"  # a fresh mirror
    (mirror / "GHSA-h5c8-rqwp-cp95.json").write_text(json.dumps(record))
    return mirror.parent


def image_sbom(tmp_path: Path, digest: str = DIGEST) -> str:
    """The SBOM ``imagefactory sbom`` writes of an image ``digest`` holding Jinja2 3.1.2."""
    info = tmp_path / "rootfs" / "usr/lib/python3/dist-packages/Jinja2-3.1.2.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\n")
    return sbom_json(
        rootfs.from_directory(tmp_path / "rootfs"),
        ImageIdentity(REPOSITORY, "0.3.0", digest),
        timestamp=datetime(2026, 11, 30, tzinfo=UTC),
    )


def test_offline_against_an_osv_mirror(catalog_dir: Path, tmp_path: Path) -> None:
    root = project(catalog_dir, SCAN)
    sbom = tmp_path / "sbom.json"
    sbom.write_text(image_sbom(tmp_path))
    args = ["gate", "app/rag-api", "--osv", str(osv_mirror(tmp_path)), "--sbom", str(sbom)]
    passing = json.loads(run(root, *args, "--json").stdout)  # moderate: below high
    assert passing["ok"] is True
    assert passing["verdict"]["below_threshold"] == {"medium": 1}
    assert passing["verdict"]["scanner"]["name"] == "imagefactory-osv"
    (root / "imagefactory.yaml").write_text(
        (root / "imagefactory.yaml").read_text().replace("threshold: high", "threshold: medium")
    )
    failing = run(root, *args, "--json")
    assert failing.exit_code == 1
    assert json.loads(failing.stdout)["verdict"]["findings"][0]["id"] == "GHSA-h5c8-rqwp-cp95"
    kept = sbom_file(load_catalog(root), DIGEST)  # without --sbom: the one the build kept
    kept.parent.mkdir(parents=True, exist_ok=True)
    sbom.rename(kept)
    from_build = run(root, *args[:4], "--json")
    assert from_build.exit_code == 1, from_build.output
    assert json.loads(from_build.stdout)["verdict"]["findings"][0]["id"] == "GHSA-h5c8-rqwp-cp95"


@pytest.mark.parametrize("kept", [False, True])
def test_an_sbom_of_another_digest_or_of_none_is_refused(
    catalog_dir: Path, tmp_path: Path, kept: bool
) -> None:
    root = project(catalog_dir, SCAN)
    other = "sha256:" + "e" * 64
    syft = {  # syft's document of a local tarball: no digest
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "metadata": {"component": {"type": "file", "name": "image.tar"}},
        "components": [{"type": "library", "name": "Jinja2", "purl": "pkg:pypi/jinja2@3.1.2"}],
    }
    mirror = str(osv_mirror(tmp_path))
    for text, message in [
        (image_sbom(tmp_path, other), f"is the SBOM of {other}, not of {REPOSITORY}@{DIGEST}"),
        (
            json.dumps(syft),
            f"names no image digest: it can't be shown to be the SBOM of {REPOSITORY}@{DIGEST}",
        ),
    ]:
        path = sbom_file(load_catalog(root), DIGEST) if kept else tmp_path / "sbom.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        sbom = [] if kept else ["--sbom", str(path)]
        result = run(root, "gate", "app/rag-api", "--osv", mirror, *sbom, "--json")
        assert result.exit_code == 1, result.output
        assert f"{path} {message}" in result.output
        assert f"imagefactory sbom app/rag-api@{DIGEST} --out sbom.json" in result.output


class Store:
    """Stands in for evidence.store.EvidenceStore: records what is attested where."""

    calls: ClassVar[list[tuple[str, str, str, dict[str, Any], SigningKey]]] = []

    def __init__(self, client: object, location: Any) -> None:
        self.repository = location.repository

    def attest(self, digest: str, predicate_type: str, predicate: Any, key: SigningKey) -> None:
        Store.calls.append((self.repository, digest, predicate_type, predicate, key))


def test_with_signing_the_verdict_is_attested_to_the_digest(
    catalog_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    (catalog_dir / "keys").mkdir()
    (catalog_dir / "keys" / "cosign.pub").write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    monkeypatch.setenv("IMAGEFACTORY_SIGNING_KEY", pem.decode())
    root = project(catalog_dir, SCAN + "\nsigning:\n  public_key: keys/cosign.pub\n")
    monkeypatch.setattr(gate_module, "EvidenceStore", Store)
    sessions: list[object] = []

    from contextlib import contextmanager

    @contextmanager
    def session(catalog: object, registries: list[Any]):  # type: ignore[no-untyped-def]
        sessions.append([r.url for r in registries])
        yield object()

    monkeypatch.setattr(gate_module, "registry_session", session)
    Store.calls = []
    result = run(root, "gate", "app/rag-api", *trivy(tmp_path, "2026-11-30T06:00:00Z"), "--json")
    assert result.exit_code == 1  # failed verdicts are evidence too
    ((repository, digest, predicate_type, predicate, key),) = Store.calls
    assert (repository, digest, predicate_type) == (REPOSITORY, DIGEST, SCAN_VERDICT)
    assert predicate["passed"] is False
    assert key.key.private_numbers() == private.private_numbers()  # the project's key
    assert json.loads(result.stdout)["attested_in"] == [REPOSITORY]
    assert sessions == [["127.0.0.1:5000"]]

    Store.calls = []  # for prod: also where the promotion into prod reads (preprod)
    result = run(
        root, "gate", "app/rag-api", *trivy(tmp_path, "2026-11-30T06:00:00Z"), "--env", "prod"
    )
    preprod = "127.0.0.1:5000/bank-ai-lab/preprod/app/rag-api"
    assert [call[0] for call in Store.calls] == [REPOSITORY, preprod]
    assert all(call[3]["environment"] == "prod" for call in Store.calls)
    assert f"verdict attested in {preprod}" in result.stdout
    Store.calls = []  # for dev: the build repository is where the push reads
    run(root, "gate", "app/rag-api", *trivy(tmp_path, "2026-11-30T06:00:00Z"), "--env", "dev")
    assert [call[0] for call in Store.calls] == [REPOSITORY]


@pytest.mark.parametrize(
    ("section", "where"),
    [
        ("\nscan:\n  thresholds: {prdo: medium}\n", "scan.thresholds.prdo"),
        ("\nscan:\n  require: [dev, prdo]\n", "scan.require[1]"),
    ],
)
def test_scan_settings_name_real_environments(catalog_dir: Path, section: str, where: str) -> None:
    root = project(catalog_dir, "")
    (root / "imagefactory.yaml").write_text((root / "imagefactory.yaml").read_text() + section)
    result = run(root, "validate")
    assert result.exit_code == 1
    assert f"{where}: unknown environment 'prdo'" in result.output
    assert "environments: dev, preprod, prod" in result.output
