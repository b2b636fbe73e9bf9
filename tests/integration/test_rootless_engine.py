"""``imagefactory build`` and ``test`` on a rootless Docker engine: the engine the generated
pipeline's ``--builder rootless`` jobs get (``docker:dind-rootless``), whose daemon, and so its
BuildKit, runs as an unprivileged user.

The engine here is Debian's own: ``dockerd-rootless.sh`` (docker.io) under rootlesskit with
slirp4netns, started as the unprivileged user ``scripts/setup.sh`` creates, for this module only.
Its network namespace has its own 127.0.0.1, so it reaches the loopback registry through a
forwarder on the Docker bridge's gateway address; the catalog names the registry by that address,
which the host (skopeo, the registry API) reaches too.

The catalog is the example's base (bootstrapped with mmdebstrap, the rootfs cache shared) and a
tiny app FROM it that apt-installs Python and serves a page, with a service check. Both are built
by the rootless engine (their content is new to it and to the registry namespace), pushed, and
tested there: the service's port is published by rootlesskit's port driver on the host's
127.0.0.1, where the check probes it.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from .conftest import (
    DOCKER,
    SESSION_LABEL,
    ExampleBuild,
    Registry,
    cli_json,
    docker,
    git_commit,
    imagefactory,
)
from .tcp_forward import bridge_gateway, forwarding, tcp

pytestmark = pytest.mark.integration

ROOTLESS_USER = "imagefactory-rootless"  # created by scripts/setup.sh, with subuid/subgid ranges
DOCKERD_ROOTLESS = "/usr/share/docker.io/contrib/dockerd-rootless.sh"
#: The rootless engine's own bridge: not 172.17.0.1/16, the host bridge's range, which its
#: network namespace must reach (the registry forwarder listens on the host bridge's gateway).
ROOTLESS_BRIDGE = "10.213.0.1/24"
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
    docker_host: str  # unix:///run/user/<uid>/docker.sock
    registry_host: str  # <bridge gateway>:<port>, forwarded to the loopback registry

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_HOST": self.docker_host, "DOCKER_BUILDKIT": "1"}
        return subprocess.run(
            [DOCKER, *args], env=env, capture_output=True, text=True, timeout=120, check=check
        )


def _runtime_dir(user: pwd.struct_passwd) -> Path:
    runtime = Path(f"/run/user/{user.pw_uid}")
    runtime.mkdir(parents=True, exist_ok=True)
    os.chown(runtime, user.pw_uid, user.pw_gid)
    runtime.chmod(0o700)
    return runtime


@pytest.fixture(scope="module")
def rootless_engine(
    registry: Registry, test_session_id: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RootlessEngine]:
    assert os.geteuid() == 0, "starting a rootless engine as another user needs root"
    try:
        user = pwd.getpwnam(ROOTLESS_USER)
    except KeyError:
        pytest.fail(f"no user {ROOTLESS_USER}: run scripts/setup.sh")
    runtime = _runtime_dir(user)
    host, port = registry.host.rsplit(":", 1)
    gateway = bridge_gateway(docker)
    log = tmp_path_factory.mktemp("rootless") / "dockerd.log"
    with forwarding(gateway, tcp(host, int(port))) as (forwarded, _), log.open("w") as output:
        registry_host = f"{gateway}:{forwarded}"
        daemon = subprocess.Popen(
            [
                "runuser", "-u", ROOTLESS_USER, "--",
                "env", "-i", f"HOME={user.pw_dir}", f"USER={ROOTLESS_USER}",
                f"XDG_RUNTIME_DIR={runtime}", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                DOCKERD_ROOTLESS, "--log-level=warn", f"--insecure-registry={registry_host}",
                f"--bip={ROOTLESS_BRIDGE}",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        engine = RootlessEngine(f"unix://{runtime}/docker.sock", registry_host)
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
        ignore=shutil.ignore_patterns("build", "cache", "runtime", "rag-api", "state.json"),
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
    env = {**example_build.env, "DOCKER_HOST": rootless_engine.docker_host}
    build = imagefactory(
        hello_catalog, "build", "app/hello", "--json", env=env, timeout=RUN_TIMEOUT
    )
    test = imagefactory(hello_catalog, "test", "app/hello", "--json", env=env, timeout=RUN_TIMEOUT)
    return Runs(build, test)


def test_the_engine_is_rootless(rootless_engine: RootlessEngine) -> None:
    options = rootless_engine.docker("info", "--format", "{{json .SecurityOptions}}").stdout
    assert "name=rootless" in json.loads(options)


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
