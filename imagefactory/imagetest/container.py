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
from imagefactory.build.docker import Engine

TEST_LABEL = "org.imagefactory.test"


@dataclass(frozen=True)
class Container:
    name: str
    engine: Engine
    address: str = "127.0.0.1"  # where the published ports are reachable
    ports: dict[int, int] = field(default_factory=dict)  # container port → published port
    # (a service port is missing when the container stopped before it could be published)

    def exec(
        self, argv: list[str], *, user: str | None = None, timeout: float = 30
    ) -> tools.Result:
        """Run ``argv`` in the container (no shell), as ``user``, with the image's environment."""
        command = [self.engine.cli, "exec", *(["--user", user] if user else []), self.name, *argv]
        return tools.run(
            command, env=self.engine.env, check=False, timeout=timeout, separate_stderr=True
        )

    def stopped(self) -> str:
        """Why the container is not running ("" while it runs): its exit code and last output."""
        state = tools.run(
            [
                self.engine.cli,
                "inspect",
                "--format",
                "{{.State.Status}} {{.State.ExitCode}}",
                self.name,
            ],
            env=self.engine.env,
            check=False,
            timeout=30,
        ).output.split()
        if not state or state[0] == "running":
            return ""
        return f"the container stopped (exit code {state[-1]}); its last output: {self.logs()[-300:]!r}"

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
            {
                port: host_port
                for port in service_ports
                if (host_port := _host_port(engine, name, port)) is not None
            },
        )
    finally:
        tools.run(
            [engine.cli, "rm", "--force", "--volumes", name],
            env=engine.env,
            check=False,
            timeout=60,
        )


def _host_port(engine: Engine, name: str, port: int) -> int | None:
    """The published port, or None when there is none (the container has stopped)."""
    result = tools.run(
        [engine.cli, "port", name, f"{port}/tcp"], env=engine.env, check=False, timeout=30
    )
    lines = result.output.strip().splitlines() if result.returncode == 0 else []
    return int(lines[0].rsplit(":", 1)[1]) if lines else None
