"""The one long-lived container a test run starts per image — always removed afterwards.

With service checks the container runs the image's real entrypoint (as production does), its
service ports published only on the engine's address (127.0.0.1 for a local engine, the
service's address under Docker-in-Docker); otherwise it idles (``sleep infinity``) so checks can
``docker exec`` into it. Removal happens in ``finally``: on success, failure, timeout and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from imagefactory import tools
from imagefactory.engine import Engine

TEST_LABEL = "org.imagefactory.test"


@dataclass(frozen=True)
class Container:
    name: str
    engine: Engine
    address: str = "127.0.0.1"  # where the published ports are reachable
    ports: dict[int, int] = field(default_factory=dict)  # container port → published port

    def exec(
        self, argv: list[str], *, user: str | None = None, timeout: float = 30
    ) -> tools.Result:
        """Run ``argv`` in the container (no shell), as ``user``, with the image's environment."""
        command = [self.engine.cli, "exec", *(["--user", user] if user else []), self.name, *argv]
        return tools.run(
            command, env=self.engine.env, check=False, timeout=timeout, separate_stderr=True
        )

    def logs(self) -> str:
        result = tools.run(
            [self.engine.cli, "logs", "--tail", "30", self.name],
            env=self.engine.env,
            check=False,
            timeout=30,
        )
        return result.output


@contextlib.contextmanager
def running_container(
    engine: Engine, reference: str, service_ports: list[int]
) -> Iterator[Container]:
    name = f"imagefactory-test-{uuid.uuid4().hex[:12]}"
    argv: list[str] = [engine.cli, "run", "--detach", "--name", name, "--label", f"{TEST_LABEL}=1"]
    address = engine.address if service_ports else "127.0.0.1"
    if service_ports:
        argv += [arg for port in service_ports for arg in ("--publish", f"{address}::{port}")]
        argv.append(reference)
    else:
        argv += ["--network", "none", "--entrypoint", "sleep", reference, "infinity"]
    try:
        tools.run(
            argv,
            env=engine.env,
            timeout=300,
            hint="the image must be pullable from the build registry (run imagefactory build)",
        )
        yield Container(
            name,
            engine,
            address,
            {port: _host_port(engine, name, port) for port in service_ports},
        )
    finally:
        tools.run(
            [engine.cli, "rm", "--force", "--volumes", name],
            env=engine.env,
            check=False,
            timeout=60,
        )


def _host_port(engine: Engine, name: str, port: int) -> int:
    result = tools.run([engine.cli, "port", name, f"{port}/tcp"], env=engine.env, timeout=30)
    first = result.output.strip().splitlines()[0]
    return int(first.rsplit(":", 1)[1])
