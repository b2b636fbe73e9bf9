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

from pathlib import Path

import pytest
import yaml

from .helpers.bridge import bridge_gateway
from .helpers.example import ExampleBuild, imagefactory
from .helpers.imagetest import checks_of, first_json, one_check, session_containers
from .helpers.services import docker
from .helpers.tcp_forward import forwarding, unix_socket

pytestmark = pytest.mark.integration

APP_SPEC = Path("images/app/rag-api/image.yaml")
DOCKER_SOCKET = "/var/run/docker.sock"


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
    gateway = bridge_gateway(docker)
    with forwarding(gateway, unix_socket(DOCKER_SOCKET)) as (port, accepted):
        env = {**example_build.env, "DOCKER_HOST": f"tcp://{gateway}:{port}"}
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
