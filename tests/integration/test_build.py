"""``imagefactory build`` for real: BuildKit on the host's dockerd, pushes to the authenticated
loopback registry, the state file, reuse by content hash, interruption and failure modes.

The example catalog (without ``runtime/llm:cuda``) is built ONCE per session by the
``example_build`` fixture (tests/integration/conftest.py) in its own namespace ``it-<session>/``.
Tests never change that catalog: every test that changes a file works on ``example_copy``, a
private copy with the same state, git history and namespace, so unchanged images are reused from
the registry and the tests do not depend on their order.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagefactory.build.bootstrap import labelled_releases, release_hashes, rootfs_path
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.parents import BootstrapParent

from .helpers.example import EXAMPLE_REFS, ExampleBuild, cli_json, edit_text, imagefactory, slug
from .helpers.services import SKOPEO, OutputLines, docker, run, unique

pytestmark = pytest.mark.integration

VERSIONS = {"base/debian12": "1.0.0", "runtime/llm:cpu": "1.0.0", "app/rag-api": "0.3.0"}
NAMES = {ref: ref.partition(":")[0] for ref in VERSIONS}
PARENT_NAMES = {
    "base/debian12": "scratch",
    "runtime/llm:cpu": "base/debian12",
    "app/rag-api": "runtime/llm",
}
PARENTS = {"runtime/llm:cpu": "base/debian12", "app/rag-api": "runtime/llm:cpu"}
SOURCE = "https://gitlab.example-bank.internal/platform/imagefactory"
NOOP_SECONDS = 30  # a no-op rebuild: three registry lookups, no build


# --- helpers ---------------------------------------------------------------------------------


def state_of(root: Path) -> dict[str, Any]:
    document = json.loads((root / ".imagefactory" / "state.json").read_text())
    assert isinstance(document, dict)
    return document["images"]  # type: ignore[no-any-return]


def statuses(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(entry["image"], entry["status"]) for entry in document["images"]]


def plan_of(root: Path, env: Any) -> dict[str, dict[str, Any]]:
    proc = imagefactory(
        root, "plan", "--json", "app/rag-api", "runtime/llm:cpu", "base/debian12", env=env
    )
    document = cli_json(proc)
    assert proc.returncode == 0, proc.stderr
    return {entry["image"]: entry for entry in document["plan"]}


def build_json(root: Path, env: Any, *extra: str, timeout: float = 900) -> dict[str, Any]:
    proc = imagefactory(root, "build", "app/rag-api", "--json", *extra, env=env, timeout=timeout)
    document = cli_json(proc)
    assert proc.returncode == 0 and document["ok"] is True, (
        f"build failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    )
    return document


def from_line(dockerfile: str) -> str:
    lines = [line for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert len(lines) == 1, dockerfile
    return lines[0].removeprefix("FROM ")


def skopeo_inspect(reference: str, docker_config: Path) -> dict[str, Any]:
    out = run(
        [
            SKOPEO,
            "inspect",
            "--no-tags",
            "--tls-verify=false",
            "--authfile",
            str(docker_config / "config.json"),
            f"docker://{reference}",
        ],
        timeout=60,
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def image_inspect(reference: str) -> dict[str, Any]:
    return json.loads(docker("image", "inspect", reference).stdout)[0]  # type: ignore[no-any-return]


def session_images(session: str) -> set[str]:
    out = docker(
        "image",
        "ls",
        "-a",
        "-q",
        "--no-trunc",
        "--filter",
        f"label=org.imagefactory.test-session={session}",
    ).stdout
    return set(out.split())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 3) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def log_position(log: str, needle: str) -> int:
    position = log.find(needle)
    assert position >= 0, f"{needle!r} not in the build log:\n{log[-3000:]}"
    return position


# --- (a) the first build ---------------------------------------------------------------------


def test_first_build_builds_the_chain_in_order(example_build: ExampleBuild) -> None:
    assert [(o["image"], o["status"]) for o in example_build.outcomes] == [
        (ref, "built") for ref in EXAMPLE_REFS
    ], example_build.stderr[-3000:]
    # In order: a child starts only after its parent finished; runtime/llm:cuda is not built.
    log = example_build.stderr
    assert "runtime/llm:cuda" not in log
    for parent, child in (("base/debian12", "runtime/llm:cpu"), ("runtime/llm:cpu", "app/rag-api")):
        assert log_position(log, f"[{parent}] built in") < log_position(log, f"[{child}] building")


def test_first_build_records_each_image_in_state(example_build: ExampleBuild) -> None:
    records = example_build.records
    locked = load_catalog(example_build.root).locks
    assert locked, "the example catalog locks some of its images (image.lock)"
    assert set(records) == set(EXAMPLE_REFS)
    for outcome in example_build.outcomes:
        ref = outcome["image"]
        record = records[ref]
        assert record["digest"] == outcome["digest"]
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", record["digest"]), record
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", record["image_id"]), record
        assert isinstance(record["size_bytes"], int) and record["size_bytes"] > 1_000_000, record
        assert record["version"] == VERSIONS[ref]
        assert record["repository"] == example_build.repository(NAMES[ref])
        assert record["tag"] == "content-" + record["content_hash"].removeprefix("sha256:")[:24]
        # an image.lock entry is an input of the image it locks, and of no other
        lock = {"lock"} if ref in locked else set()
        assert set(record["inputs"]) == {"spec", "files", "templates", "parent", *lock}, ref
        # The image the engine holds is the one recorded, and it is the one that was pushed.
        local = image_inspect(record["image_id"])
        assert f"{record['repository']}@{record['digest']}" in local["RepoDigests"]


def test_children_are_built_from_the_parent_digest(example_build: ExampleBuild) -> None:
    records = example_build.records
    assert from_line(example_build.dockerfiles["base/debian12"]) == "scratch"
    for child, parent in PARENTS.items():
        expected = f"{example_build.repository(NAMES[parent])}@{records[parent]['digest']}"
        assert from_line(example_build.dockerfiles[child]) == expected
        assert records[child]["inputs"]["parent"] == records[parent]["content_hash"]
    # The Dockerfile on disk is still the one the build used (the session catalog is read-only).
    for ref in EXAMPLE_REFS:
        on_disk = example_build.root / ".imagefactory" / "build" / slug(ref) / "Dockerfile"
        assert on_disk.read_text() == example_build.dockerfiles[ref]


def test_pushed_digest_is_what_the_registry_serves(
    example_build: ExampleBuild, docker_config: Path
) -> None:
    for ref in EXAMPLE_REFS:
        record = example_build.records[ref]
        remote = skopeo_inspect(example_build.reference(ref), docker_config)
        assert remote["Digest"] == record["digest"], ref
        assert remote["Labels"]["org.imagefactory.content-hash"] == record["content_hash"]


def test_image_labels_user_and_no_build_settings(example_build: ExampleBuild) -> None:
    records = example_build.records
    created = run(
        ["git", "-C", str(example_build.root), "log", "-1", "--format=%cI"], timeout=30
    ).stdout.strip()
    marker = f"no-proxy-marker-{example_build.session}"
    for ref in EXAMPLE_REFS:
        record = records[ref]
        config = image_inspect(record["image_id"])["Config"]
        labels = config["Labels"]
        expected = {
            "org.opencontainers.image.title": NAMES[ref],
            "org.opencontainers.image.version": VERSIONS[ref],
            "org.opencontainers.image.revision": example_build.revision,
            "org.opencontainers.image.created": created,
            "org.opencontainers.image.source": SOURCE,
            "org.opencontainers.image.base.name": PARENT_NAMES[ref],
            "org.opencontainers.image.base.digest": records[PARENTS[ref]]["digest"]
            if ref in PARENTS
            else "",
            "org.imagefactory.content-hash": record["content_hash"],
            "org.imagefactory.ref": ref,
        }
        assert {key: labels.get(key) for key in expected} == expected, ref
        assert config["User"] == "10001:10001", ref
        # build.proxy is passed as Docker's predefined proxy build args: never stored.
        assert not any(marker in entry or "proxy" in entry.lower() for entry in config["Env"] or [])
        history = docker("history", "--no-trunc", record["image_id"]).stdout
        assert marker not in history, ref
        assert marker not in json.dumps(image_inspect(record["image_id"]))
    # the bootstrapped base names the Release files its rootfs installed from (the hashes the
    # bootstrap kept beside the cached tar): a later reuse of the local image recovers them
    catalog = load_catalog(example_build.root)
    base = catalog.images["base/debian12"]
    assert isinstance(base.parent, BootstrapParent)
    cache = example_build.root / ".imagefactory" / "cache"
    rootfs = rootfs_path(base.parent.bootstrap, catalog.project.build, cache)
    labels = image_inspect(records["base/debian12"]["image_id"])["Config"]["Labels"]
    assert labelled_releases(labels) == release_hashes(rootfs)


def test_build_proxy_reaches_run_steps_but_not_the_image(
    example_build: ExampleBuild, example_copy: Path
) -> None:
    """build.proxy (not part of any hash) is given to RUN steps and stored nowhere in the image.

    The proxy host does not exist: only the app is rebuilt (an override template adds a step),
    its pip step comes from BuildKit's cache and the steps that run need no network.
    """
    session = example_build.session
    proxy = {
        "http": f"http://http-proxy-marker-{session}.invalid:3128",
        "https": f"http://https-proxy-marker-{session}.invalid:3128",
        "no_proxy": f"no-proxy-marker-{session}.invalid",
    }
    project_file = example_copy / "imagefactory.yaml"
    project = yaml.safe_load(project_file.read_text())
    project["build"]["proxy"] = proxy
    project_file.write_text(yaml.safe_dump(project, sort_keys=False))
    # The proof step stores a hash of what it saw, and a nonce: the proxy variables are not part
    # of BuildKit's cache key, so without it an earlier run's step (other values) could be reused.
    nonce = unique("nonce")
    (example_copy / "images" / "app" / "rag-api" / "Dockerfile.j2").write_text(
        '{% extends "dockerfile/Dockerfile.j2" %}\n'
        "{% block extra %}\n"
        f"RUN echo {nonce} > /proxy-nonce && "
        'printf \'%s|%s|%s|%s|%s|%s\' "$HTTP_PROXY" "$http_proxy" "$HTTPS_PROXY" '
        '"$https_proxy" "$NO_PROXY" "$no_proxy" | sha256sum | cut -c1-64 > /proxy-proof\n'
        "{% endblock %}\n"
    )

    document = build_json(example_copy, example_build.env)

    assert statuses(document) == [
        ("base/debian12", "reused"),
        ("runtime/llm:cpu", "reused"),
        ("app/rag-api", "built"),
    ]
    image = state_of(example_copy)["app/rag-api"]["image_id"]
    seen = "|".join(
        proxy[key] for key in ("http", "http", "https", "https", "no_proxy", "no_proxy")
    )
    proof = docker(
        "run", "--rm", "--network", "none", "--entrypoint", "cat", image,
        "/proxy-nonce", "/proxy-proof",
    ).stdout.split()  # fmt: skip
    assert proof == [nonce, hashlib.sha256(seen.encode()).hexdigest()]
    config = image_inspect(image)["Config"]
    assert not any("proxy" in entry.lower() for entry in config["Env"] or []), config["Env"]
    stored = docker("history", "--no-trunc", image).stdout + json.dumps(image_inspect(image))
    assert [value for value in proxy.values() if value in stored] == []


# --- (b) nothing changed ---------------------------------------------------------------------


def test_noop_rebuild_reuses_everything(example_build: ExampleBuild) -> None:
    plan = plan_of(example_build.root, example_build.env)
    assert [(ref, entry["action"]) for ref, entry in plan.items()] == [
        (ref, "skip") for ref in EXAMPLE_REFS
    ]
    images_before = session_images(example_build.session)

    started = time.monotonic()
    document = build_json(example_build.root, example_build.env)
    seconds = time.monotonic() - started

    assert statuses(document) == [(ref, "reused") for ref in EXAMPLE_REFS]
    assert [o["digest"] for o in document["images"]] == [
        example_build.records[ref]["digest"] for ref in EXAMPLE_REFS
    ]
    assert seconds < NOOP_SECONDS, f"a no-op rebuild took {seconds:.1f}s"
    assert example_build.state_path.read_text() == example_build.state_text
    assert session_images(example_build.session) == images_before


# --- (c) what a change rebuilds --------------------------------------------------------------


def test_changed_app_file_rebuilds_only_the_app(
    example_build: ExampleBuild, example_copy: Path
) -> None:
    token = unique("changed")
    main = example_copy / "images" / "app" / "rag-api" / "app" / "rag_api" / "main.py"
    main.write_text(main.read_text() + f"\n# {token}\n")
    plan = plan_of(example_copy, example_build.env)
    assert {ref: entry["reasons"] for ref, entry in plan.items()} == {
        "base/debian12": [],
        "runtime/llm:cpu": [],
        "app/rag-api": ["file changed"],
    }

    document = build_json(example_copy, example_build.env)

    assert statuses(document) == [
        ("base/debian12", "reused"),
        ("runtime/llm:cpu", "reused"),
        ("app/rag-api", "built"),
    ]
    before, after = example_build.records, state_of(example_copy)
    assert after["base/debian12"] == before["base/debian12"]
    assert after["runtime/llm:cpu"] == before["runtime/llm:cpu"]
    app = after["app/rag-api"]
    assert app["content_hash"] == plan["app/rag-api"]["content_hash"]
    assert app["digest"] != before["app/rag-api"]["digest"]
    assert {k for k, v in app["inputs"].items() if v != before["app/rag-api"]["inputs"][k]} == {
        "files"
    }
    dockerfile = (
        example_copy / ".imagefactory" / "build" / "app_rag-api" / "Dockerfile"
    ).read_text()
    runtime = before["runtime/llm:cpu"]
    assert from_line(dockerfile) == f"{runtime['repository']}@{runtime['digest']}"
    shipped = docker(
        "run", "--rm", "--network", "none", "--entrypoint", "cat", app["image_id"],
        "/opt/rag-api/rag_api/main.py",
    ).stdout  # fmt: skip
    assert token in shipped


def test_changed_base_spec_rebuilds_the_chain_in_order(
    example_build: ExampleBuild, example_copy: Path
) -> None:
    # A label changes the base's config, not its layers: BuildKit serves the runtime's apt and
    # pip steps from its cache, so the whole chain rebuilds (and pushes) in seconds.
    base_file = example_copy / "images" / "base" / "debian12" / "image.yaml"
    edit_text(base_file, "labels:\n", f"labels:\n  com.example-bank.rebuild: {unique('r')}\n")
    plan = plan_of(example_copy, example_build.env)
    assert {ref: entry["reasons"] for ref, entry in plan.items()} == {
        "base/debian12": ["spec changed"],
        "runtime/llm:cpu": ["parent changed"],
        "app/rag-api": ["parent changed"],
    }

    proc = imagefactory(
        example_copy, "build", "app/rag-api", "--json", env=example_build.env, timeout=900
    )
    document = cli_json(proc)

    assert proc.returncode == 0, proc.stderr[-4000:]
    assert statuses(document) == [(ref, "built") for ref in EXAMPLE_REFS]
    for child, parent in PARENTS.items():
        assert log_position(proc.stderr, f"[{parent}] built in") < log_position(
            proc.stderr, f"[{child}] building"
        )
    after = state_of(example_copy)
    for ref in EXAMPLE_REFS:
        assert after[ref]["content_hash"] == plan[ref]["content_hash"]
        assert after[ref]["digest"] != example_build.records[ref]["digest"]
    for child, parent in PARENTS.items():
        dockerfile = (
            example_copy / ".imagefactory" / "build" / slug(child) / "Dockerfile"
        ).read_text()
        assert from_line(dockerfile) == f"{after[parent]['repository']}@{after[parent]['digest']}"


# --- (d) interrupted --------------------------------------------------------------------------


def test_interrupted_build_keeps_state_and_resumes(
    example_build: ExampleBuild, example_copy: Path, tmp_path: Path
) -> None:
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) while runtime/llm:cpu runs
    a build step: the base finished and stays recorded, the runtime keeps its old record, and
    the next build reuses the base and builds the rest.

    The change is an env var of the base: unlike a label it changes the environment of the
    runtime's RUN steps, so BuildKit cannot take them from its cache and the runtime is surely
    inside a running step (its output lines show it, with ``-v``) when interrupted.
    """
    base_file = example_copy / "images" / "base" / "debian12" / "image.yaml"
    edit_text(base_file, "\nuser: app\n", f"\nenv:\n  IT_INTERRUPTED: {unique('i')}\nuser: app\n")
    plan = plan_of(example_copy, example_build.env)
    before = example_build.records
    running_step = re.compile(r"^\[runtime/llm:cpu\] #\d+ \d+\.\d+ ")
    temp = tmp_path / "tmp"  # the CLI's own TMPDIR: its temporary DOCKER_CONFIG holds credentials
    temp.mkdir()

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imagefactory",
            "-C",
            str(example_copy),
            "-v",
            "build",
            "app/rag-api",
        ],
        env={**example_build.env, "TMPDIR": str(temp)},
        cwd=example_copy,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = OutputLines(process, running_step)
    try:
        if not output.wait_for(timeout=600):
            pytest.fail(
                f"runtime/llm:cpu never ran a build step (exit {process.poll()}):\n"
                f"{output.text[-4000:]}"
            )
        os.killpg(process.pid, signal.SIGINT)
        returncode = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        output.thread.join(timeout=10)

    assert returncode == 130, output.text[-4000:]
    assert output.lines[-1] == "interrupted", output.text[-2000:]
    assert "Traceback" not in output.text
    assert sorted(p.name for p in temp.iterdir()) == []  # credentials and secrets cleaned up
    after = state_of(example_copy)  # still parses
    assert after["base/debian12"]["content_hash"] == plan["base/debian12"]["content_hash"]
    assert after["base/debian12"]["digest"] != before["base/debian12"]["digest"]
    assert after["runtime/llm:cpu"] == before["runtime/llm:cpu"]
    assert after["app/rag-api"] == before["app/rag-api"]
    leftovers = [
        p.name for p in (example_copy / ".imagefactory").iterdir() if p.name.startswith(".state")
    ]
    assert leftovers == []

    document = build_json(example_copy, example_build.env)

    assert statuses(document) == [
        ("base/debian12", "reused"),
        ("runtime/llm:cpu", "built"),
        ("app/rag-api", "built"),
    ]
    resumed = state_of(example_copy)
    assert resumed["base/debian12"] == after["base/debian12"]
    for ref in EXAMPLE_REFS:
        assert resumed[ref]["content_hash"] == plan[ref]["content_hash"]


