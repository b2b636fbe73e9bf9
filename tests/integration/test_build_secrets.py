"""Build secrets for real: available to the build steps, absent from everything that remains.

A small catalog of its own (one image, ``probe/secrets``) is built FROM the base image the
session built (``example_build``), named as an external parent pinned by digest. It declares an
env secret exported to the install steps (``as_env``) and a file secret, installs one small
package so the standard template's apt step runs with the secret mounts, and overrides the
``extra`` block of the standard template to store only the SHA-256 of each value (and a per-run
nonce, so BuildKit cannot serve that step from an earlier run's cache, whose secret values were
different). The values are random per run and are then looked for in the image history, the
image config, every member of ``docker save``, the build log, the state file, the build context
and the output of ``imagefactory render``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagefactory import scratch

from .helpers.example import SESSION_LABEL, ExampleBuild, cli_json, imagefactory
from .helpers.registry import Registry
from .helpers.services import OutputLines, docker, unique

pytestmark = pytest.mark.integration

IMAGE = "probe/secrets"
TOKEN_ENV = "IF_TEST_TOKEN"
PROOF = "/opt/secret-proof"


@dataclass(frozen=True)
class SecretsBuild:
    root: Path
    token: str  # the env secret's value (id tok)
    key: str  # the file secret's value (id key)
    nonce: str
    env: dict[str, str]
    log: str  # stdout + stderr of `imagefactory -v build --json`
    record: dict[str, Any]
    user: str  # the registry user and password: they must not leak either
    password: str
    temp_left: list[str]  # what the build left in its TMPDIR

    @property
    def values(self) -> dict[str, str]:
        auth = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return {
            "token": self.token,
            "key": self.key,
            "registry password": self.password,
            "registry auth (base64)": auth,
        }

    @property
    def image(self) -> str:
        return str(self.record["image_id"])


def run_folders(pid: int, temp: Path) -> list[Path]:
    """The private folders of the CLI process ``pid`` (``imagefactory.scratch``): on /dev/shm,
    else in its TMPDIR ``temp``."""
    return [f for base in [*scratch.bases(), temp] for f in base.glob(f"{scratch.PREFIX}{pid}-*")]


def leaks(text: str | bytes, values: dict[str, str]) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [name for name, value in values.items() if value.encode() in data]


def leaks_in_files(files: Iterable[Path], values: dict[str, str]) -> list[str]:
    return [f"{path}: {name}" for path in files for name in leaks(path.read_bytes(), values)]


def all_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def leaks_in_archive(data: bytes, values: dict[str, str], where: str) -> list[str]:
    """Values found in ``data`` or, when it is a (gzipped) tar, in any of its members."""
    found = [f"{where}: {name}" for name in leaks(data, values)]
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
        found += [f"{where} (gunzipped): {name}" for name in leaks(data, values)]
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            for member in archive.getmembers():
                if member.name.rstrip("/").endswith(("run/secrets/tok", "run/secrets/key")):
                    found.append(f"{where}!{member.name}: a secret mount target")
                if member.isfile():
                    stream = archive.extractfile(member)
                    assert stream is not None
                    found += leaks_in_archive(stream.read(), values, f"{where}!{member.name}")
    except tarfile.TarError:
        pass
    return found


def write_catalog(root: Path, example: ExampleBuild, nonce: str) -> None:
    base = example.records["base/debian12"]
    project = {
        "project": "it-secrets",
        "registries": {
            "dev": {
                "url": example.registry.host,
                "namespace": f"it-{example.session}/secrets",
                "username_env": "IMAGEFACTORY_REGISTRY_USER",
                "password_env": "IMAGEFACTORY_REGISTRY_PASSWORD",
                "tls_verify": False,
            }
        },
        "environments": [{"name": "dev", "registries": ["dev"]}],
        "defaults": {"labels": {SESSION_LABEL: example.session}},
    }
    image = {
        "name": IMAGE,
        "version": "1.0.0",
        "from": f"{base['repository']}@{base['digest']}",  # external: pinned by digest
        "user": "app",
        "packages": ["jq"],
        "secrets": [
            {"id": "tok", "env": TOKEN_ENV, "as_env": "TOKEN_VALUE"},
            {"id": "key", "file": "secret.txt"},
        ],
    }
    folder = root / "images" / IMAGE
    folder.mkdir(parents=True)
    (root / "imagefactory.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    (folder / "image.yaml").write_text(yaml.safe_dump(image, sort_keys=False))
    # `mounts` is the standard template's prefix for install steps: the secret mounts, then the
    # as_env exports. Only hashes of the values are stored.
    (folder / "Dockerfile.j2").write_text(
        '{% extends "dockerfile/Dockerfile.j2" %}\n'
        "{% block extra %}\n"
        f"RUN {{{{ mounts }}}}mkdir -p {PROOF} && echo {nonce} > {PROOF}/nonce \\\n"
        f" && printf %s \"$TOKEN_VALUE\" | sha256sum | cut -d' ' -f1 > {PROOF}/tok-env \\\n"
        f" && sha256sum < /run/secrets/tok | cut -d' ' -f1 > {PROOF}/tok \\\n"
        f" && sha256sum < /run/secrets/key | cut -d' ' -f1 > {PROOF}/key\n"
        "{% endblock %}\n"
    )


@pytest.fixture(scope="module")
def secrets_build(
    example_build: ExampleBuild, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> SecretsBuild:
    root = tmp_path_factory.mktemp("secrets-catalog")
    nonce = unique("nonce")
    write_catalog(root, example_build, nonce)
    key = "key-value-" + secrets.token_hex(20)
    (root / "secret.txt").write_text(key)
    (root / "secret.txt").chmod(0o600)
    token = "token-value-" + secrets.token_hex(20)
    temp = tmp_path_factory.mktemp("secrets-tmp")  # the CLI's TMPDIR: secret values go there
    env = {**example_build.env, TOKEN_ENV: token, "TMPDIR": str(temp)}

    proc = imagefactory(root, "-v", "build", IMAGE, "--json", env=env, timeout=600)

    document = cli_json(proc)
    assert proc.returncode == 0 and document["ok"] is True, proc.stderr[-4000:]
    assert [(o["image"], o["status"]) for o in document["images"]] == [(IMAGE, "built")]
    state = json.loads((root / ".imagefactory" / "state.json").read_text())
    return SecretsBuild(
        root=root,
        token=token,
        key=key,
        nonce=nonce,
        env=env,
        log=proc.stdout + proc.stderr,
        record=state["images"][IMAGE],
        user=registry.user,
        password=registry.password,
        temp_left=sorted(p.name for p in temp.iterdir()),
    )


def run_in_image(image: str, *command: str) -> str:
    return docker(
        "run", "--rm", "--network", "none", "--user", "0:0", "--entrypoint", command[0], image,
        *command[1:],
    ).stdout  # fmt: skip


def test_secrets_reach_the_build_steps(secrets_build: SecretsBuild) -> None:
    dockerfile = (
        secrets_build.root / ".imagefactory" / "build" / "probe_secrets" / "Dockerfile"
    ).read_text()
    apt_step = next(step for step in dockerfile.split("\n\n") if "apt-get update" in step)
    assert "--mount=type=secret,id=tok,required=true" in apt_step
    assert "--mount=type=secret,id=key,required=true" in apt_step
    assert 'export TOKEN_VALUE="$(cat /run/secrets/tok)"' in apt_step

    def sha(value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()

    proof = run_in_image(
        secrets_build.image, "sh", "-c",
        f"cat {PROOF}/nonce {PROOF}/tok-env {PROOF}/tok {PROOF}/key; "
        "test ! -e /run/secrets/tok && test ! -e /run/secrets/key && echo no-mounts-left",
    ).split()  # fmt: skip
    assert proof == [
        secrets_build.nonce,
        sha(secrets_build.token),
        sha(secrets_build.token),
        sha(secrets_build.key),
        "no-mounts-left",
    ]
    assert run_in_image(secrets_build.image, "jq", "--version").startswith("jq-")


def test_secrets_absent_from_history_and_config(secrets_build: SecretsBuild) -> None:
    history = docker("history", "--no-trunc", secrets_build.image).stdout
    assert "/run/secrets/tok" in history  # the step is there, its value is not
    assert leaks(history, secrets_build.values) == []
    inspect = docker("image", "inspect", secrets_build.image).stdout
    assert leaks(inspect, secrets_build.values) == []
    config = json.loads(inspect)[0]["Config"]
    assert not any(entry.startswith("TOKEN_VALUE=") for entry in config["Env"] or [])


def test_secrets_absent_from_every_member_of_the_saved_image(
    secrets_build: SecretsBuild, tmp_path: Path
) -> None:
    archive = tmp_path / "image.tar"
    docker("save", "--output", str(archive), secrets_build.image, timeout=300)
    try:
        found: list[str] = []
        members = 0
        with tarfile.open(archive) as saved:
            for member in saved.getmembers():
                members += 1
                found += [
                    f"{member.name} (name): {n}" for n in leaks(member.name, secrets_build.values)
                ]
                if member.isfile():
                    stream = saved.extractfile(member)
                    assert stream is not None
                    found += leaks_in_archive(stream.read(), secrets_build.values, member.name)
        assert members > 3
        assert found == []
    finally:
        archive.unlink(missing_ok=True)


def test_secrets_absent_from_log_state_and_build_context(secrets_build: SecretsBuild) -> None:
    assert "export TOKEN_VALUE=" in secrets_build.log  # -v: the build log lines are all there
    assert leaks(secrets_build.log, secrets_build.values) == []
    work = secrets_build.root / ".imagefactory"
    assert leaks_in_files([work / "state.json"], secrets_build.values) == []
    context = all_files(work / "build")
    assert any(path.name == "Dockerfile" for path in context)
    assert leaks_in_files(context, secrets_build.values) == []
    # The env secret's value went to a temporary file for BuildKit (in the run's private
    # folder, with the temporary DOCKER_CONFIG that holds the registry credentials): both are
    # gone, and nothing went to the CLI's TMPDIR.
    assert secrets_build.temp_left == []


def test_secrets_absent_from_render_output(secrets_build: SecretsBuild, tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    text = imagefactory(
        secrets_build.root, "-v", "render", "--out", str(out), env=secrets_build.env
    )
    assert text.returncode == 0, text.stderr
    as_json = imagefactory(
        secrets_build.root, "render", "--out", str(out), "--json", env=secrets_build.env
    )
    assert as_json.returncode == 0, as_json.stderr
    files = all_files(out)
    assert (out / "probe_secrets" / "Dockerfile") in files
    for output in (text.stdout, text.stderr, as_json.stdout, as_json.stderr):
        assert leaks(output, secrets_build.values) == []
    assert leaks_in_files(files, secrets_build.values) == []


def test_missing_env_secret_fails_clearly(secrets_build: SecretsBuild, tmp_path: Path) -> None:
    env = {k: v for k, v in secrets_build.env.items() if k != TOKEN_ENV}
    env["TMPDIR"] = str(tmp_path)
    # --no-cache: the image exists already and would otherwise be reused without its secrets.
    proc = imagefactory(secrets_build.root, "build", IMAGE, "--no-cache", env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert f"${TOKEN_ENV}, which is not set" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert leaks(proc.stdout + proc.stderr, secrets_build.values) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_terminated_build_leaves_no_secret_or_credential_files(
    secrets_build: SecretsBuild, tmp_path: Path
) -> None:
    """SIGTERM (a CI job cancelled or timed out, ``docker stop``, a pod evicted) while a build
    step runs: the temporary files holding the env secret's value and the registry credentials
    (a DOCKER_CONFIG), in the run's private folder, must not stay behind."""
    root = tmp_path / "catalog"
    shutil.copytree(secrets_build.root, root, ignore=shutil.ignore_patterns("build", "state.json"))
    temp = tmp_path / "tmp"
    temp.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "imagefactory", "-C", str(root), "-v", "build", IMAGE, "--no-cache"],
        env={**secrets_build.env, "TMPDIR": str(temp)},
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = OutputLines(process, re.compile(r"^\[probe/secrets\] #\d+ \d+\.\d+ "))
    try:
        if not output.wait_for(timeout=300):
            pytest.fail(f"no build step ran (exit {process.poll()}):\n{output.text[-4000:]}")
        during = sorted(p.name for f in run_folders(process.pid, temp) for p in f.iterdir())
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        output.thread.join(timeout=10)
    runs = run_folders(process.pid, temp)
    left = all_files(temp) + [p for f in runs for p in all_files(f)]
    found = leaks_in_files(left, secrets_build.values)
    names = [p.as_posix() for p in [*runs, *temp.iterdir()]]
    shutil.rmtree(temp)  # whatever the outcome: they may hold the registry credentials
    for folder in runs:
        shutil.rmtree(folder, ignore_errors=True)  # in temp, it went with it
    if not any(name.startswith("secrets-") for name in during):
        pytest.fail(f"no secret files while the build ran: {during}")
    assert found == []
    assert names == []


