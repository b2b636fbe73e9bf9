"""Fixtures for tests that need the real host services started by ``scripts/services.sh``.

The services are a Docker engine answering Debian's ``/usr/bin/docker`` (BuildKit via
``DOCKER_BUILDKIT=1``) and a registry on ``127.0.0.1:$IMAGEFACTORY_REGISTRY_PORT`` (default 5000)
with htpasswd authentication; the password lives in
``${IMAGEFACTORY_HOST_DIR:-<repo>/.host}/registry.password``.

When the services are not running, the fixtures FAIL (not skip) with a message saying how to
start them: CI starts them before the tests, so a missing service is a broken host.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER = "/usr/bin/docker"  # Debian's docker.io CLI; other CLIs on PATH may refuse BuildKit
SKOPEO = "skopeo"
REGISTRY_USER = "imagefactory"
START_HINT = "start them with `sudo scripts/services.sh start` (or run `sudo scripts/setup.sh`)"


def host_dir() -> Path:
    return Path(os.environ.get("IMAGEFACTORY_HOST_DIR") or REPO_ROOT / ".host")


def registry_port() -> int:
    return int(os.environ.get("IMAGEFACTORY_REGISTRY_PORT") or "5000")


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (no shell); on failure raise AssertionError with the output's tail.

    Never pass secrets in ``argv``: use ``input_text`` (stdin) or files.
    """
    try:
        proc = subprocess.run(
            list(argv),
            env=dict(env) if env is not None else None,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"timed out after {timeout}s: {' '.join(argv)}") from exc
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed (exit {proc.returncode}): {' '.join(argv)}\n"
            f"--- stdout ---\n{_tail(proc.stdout)}\n--- stderr ---\n{_tail(proc.stderr)}"
        )
    return proc


def docker_env(docker_config: Path | None = None) -> dict[str, str]:
    """Environment for ``/usr/bin/docker``: BuildKit on, optional client config dir."""
    env = dict(os.environ)
    env["DOCKER_BUILDKIT"] = "1"
    if docker_config is not None:
        env["DOCKER_CONFIG"] = str(docker_config)
    return env


