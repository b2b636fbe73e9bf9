"""The Docker engine and the registry, as the build needs them.

Queries (inspect, list, tag, push) go through python-on-whales; the build itself goes through
``tools.run`` because it needs BuildKit options python-on-whales' legacy builder lacks
(``--secret``, ``--progress``); registry lookups are in ``registry.py``. Every call uses the same Docker CLI
(``tools.docker_cli()``: Debian's, which runs BuildKit without buildx) and the same
DOCKER_CONFIG (the run's temporary credentials, when there are any).
"""

from __future__ import annotations

import os
import socket
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from imagefactory import tools
from imagefactory.errors import ToolError, UserError
from imagefactory.project.naming import CONTENT_LABEL

LOOPBACK = "127.0.0.1"


def daemon_address(docker_host: str) -> str:
    """The IPv4 address of the machine the Docker daemon runs on, as ``DOCKER_HOST`` names it.

    Ports a container publishes are reachable there: on 127.0.0.1 for a local socket, on the
    service's address for Docker-in-Docker (``tcp://docker:2376`` in a GitLab job).
    """
    url = urllib.parse.urlsplit(docker_host)
    if url.scheme in ("", "unix", "npipe", "fd"):
        return LOOPBACK
    host = url.hostname
    if not host:
        raise UserError(
            f"DOCKER_HOST '{docker_host}' names no host",
            hint="set it to unix:///var/run/docker.sock or tcp://HOST:PORT",
        )
    try:
        found = socket.getaddrinfo(host, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UserError(
            f"cannot resolve the Docker host '{host}' of DOCKER_HOST ({exc})",
            hint="service checks publish container ports on the engine's IPv4 address",
        ) from exc
    return str(found[0][4][0])


@dataclass(frozen=True)
class BuiltImage:
    image_id: str
    size_bytes: int


@dataclass
class Engine:
    config_dir: Path | None = None
    cli: str = field(default_factory=tools.docker_cli)

    def __post_init__(self) -> None:
        from python_on_whales import DockerClient  # imported here: it costs every CLI start 50 ms

        self.docker = DockerClient(client_call=[self.cli], config=self.config_dir)

    @property
    def env(self) -> dict[str, str]:
        env = {"DOCKER_BUILDKIT": "1"}
        if self.config_dir is not None:
            env["DOCKER_CONFIG"] = str(self.config_dir)
        return env

    @property
    def address(self) -> str:
        """Where ports published by this engine's containers can be reached."""
        return daemon_address(os.environ.get("DOCKER_HOST", ""))

    def check(self) -> None:
        """Fail with one clear sentence when the daemon does not answer."""
        result = tools.run(
            [self.cli, "version", "--format", "{{.Server.Version}}"],
            env=self.env,
            check=False,
            timeout=60,
        )
        if result.returncode != 0:
            first = next(
                (line for line in result.output.splitlines() if "daemon" in line.lower()),
                result.output.strip().splitlines()[-1] if result.output.strip() else "no answer",
            )
            raise UserError(
                f"the Docker engine is not reachable through {self.cli}: {first.strip()}",
                hint="start it (scripts/services.sh start) or point DOCKER_HOST at one",
            )

    def local_image(self, content_hash: str) -> BuiltImage | None:
        """The local image carrying this content hash label, if any."""
        images = self.docker.image.list(filters={"label": f"{CONTENT_LABEL}={content_hash}"})
        if not images:
            return None
        image = images[0]
        return BuiltImage(image.id, int(image.size or 0))

    def build(
        self,
        context: Path,
        tag: str,
        *,
        labels: Mapping[str, str],
        build_args: Mapping[str, str],
        secrets: Mapping[str, Path],
        no_cache: bool,
        on_line: Callable[[str], None] | None = None,
    ) -> BuiltImage:
        iidfile = context / ".imagefactory-iid"
        argv: list[str | Path] = [
            self.cli,
            "build",
            "--progress=plain",
            "--network=host",
            "--iidfile",
            iidfile,
            "--tag",
            tag,
        ]
        argv += [f"--label={k}={v}" for k, v in sorted(labels.items())]
        argv += [f"--build-arg={k}={v}" for k, v in sorted(build_args.items())]
        argv += [f"--secret=id={sid},src={path}" for sid, path in sorted(secrets.items())]
        argv += ["--no-cache"] if no_cache else []
        argv.append(context)
        tools.run(
            argv,
            env=self.env,
            timeout=3600,
            on_line=on_line,
            hint="the build log above shows the failing step",
        )
        image_id = iidfile.read_text().strip()
        iidfile.unlink()
        return self.image(image_id)

    def image(self, reference: str) -> BuiltImage:
        inspected = self.docker.image.inspect(reference)
        return BuiltImage(inspected.id, int(inspected.size or 0))

    def push(self, tag: str) -> str:
        """Push ``tag``; return the manifest digest the registry now holds for it."""
        from python_on_whales.exceptions import DockerException

        repository = tag.rsplit(":", 1)[0]
        try:
            self.docker.push(tag, quiet=True)
            digests = self.docker.image.inspect(tag).repo_digests or []
        except DockerException as exc:
            raise ToolError(
                exc.docker_command or ["docker", "push", tag],
                exc.return_code,
                tools.scrub(exc.stderr or ""),
                hint="check the registry credentials",
            ) from exc
        for entry in digests:
            name, _, digest = entry.partition("@")
            if name == repository:
                return digest
        raise UserError(f"pushed {tag} but the engine reports no digest for {repository}")
