"""Where the engine's published ports are reachable, read from DOCKER_HOST (no daemon needed)."""

from __future__ import annotations

import pytest

from imagefactory.build.docker import daemon_address
from imagefactory.errors import UserError


@pytest.mark.parametrize(
    ("docker_host", "address"),
    [
        ("", "127.0.0.1"),
        ("unix:///var/run/docker.sock", "127.0.0.1"),
        ("tcp://localhost:2375", "127.0.0.1"),
        ("tcp://10.20.30.40:2376", "10.20.30.40"),
        ("ssh://deploy@192.0.2.7", "192.0.2.7"),
    ],
)
def test_daemon_address(docker_host: str, address: str) -> None:
    assert daemon_address(docker_host) == address


def test_a_docker_host_without_a_host_is_refused() -> None:
    with pytest.raises(UserError, match="names no host") as caught:
        daemon_address("tcp://:2375")
    assert "tcp://HOST:PORT" in (caught.value.hint or "")