# --- (e) dry run -----------------------------------------------------------------------------


def test_dry_run_touches_nothing(
    example_build: ExampleBuild, example_copy: Path, docker_config: Path
) -> None:
    main = example_copy / "images" / "app" / "rag-api" / "app" / "rag_api" / "main.py"
    main.write_text(main.read_text() + f"\n# {unique('dry')}\n")
    state_path = example_copy / ".imagefactory" / "state.json"
    state_before = state_path.read_bytes()
    images_before = session_images(example_build.session)
    # Not even the engine is needed: point DOCKER_HOST nowhere.
    env = {**example_build.env, "DOCKER_HOST": "unix:///nonexistent.sock"}

    proc = imagefactory(example_copy, "build", "app/rag-api", "--dry-run", "--json", env=env)

    document = cli_json(proc)
    assert proc.returncode == 0, proc.stderr
    assert document["dry_run"] is True
    actions = {entry["image"]: (entry["action"], entry["reasons"]) for entry in document["plan"]}
    assert actions == {
        "base/debian12": ("skip", []),
        "runtime/llm:cpu": ("skip", []),
        "app/rag-api": ("build", ["file changed"]),
    }
    assert state_path.read_bytes() == state_before
    assert not (example_copy / ".imagefactory" / "build").exists()
    assert session_images(example_build.session) == images_before
    new_hash = document["plan"][2]["content_hash"]
    new_tag = "content-" + new_hash.removeprefix("sha256:")[:24]
    missing = run(
        [
            SKOPEO,
            "inspect",
            "--no-tags",
            "--tls-verify=false",
            "--authfile",
            str(docker_config / "config.json"),
            f"docker://{example_build.repository('app/rag-api')}:{new_tag}",
        ],
        timeout=60,
        check=False,
    )
    assert missing.returncode != 0 and "manifest unknown" in missing.stderr.lower(), missing.stderr

    plain = imagefactory(example_copy, "build", "app/rag-api", "--dry-run", env=env)
    assert plain.returncode == 0, plain.stderr
    assert "app/rag-api: would build (file changed)" in plain.stdout
    assert "base/debian12: would reuse (unchanged)" in plain.stdout
    assert state_path.read_bytes() == state_before