@pytest.mark.parametrize("name", ["API_TOKEN", "DB_PASSWORD", "hf_token", "GITLAB_PAT"])
def test_secret_like_build_arg_is_refused_by_validate(
    name: str, example_build: ExampleBuild, tmp_path: Path
) -> None:
    value = "build-arg-value-" + secrets.token_hex(8)
    root = tmp_path / "catalog"
    folder = root / "images" / "probe" / "args"
    folder.mkdir(parents=True)
    (root / "imagefactory.yaml").write_text("project: it-args\n")
    image = {
        "name": "probe/args",
        "version": "1.0.0",
        "from": f"{example_build.repository('base/debian12')}@sha256:{'0' * 64}",
        "build_args": {"PIP_DEFAULT_TIMEOUT": "60", name: value},
    }
    text = yaml.safe_dump(image, sort_keys=False)
    (folder / "image.yaml").write_text(text)
    line = text.splitlines().index(f"  {name}: {value}") + 1

    proc = imagefactory(root, "validate", env=example_build.env)
    as_json = imagefactory(root, "validate", "--json", env=example_build.env)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"build arg '{name}' looks like a secret" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert as_json.returncode == 1
    issues: Any = cli_json(as_json)["issues"]
    assert [(i["key"], i["line"]) for i in issues] == [(f"build_args.{name}", line)]
    assert value not in proc.stdout + proc.stderr + as_json.stdout + as_json.stderr

    del image["build_args"][name]  # type: ignore[attr-defined]
    (folder / "image.yaml").write_text(yaml.safe_dump(image, sort_keys=False))
    assert imagefactory(root, "validate", env=example_build.env).returncode == 0
