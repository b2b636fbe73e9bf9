"""What uses Docker uses the façade, without a daemon: provisioning drives the engine's CLI with
its DOCKER_CONFIG, testinfra (in process and in the custom-test child) runs the engine's CLI
rather than whatever ``docker`` is first on PATH, and a playbook without Ansible installed is one
clear error naming the extra."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from imagefactory.build import provision as provisioning
from imagefactory.build.docker import Engine
from imagefactory.build.provision import PlaybookRun, ansible_programs, provision
from imagefactory.errors import UserError
from imagefactory.imagetest.checks import container_checks
from imagefactory.imagetest.container import Container
from imagefactory.imagetest.custom import run_custom_tests
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.models import FileCheck, ImageTests, UserCheck

from .conftest import REPO, Edit
from .test_engine import FakeDocker, fake_docker

REF = "runtime/llm:cpu"


@pytest.fixture
def recording(tmp_path: Path) -> FakeDocker:
    return fake_docker(tmp_path / "docker")


@pytest.fixture
def engine(recording: FakeDocker, tmp_path: Path) -> Engine:
    return Engine(tmp_path / "config", cli=str(recording.cli))


@pytest.fixture
def on_path_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    """Another ``docker`` first on PATH (as /usr/local/bin's is here): it must not be used."""
    elsewhere = fake_docker(tmp_path / "elsewhere")
    (elsewhere.cli.parent / "docker").symlink_to(elsewhere.cli)
    monkeypatch.setenv("PATH", f"{elsewhere.cli.parent}{os.pathsep}{os.environ['PATH']}")
    return elsewhere


@pytest.fixture
def playbook_catalog(catalog_dir: Path, edit: Edit) -> Catalog:
    shutil.copytree(REPO / "ansible", catalog_dir / "ansible")
    edit(
        "images/runtime/llm/image.yaml",
        "user: app\n",
        "user: app\nplaybooks: [ansible/runtime.yml]\n",
    )
    return load_catalog(catalog_dir)


def test_provisioning_drives_the_engines_cli_with_its_config(
    playbook_catalog: Catalog,
    engine: Engine,
    recording: FakeDocker,
    on_path_elsewhere: FakeDocker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    applied: list[tuple[str, Engine | None]] = []

    def run_playbook(
        catalog: Catalog, playbook: Path, container: str, **kwargs: object
    ) -> PlaybookRun:
        engine = kwargs["engine"]
        assert engine is None or isinstance(engine, Engine)
        applied.append((container, engine))
        return PlaybookRun(playbook.name, 3, 0, 0, 0)

    monkeypatch.setattr(provisioning, "run_playbook", run_playbook)
    image = playbook_catalog.images[REF]
    runs = provision(
        playbook_catalog, image, "example/base:1", "example/llm:1", "sha256:x", None, engine=engine
    )
    assert runs == [PlaybookRun("runtime.yml", 3, 0, 0, 0)]
    calls = recording.calls()
    container = calls[0][1][3]
    assert applied == [(container, engine), (container, engine)]  # applied, then again
    assert {config for config, _ in calls} == {str(engine.config_dir)}
    assert [args[0] for _, args in calls] == ["run", "commit", "build", "rmi", "rm"]
    assert calls[0][1][-3:] == ["sleep", "example/base:1", "infinity"]
    assert calls[2][1] == ["build", "--quiet", "--tag", "example/llm:1", "-"]
    assert calls[-1][1] == ["rm", "--force", container]
    assert on_path_elsewhere.calls() == []


def test_a_playbook_without_ansible_installed_names_the_extra(
    playbook_catalog: Catalog,
    engine: Engine,
    recording: FakeDocker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No ansible-runner, no ansible-playbook, no community.docker: one UserError saying how to
    install them, before any container starts."""
    bare = tmp_path / "bare-venv" / "bin"
    bare.mkdir(parents=True)
    monkeypatch.setattr(sys, "executable", str(bare / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setattr(sys, "path", [str(tmp_path / "site-packages")])
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(tmp_path / "collections"))
    image = playbook_catalog.images[REF]
    with pytest.raises(UserError) as caught:
        provision(
            playbook_catalog,
            image,
            "example/base:1",
            "example/llm:1",
            "sha256:x",
            None,
            engine=engine,
        )
    assert str(caught.value).startswith(
        "provisioning with Ansible playbooks needs ansible-runner, ansible-playbook, "
        "the community.docker collection, which are not installed"
    )
    assert (
        caught.value.hint
        == "install imagefactory's ansible extra: pip install 'imagefactory[ansible]'"
    )
    assert recording.calls() == []

    for program in ("ansible-runner", "ansible-playbook"):  # the programs alone are not enough
        (bare / program).write_text("#!/bin/sh\n")
        (bare / program).chmod(0o755)
    with pytest.raises(UserError, match=r"needs the community\.docker collection, which is not"):
        ansible_programs("ansible-playbook")
    (tmp_path / "collections" / "ansible_collections" / "community" / "docker").mkdir(parents=True)
    assert ansible_programs("ansible-runner", "ansible-playbook") == [
        str(bare / "ansible-runner"),
        str(bare / "ansible-playbook"),
    ]


def test_testinfra_checks_run_through_the_engine(
    engine: Engine, recording: FakeDocker, on_path_elsewhere: FakeDocker, tmp_path: Path
) -> None:
    """The fake engine's ``exec`` runs here, so a file of this machine passes its checks."""
    marker = tmp_path / "marker.txt"
    marker.write_text("hello from the container\n")
    tests = ImageTests(
        files=[FileCheck(path=str(marker), type="file", contains="hello from")],
        users=[UserCheck(name="root", uid=0)],
    )
    container = Container("imagefactory-test-x", engine)
    results = list(container_checks(tests, container, "root", "/opt/venv"))
    assert [(r.name, r.passed, r.actual) for r in results] == [
        (str(marker), True, ""),
        ("root", True, ""),
    ]
    calls = recording.calls()
    assert calls and all(
        args[:4] == ["exec", "imagefactory-test-x", "/bin/sh", "-c"] for _, args in calls
    )
    assert {config for config, _ in calls} == {str(engine.config_dir)}
    assert on_path_elsewhere.calls() == []


def test_custom_tests_run_the_engines_cli_with_its_config(
    engine: Engine, recording: FakeDocker, on_path_elsewhere: FakeDocker, tmp_path: Path
) -> None:
    folder = tmp_path / "image"
    (folder / "tests").mkdir(parents=True)
    (folder / "tests" / "test_custom.py").write_text(
        "import os\n\n\n"
        "def test_the_host_answers(host):\n"
        "    assert host.run('echo hello').stdout.strip() == 'hello'\n"
        f"    assert os.environ['DOCKER_CONFIG'] == {str(engine.config_dir)!r}\n"
    )
    results = run_custom_tests(folder, Container("imagefactory-test-x", engine))
    assert [(r.name, r.passed) for r in results] == [
        ("test_custom::test_the_host_answers", True)
    ], results
    calls = recording.calls()
    assert [args for _, args in calls] == [
        ["exec", "imagefactory-test-x", "/bin/sh", "-c", "echo hello"]
    ]
    assert on_path_elsewhere.calls() == []


def test_file_content_keeps_its_last_newline(engine: Engine, tmp_path: Path) -> None:
    """Read through the engine, a file's content is the file exactly: ``ends\\Z`` (Go's ``ends$``
    in a structure test) does not match ``ends\\n``, as with testinfra's own backend."""
    marker = tmp_path / "marker.txt"
    marker.write_text("it ends\n")
    tests = ImageTests(
        files=[
            FileCheck(path=str(marker), contains=r"it ends\n\Z"),
            FileCheck(path=str(marker), contains=r"it ends\Z"),
        ]
    )
    results = list(container_checks(tests, Container("imagefactory-test-x", engine), "root", ""))
    assert [r.passed for r in results] == [True, False]
