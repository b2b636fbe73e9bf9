"""``imagefactory test`` against an engine that is not on 127.0.0.1, as under Docker-in-Docker.

In a GitLab job with a ``docker:dind`` service, DOCKER_HOST is ``tcp://docker:2376``: the
containers a test run starts live in the service's network, and a port published on 127.0.0.1
there cannot be reached from the job. Service checks must publish on, and probe, the engine's
address instead.

Here the host's own dockerd is reached through a TCP listener on the Docker bridge's gateway
address (a non-loopback address of this machine that only it and its containers can reach),
which forwards each connection to the daemon's unix socket for the length of the test. With
DOCKER_HOST pointing there, the app's service checks must answer on that address: a port
published there is not reachable on 127.0.0.1, so a probe of 127.0.0.1 would fail.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import ExampleBuild, docker, imagefactory
from .test_imagetest import checks_of, first_json, one_check, session_containers

pytestmark = pytest.mark.integration

APP_SPEC = Path("images/app/rag-api/image.yaml")
DOCKER_SOCKET = "/var/run/docker.sock"
MAX_CONNECTIONS = 500  # the proxy stops accepting after this many (one test run needs ~50)


def bridge_gateway() -> str:
    address = docker(
        "network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}"
    ).stdout.strip()
    assert address and not address.startswith("127."), address
    return address


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


def _forward(client: socket.socket) -> None:
    with client, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as daemon:
        daemon.connect(DOCKER_SOCKET)
        back = threading.Thread(target=_pipe, args=(daemon, client), daemon=True)
        back.start()
        _pipe(client, daemon)
        back.join(timeout=600)


@contextlib.contextmanager
def tcp_engine(address: str) -> Iterator[tuple[str, list[int]]]:
    """DOCKER_HOST for the local daemon through ``address``; the list counts connections."""
    accepted: list[int] = []
    stop = threading.Event()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((address, 0))
        listener.listen(16)
        listener.settimeout(0.2)

        def serve() -> None:
            while not stop.is_set() and len(accepted) < MAX_CONNECTIONS:
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                accepted.append(1)
                threading.Thread(target=_forward, args=(client,), daemon=True).start()

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        try:
            yield f"tcp://{address}:{listener.getsockname()[1]}", accepted
        finally:
            stop.set()
            server.join(timeout=10)


def test_service_checks_reach_an_engine_on_another_address(
    example_build: ExampleBuild, example_copy: Path
) -> None:
    spec_path = example_copy / APP_SPEC
    spec = yaml.safe_load(spec_path.read_text())
    spec["tests"]["services"].append(
        {
            "name": "unknown path answers 200",
            "port": 8080,
            "http": {"path": "/no-such-path", "status": 200},
            "timeout": "5s",
        }
    )
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    gateway = bridge_gateway()
    with tcp_engine(gateway) as (docker_host, accepted):
        env = {**example_build.env, "DOCKER_HOST": docker_host}
        proc = imagefactory(example_copy, "test", "app/rag-api", "--json", env=env, timeout=300)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert len(accepted) > 0, "the run did not go through DOCKER_HOST"
    checks = checks_of(first_json(proc.stdout), "app/rag-api")
    assert one_check(checks, "services", "health endpoint answers")["passed"] is True
    wrong = one_check(checks, "services", "unknown path answers 200")
    assert wrong["passed"] is False
    assert wrong["actual"].startswith(f"HTTP 404 from http://{gateway}:"), wrong["actual"]
    assert [c for c in checks if not c["passed"] and not c["skipped"]] == [wrong]
    assert session_containers(example_build.session) == []
