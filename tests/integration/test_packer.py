"""Packer: ``imagefactory render packer`` + ``packer build`` (docker builder) for one small
catalog image on the session's example base, and the result passes ``imagefactory test``.

Packer 1.6.6 (Debian) runs ``docker`` from PATH: /usr/bin comes first, since /usr/local/bin may
hold another Docker CLI. Nothing is pulled (the parent is the session's local base image).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imagefactory.project.hashing import content_inputs
from imagefactory.project.naming import content_tag
from imagefactory.spec.loader import load_catalog

from .helpers.example import ExampleBuild, cli_json, imagefactory
from .helpers.services import REPO_ROOT, docker

pytestmark = pytest.mark.integration

PACKER_TIMEOUT = 300

TINY = """\
name: app/tiny
version: 0.1.0
description: A tiny image built by Packer on the example base.
from: base/debian12
files:
  - src: hello.txt
    dest: /opt/tiny/hello.txt
    mode: "0644"
    owner: root:root
env:
  TINY_GREETING: hello
workdir: /opt/tiny
cmd: [cat, /opt/tiny/hello.txt]
labels:
  com.example-bank.image.tier: app
targets: [packer]
tests:
  files:
    - path: /opt/tiny/hello.txt
      owner: root
      mode: "0644"
      contains: hello from packer
  users:
    - name: app
      uid: 10001
  commands:
    - name: greeting
      run: [cat, /opt/tiny/hello.txt]
      stdout: hello from packer
  metadata:
    user: "10001:10001"
    workdir: /opt/tiny
    cmd: [cat, /opt/tiny/hello.txt]
    env:
      TINY_GREETING: hello
      TZ: UTC
    labels:
      org.imagefactory.ref: app/tiny
      org.opencontainers.image.base.name: base/debian12
  non_root: true
