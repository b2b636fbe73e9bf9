"""render terraform: the catalog as Terraform variables — one ECR repository per image name."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from semver import Version
from typer.testing import CliRunner, Result

import imagefactory.cli  # noqa: F401  (registers the commands)
from imagefactory.build.publish import STAGING_TAG_PREFIX
from imagefactory.cli import app
from imagefactory.errors import UserError
from imagefactory.project.naming import CONTENT_TAG_PREFIX
from imagefactory.registry.client import RegistryClient
from imagefactory.release.tags import TagChange, plan_changes
from imagefactory.release.versioning import plan_tags, tag_versions
from imagefactory.render.terraform import (
    TFVARS_FILE,
    stale_tfvars,
    terraform_vars,
    write_tfvars,
)
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.models import FIRST_ENVIRONMENT_RETENTION, Registry

from .conftest import REPO, Edit, without_shell_less

GOLDEN = Path(__file__).parent / "golden" / "terraform"
ENVIRONMENTS = ["dev", "preprod", "prod"]
SHELL_LESS = "app/rag-api-distroless"  # a leaf: built on app/rag-api
JOB_IMAGE = "tools/ci"  # the other leaf: built on base/debian12 (ci.job_image)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_example_tfvars_match_golden(
    catalog_dir: Path, tmp_path: Path, golden: Callable[[Path, str], None]
) -> None:
    written = write_tfvars(load_catalog(catalog_dir), tmp_path / "out")
    assert [w.environment for w in written] == ENVIRONMENTS
    for w in written:
        assert w.path == tmp_path / "out" / w.environment / TFVARS_FILE
        assert w.repositories == 5
        golden(GOLDEN / w.environment / TFVARS_FILE, w.path.read_text())


def test_one_repository_per_image_name_in_each_environment_namespace(catalog_dir: Path) -> None:
    documents = terraform_vars(load_catalog(catalog_dir))
    assert list(documents) == ENVIRONMENTS
    for environment, document in documents.items():
        assert document["environment"] == environment
        assert document["project"] == "bank-ai-lab"
        # runtime/llm has two variants (cpu, cuda): they share one repository
        assert sorted(document["repositories"]) == [
            f"bank-ai-lab/{environment}/{name}"
            for name in [
                "app/rag-api",
                "app/rag-api-distroless",
                "base/debian12",
                "runtime/llm",
                "tools/ci",
            ]
        ]
        assert {r["image"] for r in document["repositories"].values()} == {
            "app/rag-api",
            "app/rag-api-distroless",
            "base/debian12",
            "runtime/llm",
            "tools/ci",
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
            "image": "app/chat",
            "expire_builds": environment == "dev",  # a leaf, where retention deletes
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
    build's content tag (kept, or expired after the retention's days in a leaf's repository)
    and its staging tag (expired after days)."""
    assert module_default("build_tag_prefix") == CONTENT_TAG_PREFIX
    assert module_default("staging_tag_prefix") == STAGING_TAG_PREFIX


def expiring(document: dict[str, Any]) -> set[str]:
    """The images whose repositories expire their unreleased builds."""
    return {r["image"] for r in document["repositories"].values() if r["expire_builds"]}


def test_only_leaf_images_of_an_environment_that_deletes_expire_their_builds(
    catalog_dir: Path,
) -> None:
    """The example sets no retention: dev, the first environment, gets the default; preprod and
    prod delete nothing. base/debian12, runtime/llm and app/rag-api are parents (runtime/llm:cpu
    is app/rag-api's, app/rag-api the shell-less one's): ECR cannot tell which of their builds a
    child used, so it expires none. The leaves are the shell-less app and the job image."""
    documents = terraform_vars(load_catalog(catalog_dir))
    default = FIRST_ENVIRONMENT_RETENTION
    assert documents["dev"]["retention"] == {
        "keep_versions": default.keep_versions,
        "keep_days": default.keep_days,
        "hold_days": default.hold_days,
        "build_expiry_days": max(default.keep_days, default.hold_days),
    }
    assert expiring(documents["dev"]) == {SHELL_LESS, JOB_IMAGE}
    for environment in ["preprod", "prod"]:
        assert documents[environment]["retention"] is None
        assert expiring(documents[environment]) == set()


