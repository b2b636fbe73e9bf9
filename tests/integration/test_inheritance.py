"""Inheritance you can predict (issue 14, finding 7), built by the real engine: a child of a
parent with its own venv and user installs into that venv (no second venv at the default path,
off PATH), runs as the parent's user and keeps its PATH; a bootstrapped image that names no user
is refused before anything builds.

Both images are added to a private copy of the session's example catalog and stand on its
``base/debian12`` (reused from the registry); the parent apt-installs Python, each pip-installs
one small pure-Python package.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .helpers.example import ExampleBuild, cli_json, edit_text, git_commit, imagefactory
from .helpers.services import docker

pytestmark = pytest.mark.integration

BUILD_TIMEOUT = 600
PARENT = """\
name: it/py-parent
version: 1.0.0
from: base/debian12
packages: [python3, python3-venv]
venv: /opt/py
pip: [six==1.16.0]
create_users:
  - {name: svc, uid: 10002, gid: 10002}
env:
  PATH: /opt/py/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
user: svc
"""
CHILD = """\
name: it/py-child
version: 1.0.0
from: it/py-parent
pip: [idna==3.10]
env:
  CHILD_MARKER: "1"
"""


def add_image(root: Path, folder: str, text: str) -> None:
    (root / "images" / folder).mkdir(parents=True)
    (root / "images" / folder / "image.yaml").write_text(text)


def image_config(image: str) -> dict[str, Any]:
    config = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
    assert isinstance(config, dict)
    return config


def test_a_child_uses_its_parents_venv_user_and_path(
    example_build: ExampleBuild, example_copy: Path
) -> None:
    add_image(example_copy, "it/py-parent", PARENT)
    add_image(example_copy, "it/py-child", CHILD)
    git_commit(example_copy, "a parent with its own venv and user, and a child")

    proc = imagefactory(
        example_copy, "build", "it/py-child", "--json", env=example_build.env, timeout=BUILD_TIMEOUT
    )
    document = cli_json(proc)
    assert proc.returncode == 0 and document["ok"] is True, proc.stderr[-3000:]
    state = json.loads((example_copy / ".imagefactory" / "state.json").read_text())["images"]
    child = state["it/py-child"]["image_id"]

    config = image_config(child)
    assert config["User"] == "10002:10002"  # the parent's user, resolved through its account
    path = next(e for e in config["Env"] if e.startswith("PATH=")).removeprefix("PATH=")
    assert path.split(":")[0] == "/opt/py/bin"
    assert "CHILD_MARKER=1" in config["Env"]
    # the child's package went into the parent's venv, and no second venv was made at the
    # default path; `python` on PATH is the parent's venv, and it sees both packages
    checked = docker(
        "run", "--rm", "--network", "none", "--entrypoint", "sh", child, "-c",
        "test ! -e /opt/venv && test -d /opt/py && id -u"
        " && command -v python && python -c 'import idna, six; print(idna.__file__)'",
        check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    uid, python, idna = checked.stdout.split()
    assert (uid, python) == ("10002", "/opt/py/bin/python")
    assert idna.startswith("/opt/py/lib/")


def test_a_bootstrapped_image_without_a_user_is_refused_before_it_builds(
    example_build: ExampleBuild, example_copy: Path
) -> None:
    edit_text(example_copy / "images/base/debian12/image.yaml", "\nuser: app\n", "\n")
    git_commit(example_copy, "the base names no user")

    proc = imagefactory(
        example_copy, "build", "base/debian12", "--json", env=example_build.env, timeout=120
    )
    document = cli_json(proc)
    assert proc.returncode == 1 and document["ok"] is False, proc.stdout
    (issue,) = document["issues"]
    assert issue["key"] == "user"
    assert "'base/debian12' is bootstrapped and names no user" in issue["message"]
    assert "user: root" in issue["hint"]
    assert not (example_copy / ".imagefactory" / "build" / "base_debian12").exists()
