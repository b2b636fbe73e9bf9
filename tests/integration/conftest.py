"""Fixtures for tests that need the real host services started by ``scripts/services.sh``.

The services are a Docker engine answering Debian's ``/usr/bin/docker`` (BuildKit via
``DOCKER_BUILDKIT=1``) and a registry on ``127.0.0.1:$IMAGEFACTORY_REGISTRY_PORT`` (default 5000)
with htpasswd authentication; the password lives in
``${IMAGEFACTORY_HOST_DIR:-<repo>/.host}/registry.password``.

When the services are not running, the fixtures FAIL (not skip) with a message saying how to
start them: CI starts them before the tests, so a missing service is a broken host.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tarfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER = "/usr/bin/docker"  # Debian's docker.io CLI; other CLIs on PATH may refuse BuildKit
SKOPEO = "skopeo"
REGISTRY_USER = "imagefactory"
START_HINT = "start them with `sudo scripts/services.sh start` (or run `sudo scripts/setup.sh`)"


def host_dir() -> Path:
    return Path(os.environ.get("IMAGEFACTORY_HOST_DIR") or REPO_ROOT / ".host")


def registry_port() -> int:
    return int(os.environ.get("IMAGEFACTORY_REGISTRY_PORT") or "5000")


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (no shell); on failure raise AssertionError with the output's tail.

    Never pass secrets in ``argv``: use ``input_text`` (stdin) or files.
    """
    try:
        proc = subprocess.run(
            list(argv),
            env=dict(env) if env is not None else None,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"timed out after {timeout}s: {' '.join(argv)}") from exc
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed (exit {proc.returncode}): {' '.join(argv)}\n"
            f"--- stdout ---\n{_tail(proc.stdout)}\n--- stderr ---\n{_tail(proc.stderr)}"
        )
    return proc


def docker_env(docker_config: Path | None = None) -> dict[str, str]:
    """Environment for ``/usr/bin/docker``: BuildKit on, optional client config dir."""
    env = dict(os.environ)
    env["DOCKER_BUILDKIT"] = "1"
    if docker_config is not None:
        env["DOCKER_CONFIG"] = str(docker_config)
    return env


def docker(
    *args: str,
    docker_config: Path | None = None,
    input_text: str | None = None,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    return run(
        [DOCKER, *args],
        env=docker_env(docker_config),
        input_text=input_text,
        timeout=timeout,
        check=check,
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Registry:
    """The authenticated loopback registry. ``password`` must never be printed or logged."""

    host: str  # "127.0.0.1:5000"
    user: str
    password: str

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    def request(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        password: str | None = None,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        timeout: float = 10,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """HTTP request to the registry (loopback only, proxies ignored); returns status,
        headers and body without raising on 4xx/5xx."""
        req = urllib.request.Request(self.base_url + path, method=method, data=data)
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        if auth:
            token = f"{self.user}:{password if password is not None else self.password}"
            req.add_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode())
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers.items()), exc.read()

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Best-effort clean-up of a pushed manifest (the registry has deletes enabled)."""
        self.request("DELETE", f"/v2/{repository}/manifests/{digest}")


@dataclass(frozen=True)
class HostServices:
    registry: Registry
    host_dir: Path


@pytest.fixture(scope="session")
def host_services() -> HostServices:
    """Fail clearly unless dockerd and the authenticated registry are up."""
    proc = run([DOCKER, "version", "--format", "{{.Server.Version}}"], timeout=30, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        reason = (proc.stderr.strip().splitlines() or ["no output"])[0]
        pytest.fail(
            f"dockerd does not answer via {DOCKER} ({reason}); {START_HINT}",
            pytrace=False,
        )
    password_file = host_dir() / "registry.password"
    if not password_file.is_file():
        pytest.fail(
            f"registry password file {password_file} is missing; {START_HINT}", pytrace=False
        )
    password = password_file.read_text().strip()
    registry = Registry(host=f"127.0.0.1:{registry_port()}", user=REGISTRY_USER, password=password)
    try:
        status, _, _ = registry.request("GET", "/v2/", auth=False, timeout=5)
    except OSError as exc:
        pytest.fail(
            f"no registry answers on {registry.base_url}/v2/ ({exc}); {START_HINT}", pytrace=False
        )
    if status != 401:
        pytest.fail(
            f"registry on {registry.base_url} answered {status} without credentials, expected "
            f"401 (is it the authenticated one from scripts/services.sh?); {START_HINT}",
            pytrace=False,
        )
    return HostServices(registry=registry, host_dir=host_dir())


@pytest.fixture(scope="session")
def registry(host_services: HostServices) -> Registry:
    return host_services.registry


@pytest.fixture(scope="session")
def docker_config(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private DOCKER_CONFIG dir logged in to the local registry (password via stdin).

    skopeo reads the same credentials with ``--authfile <dir>/config.json``.
    """
    config_dir = tmp_path_factory.mktemp("docker-config")
    config_dir.chmod(0o700)
    docker(
        "login",
        registry.host,
        "--username",
        registry.user,
        "--password-stdin",
        docker_config=config_dir,
        input_text=registry.password + "\n",
        timeout=60,
    )
    yield config_dir
    docker("logout", registry.host, docker_config=config_dir, check=False)
    shutil.rmtree(config_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_base(
    host_services: HostServices, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A ~2 MB base image imported from a static busybox (nothing can be pulled here).

    Yields the local reference ``imagefactory-test/tiny:<unique>``; removed at session end.
    """
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).is_file():
        pytest.fail(
            "busybox not found (Debian package busybox-static); run scripts/setup.sh", pytrace=False
        )
    rootfs = tmp_path_factory.mktemp("tiny-rootfs")
    (rootfs / "bin").mkdir()
    for sub in ("tmp", "etc", "run"):
        (rootfs / sub).mkdir()
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    for applet in ("sh", "cat", "echo", "ls", "sha256sum", "test", "true", "wc"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    archive = rootfs.parent / f"{rootfs.name}.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(rootfs, arcname=".")
    ref = f"imagefactory-test/tiny:{unique('base')}"
    docker("import", "--change", "ENV PATH=/bin", str(archive), ref, timeout=60)
    archive.unlink()
    yield ref
    docker("rmi", "--force", ref, check=False)