def docker(
    *args: str,
    docker_config: Path | None = None,
    input_text: str | None = None,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    return run(
        [DOCKER, *args],
        env=docker_env(docker_config),
        input_text=input_text,
        timeout=timeout,
        check=check,
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Registry:
    """The authenticated loopback registry. ``password`` must never be printed or logged."""

    host: str  # "127.0.0.1:5000"
    user: str
    password: str

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    def request(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        password: str | None = None,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        timeout: float = 10,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """HTTP request to the registry (loopback only, proxies ignored); returns status,
        headers and body without raising on 4xx/5xx."""
        req = urllib.request.Request(self.base_url + path, method=method, data=data)
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        if auth:
            token = f"{self.user}:{password if password is not None else self.password}"
            req.add_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode())
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers.items()), exc.read()

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Best-effort clean-up of a pushed manifest (the registry has deletes enabled)."""
        self.request("DELETE", f"/v2/{repository}/manifests/{digest}")


@dataclass(frozen=True)
class HostServices:
    registry: Registry
    host_dir: Path


@pytest.fixture(scope="session")
def host_services() -> HostServices:
    """Fail clearly unless dockerd and the authenticated registry are up."""
    proc = run([DOCKER, "version", "--format", "{{.Server.Version}}"], timeout=30, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        reason = (proc.stderr.strip().splitlines() or ["no output"])[0]
        pytest.fail(
            f"dockerd does not answer via {DOCKER} ({reason}); {START_HINT}",
            pytrace=False,
        )
    password_file = host_dir() / "registry.password"
    if not password_file.is_file():
        pytest.fail(
            f"registry password file {password_file} is missing; {START_HINT}", pytrace=False
        )
    password = password_file.read_text().strip()
    registry = Registry(host=f"127.0.0.1:{registry_port()}", user=REGISTRY_USER, password=password)
    try:
        status, _, _ = registry.request("GET", "/v2/", auth=False, timeout=5)
    except OSError as exc:
        pytest.fail(
            f"no registry answers on {registry.base_url}/v2/ ({exc}); {START_HINT}", pytrace=False
        )
    if status != 401:
        pytest.fail(
            f"registry on {registry.base_url} answered {status} without credentials, expected "
            f"401 (is it the authenticated one from scripts/services.sh?); {START_HINT}",
            pytrace=False,
        )
    return HostServices(registry=registry, host_dir=host_dir())


@pytest.fixture(scope="session")
def registry(host_services: HostServices) -> Registry:
    return host_services.registry


@pytest.fixture(scope="session")
def docker_config(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private DOCKER_CONFIG dir logged in to the local registry (password via stdin).

    skopeo reads the same credentials with ``--authfile <dir>/config.json``.
    """
    config_dir = tmp_path_factory.mktemp("docker-config")
    config_dir.chmod(0o700)
    docker(
        "login",
        registry.host,
        "--username",
        registry.user,
        "--password-stdin",
        docker_config=config_dir,
        input_text=registry.password + "\n",
        timeout=60,
    )
    yield config_dir
    docker("logout", registry.host, docker_config=config_dir, check=False)
    shutil.rmtree(config_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_base(
    host_services: HostServices, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A ~2 MB base image imported from a static busybox (nothing can be pulled here).

    Yields the local reference ``imagefactory-test/tiny:<unique>``; removed at session end.
    """
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).is_file():
        pytest.fail(
            "busybox not found (Debian package busybox-static); run scripts/setup.sh", pytrace=False
        )
    rootfs = tmp_path_factory.mktemp("tiny-rootfs")
    (rootfs / "bin").mkdir()
    for sub in ("tmp", "etc", "run"):
        (rootfs / sub).mkdir()
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    for applet in ("sh", "cat", "echo", "ls", "sha256sum", "test", "true", "wc"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    archive = rootfs.parent / f"{rootfs.name}.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(rootfs, arcname=".")
    ref = f"imagefactory-test/tiny:{unique('base')}"
    docker("import", "--change", "ENV PATH=/bin", str(archive), ref, timeout=60)
    archive.unlink()
    yield ref
    docker("rmi", "--force", ref, check=False)


# ---------------------------------------------------------------------------------------------
# The example catalog, built once per test session by the real CLI (added for test_build*.py).
#
# The copy differs from the repository's example in three ways, all in its imagefactory.yaml:
#   * every registry namespace becomes ``it-<session>/<stage>``: runs never share a repository;
#   * ``defaults.labels`` gains ``org.imagefactory.test-session: <session>``: the label is part
#     of every content hash, so no image of an earlier run (or of a manual build of the example,
#     which the build would reuse from the local engine by its content-hash label) matches, and
#     the first build really builds. BuildKit still serves unchanged layers from its cache;
#   * ``build.proxy.no_proxy`` is set to a marker value that must never reach an image.
# ---------------------------------------------------------------------------------------------

EXAMPLE_REFS = ("base/debian12", "runtime/llm:cpu", "app/rag-api")
SESSION_LABEL = "org.imagefactory.test-session"
BUILD_TIMEOUT = 900  # a cold build (mmdebstrap, apt, pip) on a small CI machine
ROOTFS_CACHE = REPO_ROOT / ".imagefactory" / "cache"


def imagefactory(
    project: Path,
    *args: str,
    env: Mapping[str, str],
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI (``python -m imagefactory -C project ...``); never raises on exit codes."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "imagefactory", "-C", str(project), *args],
            env=dict(env),
            cwd=project,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"imagefactory {' '.join(args)} ran longer than {timeout}s") from exc


def cli_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The one JSON document a ``--json`` command printed; fails with the output otherwise."""
    try:
        document = json.loads(proc.stdout)
    except ValueError as exc:
        raise AssertionError(
            f"no JSON on stdout (exit {proc.returncode})\n--- stdout ---\n{_tail(proc.stdout)}"
            f"\n--- stderr ---\n{_tail(proc.stderr)}"
        ) from exc
    assert isinstance(document, dict), document
    return document


def git_commit(root: Path, message: str) -> str:
    """Commit everything in ``root`` (a git repository is created when there is none)."""
    if not (root / ".git").is_dir():
        run(["git", "init", "-q", str(root)], timeout=30)
    ident = [
        "-c", "user.name=imagefactory tests", "-c", "user.email=tests@example.invalid",
        "-c", "commit.gpgsign=false",
    ]  # fmt: skip
    run(["git", "-C", str(root), "add", "-A"], timeout=30)
    run(
        ["git", "-C", str(root), *ident, "commit", "-q", "--allow-empty", "-m", message], timeout=30
    )
    return run(["git", "-C", str(root), "rev-parse", "HEAD"], timeout=30).stdout.strip()


def link_or_copy_tree(source: Path, target: Path) -> None:
    """Hard-link every file of ``source`` into ``target`` (a copy across file systems)."""
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_file() and not item.name.endswith(".partial"):
            try:
                os.link(item, target / item.name)
            except OSError:
                shutil.copy2(item, target / item.name)


def edit_text(path: Path, old: str, new: str) -> None:
    """Replace ``old`` once in ``path``; fails loudly when it is not there."""
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@dataclass(frozen=True)
class ExampleBuild:
    """The example catalog copy the session fixture built (``imagefactory build app/rag-api``).

    Tests must not change ``root``: use the ``example_copy`` fixture to change a catalog.
    """

    root: Path
    session: str  # unique per test session: namespace root and label value
    namespace: str  # the dev registry's namespace, "it-<session>/dev"
    registry: Registry
    env: Mapping[str, str]  # os.environ + the registry credential variables
    outcomes: list[dict[str, Any]]  # the build's --json "images"
    stdout: str
    stderr: str
    seconds: float
    state_text: str  # the state file right after the build
    revision: str  # the git commit the build ran on
    dockerfiles: Mapping[str, str]  # ref -> the Dockerfile the build rendered for it

    @property
    def state_path(self) -> Path:
        return self.root / ".imagefactory" / "state.json"

    @property
    def records(self) -> dict[str, dict[str, Any]]:
        images = json.loads(self.state_text)["images"]
        assert isinstance(images, dict)
        return images

    def repository(self, name: str) -> str:
        return f"{self.registry.host}/{self.namespace}/{name}"

    def reference(self, ref: str) -> str:
        """The pushed content tag of ``ref`` (``host/ns/name:content-…``)."""
        record = self.records[ref]
        return f"{record['repository']}:{record['tag']}"


def slug(ref: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "_", ref)


def prepare_example_catalog(target: Path, session: str) -> Path:
    """A copy of the example catalog at ``target``, rewritten for this session (see above)."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO_ROOT / "images", target / "images")
    project = yaml.safe_load((REPO_ROOT / "imagefactory.yaml").read_text())
    for stage, registry in project["registries"].items():
        registry["namespace"] = f"it-{session}/{stage}"
    project.setdefault("defaults", {}).setdefault("labels", {})[SESSION_LABEL] = session
    proxy = project.setdefault("build", {}).setdefault("proxy", {})
    proxy["no_proxy"] = f"no-proxy-marker-{session}.invalid"
    (target / "imagefactory.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    work = target / ".imagefactory"
    work.mkdir()
    if ROOTFS_CACHE.is_dir():  # a warm mmdebstrap cache: saves ~20 s; a cold run makes its own
        link_or_copy_tree(ROOTFS_CACHE, work / "cache")
    (target / ".gitignore").write_text("/.imagefactory/\n")
    return target


def registry_cleanup(registry: Registry, prefix: str) -> None:
    """Best effort: delete every manifest in the repositories under ``prefix/``."""
    accept = (
        "application/vnd.docker.distribution.manifest.v2+json, "
        "application/vnd.oci.image.manifest.v1+json"
    )
    try:
        repositories: list[str] = []
        page: str | None = "/v2/_catalog?n=1000"
        while page:
            status, headers, body = registry.request("GET", page, timeout=10)
            if status != 200:
                return
            repositories += [
                r for r in json.loads(body)["repositories"] if r.startswith(prefix + "/")
            ]
            link = {k.lower(): v for k, v in headers.items()}.get("link", "")
            match = re.match(r"<([^>]+)>", link)
            page = match.group(1) if match else None
        for repository in repositories:
            status, _, body = registry.request("GET", f"/v2/{repository}/tags/list", timeout=10)
            tags = (json.loads(body).get("tags") or []) if status == 200 else []
            digests = set()
            for tag in tags:
                status, headers, _ = registry.request(
                    "HEAD", f"/v2/{repository}/manifests/{tag}", headers={"Accept": accept}
                )
                digest = {k.lower(): v for k, v in headers.items()}.get("docker-content-digest")
                if status == 200 and digest:
                    digests.add(digest)
            for digest in digests:
                registry.delete_manifest(repository, digest)
    except (OSError, ValueError, KeyError):
        pass


def remove_session_images(session: str) -> None:
    ids = docker(
        "image", "ls", "-a", "-q", "--filter", f"label={SESSION_LABEL}={session}", check=False
    ).stdout.split()
    if ids:
        docker("rmi", "--force", *sorted(set(ids)), check=False, timeout=300)


@pytest.fixture(scope="session")
def test_session_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def registry_env(registry: Registry) -> dict[str, str]:
    """The process environment plus the credential variables the example catalog names."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEFACTORY_REGISTRY_")}
    env.pop("DOCKER_HOST", None)
    env["IMAGEFACTORY_REGISTRY_USER"] = registry.user
    env["IMAGEFACTORY_REGISTRY_PASSWORD"] = registry.password
    env["DOCKER_BUILDKIT"] = "1"
    return env


@pytest.fixture(scope="session")
def example_build(
    registry: Registry,
    registry_env: dict[str, str],
    test_session_id: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ExampleBuild]:
    """The example catalog (without runtime/llm:cuda) built and pushed ONCE per session.

    At the end every local image carrying this session's label and every manifest under
    ``it-<session>/`` in the registry are removed.
    """
    session = test_session_id
    root = prepare_example_catalog(tmp_path_factory.mktemp("example") / "catalog", session)
    revision = git_commit(root, "example catalog")
    try:
        started = time.monotonic()
        proc = imagefactory(
            root, "build", "app/rag-api", "--json", env=registry_env, timeout=BUILD_TIMEOUT
        )
        seconds = time.monotonic() - started
        document = cli_json(proc)
        if proc.returncode != 0 or document.get("ok") is not True:
            pytest.fail(
                f"the session build of the example catalog failed (exit {proc.returncode})\n"
                f"--- stdout ---\n{_tail(proc.stdout, 40)}\n--- stderr ---\n{_tail(proc.stderr, 60)}",
                pytrace=False,
            )
        images = document["images"]
        assert isinstance(images, list)
        build_dir = root / ".imagefactory" / "build"
        yield ExampleBuild(
            root=root,
            session=session,
            namespace=f"it-{session}/dev",
            registry=registry,
            env=registry_env,
            outcomes=images,
            stdout=proc.stdout,
            stderr=proc.stderr,
            seconds=seconds,
            state_text=(root / ".imagefactory" / "state.json").read_text(),
            revision=revision,
            dockerfiles={
                ref: (build_dir / slug(ref) / "Dockerfile").read_text()
                for ref in EXAMPLE_REFS
                if (build_dir / slug(ref) / "Dockerfile").is_file()
            },
        )
    finally:
        remove_session_images(session)
        registry_cleanup(registry, f"it-{session}")


@pytest.fixture
def example_copy(example_build: ExampleBuild, tmp_path: Path) -> Path:
    """A private, changeable copy of the built catalog: same images, state, git history and
    registry namespace (so unchanged images are reused from there), its own build folder; the
    rootfs cache is shared with the session's catalog (a symlink)."""
    target = tmp_path / "catalog"
    shutil.copytree(
        example_build.root,
        target,
        symlinks=True,
        ignore=lambda folder, names: (
            ["build", "cache"] if Path(folder) == example_build.root / ".imagefactory" else []
        ),
    )
    cache = example_build.root / ".imagefactory" / "cache"
    cache.mkdir(exist_ok=True)
    (target / ".imagefactory" / "cache").symlink_to(cache, target_is_directory=True)
    return target


class OutputLines:
    """Reads a process's (merged) output line by line in a thread; ``seen`` is set at the first
    line matching ``pattern``. Use ``wait_for`` for a bounded wait."""

    def __init__(self, process: subprocess.Popen[str], pattern: re.Pattern[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self.seen = threading.Event()
        self.pattern = pattern
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if self.pattern.search(line):
                self.seen.set()

    def wait_for(self, timeout: float) -> bool:
        """True once a line matched; False when the process ended or ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while not self.seen.wait(timeout=0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.thread.join(timeout=10)
                return self.seen.is_set()
        return True

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


# ---------------------------------------------------------------------------------------------
# Registry B (added for test_release.py): a second registry, over TLS from a CA generated for the
# session, with htpasswd; Debian's docker-registry on a free loopback port. Details and the
# helpers (stop/start, storage size, HTTPS requests) in tests/integration/tls_registry.py.
# ---------------------------------------------------------------------------------------------


from .tls_registry import TLSRegistry, running_registry  # noqa: E402


@pytest.fixture(scope="session")
def registry_b(
    host_services: HostServices, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TLSRegistry]:
    """Registry B, started once per session; stopped and its storage removed at the end."""
    with running_registry(tmp_path_factory.mktemp("registry-b") / "b") as started:
        yield started