def test_an_environment_retention_sets_the_build_expiry_to_the_larger_of_its_days(
    catalog_dir: Path, edit: Edit
) -> None:
    edit(
        "imagefactory.yaml",
        "    registries: [preprod]\n",
        "    registries: [preprod]\n"
        "    retention: {keep_versions: 3, keep_days: 45, hold_days: 20}\n",
    )
    edit(
        "imagefactory.yaml",
        "    registries: [prod]\n",
        "    registries: [prod]\n    retention: {keep_days: 0, hold_days: 0}\n",
    )
    documents = terraform_vars(load_catalog(catalog_dir))
    assert documents["preprod"]["retention"] == {
        "keep_versions": 3,
        "keep_days": 45,
        "hold_days": 20,
        "build_expiry_days": 45,  # keep_days is the larger here
    }
    assert expiring(documents["preprod"]) == {SHELL_LESS, JOB_IMAGE}
    # ECR's least expiry is 1 day: later than gc's, never earlier
    assert documents["prod"]["retention"]["build_expiry_days"] == 1
    assert expiring(documents["prod"]) == {SHELL_LESS, JOB_IMAGE}


def test_delete_false_expires_no_build(catalog_dir: Path, edit: Edit) -> None:
    edit(
        "imagefactory.yaml",
        "    registries: [dev]\n",
        "    registries: [dev]\n    retention: {keep_days: 5, delete: false}\n",
    )
    document = terraform_vars(load_catalog(catalog_dir))["dev"]
    assert document["retention"] is None
    assert expiring(document) == set()


def test_an_image_built_on_a_leaf_makes_it_a_parent(catalog_dir: Path) -> None:
    without_shell_less(catalog_dir)  # app/rag-api is a leaf then
    folder = catalog_dir / "images" / "app" / "rag-worker"
    folder.mkdir(parents=True)
    (folder / "image.yaml").write_text("name: app/rag-worker\nversion: 0.1.0\nfrom: app/rag-api\n")
    expired = expiring(terraform_vars(load_catalog(catalog_dir))["dev"])
    assert expired == {"app/rag-worker", JOB_IMAGE}


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
        ("dev", 5),
        ("preprod", 5),
        ("prod", 5),
    ]
    out = catalog_dir / "terraform" / "environments"
    assert (out / "dev" / TFVARS_FILE).is_file()
    assert run("-C", catalog_dir, "render", "terraform", "--check").exit_code == 0
    without_shell_less(catalog_dir)  # its parent is renamed next
    edit("images/app/rag-api/image.yaml", "name: app/rag-api", "name: app/rag-service")
    edit("images/app/rag-api/image.lock", "'app/rag-api':", "'app/rag-service':")  # its lock too
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


def module_resource_setting(resource: str, setting: str) -> str:
    """A string setting of a resource of terraform/modules/ecr-repository/main.tf."""
    text = (REPO / "terraform" / "modules" / "ecr-repository" / "main.tf").read_text()
    block = re.search(
        rf'^resource "{resource}" "this" {{\n(.*?)^}}', text, re.MULTILINE | re.DOTALL
    )
    assert block is not None, resource
    value = re.search(rf'^  {setting}\s*=\s*"([^"]*)"$', block.group(1), re.MULTILINE)
    assert value is not None, setting
    return value.group(1)


def module_list_default(variable: str) -> list[str]:
    """The default of a list(string) variable of terraform/modules/ecr-repository."""
    text = (REPO / "terraform" / "modules" / "ecr-repository" / "variables.tf").read_text()
    block = re.search(rf'^variable "{variable}" {{\n(.*?)^}}', text, re.MULTILINE | re.DOTALL)
    assert block is not None, variable
    default = re.search(r"^  default\s*=\s*(\[.*\])$", block.group(1), re.MULTILINE)
    assert default is not None, variable
    values = json.loads(default.group(1))  # a list of HCL strings is a JSON list
    assert isinstance(values, list)
    return [str(v) for v in values]


