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
from imagefactory.build.docker import LOOPBACK, Engine

TEST_LABEL = "org.imagefactory.test"


@dataclass(frozen=True)
class Container:
    name: str
    engine: Engine
    address: str = LOOPBACK  # where the published ports are reachable
    ports: dict[int, int] = field(default_factory=dict)  # container port → published port
    # (a service port is missing when the container stopped before it could be published)

    def exec(
        self,
        argv: list[str],
        *,
        user: str | None = None,
        timeout: float = 30,
        exact_output: bool = False,
    ) -> tools.Result:
        """Run ``argv`` in the container (no shell), as ``user``, with the image's environment."""
        return self.engine.exec(
            self.name, argv, user=user, timeout=timeout, exact_output=exact_output
        )

    def stopped(self) -> str:
        """Why the container is not running ("" while it runs): its exit code and last output."""
        state = self.engine.state(self.name)
        if state is None or state[0] == "running":
            return ""
        return (
            f"the container stopped (exit code {state[1]}); its last output: {self.logs()[-300:]!r}"
        )

    def logs(self) -> str:
        return self.engine.logs(self.name)


@contextlib.contextmanager
def running_container(
    engine: Engine, reference: str, service_ports: list[int]
) -> Iterator[Container]:
    name = f"imagefactory-test-{uuid.uuid4().hex[:12]}"
    hint = "the image must be pullable from the build registry (run imagefactory build)"
    labels = {TEST_LABEL: "1"}
    address = engine.address if service_ports else LOOPBACK
    try:
        if service_ports:
            engine.start(reference, name, hint=hint, labels=labels, publish=service_ports)
        else:
            engine.start(
                reference,
                name,
                hint=hint,
                labels=labels,
                network="none",
                entrypoint="sleep",
                command=["infinity"],
            )
        yield Container(
            name,
            engine,
            address,
            {
                port: host_port
                for port in service_ports
                if (host_port := engine.port(name, port)) is not None
            },
        )
    finally:
        engine.remove_container(name, volumes=True)
