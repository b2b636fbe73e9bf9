"""The declarative checks of ``tests:`` in image.yaml, each giving expected vs actual on failure.

Metadata, size and non-root checks read the image config (no container: they work on an image
without a shell). Packages, pip, files and users go through testinfra's ``docker://`` backend,
its commands run by the engine's ``docker exec`` (on a shell-less image, the same probes read
its layers: ``layers.py``); commands run through ``docker exec`` as the image
user, with the image environment and an explicit argv; services probe the ports published on
the engine's address.
"""

from __future__ import annotations

import re
import socket
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import testinfra.host
from testinfra.backend.docker import DockerBackend

from imagefactory.errors import ToolError
from imagefactory.imagetest.container import Container, ContainerFailed
from imagefactory.imagetest.results import CheckResult
from imagefactory.spec.models import (
    CommandCheck,
    FileCheck,
    ImageTests,
    MetadataCheck,
    ServiceCheck,
    UserCheck,
)

Probe = Callable[..., tuple[bool, str, str]]  # → passed, expected, actual
TESTINFRA_TIMEOUT = 300.0  # one command of a package, file or user check


def timed(kind: str, name: str, probe: Probe, *args: Any) -> CheckResult:
    started = time.monotonic()
    try:
        passed, expected, actual = probe(*args)
    except ContainerFailed:
        raise  # the container stopped: no check of it can run (the session says so once)
    except Exception as exc:  # a check that cannot even run has failed, with the reason
        passed, expected, actual = (
            False,
            "",
            f"the check could not run: {type(exc).__name__}: {exc}",
        )
    return CheckResult(kind, name, passed, round(time.monotonic() - started, 3), expected, actual)


def seconds(duration: str) -> float:
    number = float(re.sub(r"[a-z]+$", "", duration))
    return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[re.sub(r"^[0-9]+", "", duration)]


# --------------------------------------------------------------------------- image config


def normalized_port(port: str) -> str:
    return port if "/" in port else f"{port}/tcp"


def _equal(wanted: object, actual: object) -> tuple[bool, str, str]:
    return wanted == actual, repr(wanted), repr(actual)


def _label(labels: dict[str, str], key: str, pattern: str) -> tuple[bool, str, str]:
    if key not in labels:
        return False, f"a value matching /{pattern}/", "no such label"
    return (
        re.fullmatch(pattern, labels[key]) is not None,
        f"a value matching /{pattern}/",
        repr(labels[key]),
    )


def _exposure(exposed: set[str], port: str, wanted: bool) -> tuple[bool, str, str]:
    actual = f"exposed: {', '.join(sorted(exposed)) or 'none'}"
    return (port in exposed) == wanted, f"{port} {'exposed' if wanted else 'not exposed'}", actual


def metadata_checks(checks: MetadataCheck, config: dict[str, Any]) -> Iterator[CheckResult]:
    env = dict(item.split("=", 1) for item in config.get("Env") or [])
    labels = config.get("Labels") or {}
    exposed = set(config.get("ExposedPorts") or {})
    for key, value in checks.env.items():
        yield timed("metadata", f"env {key}", _equal, value, env.get(key))
    for key, pattern in checks.labels.items():
        yield timed("metadata", f"label {key}", _label, labels, key, pattern)
    simple = {
        "entrypoint": ("Entrypoint", checks.entrypoint),
        "cmd": ("Cmd", checks.cmd),
        "workdir": ("WorkingDir", checks.workdir),
        "user": ("User", checks.user),
    }
    for name, (field, wanted) in simple.items():
        if wanted is not None:
            yield timed(
                "metadata",
                name,
                _equal,
                wanted,
                config.get(field) or ([] if isinstance(wanted, list) else ""),
            )
    for port in map(normalized_port, checks.exposed_ports):
        yield timed("metadata", f"exposes {port}", _exposure, exposed, port, True)
    for port in map(normalized_port, checks.unexposed_ports):
        yield timed("metadata", f"does not expose {port}", _exposure, exposed, port, False)


def non_root_check(config: dict[str, Any]) -> CheckResult:
    user = config.get("User") or ""
    root = user.split(":")[0] in ("", "root", "0")
    return CheckResult(
        "non_root", "runs as non-root", not root, 0.0, "a non-root USER", repr(user or "root")
    )