class EcrRefused(Exception):
    """ECR's ImageTagAlreadyExistsException."""


@dataclass(frozen=True)
class EcrRepository(RegistryClient):
    """One ECR repository, as the registry client sees it: tag => digest. ``put`` follows ECR's
    rule for PutImage: in an IMMUTABLE repository a tag that exists cannot be written again
    (ImageTagAlreadyExistsException); in a MUTABLE one a put re-points the tag."""

    mutability: str = "MUTABLE"
    held: dict[str, str] = field(default_factory=dict)  # tag => digest

    def digest(self, registry: Registry, reference: str) -> str | None:
        return self.held.get(reference.rpartition(":")[2])

    def put(self, tag: str, digest: str) -> None:
        if self.mutability == "IMMUTABLE" and tag in self.held:
            raise EcrRefused(f"tag {tag} already exists ({self.held[tag]})")
        self.held[tag] = digest

    def images(self) -> dict[str, set[str]]:
        """digest => its tags"""
        found: dict[str, set[str]] = {}
        for tag, digest in self.held.items():
            found.setdefault(digest, set()).add(tag)
        return found


def release(
    ecr: EcrRepository, registry: Registry, version: str, digest: str, git_sha: str
) -> list[TagChange]:
    """What a push of ``version`` writes (release/push.py): its tags planned by plan_tags, each
    checked by plan_changes (which refuses to move X.Y.Z or git-), then written where a change
    is needed."""
    plan = plan_tags(Version.parse(version), "", tag_versions(ecr.held, "", []), git_sha)
    changes = plan_changes(
        ecr,
        ("dev", registry),
        "bank-ai-lab/dev/app/rag-api",
        (*plan.immutable, *plan.aliases),
        plan.immutable,
        digest,
        existing=set(ecr.held),
        hint="bump the version",
    )
    for change in changes:
        if change.action != "keep":
            ecr.put(change.tag, digest)
    return changes


def test_a_second_release_moves_its_aliases_in_the_module_s_repositories(
    catalog_dir: Path,
) -> None:
    """ECR refuses to re-point a tag of an IMMUTABLE repository, and a release moves X.Y, X and
    latest: the module's repositories are MUTABLE (AWS provider 5.x has no tag exclusions), and
    imagefactory keeps X.Y.Z and git- tags immutable itself. A released image that lost its
    aliases keeps tags the lifecycle policy protects."""
    registry = load_catalog(catalog_dir).project.registries["dev"]
    mutability = module_resource_setting("aws_ecr_repository", "image_tag_mutability")
    assert mutability == "MUTABLE"
    ecr = EcrRepository(mutability=mutability)
    release(ecr, registry, "1.0.0", "sha256:aaaa", "a1b2c3d4e5")
    second = release(ecr, registry, "1.0.1", "sha256:bbbb", "f6e5d4c3b2")
    assert {c.tag: c.action for c in second if c.action == "move"} == {
        "1.0": "move",
        "1": "move",
        "latest": "move",
    }
    assert ecr.images() == {
        "sha256:aaaa": {"1.0.0", "git-a1b2c3d4"},
        "sha256:bbbb": {"1.0.1", "git-f6e5d4c3", "1.0", "1", "latest"},
    }
    protected = module_list_default("promoted_tag_patterns")
    for tags in ecr.images().values():
        assert any(fnmatch.fnmatchcase(t, p) for t in tags for p in protected), tags
    # the registry would re-point 1.0.0 now: imagefactory refuses before it writes
    with pytest.raises(UserError, match=r"1\.0\.0 already exists with another digest"):
        release(ecr, registry, "1.0.0", "sha256:cccc", "0a0b0c0d0e")
    assert ecr.held["1.0.0"] == "sha256:aaaa"
    # the repositories as they were (IMMUTABLE): the second release fails at its first alias
    immutable = EcrRepository(mutability="IMMUTABLE")
    release(immutable, registry, "1.0.0", "sha256:aaaa", "a1b2c3d4e5")
    with pytest.raises(EcrRefused, match=r"tag 1\.0 already exists"):
        release(immutable, registry, "1.0.1", "sha256:bbbb", "f6e5d4c3b2")
