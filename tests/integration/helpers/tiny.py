"""Tiny catalogs of a test's own, against the registry of ``scripts/services.sh``: the 2 MB
busybox base of ``import_tiny_base`` pushed there and named as an external parent pinned by
digest (seconds to build, nothing pulled from outside), a project with one registry per stage
in namespaces of the test's own, and what the tests read back (skopeo, the audit log)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .example import SESSION_LABEL, cli_json, imagefactory, remove_session_images
from .registry import Registry, registry_cleanup
from .services import SKOPEO, docker, run, unique

CLI_TIMEOUT = 300  # a tiny build, test, push, promotion or yank: seconds; this bounds a hang


@dataclass(frozen=True)
class TinyCatalog:
    """A tiny catalog at ``root``, run with ``env`` (its credentials), read back through
    ``authfile`` (the registry login of the tests' own)."""

    root: Path
    env: dict[str, str]
    authfile: Path

    def cli(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return imagefactory(self.root, *args, env=env or self.env, timeout=CLI_TIMEOUT)

    def digest(self, reference: str) -> str | None:
        return digest_of(self.authfile, reference)

    def audit(self) -> list[dict[str, Any]]:
        return audit_lines(self.root)


@contextmanager
def tiny_parent(
    name: str, tiny_base: str, registry: Registry, docker_config: Path
) -> Iterator[tuple[str, str]]:
    """A session of its own for ``name`` (``unique(name)``, its images labelled with it, its
    manifests under ``it-<session>/``) with ``tiny_base`` pushed there: the session, and the
    reference of that base as an external parent pinned by digest
    (``HOST/it-<session>/base@sha256:…``). Its images and manifests are removed afterwards."""
    session = unique(name)
    base = f"{registry.host}/it-{session}/base:tiny"
    try:
        docker("tag", tiny_base, base)
        docker("push", base, docker_config=docker_config, timeout=120)
        docker("rmi", base, check=False)
        digest = digest_of(docker_config / "config.json", base)
        assert digest is not None and digest.startswith("sha256:"), digest
        yield session, f"{base.rpartition(':')[0]}@{digest}"
    finally:
        remove_session_images(session)
        registry_cleanup(registry, f"it-{session}")


def project(
    name: str,
    registry: Registry,
    namespace: str,
    session: str,
    environments: list[dict[str, Any]],
) -> dict[str, Any]:
    """imagefactory.yaml of ``environments``, each registry of theirs (one per stage, named as
    it) in ``namespace/<stage>`` of ``registry``; every image labelled with ``session``."""
    stages = [stage for env in environments for stage in env["registries"]]
    return {
        "project": name,
        "registries": {
            stage: {
                "url": registry.host,
                "namespace": f"{namespace}/{stage}",
                "username_env": "IMAGEFACTORY_REGISTRY_USER",
                "password_env": "IMAGEFACTORY_REGISTRY_PASSWORD",
                "tls_verify": False,
            }
            for stage in stages
        },
        "environments": environments,
        "defaults": {"labels": {SESSION_LABEL: session}},
    }


def write_catalog(root: Path, project_yaml: dict[str, Any], image: dict[str, Any]) -> Path:
    """The catalog at ``root``: its imagefactory.yaml and the one image's image.yaml; the
    image's folder."""
    folder = root / "images" / str(image["name"])
    folder.mkdir(parents=True, exist_ok=True)
    (root / "imagefactory.yaml").write_text(yaml.safe_dump(project_yaml, sort_keys=False))
    (folder / "image.yaml").write_text(yaml.safe_dump(image, sort_keys=False))
    return folder


def digest_of(authfile: Path, reference: str) -> str | None:
    """What the registry says ``reference`` names (skopeo: the tests' own view); None when it
    holds no such manifest."""
    proc = run(
        [SKOPEO, "inspect", "--no-tags", "--format={{.Digest}}", "--tls-verify=false",
         "--authfile", str(authfile), f"docker://{reference}"],
        timeout=60, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        error = proc.stderr.lower()
        assert "manifest unknown" in error or "name unknown" in error, proc.stderr
        return None
    return proc.stdout.strip()


def audit_lines(root: Path) -> list[dict[str, Any]]:
    """Every line of the catalog's audit log, as written (none when there is none yet)."""
    path = root / ".imagefactory" / "audit.jsonl"
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines()]


def ok(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON document of a command that must have succeeded."""
    document = cli_json(proc)
    assert proc.returncode == 0 and document.get("ok") is True, (
        f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    )
    return document


def key_pair(root: Path, secret: Path) -> None:
    """A P-256 pair: the public key in the catalog, the private one (PKCS#8) in ``secret``."""
    key = ec.generate_private_key(ec.SECP256R1())
    (root / "keys").mkdir(parents=True)
    (root / "keys" / "cosign.pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    secret.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    secret.chmod(0o600)