"""


def packer_env(tmp_path: Path) -> dict[str, str]:
    """Debian's docker first, then this environment's ansible-playbook (for shell-local)."""
    env = dict(os.environ)
    tools = [str(Path(sys.executable).parent), env.get("PATH", "")]
    env["PATH"] = os.pathsep.join(["/usr/bin", *tools])
    env["CHECKPOINT_DISABLE"] = "1"  # no version check over the network
    env["PACKER_CONFIG_DIR"] = str(tmp_path / "packer-config")
    env["TMPDIR"] = str(tmp_path)
    env.pop("DOCKER_HOST", None)
    return env


def test_packer_build_of_a_catalog_image_passes_imagefactory_test(
    example_build: ExampleBuild, example_copy: Path, docker_config: Path, tmp_path: Path
) -> None:
    folder = example_copy / "images" / "app" / "tiny"
    folder.mkdir(parents=True)
    (folder / "image.yaml").write_text(TINY)
    (folder / "hello.txt").write_text("hello from packer\n")

    rendered = imagefactory(example_copy, "render", "packer", "app/tiny", env=example_build.env)
    assert rendered.returncode == 0, rendered.stderr
    template = example_copy / "rendered" / "packer" / "app_tiny" / "app_tiny.pkr.hcl"
    text = template.read_text()
    base_digest = example_build.records["base/debian12"]["digest"]
    assert f"{example_build.repository('base/debian12')}@{base_digest}" in text

    catalog = load_catalog(example_copy)
    content_hash = content_inputs(catalog)["app/tiny"].content_hash
    repository = example_build.repository("app/tiny")
    reference = f"{repository}:{content_tag(content_hash)}"
    work = tmp_path / "packer-run"  # packer runs elsewhere: paths in the template are its own
    work.mkdir()
    try:
        build = subprocess.run(
            ["packer", "build", "-color=false", str(template)],
            cwd=work,
            env=packer_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=PACKER_TIMEOUT,
            check=False,
        )
        assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-2000:]
        assert f"Repository: {reference}" in build.stdout

        config = json.loads(
            docker("image", "inspect", "--format", "{{json .Config}}", reference).stdout
        )
        assert config["User"] == "10001:10001"
        assert not config.get("Entrypoint")  # Packer's keep-alive entrypoint did not stay
        assert config["Cmd"] == ["cat", "/opt/tiny/hello.txt"]
        assert config["Labels"]["org.imagefactory.content-hash"] == content_hash

        # Push it and record it as a build would, so the real `imagefactory test` runs on it.
        docker("push", reference, docker_config=docker_config, timeout=300)
        repo_digests = json.loads(
            docker("image", "inspect", "--format", "{{json .RepoDigests}}", reference).stdout
        )
        digest = next(d for d in repo_digests if d.startswith(repository + "@")).split("@")[1]
        state_path = example_copy / ".imagefactory" / "state.json"
        state = json.loads(state_path.read_text())
        state["images"]["app/tiny"] = {
            "content_hash": content_hash,
            "inputs": {},
            "version": "0.1.0",
            "name": "app/tiny",
            "repository": repository,
            "tag": content_tag(content_hash),
            "digest": digest,
        }
        state_path.write_text(json.dumps(state, indent=2))

        tested = imagefactory(
            example_copy, "test", "app/tiny", "--json", env=example_build.env, timeout=300
        )
        document = cli_json(tested)
        assert tested.returncode == 0 and document.get("ok") is True, tested.stdout + tested.stderr
        results = [c for image in document["images"] for c in image["checks"]]
        assert len(results) >= 8 and all(r["passed"] for r in results)
    finally:
        docker("rmi", "--force", reference, check=False)


def test_packer_build_applies_the_ansible_playbook_over_the_docker_connection(
    example_build: ExampleBuild, example_copy: Path, tmp_path: Path
) -> None:
    """The shell-local provisioner runs the image's playbook against Packer's build container."""
    shutil.copytree(REPO_ROOT / "ansible", example_copy / "ansible")
    folder = example_copy / "images" / "app" / "hardened"
    folder.mkdir(parents=True)
    (folder / "image.yaml").write_text(
        "name: app/hardened\nversion: 0.1.0\nfrom: runtime/llm:cpu\n"
        "playbooks: [ansible/app.yml]\nentrypoint: [python]\ntargets: [packer]\n"
    )
    rendered = imagefactory(example_copy, "render", "packer", "app/hardened", env=example_build.env)
    assert rendered.returncode == 0, rendered.stderr
    template = example_copy / "rendered" / "packer" / "app_hardened" / "app_hardened.pkr.hcl"
    catalog = load_catalog(example_copy)
    content_hash = content_inputs(catalog)["app/hardened"].content_hash
    reference = f"{example_build.repository('app/hardened')}:{content_tag(content_hash)}"
    try:
        build = subprocess.run(
            ["packer", "build", "-color=false", str(template)],
            cwd=tmp_path,
            env=packer_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=PACKER_TIMEOUT,
            check=False,
        )
        assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-2000:]
        assert (
            "failed=0" in build.stdout and "TASK [hardening : Set the shell umask]" in build.stdout
        )
        config = json.loads(
            docker("image", "inspect", "--format", "{{json .Config}}", reference).stdout
        )
        assert config["Entrypoint"] == ["python"] and not config.get("Cmd")
        assert config["User"] == "10001:10001"
        umask = docker("run", "--rm", "--entrypoint", "cat", reference, "/etc/profile.d/umask.sh")
        assert umask.stdout.strip() == "umask 027"
    finally:
        docker("rmi", "--force", reference, check=False)


def test_build_engine_packer_records_state_and_passes_imagefactory_test(
    example_build: ExampleBuild, example_copy: Path
) -> None:
    folder = example_copy / "images" / "app" / "tiny"
    folder.mkdir(parents=True)
    # its own content (the first test may have pushed the same app/tiny to this namespace)
    (folder / "image.yaml").write_text(
        TINY.replace("  TINY_GREETING: hello\n", "  TINY_GREETING: hello\n  BUILT_BY: packer\n", 1)
    )
    (folder / "hello.txt").write_text("hello from packer\n")
    # an EC2 builder in the template: it must not start unless named (--only amazon-ebs.vm);
    # were it started here it would fail (no AWS credentials, no network)
    (folder / "packer.yaml").write_text(
        "targets: [vm]\namazon_ebs:\n  region: eu-west-1\n  source_ami: ami-0123456789abcdef0\n"
        "  instance_type: t3.small\n  ssh_username: admin\n"
    )
    refused = imagefactory(
        example_copy, "build", "app/rag-api", "--engine", "packer", env=example_build.env
    )
    assert refused.returncode == 1 and "target packer" in refused.stderr

    built = imagefactory(
        example_copy,
        "-v",  # Packer's lines on stderr
        "build",
        "app/tiny",
        "--engine",
        "packer",
        "--json",
        env=example_build.env,
        timeout=PACKER_TIMEOUT,
    )
    document = cli_json(built)
    assert built.returncode == 0, built.stdout + built.stderr[-4000:]
    statuses = {o["image"]: o["status"] for o in document["images"]}
    assert statuses == {"base/debian12": "reused", "app/tiny": "built"}
    # Packer prefixes each source's lines with its name: only the docker source ran
    assert "docker.image:" in built.stderr and "amazon-ebs.vm" not in built.stderr
    record = json.loads((example_copy / ".imagefactory" / "state.json").read_text())["images"][
        "app/tiny"
    ]
    reference = f"{record['repository']}:{record['tag']}"
    try:
        tested = imagefactory(
            example_copy, "test", "app/tiny", "--json", env=example_build.env, timeout=300
        )
        report = cli_json(tested)
        assert tested.returncode == 0 and report.get("ok") is True, tested.stdout + tested.stderr
        again = imagefactory(
            example_copy, "build", "app/tiny", "--engine", "packer", "--json", env=example_build.env
        )
        assert {o["image"]: o["status"] for o in cli_json(again)["images"]}["app/tiny"] == "reused"
    finally:
        docker("rmi", "--force", reference, check=False)
