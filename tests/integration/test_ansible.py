"""Ansible: the repository's playbooks applied to a build container of a catalog image with
ansible-runner (Docker connection plugin), committed as a layer with the image's metadata; the
second run reports changed=0; a task that always changes is caught; ansible-lint is clean.

The target is the session's runtime/llm:cpu (Ansible modules need Python in the container; the
minimal base has none).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from imagefactory.build.provision import provision, run_playbook
from imagefactory.errors import ToolError, UserError
from imagefactory.project.hashing import content_inputs
from imagefactory.render.catalog import Pins
from imagefactory.spec.loader import load_catalog

from .helpers.example import ExampleBuild, cli_json, edit_text, git_commit, imagefactory
from .helpers.services import REPO_ROOT, docker

pytestmark = pytest.mark.integration

REF = "runtime/llm:cpu"


def with_playbook(root: Path, playbook: str) -> None:
    shutil.copytree(REPO_ROOT / "ansible", root / "ansible", dirs_exist_ok=True)
    edit_text(
        root / "images/runtime/llm/image.yaml",
        "user: app\n",
        f"user: app\nplaybooks: [{playbook}]\n",
    )


def test_playbook_is_applied_committed_and_idempotent(
    example_build: ExampleBuild, example_copy: Path
) -> None:
    with_playbook(example_copy, "ansible/runtime.yml")
    catalog = load_catalog(example_copy)
    image = catalog.images[REF]
    inputs = content_inputs(catalog)
    digests = {ref: r["digest"] for ref, r in example_build.records.items()}
    base = example_build.reference(REF)
    tag = f"imagefactory-test/provisioned:{uuid.uuid4().hex[:12]}"
    try:
        runs = provision(
            catalog,
            image,
            base,
            tag,
            inputs[REF].content_hash,
            Pins(catalog.project, inputs, digests).parent(image),
            timeout=300,
        )
        assert [(r.playbook, r.changed, r.failed) for r in runs] == [("runtime.yml", 0, 0)]
        assert runs[0].ok > 0
        config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", tag).stdout)
        assert config["User"] == "10001:10001"
        assert not config.get("Entrypoint") and not config.get("Cmd")
        assert config["WorkingDir"] == "/home/app"
        assert "PYTHONUNBUFFERED=1" in config["Env"]
        assert config["Labels"]["org.imagefactory.ref"] == REF
        assert config["Labels"]["org.opencontainers.image.base.digest"] == digests["base/debian12"]
        shown = docker("run", "--rm", "--entrypoint", "cat", tag, "/etc/profile.d/umask.sh").stdout
        assert shown.strip() == "umask 027"
        assert (
            "UMASK 027"
            in docker("run", "--rm", "--entrypoint", "cat", tag, "/etc/login.defs").stdout
        )
        assert (
            docker("ps", "-a", "-q", "--filter", "name=imagefactory-provision-").stdout.strip()
            == ""
        )
    finally:
        docker("rmi", "--force", tag, check=False)


def test_a_task_that_always_changes_fails_the_idempotence_check(
    example_build: ExampleBuild, example_copy: Path
) -> None:
    playbook = example_copy / "ansible" / "not-idempotent.yml"
    playbook.parent.mkdir(exist_ok=True)
    playbook.write_text(
        "---\n- name: Not idempotent\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Always changes\n      ansible.builtin.command: touch /tmp/stamp\n"
    )
    with_playbook(example_copy, "ansible/not-idempotent.yml")
    catalog = load_catalog(example_copy)
    image = catalog.images[REF]
    inputs = content_inputs(catalog)
    tag = f"imagefactory-test/provisioned:{uuid.uuid4().hex[:12]}"
    with pytest.raises(
        UserError, match=r"not idempotent.*not-idempotent\.yml: 1 \(Always changes\)"
    ):
        provision(
            catalog,
            image,
            example_build.reference(REF),
            tag,
            inputs[REF].content_hash,
            None,
            timeout=300,
        )
    assert docker("image", "inspect", tag, check=False).returncode != 0  # nothing committed
    assert docker("ps", "-a", "-q", "--filter", "name=imagefactory-provision-").stdout.strip() == ""


def test_missing_role_fails_before_any_container_starts(
    example_build: ExampleBuild, example_copy: Path
) -> None:
    with_playbook(example_copy, "ansible/runtime.yml")
    playbook = example_copy / "ansible" / "runtime.yml"
    playbook.write_text(playbook.read_text().replace("role: hardening", "role: hardenning"))
    catalog = load_catalog(example_copy)
    image = catalog.images[REF]
    before = docker("ps", "-a", "-q").stdout
    with pytest.raises(UserError, match="role 'hardenning' does not exist"):
        provision(catalog, image, "no-such-image:never-pulled", "unused:tag", "sha256:x", None)
    assert docker("ps", "-a", "-q").stdout == before


def test_run_playbook_reports_a_failed_play(
    example_build: ExampleBuild, example_copy: Path
) -> None:
    playbook = example_copy / "ansible" / "fails.yml"
    playbook.parent.mkdir(exist_ok=True)
    playbook.write_text(
        "---\n- name: Fails\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Fail\n      ansible.builtin.fail:\n        msg: on purpose\n"
    )
    catalog = load_catalog(example_copy)
    container = f"imagefactory-provision-{uuid.uuid4().hex[:12]}"
    docker(
        "run",
        "--detach",
        "--name",
        container,
        "--entrypoint",
        "sleep",
        example_build.reference(REF),
        "infinity",
    )
    try:
        with pytest.raises(ToolError, match=r"playbook fails\.yml failed"):
            run_playbook(catalog, playbook, container, timeout=120)
    finally:
        docker("rm", "--force", container, check=False)


def test_ansible_lint_is_clean() -> None:
    lint = Path(sys.executable).parent / "ansible-lint"
    result = subprocess.run(
        [str(lint), "--offline", "--nocolor"],
        cwd=REPO_ROOT / "ansible",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Passed" in result.stdout + result.stderr


def test_build_applies_the_playbooks_of_an_image(
    example_build: ExampleBuild, example_copy: Path
) -> None:
    """``imagefactory build`` of an image that lists playbooks: the pushed digest carries them."""
    with_playbook(example_copy, "ansible/runtime.yml")
    git_commit(example_copy, "runtime applies its playbook")
    proc = imagefactory(example_copy, "build", REF, "--json", env=example_build.env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcomes = {o["image"]: o["status"] for o in cli_json(proc)["images"]}
    assert outcomes == {"base/debian12": "reused", REF: "built"}
    record = json.loads((example_copy / ".imagefactory/state.json").read_text())["images"][REF]
    pushed = f"{record['repository']}@{record['digest']}"
    shown = docker("run", "--rm", "--entrypoint", "cat", pushed, "/etc/profile.d/umask.sh").stdout
    assert shown.strip() == "umask 027"
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", pushed).stdout)
    assert config["User"] == "10001:10001"
    assert config["Labels"]["org.imagefactory.content-hash"] == record["content_hash"]