def size_checks(tests: ImageTests, size: int, previous: int | None) -> Iterator[CheckResult]:
    megabytes = size / 1_000_000
    if tests.size.max_mb is not None:
        limit = tests.size.max_mb
        yield CheckResult(
            "size",
            f"size at most {limit:g} MB",
            megabytes <= limit,
            0.0,
            f"≤ {limit:g} MB",
            f"{megabytes:.1f} MB",
        )
    if tests.size.max_growth_percent is not None:
        growth = tests.size.max_growth_percent
        name = f"growth at most {growth:g}%"
        if previous:
            change = (size - previous) * 100 / previous
            yield CheckResult(
                "size",
                name,
                change <= growth,
                0.0,
                f"≤ {growth:g}% over the previous build ({previous / 1e6:.1f} MB)",
                f"{change:+.1f}% ({megabytes:.1f} MB)",
            )
        else:
            yield CheckResult(
                "size", name, True, 0.0, actual="no previous build to compare with", skipped=True
            )


# --------------------------------------------------------------------------- inside the container


def _package(host: Any, name: str, wanted: bool) -> tuple[bool, str, str]:
    installed = bool(host.package(name).is_installed)
    return (
        installed == wanted,
        "installed" if wanted else "absent",
        "installed" if installed else "not installed",
    )


def _pip(host: Any, venv: str, name: str, wanted: bool) -> tuple[bool, str, str]:
    installed = bool(host.pip(name, pip_path=f"{venv}/bin/pip").is_installed)
    where = f"in {venv}"
    return (
        installed == wanted,
        f"{'installed' if wanted else 'absent'} {where}",
        f"{'installed' if installed else 'not installed'} {where}",
    )


class EngineBackend(DockerBackend):  # type: ignore[misc]  # testinfra has no type information
    """testinfra's ``docker://`` backend, its commands run by the engine's ``docker exec`` (its
    own runs whatever ``docker`` is on PATH, in this process's environment)."""

    def __init__(self, container: Container) -> None:
        super().__init__(container.name)
        self.container = container

    def run(self, command: str, *args: str, **kwargs: Any) -> Any:
        cmd = self.get_command(command, *args)
        # exactly as written: a file's content keeps its last newline, as testinfra's own
        # backend gives it
        result = self.container.exec(
            ["/bin/sh", "-c", cmd], timeout=TESTINFRA_TIMEOUT, exact_output=True
        )
        return self.result(result.returncode, self.encode(cmd), result.output, result.stderr)


def testinfra_host(container: Container) -> Any:
    """A testinfra host bound to ``container`` through the engine."""
    backend = EngineBackend(container)
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host


def container_checks(
    tests: ImageTests, container: Container, user: str, venv: str
) -> Iterator[CheckResult]:
    yield from filesystem_checks(tests, testinfra_host(container), venv)
    for command in tests.commands:
        yield timed("commands", command.name, _command_probe, container, command, user)


def filesystem_checks(tests: ImageTests, host: Any, venv: str) -> Iterator[CheckResult]:
    """The packages, pip, files and users checks, asked of ``host``: a testinfra host bound to
    the test container, or a shell-less image's layers (``layers.LayerHost``)."""
    for name in tests.packages.installed:
        yield timed("packages", f"{name} installed", _package, host, name, True)
    for name in tests.packages.absent:
        yield timed("packages", f"{name} absent", _package, host, name, False)
    for name in tests.pip.installed:
        yield timed("pip", f"{name} installed", _pip, host, venv, name, True)
    for name in tests.pip.absent:
        yield timed("pip", f"{name} absent", _pip, host, venv, name, False)
    for check in tests.files:
        yield timed("files", check.path, _file_probe, host, check)
    for account in tests.users:
        yield timed("users", account.name, _user_probe, host, account)


EXECUTE_BITS = {
    "any": stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH,
    "owner": stat.S_IXUSR,
    "group": stat.S_IXGRP,
    "other": stat.S_IXOTH,
}


def _file_probe(host: Any, check: FileCheck) -> tuple[bool, str, str]:
    target = host.file(check.path)
    if not check.exists:
        return not target.exists, "absent", "exists" if target.exists else "absent"
    if not target.exists:
        return False, "exists", "missing"
    wrong: list[tuple[str, str]] = []
    if check.type is not None:
        kind = "symlink" if target.is_symlink else "directory" if target.is_directory else "file"
        if kind != check.type:
            wrong.append((f"a {check.type}", f"a {kind}"))
    if check.mode is not None and target.mode != int(check.mode, 8):
        wrong.append((f"mode {check.mode}", f"mode {target.mode:04o}"))
    if check.owner is not None and check.owner not in (target.user, str(target.uid)):
        wrong.append((f"owner {check.owner}", f"owner {target.user}"))
    if check.group is not None and check.group not in (target.group, str(target.gid)):
        wrong.append((f"group {check.group}", f"group {target.group}"))
    if check.executable is not None:
        who = "any" if isinstance(check.executable, bool) else check.executable
        if bool(target.mode & EXECUTE_BITS[who]) != (check.executable is not False):
            if isinstance(check.executable, str):
                wanted = f"executable by {who}"
            else:
                wanted = "executable" if check.executable else "not executable"
            wrong.append((wanted, f"mode {target.mode:04o}"))
    if check.contains is not None and re.search(check.contains, target.content_string) is None:
        wrong.append((f"content matching /{check.contains}/", "no match"))
    return not wrong, "; ".join(w[0] for w in wrong), "; ".join(w[1] for w in wrong)