def test_dry_run_with_no_cache_shows_every_image_rebuilt(example_build: ExampleBuild) -> None:
    """``build --no-cache`` rebuilds even unchanged images, so its dry run must say so."""
    state_before = example_build.state_path.read_bytes()

    proc = imagefactory(
        example_build.root, "build", "app/rag-api", "--no-cache", "--dry-run", "--json",
        env=example_build.env,
    )  # fmt: skip

    document = cli_json(proc)
    assert proc.returncode == 0, proc.stderr
    assert example_build.state_path.read_bytes() == state_before
    assert [(entry["image"], entry["action"]) for entry in document["plan"]] == [
        (ref, "build") for ref in EXAMPLE_REFS
    ]


# --- (f) no engine ---------------------------------------------------------------------------


@pytest.mark.parametrize("json_output", [False, True], ids=["text", "json"])
def test_unreachable_daemon_is_one_clear_error(
    example_build: ExampleBuild, example_copy: Path, json_output: bool
) -> None:
    main = example_copy / "images" / "app" / "rag-api" / "app" / "rag_api" / "main.py"
    main.write_text(main.read_text() + f"\n# {unique('nodaemon')}\n")
    state_before = (example_copy / ".imagefactory" / "state.json").read_bytes()
    env = {**example_build.env, "DOCKER_HOST": "unix:///nonexistent.sock"}

    args = ["build", "app/rag-api", *(["--json"] if json_output else [])]
    proc = imagefactory(example_copy, *args, env=env, timeout=60)

    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    if json_output:
        document = cli_json(proc)
        assert document["ok"] is False
        message = document["error"]
        assert isinstance(message, str)
    else:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, proc.stderr
        message = errors[0].removeprefix("error: ")
        assert proc.stdout == ""
        assert len(proc.stderr.splitlines()) <= 2, proc.stderr  # the error and its hint
    assert "\n" not in message
    assert "Docker engine is not reachable" in message
    assert "/nonexistent.sock" in message
    assert (example_copy / ".imagefactory" / "state.json").read_bytes() == state_before


