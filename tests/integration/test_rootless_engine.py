"""``imagefactory build`` and ``test`` on a rootless Docker engine reached the way the generated
pipeline's ``--builder rootless`` jobs reach theirs (``docker:dind-rootless`` as the ``docker``
service): DOCKER_HOST over TCP with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, on an address that
is not 127.0.0.1, the daemon and so its BuildKit running as an unprivileged user.

The engine is Debian's own ``dockerd-rootless.sh`` (docker.io) under rootlesskit with
slirp4netns, started for this module as the unprivileged user ``scripts/setup.sh`` creates, with
a TLS listener (a CA made here, server and client certificates) that rootlesskit publishes on the
Docker bridge's gateway address. Its network namespace has its own 127.0.0.1, so it reaches the
loopback registry through a forwarder on that gateway address too; the catalog names the
registry by that address, which the host (skopeo, the registry API) reaches as well.

The catalog is the example's base (bootstrapped with mmdebstrap, the rootfs cache shared) and a
tiny app FROM it that apt-installs Python and serves a page, with a service check. Both are built
by the rootless engine (their content is new to it and to the registry namespace), pushed, and
tested there: the service's port is published on the engine's address by rootlesskit's port
driver, where the check probes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from .helpers.bridge import bridge_gateway
from .helpers.example import SESSION_LABEL, ExampleBuild, cli_json, git_commit, imagefactory
from .helpers.registry import Registry
from .helpers.services import DOCKER, docker
from .helpers.tcp_forward import forwarding, tcp
from .helpers.tls_registry import free_port, make_ca_and_server_cert, make_client_cert

pytestmark = pytest.mark.integration

ROOTLESS_USER = "imagefactory-rootless"  # created by scripts/setup.sh, with subuid/subgid ranges
DOCKERD_ROOTLESS = "/usr/share/docker.io/contrib/dockerd-rootless.sh"
#: The rootless engine's own bridge: not 172.17.0.1/16, the host bridge's range, which its
#: network namespace must reach (the registry forwarder listens on the host bridge's gateway).
ROOTLESS_BRIDGE = "10.213.0.1/24"
API_PORT = 2376  # the daemon's TLS port inside its namespace, as the dind services use
START_TIMEOUT = 90
RUN_TIMEOUT = 600  # the base's rootfs import and the app's apt step, on a cold rootless engine

HELLO = {
    "name": "app/hello",
    "version": "0.1.0",
    "description": "A static page served by Python's http.server, built by a rootless engine.",
    "from": "base/debian12",
    "packages": ["python3"],
    "user": "app",
    "workdir": "/home/app",
    "ports": [8000],
    "entrypoint": ["python3", "-m", "http.server", "8000"],
    "targets": ["docker"],
    "tests": {
        "packages": {"installed": ["python3"]},
        "services": [
            {
                "name": "page answers",
                "port": 8000,
                "http": {"path": "/", "status": 200},
                "timeout": "30s",
            }
        ],
        "non_root": True,
    },
}


@dataclass(frozen=True)
class RootlessEngine:
    """What a job with the rootless service gets: DOCKER_HOST over TCP, TLS verified both ways."""

    env: Mapping[str, str]  # DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH
    address: str  # the bridge gateway: where the API and published ports are reached
    registry_host: str  # <bridge gateway>:<port>, forwarded to the loopback registry

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.env, "DOCKER_BUILDKIT": "1"}
        return subprocess.run(
            [DOCKER, *args], env=env, capture_output=True, text=True, timeout=120, check=check
        )


def _owned_dir(path: Path, user: pwd.struct_passwd) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, user.pw_uid, user.pw_gid)
    path.chmod(0o700)
    return path


def _tls_files(
    folder: Path, runtime: Path, address: str, user: pwd.struct_passwd
) -> tuple[Path, Path]:
    """(the daemon's folder, the client's DOCKER_CERT_PATH): a CA, a server certificate for
    ``address`` in the rootless user's runtime folder, and a client certificate, named as Docker
    wants them."""
    ca, server_cert, server_key = make_ca_and_server_cert(folder / "ca", address)
    client_cert, client_key = make_client_cert(folder / "ca")
    daemon = _owned_dir(runtime / "imagefactory-tls", user)
    client = _owned_dir(folder / "client", pwd.getpwuid(os.geteuid()))
    for source, target in (
        (ca, daemon / "ca.pem"),
        (server_cert, daemon / "cert.pem"),
        (server_key, daemon / "key.pem"),
        (ca, client / "ca.pem"),
        (client_cert, client / "cert.pem"),
        (client_key, client / "key.pem"),
    ):
        shutil.copyfile(source, target)
        if target.parent == daemon:
            os.chown(target, user.pw_uid, user.pw_gid)
    return daemon, client


@pytest.fixture(scope="module")
def rootless_engine(
    registry: Registry, test_session_id: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RootlessEngine]:
    assert os.geteuid() == 0, "starting a rootless engine as another user needs root"
    try:
        user = pwd.getpwnam(ROOTLESS_USER)
    except KeyError:
        pytest.fail(f"no user {ROOTLESS_USER}: run scripts/setup.sh")
    runtime = _owned_dir(Path(f"/run/user/{user.pw_uid}"), user)
    host, port = registry.host.rsplit(":", 1)
    gateway = bridge_gateway(docker)
    work = tmp_path_factory.mktemp("rootless")
    daemon_tls, client_tls = _tls_files(work, runtime, gateway, user)
    api_port = free_port()
    log = work / "dockerd.log"
    with forwarding(gateway, tcp(host, int(port))) as (forwarded, _), log.open("w") as output:
        registry_host = f"{gateway}:{forwarded}"
        daemon = subprocess.Popen(
            [
                "runuser", "-u", ROOTLESS_USER, "--",
                "env", "-i", f"HOME={user.pw_dir}", f"USER={ROOTLESS_USER}",
                f"XDG_RUNTIME_DIR={runtime}", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                # rootlesskit publishes the daemon's TCP port on the gateway address
                f"DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS=-p {gateway}:{api_port}:{API_PORT}/tcp",
                DOCKERD_ROOTLESS, "--log-level=warn",
                f"--host=unix://{runtime}/docker.sock", f"--host=tcp://0.0.0.0:{API_PORT}",
                "--tlsverify", f"--tlscacert={daemon_tls / 'ca.pem'}",
                f"--tlscert={daemon_tls / 'cert.pem'}", f"--tlskey={daemon_tls / 'key.pem'}",
                f"--insecure-registry={registry_host}", f"--bip={ROOTLESS_BRIDGE}",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        engine = RootlessEngine(
            {  # the variables of the generated rootless jobs, with this engine's address
                "DOCKER_HOST": f"tcp://{gateway}:{api_port}",
                "DOCKER_TLS_VERIFY": "1",
                "DOCKER_CERT_PATH": str(client_tls),
            },
            gateway,
            registry_host,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while engine.docker("info", check=False).returncode != 0:
                assert daemon.poll() is None, f"rootless dockerd exited:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"no answer:\n{log.read_text()[-3000:]}"
                time.sleep(1)
            yield engine
            images = engine.docker(
                "image", "ls", "-q", "--filter", f"label={SESSION_LABEL}={test_session_id}"
            ).stdout.split()
            if images:  # the engine's data stays (its build cache serves the next run)
                engine.docker("image", "rm", "--force", *sorted(set(images)), check=False)
        finally:
            with contextlib.suppress(ProcessLookupError):  # it may have exited on its own
                os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait(timeout=30)


@pytest.fixture(scope="module")
def hello_catalog(
    example_build: ExampleBuild,
    rootless_engine: RootlessEngine,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The example's base and the tiny app, in a registry namespace of their own."""
    root = tmp_path_factory.mktemp("rootless-catalog") / "catalog"
    shutil.copytree(
        example_build.root,
        root,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            "build", "cache", "runtime", "rag-api", "rag-api-distroless", "state.json"
        ),
    )
    cache = example_build.root / ".imagefactory" / "cache"
    cache.mkdir(exist_ok=True)
    (root / ".imagefactory" / "cache").symlink_to(cache, target_is_directory=True)
    project = yaml.safe_load((root / "imagefactory.yaml").read_text())
    for stage, settings in project["registries"].items():
        settings["url"] = rootless_engine.registry_host
        settings["namespace"] = f"it-{example_build.session}/rootless-{stage}"
    (root / "imagefactory.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    (root / "images/app/hello").mkdir(parents=True)
    (root / "images/app/hello/image.yaml").write_text(yaml.safe_dump(HELLO, sort_keys=False))
    git_commit(root, "the rootless engine's catalog")
    return root


@dataclass(frozen=True)
class Runs:
    build: subprocess.CompletedProcess[str]
    test: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def runs(example_build: ExampleBuild, rootless_engine: RootlessEngine, hello_catalog: Path) -> Runs:
    env = {**example_build.env, **rootless_engine.env}
    build = imagefactory(
        hello_catalog, "build", "app/hello", "--json", env=env, timeout=RUN_TIMEOUT
    )
    test = imagefactory(hello_catalog, "test", "app/hello", "--json", env=env, timeout=RUN_TIMEOUT)
    return Runs(build, test)


def test_the_engine_is_rootless_and_speaks_only_tls(rootless_engine: RootlessEngine) -> None:
    options = rootless_engine.docker("info", "--format", "{{json .SecurityOptions}}").stdout
    assert "name=rootless" in json.loads(options)
    plain = subprocess.run(
        [DOCKER, "info"],
        env={**os.environ, "DOCKER_HOST": rootless_engine.env["DOCKER_HOST"]},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert plain.returncode != 0, "the engine answered a client without a certificate"


def test_the_rootless_engine_builds_and_pushes_the_chain(
    runs: Runs, rootless_engine: RootlessEngine, hello_catalog: Path
) -> None:
    assert runs.build.returncode == 0, runs.build.stdout[-3000:] + runs.build.stderr[-3000:]
    outcomes = {o["image"]: o for o in cli_json(runs.build)["images"]}
    assert {ref: o["status"] for ref, o in outcomes.items()} == {
        "base/debian12": "built",
        "app/hello": "built",
    }
    state = json.loads((hello_catalog / ".imagefactory" / "state.json").read_text())["images"]
    record = state["app/hello"]
    reference = f"{record['repository']}@{record['digest']}"
    assert record["repository"].startswith(f"{rootless_engine.registry_host}/")
    # built by the rootless engine, not by the host's: only the former holds the image
    inspected = rootless_engine.docker("image", "inspect", reference, check=False)
    assert inspected.returncode == 0, inspected.stderr
    assert docker("image", "inspect", reference, check=False).returncode != 0


def test_the_rootless_engine_runs_the_image_tests(runs: Runs) -> None:
    assert runs.test.returncode == 0, runs.test.stdout[-3000:] + runs.test.stderr[-3000:]
    (report,) = cli_json(runs.test)["images"]
    assert report["passed"] is True
    checks = {(c["kind"], c["name"]): c["passed"] for c in report["checks"]}
    assert checks[("services", "page answers")] is True
    assert checks[("non_root", "runs as non-root")] is True
    assert checks[("packages", "python3 installed")] is True
