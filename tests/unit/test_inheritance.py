"""Inheritance you can predict (issue 14, finding 7): a child takes its catalog parent's
effective ``venv`` and ``user`` where it sets none, and no image runs as root unless
``user: root`` is written somewhere in its chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagefactory.errors import SpecError
from imagefactory.project.hashing import content_inputs
from imagefactory.render.catalog import Pins
from imagefactory.render.dockerfile import render_dockerfile
from imagefactory.render.packer import render_packer
from imagefactory.spec.catalog import Catalog, ref_slug
from imagefactory.spec.loader import load_catalog

PROJECT = """\
project: inherit
registries:
  dev: {url: 127.0.0.1:5000, namespace: inherit/dev, tls_verify: false}
environments:
  - {name: dev, registries: [dev]}
"""
EXTERNAL = "registry.example.invalid/python@sha256:" + "a" * 64
BASE = """\
bootstrap: {packages: [python3, python3-venv]}
create_users: [{name: app, uid: 10001}]
user: app
"""
RUNTIME = """\
from: base/os
venv: /opt/py
pip: [numpy==2.2.6]
env: {PATH: "/opt/py/bin:/usr/bin:/bin"}
"""


def write(root: Path, images: dict[str, str], project: str = PROJECT) -> Catalog:
    root.mkdir(parents=True, exist_ok=True)
    (root / "imagefactory.yaml").write_text(project)
    for name, body in images.items():
        folder = root / "images" / name
        folder.mkdir(parents=True)
        (folder / "image.yaml").write_text(f"name: {name}\nversion: 1.0.0\n{body}")
    return load_catalog(root)


def dockerfile(catalog: Catalog, ref: str) -> str:
    inputs = content_inputs(catalog)
    image = catalog.images[ref]
    pins = Pins(catalog.project, inputs, {})
    return render_dockerfile(catalog, image, inputs[ref].content_hash, pins.parent(image))


def test_a_child_installs_into_its_parents_venv(tmp_path: Path) -> None:
    catalog = write(
        tmp_path,
        {"base/os": BASE, "rt/py": RUNTIME, "app/svc": "from: rt/py\npip: [fastapi==0.115.12]\n"},
    )
    assert catalog.images["app/svc"].spec.venv == "/opt/py"  # what tests.pip looks into too
    text = dockerfile(catalog, "app/svc")
    assert "/opt/py/bin/pip install" in text
    assert "/opt/venv" not in text  # no second venv at the default path, off PATH
    assert "ENV PATH" not in text  # the parent's PATH (with /opt/py/bin) stays as it is


def test_the_venv_passes_down_a_chain_and_a_layer_that_sets_one_wins(tmp_path: Path) -> None:
    catalog = write(
        tmp_path,
        {
            "base/os": BASE,
            "rt/py": RUNTIME,
            "rt/mid": "from: rt/py\n",
            "app/leaf": "from: rt/mid\npip: [uvicorn==0.34.3]\n",
            "app/own": "from: rt/py\nvenv: /opt/own\npip: [uvicorn==0.34.3]\n",
            "app/default": "from: rt/py\nvenv: /opt/venv\n",  # written, so its own
            "app/by-variant": (
                "from: rt/py\npip: [uvicorn==0.34.3]\n"
                "variants:\n  v: {inherits: {}, own: {venv: /opt/variant}}\n"
            ),
        },
    )
    venvs = {ref: image.spec.venv for ref, image in catalog.images.items()}
    assert venvs == {
        "app/by-variant:inherits": "/opt/py",
        "app/by-variant:own": "/opt/variant",
        "app/default": "/opt/venv",
        "app/leaf": "/opt/py",
        "app/own": "/opt/own",
        "base/os": "/opt/venv",  # the first image of a chain: the default
        "rt/mid": "/opt/py",
        "rt/py": "/opt/py",
    }
    assert "/opt/py/bin/pip install" in dockerfile(catalog, "app/leaf")


def test_a_venv_in_the_project_defaults_is_every_images_own(tmp_path: Path) -> None:
    catalog = write(
        tmp_path,
        {"base/os": BASE, "rt/py": RUNTIME, "app/svc": "from: rt/py\npip: [uvicorn==0.34.3]\n"},
        project=PROJECT + "defaults: {venv: /opt/company}\n",
    )
    assert catalog.images["app/svc"].spec.venv == "/opt/company"
    assert catalog.images["rt/py"].spec.venv == "/opt/py"  # written in its image.yaml


def test_the_user_is_the_parents_unless_the_child_names_one(tmp_path: Path) -> None:
    catalog = write(
        tmp_path,
        {
            "base/os": BASE,
            "app/plain": "from: base/os\n",
            "app/root": "from: base/os\nuser: root\n",
            "app/cleared": "from: base/os\nuser: root\nvariants:\n  v: {x: {user: null}}\n",
        },
    )
    users = {ref: image.spec.user for ref, image in catalog.images.items()}
    assert users == {
        "app/cleared:x": "app",
        "app/plain": "app",
        "app/root": "root",
        "base/os": "app",
    }
    assert dockerfile(catalog, "app/plain").endswith("USER 10001:10001\n")
    assert dockerfile(catalog, "app/root").endswith("USER 0:0\n")


def test_a_bootstrapped_image_must_name_its_user(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        write(tmp_path, {"base/os": "bootstrap: {}\n", "app/svc": "from: base/os\n"})
    (issue,) = caught.value.issues  # on the base alone: writing it there settles the chain
    assert issue.key_path == "user" and issue.line == 3
    assert "'base/os' is bootstrapped and names no user: it would run as root" in issue.message
    assert issue.hint is not None and "user: root" in issue.hint


def test_user_root_written_runs_as_root(tmp_path: Path) -> None:
    catalog = write(tmp_path / "c", {"base/os": "bootstrap: {}\nuser: root\n"})
    assert dockerfile(catalog, "base/os").endswith("USER 0:0\n")


def test_an_external_parent_leaves_the_user_to_the_build(tmp_path: Path) -> None:
    """Its image config names the user; only a build reads it (build/users.py)."""
    catalog = write(tmp_path, {"app/ext": f"from: {EXTERNAL}\n", "app/child": "from: app/ext\n"})
    assert catalog.images["app/ext"].spec.user is None
    assert catalog.effective_user("app/child") is None
    assert catalog.images["app/child"].spec.venv == "/opt/venv"


def test_the_packer_path_installs_into_the_inherited_venv(tmp_path: Path) -> None:
    catalog = write(
        tmp_path,
        {
            "base/os": BASE,
            "rt/py": RUNTIME,
            "app/svc": "from: rt/py\npip: [fastapi==0.115.12]\ntargets: [packer]\n",
        },
    )
    pins = Pins(catalog.project, content_inputs(catalog), {"rt/py": "sha256:" + "c" * 64})
    image = catalog.images["app/svc"]
    text = render_packer(catalog, image, pins, tmp_path / "out" / ref_slug(image.ref))
    assert "/opt/py/bin/pip install" in text and "/opt/venv" not in text


def test_the_parents_venv_is_in_the_childs_content_hash(tmp_path: Path) -> None:
    """The child's bytes depend on the venv it inherits: its spec input says so itself."""
    images = {"base/os": BASE, "rt/py": RUNTIME, "app/svc": "from: rt/py\n"}
    before = content_inputs(write(tmp_path / "a", images))["app/svc"].spec
    images["rt/py"] = RUNTIME.replace("/opt/py", "/opt/py2")
    after = content_inputs(write(tmp_path / "b", images))["app/svc"].spec
    assert before != after
