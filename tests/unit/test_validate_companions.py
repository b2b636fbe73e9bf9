"""``validate`` also loads the files other commands read: gitops.yaml, and packer.yaml and
structure-tests/*.yaml in an image folder; their problems come with the catalog's, in one run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .conftest import REPO, Edit
from .test_cli import line_of, run

GITOPS = "gitops.yaml"
PACKER = "images/runtime/llm/packer.yaml"  # the folder of two variants, cpu and cuda
CST = "images/base/debian12/structure-tests/base.yaml"
NEW_CST = "images/app/rag-api/structure-tests/api.yaml"
SECOND_CST = "images/base/debian12/structure-tests/zz-more.yaml"  # after base.yaml, same folder


@pytest.fixture
def full_catalog(catalog_dir: Path) -> Path:
    """The example catalog with its gitops.yaml and a valid packer.yaml (structure test included)."""
    shutil.copy(REPO / GITOPS, catalog_dir / GITOPS)
    (catalog_dir / PACKER).write_text("targets: []\n")
    return catalog_dir


@pytest.fixture
def broken(full_catalog: Path, edit: Edit) -> Path:
    """One mistake in each companion file, and two more structure-test files with a bad version
    (one in the folder whose first file is already broken: every file is read)."""
    edit(GITOPS, "replicas: 2", "replica: 2")
    (full_catalog / PACKER).write_text("targets: [vm, iso]\n")
    edit(CST, "shouldExist: false", "shouldExist: false\n    mustExist: true")
    path = full_catalog / NEW_CST
    path.parent.mkdir()
    path.write_text('schemaVersion: "3.0.0"\n')
    (full_catalog / SECOND_CST).write_text('schemaVersion: "3.0.0"\n')
    return full_catalog.resolve()


def test_a_catalog_with_valid_companion_files_is_valid(full_catalog: Path) -> None:
    result = run("-C", full_catalog, "validate")
    assert result.exit_code == 0, result.output
    assert "catalog 'bank-ai-lab' is valid: 6 images from 5 image files" in result.stdout
    assert result.stderr == ""


def test_companion_files_are_optional(catalog_dir: Path) -> None:
    shutil.rmtree(catalog_dir / "images/base/debian12/structure-tests")
    result = run("-C", catalog_dir, "validate", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True


def test_every_companion_problem_is_reported_in_one_run(broken: Path) -> None:
    result = run("-C", broken, "validate")
    assert result.exit_code == 1
    assert "the catalog has 5 errors" in result.stderr
    gitops, cst = broken / GITOPS, broken / CST
    assert (
        f"{gitops}:{line_of(gitops, '    replica:')}: environments.preprod.replica: "
        "unknown key 'replica'"
    ) in result.stderr
    assert "hint: did you mean 'replicas'?" in result.stderr
    assert f"{broken / PACKER}:1: targets[1]: invalid Packer settings: input should be" in (
        result.stderr
    )
    assert "hint: see docs/packer.md" in result.stderr
    assert f"{cst}:{line_of(cst, '    mustExist:')}: fileExistenceTests[2].mustExist" in (
        result.stderr
    )
    assert f"{broken / NEW_CST}:1: schemaVersion:" in result.stderr
    assert f"{broken / SECOND_CST}:1: schemaVersion:" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_companion_problems_in_json(broken: Path) -> None:
    result = run("-C", broken, "validate", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert document["ok"] is False
    assert "5 errors" in document["error"]
    issues = {i["file"]: i for i in document["issues"]}
    assert sorted(issues) == sorted(
        str(broken / f) for f in (GITOPS, PACKER, CST, NEW_CST, SECOND_CST)
    )
    gitops = issues[str(broken / GITOPS)]
    assert gitops["key"] == "environments.preprod.replica"
    assert gitops["line"] == line_of(broken / GITOPS, "    replica:")
    packer = issues[str(broken / PACKER)]
    assert (packer["key"], packer["line"]) == ("targets[1]", 1)
    assert packer["message"].startswith("invalid Packer settings: input should be 'vm'")
    assert issues[str(broken / CST)]["key"] == "fileExistenceTests[2].mustExist"
    assert issues[str(broken / NEW_CST)]["key"] == "schemaVersion"
    assert "Traceback" not in result.output


def test_gitops_environments_are_checked_against_the_project(full_catalog: Path) -> None:
    (full_catalog / GITOPS).write_text(
        "repo_url: .host/gitops.git\nenvironments:\n  qa:\n    namespace: lab-qa\n"
    )
    result = run("-C", full_catalog, "validate")
    assert result.exit_code == 1
    assert "environments.qa: 'qa' is not an environment of the project" in result.stderr


def test_packer_yaml_that_is_not_yaml(full_catalog: Path) -> None:
    (full_catalog / PACKER).write_text("targets: [vm\n")
    result = run("-C", full_catalog, "validate")
    assert result.exit_code == 1
    assert f"{full_catalog.resolve() / PACKER}:2: invalid YAML: " in result.stderr
    assert "Traceback" not in result.output
