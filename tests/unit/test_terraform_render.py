"""render terraform: the catalog as Terraform variables — one ECR repository per image name."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import imagefactory.cli  # noqa: F401  (registers the commands)
from imagefactory.build.publish import STAGING_TAG_PREFIX
from imagefactory.cli import app
from imagefactory.errors import UserError
from imagefactory.project.naming import CONTENT_TAG_PREFIX
from imagefactory.render.terraform import (
    TFVARS_FILE,
    stale_tfvars,
    terraform_vars,
    write_tfvars,
)
from imagefactory.spec.loader import load_catalog

from .conftest import REPO, Edit

GOLDEN = Path(__file__).parent / "golden" / "terraform"
ENVIRONMENTS = ["dev", "preprod", "prod"]


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_example_tfvars_match_golden(
    catalog_dir: Path, tmp_path: Path, golden: Callable[[Path, str], None]
) -> None:
    written = write_tfvars(load_catalog(catalog_dir), tmp_path / "out")
    assert [w.environment for w in written] == ENVIRONMENTS
    for w in written:
        assert w.path == tmp_path / "out" / w.environment / TFVARS_FILE
        assert w.repositories == 3
        golden(GOLDEN / w.environment / TFVARS_FILE, w.path.read_text())


def test_one_repository_per_image_name_in_each_environment_namespace(catalog_dir: Path) -> None:
    documents = terraform_vars(load_catalog(catalog_dir))
    assert list(documents) == ENVIRONMENTS
    for environment, document in documents.items():
        assert document["environment"] == environment
        assert document["project"] == "bank-ai-lab"
        # runtime/llm has two variants (cpu, cuda): they share one repository
        assert document["repositories"] == {
            f"bank-ai-lab/{environment}/{name}": {"image": name}
            for name in ["app/rag-api", "base/debian12", "runtime/llm"]
        }


def test_adding_an_image_to_the_catalog_adds_its_repository(
    catalog_dir: Path, tmp_path: Path
) -> None:
    before = terraform_vars(load_catalog(catalog_dir))
    folder = catalog_dir / "images" / "app" / "chat"
    folder.mkdir(parents=True)
    (folder / "image.yaml").write_text("name: app/chat\nversion: 0.1.0\nfrom: runtime/llm:cuda\n")
    after = terraform_vars(load_catalog(catalog_dir))
    for environment in ENVIRONMENTS:
        added = set(after[environment]["repositories"]) - set(before[environment]["repositories"])
        assert added == {f"bank-ai-lab/{environment}/app/chat"}
        assert after[environment]["repositories"][f"bank-ai-lab/{environment}/app/chat"] == {
            "image": "app/chat"
        }


def test_output_is_deterministic_and_sorted(catalog_dir: Path, tmp_path: Path) -> None:
    catalog = load_catalog(catalog_dir)
    write_tfvars(catalog, tmp_path / "a")
    write_tfvars(catalog, tmp_path / "b")
    for environment in ENVIRONMENTS:
        first = (tmp_path / "a" / environment / TFVARS_FILE).read_bytes()
        assert first == (tmp_path / "b" / environment / TFVARS_FILE).read_bytes()
        assert first.endswith(b"}\n")
        assert list(json.loads(first)["repositories"]) == sorted(json.loads(first)["repositories"])
    assert not list((tmp_path / "a" / "dev").glob(".*.tmp"))  # the atomic write left nothing


def test_the_committed_tfvars_are_rendered_from_the_example_catalog() -> None:
    assert stale_tfvars(load_catalog(REPO), REPO / "terraform" / "environments") == {}, (
        "run 'imagefactory render terraform' and commit terraform/environments"
    )


def module_default(variable: str) -> str:
    """The default of a string variable of terraform/modules/ecr-repository."""
    text = (REPO / "terraform" / "modules" / "ecr-repository" / "variables.tf").read_text()
    block = re.search(rf'^variable "{variable}" {{\n(.*?)^}}', text, re.MULTILINE | re.DOTALL)
    assert block is not None, variable
    default = re.search(r'^  default\s*=\s*"([^"]*)"$', block.group(1), re.MULTILINE)
    assert default is not None, variable
    return default.group(1)


def test_the_lifecycle_policy_selects_the_tags_builds_push() -> None:
    """The ECR lifecycle rules select images by the prefixes imagefactory tags them with: a
    build's content tag (kept up to a count) and its staging tag (expired after days)."""
    assert module_default("build_tag_prefix") == CONTENT_TAG_PREFIX
    assert module_default("staging_tag_prefix") == STAGING_TAG_PREFIX


def test_a_name_too_long_for_ecr_is_refused_before_anything_is_written(
    catalog_dir: Path, edit: Edit, tmp_path: Path
) -> None:
    long_namespace = "bank-ai-lab/" + "/".join(["prod"] + ["x" * 60] * 4)
    edit("imagefactory.yaml", "namespace: bank-ai-lab/prod", f"namespace: {long_namespace}")
    with pytest.raises(UserError) as raised:
        terraform_vars(load_catalog(catalog_dir))
    message = str(raised.value)
    assert f"repository '{long_namespace}/app/rag-api'" in message
    assert "ECR accepts 2-256" in message
    assert "prod:" in message and "dev:" not in message
    result = run("-C", catalog_dir, "render", "terraform", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "ECR accepts 2-256" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()  # not even the valid environments were written


def test_a_project_without_environments_is_a_clear_error(catalog_dir: Path) -> None:
    text = (catalog_dir / "imagefactory.yaml").read_text()
    start, end = text.index("environments:\n"), text.index("build:\n")
    (catalog_dir / "imagefactory.yaml").write_text(text[:start] + text[end:])
    with pytest.raises(UserError, match="defines no environments"):
        terraform_vars(load_catalog(catalog_dir))


def test_cli_render_terraform_writes_checks_and_reports_json(catalog_dir: Path, edit: Edit) -> None:
    result = run("-C", catalog_dir, "render", "terraform", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(e["environment"], e["repositories"]) for e in report["terraform"]] == [
        ("dev", 3),
        ("preprod", 3),
        ("prod", 3),
    ]
    out = catalog_dir / "terraform" / "environments"
    assert (out / "dev" / TFVARS_FILE).is_file()
    assert run("-C", catalog_dir, "render", "terraform", "--check").exit_code == 0
    edit("images/app/rag-api/image.yaml", "name: app/rag-api", "name: app/rag-service")
    stale = run("-C", catalog_dir, "render", "terraform", "--check", "--json")
    assert stale.exit_code == 1
    report = json.loads(stale.stdout)  # one document, the error in it
    assert report["ok"] is False
    assert report["stale"] == [f"{environment}/{TFVARS_FILE}" for environment in ENVIRONMENTS]
    assert "render terraform" in report["hint"]


def test_cli_render_terraform_takes_no_image_names(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "render", "terraform", "app/rag-api")
    assert result.exit_code == 2
    assert "takes no image names" in result.output


def test_cli_render_dockerfile_stays_the_default_and_can_be_named(
    pinned_catalog_dir: Path, tmp_path: Path
) -> None:
    named = run("-C", pinned_catalog_dir, "render", "dockerfile", "app/rag-api", "-o", tmp_path)
    assert named.exit_code == 0, named.output
    assert (tmp_path / "app_rag-api" / "Dockerfile").is_file()
    default = run("-C", pinned_catalog_dir, "render", "app/rag-api")
    assert default.exit_code == 0, default.output
    assert (pinned_catalog_dir / "rendered" / "app_rag-api" / "Dockerfile").is_file()
