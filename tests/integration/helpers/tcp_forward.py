"""A TCP listener that forwards every connection somewhere else, for the length of a test.

Used to reach a host service from an address it does not listen on: the host's dockerd through
the Docker bridge's gateway address (``helpers.bridge``; an engine "elsewhere", as under
Docker-in-Docker), and the loopback registry from a rootless engine, whose own 127.0.0.1 is not
the host's. Bounded: it accepts at most ``max_connections`` and stops with the block.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


def _forward(client: socket.socket, connect: Callable[[], socket.socket]) -> None:
    with client, connect() as upstream:
        back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        back.start()
        _pipe(client, upstream)
        back.join(timeout=600)


@contextlib.contextmanager
def forwarding(
    address: str, connect: Callable[[], socket.socket], max_connections: int = 2000
) -> Iterator[tuple[int, list[int]]]:
    """Listen on ``address`` (a free port); yields (port, a list that counts connections)."""
    accepted: list[int] = []
    stop = threading.Event()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((address, 0))
        listener.listen(16)
        listener.settimeout(0.2)

        def serve() -> None:
            while not stop.is_set() and len(accepted) < max_connections:
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                accepted.append(1)
                threading.Thread(target=_forward, args=(client, connect), daemon=True).start()

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        try:
            yield listener.getsockname()[1], accepted
        finally:
            stop.set()
            server.join(timeout=10)


def unix_socket(path: str) -> Callable[[], socket.socket]:
    def connect() -> socket.socket:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(path)
        return connection

    return connect


def tcp(host: str, port: int) -> Callable[[], socket.socket]:
    return lambda: socket.create_connection((host, port), timeout=30)
