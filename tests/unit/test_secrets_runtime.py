"""Secrets stay secret while a run works (issue 13, hole 5): a child process gets an environment
built for it (no registry password or build secret it was not handed), and the files that hold
secrets live in one private per-run folder that a later run removes if a killed run left it."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from imagefactory import scratch, tools
from imagefactory.build.run import BuildOptions, BuildRun, _secret_files
from imagefactory.gitops.repo import settings_for_run
from imagefactory.registry.client import RegistryClient
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.models import BuildSecret

from .conftest import REPO, Edit
from .test_build_scheduling import Recorder

ENVIRONMENT = [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"]


def child_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a real child process of ``tools.run`` sees."""
    found: dict[str, str] = json.loads(tools.run(ENVIRONMENT, env=env).output)
    return found


@pytest.fixture
def run_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run folders go to a fresh folder standing in for /dev/shm; this run has none yet."""
    base = tmp_path / "shm"
    base.mkdir()
    monkeypatch.setattr(scratch, "SHM", base)
    monkeypatch.setattr(scratch, "_folder", None)
    yield base


def dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# --------------------------------------------------------------------------- child environment


def test_a_declared_secret_variable_reaches_only_the_child_it_is_handed_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_DECLARED_SECRET", "declared-" + "5b0d2e")
    monkeypatch.setenv("TEST_PLAIN_SETTING", "plain")
    tools.secret_names("TEST_DECLARED_SECRET")
    seen = child_environment()
    assert "TEST_DECLARED_SECRET" not in seen
    assert seen["TEST_PLAIN_SETTING"] == "plain"
    assert seen["PATH"] == os.environ["PATH"]
    handed = child_environment({"TEST_DECLARED_SECRET": os.environ["TEST_DECLARED_SECRET"]})
    assert handed["TEST_DECLARED_SECRET"] == "declared-5b0d2e"


def test_a_variable_holding_a_redacted_value_is_not_inherited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever it is called (a GitLab token, a copy of a password in another variable)."""
    value = "glpat-" + "3f9c77a1e4"
    monkeypatch.setenv("TEST_SOME_TOKEN", value)
    monkeypatch.setenv("TEST_SAME_TOKEN_AGAIN", value)
    tools.redact(value)
    seen = child_environment()
    assert value not in seen.values()
    assert {"TEST_SOME_TOKEN", "TEST_SAME_TOKEN_AGAIN"}.isdisjoint(seen)


def test_the_catalogs_build_secret_variables_reach_no_child(
    catalog_dir: Path, edit: Edit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Declared when the build starts: before its first child (git, docker) runs, and for
    every image, not only the one whose secrets are loaded at that moment."""
    edit(
        "images/app/rag-api/image.yaml",
        "\nversion:",
        "\nsecrets:\n  - id: index\n    env: TEST_BUILD_INDEX_TOKEN\nversion:",
    )
    monkeypatch.setenv("TEST_BUILD_INDEX_TOKEN", "index-token")
    BuildRun(load_catalog(catalog_dir), cast(RegistryClient, None), BuildOptions(), Recorder())
    assert "TEST_BUILD_INDEX_TOKEN" not in child_environment()


# --------------------------------------------------------------------------- the private folder


def test_secret_files_live_in_the_runs_private_folder(
    run_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SECRET_FILE_VALUE", "file-secret")
    secret = BuildSecret(id="tok", env="TEST_SECRET_FILE_VALUE")
    with _secret_files(tmp_path, [secret]) as files:
        path = files["tok"]
        assert path.read_text() == "file-secret"
        run = path.parent.parent
        assert run.parent == run_base
        assert run.name.startswith(f"imagefactory-run-{os.getpid()}-")
        assert stat.S_IMODE(run.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not path.parent.exists()


def test_a_killed_runs_folder_is_removed_by_the_next_run(run_base: Path, tmp_path: Path) -> None:
    pid = dead_pid()
    leftover = run_base / f"imagefactory-run-{pid}-k1ll3d"
    (leftover / "docker-x").mkdir(parents=True)
    (leftover / "docker-x" / "config.json").write_text('{"auths": {}}')
    running = run_base / f"imagefactory-run-{os.getppid()}-al1ve"  # our parent runs
    running.mkdir()
    others = [run_base / f"imagefactory-run-{pid}", run_base / "imagefactory-runner-cache"]
    for other in others:
        other.mkdir()
    with _secret_files(tmp_path, []):
        pass
    assert not leftover.exists()
    assert running.is_dir()
    assert all(other.is_dir() for other in others)


def test_without_a_writable_shm_the_folder_is_in_the_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scratch, "SHM", tmp_path / "no-shm")
    monkeypatch.setattr(scratch, "_folder", None)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assert scratch.run_folder().parent == tmp_path / "tmp"


def test_the_gitlab_token_reaches_no_child_of_a_gitops_run(
    catalog_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Declared when a GitOps command reads its settings: before the first ``git clone``, not
    only once the merge-request client has read the token."""
    shutil.copy(REPO / "gitops.yaml", catalog_dir / "gitops.yaml")
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-" + "9e1d04c2b7")
    settings_for_run(load_catalog(catalog_dir))
    assert "GITLAB_TOKEN" not in child_environment()
