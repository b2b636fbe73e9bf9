"""The one long-lived container a test run starts per image — always removed afterwards.

With service checks the container runs the image's real entrypoint (as production does), its
service ports published only on the engine's address (127.0.0.1 for a local engine, the
service's address under Docker-in-Docker); otherwise it idles (``sleep infinity``) so checks can
``docker exec`` into it. Removal happens in ``finally``: on success, failure, timeout and Ctrl-C.

A container that does not start (``docker run`` fails: a missing entrypoint binary, a bad user)
or stops at once raises :class:`ContainerFailed`, saying how (its exit code and last output):
it is looked at once after its start, and one running the image's entrypoint is watched while
its service checks wait for it to answer (they run first, before any ``docker exec``): a
service that stops meanwhile raises it too (``Container.check_running``).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from imagefactory import tools
from imagefactory.build.docker import LOOPBACK, Engine
from imagefactory.errors import ImageFactoryError, ToolError

TEST_LABEL = "org.imagefactory.test"


class ContainerFailed(ImageFactoryError):
    """The test container did not start, or stopped at once (the message says how)."""


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
        return f"the container stopped (exit code {state[1]}); {self._last_output()}"

    def check_running(self) -> None:
        """ContainerFailed, saying why, when the container is not running."""
        why = self.stopped()
        if why:
            raise ContainerFailed(why)

    def did_not_start(self, failure: ToolError) -> str:
        """Why ``docker run`` could not start it: the engine's words, the exit code, the log."""
        state = self.engine.state(self.name)
        code = state[1] if state is not None else failure.returncode
        said = " ".join(failure.output_tail.split())[-600:] or "no output"
        return f"the container did not start (exit code {code}): {said}; {self._last_output()}"

    def _last_output(self) -> str:
        return f"its last output: {self.logs()[-300:]!r}"

    def logs(self) -> str:
        return self.engine.logs(self.name)


@contextlib.contextmanager
def running_container(
    engine: Engine,
    reference: str,
    service_ports: list[int],
    *,
    writable_paths: Sequence[str] | None = None,
) -> Iterator[Container]:
    """The test container of ``reference``, removed afterwards; ContainerFailed when it does not
    start or stops at once. With ``writable_paths`` (an application's: /tmp and its declared
    ``deploy.writable_paths``) its root filesystem is read-only and only those paths are
    writable, as in its Kubernetes workload: a service that writes elsewhere fails here."""
    name = f"imagefactory-test-{uuid.uuid4().hex[:12]}"
    hint = "the container did not start: the engine's error says why (entrypoint, command, user)"
    labels = {TEST_LABEL: "1"}
    address = engine.address if service_ports else LOOPBACK
    started = Container(name, engine, address)
    read_only, tmpfs = writable_paths is not None, tuple(writable_paths or ())
    try:
        try:
            if service_ports:
                engine.start(
                    reference,
                    name,
                    hint=hint,
                    labels=labels,
                    publish=service_ports,
                    read_only=read_only,
                    tmpfs=tmpfs,
                )
            else:
                engine.start(
                    reference,
                    name,
                    hint=hint,
                    labels=labels,
                    network="none",
                    entrypoint="sleep",
                    command=["infinity"],
                    read_only=read_only,
                    tmpfs=tmpfs,
                )
        except ToolError as exc:
            raise ContainerFailed(started.did_not_start(exc)) from exc
        started.check_running()
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
