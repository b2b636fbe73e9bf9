"""imagefactory gate against the real registry (htpasswd, 127.0.0.1:5000): the verdict on a
digest docker pushed is attested to it in the build repository, signed with the project's key,
and reads back through evidence.verify (signature, envelope, subject) as the verdict printed;
a failing verdict first, then, with an exception approved, a passing one after it; a report
that names no digest is judged not at all."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from imagefactory.evidence.predicates import SCAN_VERDICT
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.evidence.verify import verify_digest
from imagefactory.registry.client import RegistryClient
from imagefactory.scan.verdict import parse_predicate
from imagefactory.signing.keys import SigningKey
from imagefactory.spec.models import Registry as RegistrySettings

from .helpers.example import cli_json, imagefactory
from .helpers.registry import Registry
from .helpers.services import docker
from .helpers.tiny import digest_of, project, tiny_parent, write_catalog

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "scan"
EXCEPTION = {
    "id": "CVE-2019-18224",
    "reason": "idn2_to_ascii_4i is never called with user input",
    "approver": "Jane Doe",
}


@pytest.fixture
def session_parent(
    tiny_base: str, registry: Registry, docker_config: Path
) -> Iterator[tuple[str, str]]:
    """A session of the test's own and the tiny base pushed in it (removed afterwards)."""
    with tiny_parent("scan", tiny_base, registry, docker_config) as pushed:
        yield pushed


def test_the_verdict_is_attested_to_the_digest_and_verifies(
    session_parent: tuple[str, str],
    tiny_base: str,
    registry: Registry,
    docker_config: Path,
    registry_env: dict[str, str],
    tmp_path: Path,
) -> None:
    session, parent = session_parent
    namespace = f"it-{session}/scan"
    repository = f"{registry.host}/{namespace}/dev/tiny/app"
    docker("tag", tiny_base, f"{repository}:scanned")
    docker("push", f"{repository}:scanned", docker_config=docker_config, timeout=120)
    docker("rmi", f"{repository}:scanned", check=False)
    digest = digest_of(docker_config / "config.json", f"{repository}:scanned")
    assert digest is not None

    private = ec.generate_private_key(ec.SECP256R1())
    key = SigningKey(private, "the test's key")
    settings = project(
        "it-scan", registry, namespace, session, [{"name": "dev", "registries": ["dev"]}]
    )
    settings["signing"] = {"public_key": "keys/cosign.pub"}
    settings["scan"] = {"threshold": "high", "max_db_age_days": 5}
    root = tmp_path / "catalog"
    write_catalog(
        root, settings, {"name": "tiny/app", "version": "1.0.0", "from": parent, "user": "root"}
    )
    (root / "keys").mkdir()
    (root / "keys" / "cosign.pub").write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    env = {
        **registry_env,
        "IMAGEFACTORY_SIGNING_KEY": private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    }
    client = RegistryClient(docker_config)
    dev = RegistrySettings(url=registry.host, namespace=f"{namespace}/dev", tls_verify=False)
    store = EvidenceStore(client, Location(dev, repository))
    store.sign(digest, key)  # what the build does; verify needs the digest signed

    report = json.loads((FIXTURES / "trivy-debian-buster.json").read_text())
    report["Metadata"]["RepoDigests"] = [f"{repository}@{digest}"]
    (tmp_path / "trivy.json").write_text(json.dumps(report))
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    (tmp_path / "version.json").write_text(
        json.dumps({"Version": "0.58.1", "VulnerabilityDB": {"UpdatedAt": now}})
    )
    args = [
        "gate", f"tiny/app@{digest}", "--report", str(tmp_path / "trivy.json"),
        "--scanner-info", str(tmp_path / "version.json"), "--json",
    ]  # fmt: skip

    tarball = tmp_path / "tarball.json"  # the fixture as trivy wrote it: a scan of a tarball
    tarball.write_text((FIXTURES / "trivy-debian-buster.json").read_text())
    refused = _gate(root, env, [*args[:3], str(tarball), *args[4:]])
    assert refused.returncode == 1, refused.stderr
    error = cli_json(refused)["error"]  # and nothing attested: the verdicts read below are two
    assert error.endswith(
        f"names no image digest: it can't be shown to be a scan of {repository}@{digest}"
    )

    failed = _gate(root, env, args)
    assert failed.returncode == 1, failed.stderr
    assert cli_json(failed)["attested_in"] == [repository]

    today = datetime.now(UTC).date().isoformat()
    settings["scan"]["exceptions"] = [{**EXCEPTION, "approved": today, "expires": today}]
    write_catalog(
        root, settings, {"name": "tiny/app", "version": "1.0.0", "from": parent, "user": "root"}
    )
    passed = _gate(root, env, [*args, "--env", "dev"])
    assert passed.returncode == 0, passed.stderr
    printed = cli_json(passed)["verdict"]

    verified = verify_digest(
        store, digest, key.verifying_key(), identities=[repository], builders=[]
    )
    verdicts = [parse_predicate(p) for p in verified.predicates(SCAN_VERDICT)]
    assert [(v.passed, v.environment) for v in verdicts] == [(False, None), (True, "dev")]
    assert verdicts[-1].predicate() == printed
    assert verdicts[-1].image == f"{repository}@{digest}"
    assert [e.id for e in verdicts[-1].exceptions] == ["CVE-2019-18224"]


def _gate(root: Path, env: dict[str, str], args: list[str]) -> subprocess.CompletedProcess[str]:
    return imagefactory(root, *args, env=env, timeout=120)