def _user_probe(host: Any, check: UserCheck) -> tuple[bool, str, str]:
    account = host.user(check.name)
    if not account.exists:
        return False, f"user {check.name}", "no such user"
    wanted = {"uid": check.uid, "gid": check.gid, "home": check.home, "shell": check.shell}
    wrong = [
        (f"{key} {value}", f"{key} {getattr(account, key)}")
        for key, value in wanted.items()
        if value is not None and getattr(account, key) != value
    ]
    return not wrong, "; ".join(w[0] for w in wrong), "; ".join(w[1] for w in wrong)


def _command_probe(container: Container, check: CommandCheck, user: str) -> tuple[bool, str, str]:
    try:
        result = container.exec(list(check.run), user=user, timeout=seconds(check.timeout))
    except ToolError:
        return (
            False,
            f"to finish within {check.timeout}",
            f"still running after {check.timeout}: stopped",
        )
    wrong = []
    if result.returncode != check.exit_code:
        wrong.append((f"exit code {check.exit_code}", f"exit code {result.returncode}"))
    for stream, pattern, text in (
        ("stdout", check.stdout, result.output),
        ("stderr", check.stderr, result.stderr),
    ):
        if pattern is not None and re.search(pattern, text) is None:
            wrong.append((f"{stream} matching /{pattern}/", f"{stream} {text[-300:]!r}"))
    return not wrong, "; ".join(w[0] for w in wrong), "; ".join(w[1] for w in wrong)


def service_checks(tests: ImageTests, container: Container) -> Iterator[CheckResult]:
    for service in tests.services:
        port = container.ports.get(service.port)
        if port is None:
            yield timed("services", service.name, _unpublished, service, container)
            continue
        yield timed(
            "services", service.name, lambda s=service, p=port: _service_probe(s, p, container)
        )


def _unpublished(service: ServiceCheck, container: Container) -> tuple[bool, str, str]:
    why = container.stopped() or "the engine published no port for it"
    return False, f"{service.port}/tcp published on {container.address}", why


def _service_probe(service: ServiceCheck, port: int, container: Container) -> tuple[bool, str, str]:
    deadline = time.monotonic() + seconds(service.timeout)
    expected = (
        f"HTTP {service.http.status} from {service.http.path}"
        if service.http
        else f"{service.port}/tcp listening"
    )
    last = "no answer"
    for _ in range(1000):  # bounded in count as well as time
        if time.monotonic() > deadline:
            break
        answered, last = (
            _http(container.address, port, service.http.path, service.http.status)
            if service.http
            else _tcp(container.address, port, service.port)
        )
        if answered:
            return True, "", ""
        container.check_running()  # an entrypoint that exits fails at once, saying why
        time.sleep(0.5)
    return (
        False,
        f"{expected} within {service.timeout}",
        f"{last}; container log: {container.logs()[-300:]!r}",
    )


def _http(address: str, port: int, path: str, wanted: int) -> tuple[bool, str]:
    url = f"http://{address}:{port}{path}"
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            url, timeout=2
        ) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        return False, f"no HTTP answer from {url} ({exc})"
    return status == wanted, f"HTTP {status} from {url}"


def _tcp(address: str, port: int, container_port: int) -> tuple[bool, str]:
    """Docker's port proxy accepts even when nothing listens, then closes at once: a connection
    that stays open (or speaks first) means a real listener behind it."""
    try:
        with socket.create_connection((address, port), timeout=2) as connection:
            connection.settimeout(0.5)
            try:
                closed = connection.recv(1) == b""
            except TimeoutError:
                closed = False
    except OSError as exc:
        return False, f"cannot connect to {container_port}/tcp ({exc})"
    return not closed, f"{container_port}/tcp closed the connection at once (nothing listening)"
