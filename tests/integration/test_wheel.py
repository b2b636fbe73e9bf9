"""The wheel installs anywhere: built from the checkout, installed with its own dependencies into
a fresh venv, run from a folder outside the repository on a copy of the example catalog, it
renders and plans exactly as the editable install does.

Builds with ``pip wheel`` (build isolation fetches setuptools) from a copy of the checkout's
files (``git ls-files``), so that nothing is written into the checkout and no stale ``build/``
leaks into the wheel. Needs the package index, not the host services.
"""

from __future__ import annotations

import email.parser
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

import imagefactory

from .helpers.services import run

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The editable install under test, run as its console script.
EDITABLE = Path(sys.executable).parent / "imagefactory"
INSTALL_TIMEOUT = 300  # resolving and downloading the dependencies on a cold pip cache


@dataclass(frozen=True)
class Installed:
    source: Path  # the copy of the checkout the wheel was built from
    wheel: Path
    venv: Path
    workdir: Path  # outside the repository: a copy of the example catalog
    env: Mapping[str, str]

    @property
    def imagefactory(self) -> Path:
        return self.venv / "bin" / "imagefactory"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def copy_checkout(target: Path) -> None:
    """The checkout's tracked and new (not ignored) files, as a clean clone would have them."""
    listed = subprocess.run(
        [
            "git",
            "-C",
            str(REPO_ROOT),
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is left out
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    # Nothing of the running venv or the checkout may leak into the fresh install.
    env = {
        k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    }
    source, dist, venv, workdir = root / "source", root / "dist", root / "venv", root / "work"
    copy_checkout(source)
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, source],
        cwd=root,
        env=env,
        timeout=INSTALL_TIMEOUT,
    )
    (wheel,) = dist.glob("imagefactory-*.whl")
    run([sys.executable, "-m", "venv", venv], cwd=root, env=env)
    run(
        [venv / "bin" / "python", "-m", "pip", "install", "-q", wheel],
        cwd=root,
        env=env,
        timeout=INSTALL_TIMEOUT,
    )
    workdir.mkdir()
    shutil.copy2(REPO_ROOT / "imagefactory.yaml", workdir)
    shutil.copytree(REPO_ROOT / "images", workdir / "images")
    return Installed(source, wheel, venv, workdir, env)


def test_wheel_holds_the_package_files_and_nothing_else(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    dist_info = f"imagefactory-{imagefactory.__version__}.dist-info/"
    package = {
        p.relative_to(installed.source).as_posix()
        for p in (installed.source / "imagefactory").rglob("*")
        if p.is_file()
    }
    assert {n for n in names if not n.startswith(dist_info)} == package
    assert "imagefactory/py.typed" in package
    assert "imagefactory/templates/dockerfile/Dockerfile.j2" in package
    assert {n.split("/")[0] for n in package} == {"imagefactory"}  # no tests/, .venv/, images/


def test_wheel_metadata_requires_what_pyproject_declares(installed: Installed) -> None:
    """Requires-Dist is pyproject.toml's dependencies (python-on-whales is not among them: the
    Docker façade runs the Docker CLI), each extra marked with its name."""
    with zipfile.ZipFile(installed.wheel) as wheel:
        metadata = wheel.read(f"imagefactory-{imagefactory.__version__}.dist-info/METADATA")
    requires = email.parser.BytesParser().parsebytes(metadata).get_all("Requires-Dist") or []
    project = tomllib.loads((installed.source / "pyproject.toml").read_text())["project"]
    base = {str(Requirement(r)) for r in requires if Requirement(r).marker is None}
    assert base == {str(Requirement(r)) for r in project["dependencies"]}
    assert not [r for r in requires if Requirement(r).name == "python-on-whales"]
    extras = {str(Requirement(r).marker) for r in requires if Requirement(r).marker is not None}
    assert extras == {f'extra == "{name}"' for name in project["optional-dependencies"]}


def test_base_install_is_whole_without_ansible(installed: Installed) -> None:
    run([installed.python, "-m", "pip", "check"], cwd=installed.workdir, env=installed.env)
    probe = (
        "import importlib.util as u, imagefactory; "
        "print(imagefactory.__file__, [m for m in ('ansible', 'ansible_runner', "
        "'python_on_whales') if u.find_spec(m)])"
    )
    out = run([installed.python, "-c", probe], cwd=installed.workdir, env=installed.env).stdout
    location, _, ansible_found = out.strip().partition(" ")
    assert Path(location).is_relative_to(installed.venv), location
    assert ansible_found == "[]"


def test_version_matches_the_editable_install(installed: Installed) -> None:
    wheel = run(
        [installed.imagefactory, "--version"], cwd=installed.workdir, env=installed.env
    ).stdout
    editable = run([EDITABLE, "--version"], cwd=installed.workdir, env=installed.env).stdout
    assert wheel == editable == f"imagefactory {imagefactory.__version__}\n"


def test_render_writes_the_editable_installs_dockerfiles(installed: Installed) -> None:
    outputs = {}
    for name, cli in (("wheel", installed.imagefactory), ("editable", EDITABLE)):
        run([cli, "render", "--out", f"rendered-{name}"], cwd=installed.workdir, env=installed.env)
        out = installed.workdir / f"rendered-{name}"
        outputs[name] = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    dockerfiles = [text for p, text in outputs["wheel"].items() if p.name == "Dockerfile"]
    assert dockerfiles and all(b"\nFROM " in text for text in dockerfiles)
    assert outputs["wheel"] == outputs["editable"]


def test_plan_gives_the_editable_installs_content_hashes(installed: Installed) -> None:
    def hashes(cli: Path) -> dict[str, Any]:
        document = json.loads(
            run([cli, "plan", "--json"], cwd=installed.workdir, env=installed.env).stdout
        )
        return {entry["image"]: entry["content_hash"] for entry in document["plan"]}

    wheel = hashes(installed.imagefactory)
    assert wheel and wheel == hashes(EDITABLE)


def test_init_from_the_wheel_writes_a_catalog_that_validates(installed: Installed) -> None:
    """The starters ship in the wheel, their dotfiles too: init from the installed wheel
    writes every file of the llm starter, and the catalog validates with a current pipeline."""
    root = installed.workdir.parent / "init" / "cat"
    root.parent.mkdir()
    cli = installed.imagefactory
    run([cli, "init", str(root), "--template", "llm"], cwd=root.parent, env=installed.env)
    run([cli, "validate"], cwd=root, env=installed.env)
    run([cli, "ci", "generate", "--out", ".gitlab-ci.yml", "--check"], cwd=root, env=installed.env)
    starters = installed.source / "imagefactory" / "templates" / "starters"
    shipped = {
        p.relative_to(layer).as_posix().replace("dot-", ".")
        for layer in (starters / "minimal", starters / "llm")
        for p in layer.rglob("*")
        if p.is_file()
    }
    written = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert ".gitignore" in shipped and written == shipped | {".gitlab-ci.yml"}