def test_missing_registry_credentials_is_one_clear_error(
    example_build: ExampleBuild, example_copy: Path
) -> None:
    env = {k: v for k, v in example_build.env.items() if k != "IMAGEFACTORY_REGISTRY_PASSWORD"}

    proc = imagefactory(example_copy, "build", "app/rag-api", env=env, timeout=60)

    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "IMAGEFACTORY_REGISTRY_PASSWORD" in errors[0]
    assert example_build.registry.password not in proc.stdout + proc.stderr


# --- (g) the app serves ----------------------------------------------------------------------


def test_app_image_serves_healthz(example_build: ExampleBuild) -> None:
    image = example_build.records["app/rag-api"]["image_id"]
    port = free_port()
    name = unique("it-rag-api")
    try:
        docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080", image, timeout=60)
        deadline = time.monotonic() + 30
        last: object = None
        while time.monotonic() < deadline:
            try:
                status, body = http_get(f"http://127.0.0.1:{port}/healthz")
                if status == 200:
                    break
                last = status
            except OSError as exc:
                last = exc
            time.sleep(0.5)
        else:
            logs = docker("logs", "--tail", "30", name, check=False)
            pytest.fail(
                f"/healthz did not answer 200 within 30s ({last!r}):\n{logs.stdout}{logs.stderr}"
            )
        assert json.loads(body)["status"] == "ok"
        assert docker("exec", name, "id", "-u").stdout.strip() == "10001"
    finally:
        docker("rm", "--force", name, check=False, timeout=60)
    assert docker("ps", "-a", "-q", "--filter", f"name={name}").stdout.strip() == ""
