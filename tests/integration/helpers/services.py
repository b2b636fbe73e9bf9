"""The host services started by ``scripts/services.sh``, and running commands against them.

The services are a Docker engine answering Debian's ``/usr/bin/docker`` (BuildKit via
``DOCKER_BUILDKIT=1``) and a registry on ``127.0.0.1:$IMAGEFACTORY_REGISTRY_PORT`` (default 5000)
with htpasswd authentication; the password lives in
``${IMAGEFACTORY_HOST_DIR:-<repo>/.host}/registry.password``.

When the services are not running, :func:`require_host_services` FAILS (not skips) with a message
saying how to start them: CI starts them before the tests, so a missing service is a broken host.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from .registry import REGISTRY_USER, Registry

REPO_ROOT = Path(__file__).resolve().parents[3]
DOCKER = "/usr/bin/docker"  # Debian's docker.io CLI; other CLIs on PATH may refuse BuildKit
SKOPEO = "skopeo"
START_HINT = "start them with `sudo scripts/services.sh start` (or run `sudo scripts/setup.sh`)"


def host_dir() -> Path:
    return Path(os.environ.get("IMAGEFACTORY_HOST_DIR") or REPO_ROOT / ".host")


def registry_port() -> int:
    return int(os.environ.get("IMAGEFACTORY_REGISTRY_PORT") or "5000")


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input_text: str | None = None,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (no shell); on failure raise AssertionError with the output's tail.

    Never pass secrets in ``argv``: use ``input_text`` (stdin) or files.
    """
    argv = [str(a) for a in argv]
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
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
            f"--- stdout ---\n{tail(proc.stdout)}\n--- stderr ---\n{tail(proc.stderr)}"
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
class HostServices:
    registry: Registry
    host_dir: Path


def require_host_services() -> HostServices:
    """The running services; fails the test clearly unless dockerd and the authenticated registry
    are up."""
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


def import_tiny_base(folder: Path) -> str:
    """A ~2 MB base image imported from a static busybox (nothing can be pulled here), its root
    file system assembled in ``folder``; returns the local reference
    ``imagefactory-test/tiny:<unique>``."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).is_file():
        pytest.fail(
            "busybox not found (Debian package busybox-static); run scripts/setup.sh", pytrace=False
        )
    rootfs = folder / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    for sub in ("tmp", "etc", "run"):
        (rootfs / sub).mkdir()
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    for applet in ("sh", "cat", "echo", "ls", "sha256sum", "test", "true", "wc"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    archive = folder / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(rootfs, arcname=".")
    ref = f"imagefactory-test/tiny:{unique('base')}"
    docker("import", "--change", "ENV PATH=/bin", str(archive), ref, timeout=60)
    archive.unlink()
    return ref


class OutputLines:
    """Reads a process's (merged) output line by line in a thread; ``seen`` is set at the first
    line matching ``pattern``. Use ``wait_for`` for a bounded wait."""

    def __init__(self, process: subprocess.Popen[str], pattern: re.Pattern[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self.seen = threading.Event()
        self.pattern = pattern
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if self.pattern.search(line):
                self.seen.set()

    def wait_for(self, timeout: float) -> bool:
        """True once a line matched; False when the process ended or ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while not self.seen.wait(timeout=0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.thread.join(timeout=10)
                return self.seen.is_set()
        return True

    @property
    def text(self) -> str:
        return "\n".join(self.lines)
