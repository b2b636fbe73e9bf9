"""terraform/: fmt and validate for every environment; apply and destroy against moto's server.

Needs ``terraform`` and the AWS provider in a local plugin directory (``/opt/tf-plugins``, or
``$IMAGEFACTORY_TF_PLUGIN_DIR``): nothing is downloaded. The AWS API is moto's server, started
here on a free 127.0.0.1 port and stopped at the end; credentials are fake. No Docker needed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import semver
from typer.testing import CliRunner

import imagefactory.cli  # noqa: F401  (registers the commands)
from imagefactory.cli import app
from imagefactory.release.versioning import plan_tags, tag_versions
from imagefactory.render.terraform import TFVARS_FILE

from .helpers.services import REPO_ROOT, run

pytestmark = pytest.mark.integration

ENVIRONMENTS = ["dev", "preprod", "prod"]
PLUGIN_DIR = Path(os.environ.get("IMAGEFACTORY_TF_PLUGIN_DIR") or "/opt/tf-plugins")
REGION = "eu-west-1"
HINT = (
    "install terraform (>= 1.5) and put the hashicorp/aws 5.x provider in a local plugin "
    "directory (default /opt/tf-plugins, else set IMAGEFACTORY_TF_PLUGIN_DIR)"
)


@pytest.fixture(scope="module")
def terraform() -> str:
    path = shutil.which("terraform")
    if path is None or not (PLUGIN_DIR / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        pytest.fail(f"terraform or its AWS provider is missing: {HINT}")
    return path


def tf_env() -> dict[str, str]:
    """Hermetic: no user CLI config, no update check, fake credentials, no AWS profile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    env.update(
        TF_CLI_CONFIG_FILE=os.devnull,
        TF_IN_AUTOMATION="1",
        CHECKPOINT_DISABLE="1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def tf(
    terraform: str, folder: Path, *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return run(
        [terraform, f"-chdir={folder}", *args, "-no-color"],
        env=tf_env(),
        check=check,
        timeout=timeout,
    )


def init(terraform: str, folder: Path, *extra: str) -> None:
    tf(terraform, folder, "init", "-input=false", f"-plugin-dir={PLUGIN_DIR}", *extra)


#: dev's retention in the catalog the tree is rendered from: ECR expires a leaf's unreleased
#: builds max(keep_days, hold_days) days after their push
DEV_RETENTION = "    retention: {keep_versions: 5, keep_days: 14, hold_days: 60}\n"
BUILD_EXPIRY_DAYS = 60


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of terraform/ with tfvars freshly rendered by the CLI from the example catalog,
    dev's retention set (DEV_RETENTION)."""
    root = tmp_path_factory.mktemp("tf")
    copy = root / "terraform"
    shutil.copytree(
        REPO_ROOT / "terraform",
        copy,
        ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl"),
    )
    catalog = root / "catalog"
    shutil.copytree(REPO_ROOT / "images", catalog / "images")
    project = (REPO_ROOT / "imagefactory.yaml").read_text()
    dev = "    registries: [dev]\n"
    assert dev in project
    (catalog / "imagefactory.yaml").write_text(project.replace(dev, dev + DEV_RETENTION, 1))
    out = copy / "environments"
    result = CliRunner().invoke(app, ["-C", str(catalog), "render", "terraform", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return copy


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's AWS API on a free loopback port, for this module only."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MOTO_PORT": str(port)},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto's server did not start on {url}:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def ecr_client(url: str) -> Any:
    return boto3.client(
        "ecr",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


MOTO_PROVIDER = """provider "aws" {{
  region                      = "{region}"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true

  endpoints {{
    ecr = "{url}"
    sts = "{url}"
  }}
}}
"""


@pytest.fixture(scope="module")
def dev(terraform: str, tree: Path, moto_server: str) -> Path:
    """The dev root configuration, initialised from the plugin directory, aimed at moto."""
    folder = tree / "environments" / "dev"
    # An override file (Terraform merges *_override.tf over the provider block) keeps the
    # committed configuration free of anything test-only.
    (folder / "moto_override.tf").write_text(MOTO_PROVIDER.format(region=REGION, url=moto_server))
    init(terraform, folder)
    return folder


def test_terraform_files_are_formatted(terraform: str) -> None:
    result = tf(
        terraform, REPO_ROOT, "fmt", "-check", "-recursive", "-diff", "terraform", check=False
    )
    assert result.returncode == 0, f"run 'terraform fmt -recursive terraform':\n{result.stdout}"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environment_validates(terraform: str, tree: Path, environment: str) -> None:
    folder = tree / "environments" / environment
    assert json.loads((folder / TFVARS_FILE).read_text())["environment"] == environment
    init(terraform, folder, "-backend=false")
    result = tf(terraform, folder, "validate")
    assert "The configuration is valid" in result.stdout


def expected_policy(
    build_expiry_days: int | None, staging_days: int, untagged_days: int
) -> dict[str, Any]:
    """The rules: ``build_expiry_days`` None where content-* builds are kept (gc decides)."""

    def protect(priority: int, pattern: str) -> dict[str, Any]:
        return {
            "rulePriority": priority,
            "description": f"Keep released images (tag {pattern})",
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": [pattern],
                "countType": "imageCountMoreThan",
                "countNumber": 9999,
            },
            "action": {"type": "expire"},
        }

    return {
        "rules": [
            protect(1, "*.*.*"),
            protect(2, "git-*"),
            protect(3, "latest"),
            protect(4, "latest-*"),
            {
                "rulePriority": 100,
                "description": "Keep dev builds (content-*): imagefactory gc decides",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPrefixList": ["content-"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 9999,
                },
                "action": {"type": "expire"},
            }
            if build_expiry_days is None
            else {
                "rulePriority": 100,
                "description": f"Expire dev builds (content-*) {build_expiry_days} days after "
                "their push",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPrefixList": ["content-"],
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": build_expiry_days,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 150,
                "description": f"Expire images tagged only staging-* after {staging_days} days",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPrefixList": ["staging-"],
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": staging_days,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 200,
                "description": f"Expire untagged images after {untagged_days} days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": untagged_days,
                },
                "action": {"type": "expire"},
            },
        ]
    }


def first_rule_selecting(policy: dict[str, Any], tags: list[str]) -> dict[str, Any] | None:
    """The rule ECR would apply to an image with ``tags``: the highest-priority rule whose tag
    selection it matches (a lower-priority rule can never expire an image a higher one selects)."""
    for rule in sorted(policy["rules"], key=lambda r: r["rulePriority"]):
        selection = rule["selection"]
        if selection["tagStatus"] == "untagged":
            chosen = not tags
        elif "tagPatternList" in selection:
            chosen = all(
                any(fnmatch.fnmatchcase(t, p) for t in tags) for p in selection["tagPatternList"]
            )
        else:
            chosen = all(
                any(t.startswith(p) for t in tags) for p in selection.get("tagPrefixList", [])
            )
        if chosen:
            return rule
    return None


def test_apply_creates_the_repositories_and_destroy_removes_them(
    terraform: str, dev: Path, moto_server: str
) -> None:
    tf(terraform, dev, "apply", "-auto-approve", "-input=false")
    try:
        ecr = ecr_client(moto_server)
        wanted = json.loads((dev / TFVARS_FILE).read_text())["repositories"]
        found = {r["repositoryName"]: r for r in ecr.describe_repositories()["repositories"]}
        assert (
            sorted(found)
            == sorted(wanted)
            == [
                "bank-ai-lab/dev/app/rag-api",
                "bank-ai-lab/dev/app/rag-api-distroless",
                "bank-ai-lab/dev/base/debian12",
                "bank-ai-lab/dev/runtime/llm",
                "bank-ai-lab/dev/tools/ci",
            ]
        )
        for name, repository in found.items():
            assert repository["imageTagMutability"] == "MUTABLE"  # a release moves X.Y, X, latest
            assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
            assert repository["encryptionConfiguration"] == {"encryptionType": "AES256"}
            tags = {
                t["Key"]: t["Value"]
                for t in ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"]
            }
            assert tags["imagefactory.image"] == wanted[name]["image"]
            assert tags["imagefactory.environment"] == "dev"
            policy = json.loads(
                ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]
            )
            # only the leaves' builds expire: app/rag-api-distroless is built on app/rag-api,
            # on runtime/llm, on base/debian12 (as tools/ci is), and ECR cannot tell which of
            # their builds a child used
            leaf = name in ("bank-ai-lab/dev/app/rag-api-distroless", "bank-ai-lab/dev/tools/ci")
            assert wanted[name]["expire_builds"] is leaf
            expiry = BUILD_EXPIRY_DAYS if leaf else None
            assert policy == expected_policy(expiry, staging_days=1, untagged_days=7), name
            # promoted images are always selected by a protecting rule first
            for released in (
                ["1.4.2", "content-0f3a", "git-1a2b3c4"],
                ["1.4.2", "content-0f3a", "staging-0f3a-5e6f7a8b9c0d"],
                ["1.4.2-cuda", "1.4-cuda", "latest-cuda", "content-9e8d"],
                ["2.0.0", "2.0", "2", "latest"],
                ["git-1a2b3c4"],
            ):
                rule = first_rule_selecting(policy, released)
                assert rule is not None and rule["description"].startswith("Keep released"), (
                    released
                )
            # a build keeps its staging tag: the content tag's rule takes the image first
            for built in (["content-0f3a"], ["content-0f3a", "staging-0f3a-5e6f7a8b9c0d"]):
                build_rule = first_rule_selecting(policy, built)
                assert build_rule is not None and build_rule["rulePriority"] == 100, built
            # what no content tag took (an unreproducible rebuild, an interrupted build)
            staging_rule = first_rule_selecting(policy, ["staging-0f3a-1a2b3c4d5e6f"])
            assert staging_rule is not None and staging_rule["rulePriority"] == 150
            assert staging_rule["selection"]["countType"] == "sinceImagePushed"
            untagged_rule = first_rule_selecting(policy, [])
            assert untagged_rule is not None and untagged_rule["rulePriority"] == 200
        # a second apply finds nothing to change
        again = tf(terraform, dev, "plan", "-input=false", "-detailed-exitcode", check=False)
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        tf(terraform, dev, "destroy", "-auto-approve", "-input=false", "-refresh=false")
    assert ecr_client(moto_server).describe_repositories()["repositories"] == []


def manifest(config_digest: str) -> str:
    """An image manifest for PutImage (ECR keeps what a registry push would put)."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": 2,
            },
            "layers": [],
        }
    )


def put_release(ecr: Any, name: str, version: str, git_sha: str, existing: list[str]) -> None:
    """Put a new image under the tags a push of ``version`` writes (plan_tags: X.Y.Z, git-,
    and the aliases it moves), through ECR's PutImage."""
    plan = plan_tags(semver.Version.parse(version), "", tag_versions(existing, "", []), git_sha)
    body = manifest("sha256:" + hashlib.sha256(version.encode()).hexdigest())
    for tag in (*plan.immutable, *plan.aliases):
        ecr.put_image(repositoryName=name, imageManifest=body, imageTag=tag)


def image_tags(ecr: Any, name: str) -> set[frozenset[str]]:
    """The tags of each image in repository ``name``."""
    details = ecr.describe_images(repositoryName=name)["imageDetails"]
    return {frozenset(d.get("imageTags", [])) for d in details}


def test_a_second_release_moves_its_aliases_in_the_applied_repositories(
    terraform: str, dev: Path, moto_server: str
) -> None:
    """moto's PutImage refuses to re-point a tag of an IMMUTABLE repository, as ECR does
    (moto: ImageAlreadyExistsException; ECR: ImageTagAlreadyExistsException). Two releases go
    into a repository the configuration made: the second moves 1.0, 1 and latest. The same into
    a repository created IMMUTABLE (the configuration's earlier setting) is refused."""
    tf(terraform, dev, "apply", "-auto-approve", "-input=false")
    ecr = ecr_client(moto_server)
    name = "bank-ai-lab/dev/app/rag-api"
    control = "bank-ai-lab/control/immutable"
    ecr.create_repository(repositoryName=control, imageTagMutability="IMMUTABLE")
    try:
        for repository in (name, control):
            put_release(ecr, repository, "1.0.0", "a1b2c3d4e5", [])
        put_release(ecr, name, "1.0.1", "f6e5d4c3b2", ["1.0.0", "1.0", "1", "latest"])
        assert image_tags(ecr, name) == {
            frozenset({"1.0.0", "git-a1b2c3d4"}),
            frozenset({"1.0.1", "git-f6e5d4c3", "1.0", "1", "latest"}),
        }
        # the first release's image lost its aliases; its version tag keeps it protected
        policy = json.loads(ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])
        for tags in image_tags(ecr, name):
            rule = first_rule_selecting(policy, sorted(tags))
            assert rule is not None and rule["description"].startswith("Keep released"), tags
        with pytest.raises(ecr.exceptions.ImageAlreadyExistsException, match=r"tag '1\.0'"):
            put_release(ecr, control, "1.0.1", "f6e5d4c3b2", ["1.0.0", "1.0", "1", "latest"])
    finally:
        for repository in (name, control):
            images = ecr.list_images(repositoryName=repository)["imageIds"]
            if images:
                ecr.batch_delete_image(repositoryName=repository, imageIds=images)
        ecr.delete_repository(repositoryName=control)
        tf(terraform, dev, "destroy", "-auto-approve", "-input=false", "-refresh=false")
    assert ecr.describe_repositories()["repositories"] == []


KMS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"


def test_a_kms_key_encrypts_the_repositories_and_changing_it_replaces_them(
    terraform: str, dev: Path, moto_server: str
) -> None:
    tf(terraform, dev, "apply", "-auto-approve", "-input=false")
    kms = f"-var=kms_key_arn={KMS_KEY}"
    try:
        plan = tf(terraform, dev, "plan", "-input=false", kms)
        # ECR cannot re-encrypt a repository: the plan says so before anything is replaced
        assert plan.stdout.count("must be replaced") == 5, plan.stdout  # one per repository
        # ECR deletes a repository's lifecycle policy with it: the policy is put again
        assert plan.stdout.count("replaced due to changes in replace_triggered_by") == 5
        assert '+ kms_key         = "' + KMS_KEY + '" # forces replacement' in plan.stdout
        tf(terraform, dev, "apply", "-auto-approve", "-input=false", kms)
        found = ecr_client(moto_server).describe_repositories()["repositories"]
        assert len(found) == 5
        for repository in found:
            assert repository["encryptionConfiguration"] == {
                "encryptionType": "KMS",
                "kmsKey": KMS_KEY,
            }
            name = repository["repositoryName"]
            assert ecr_client(moto_server).get_lifecycle_policy(repositoryName=name)
        again = tf(terraform, dev, "plan", "-input=false", "-detailed-exitcode", kms, check=False)
        assert again.returncode == 0, again.stdout + again.stderr
        alias = tf(
            terraform, dev, "plan", "-input=false", "-var=kms_key_arn=alias/ecr", check=False
        )
        assert alias.returncode == 1
        assert "kms_key_arn must be a KMS key ARN" in alias.stdout + alias.stderr
    finally:
        tf(terraform, dev, "destroy", "-auto-approve", "-input=false", "-refresh=false", kms)
    assert ecr_client(moto_server).describe_repositories()["repositories"] == []


def test_a_variable_that_fails_validation_is_a_clear_terraform_error(
    terraform: str, dev: Path, moto_server: str
) -> None:
    bad = dev / "bad.tfvars.json"
    bad.write_text(
        json.dumps(
            {
                "environment": "prod",
                "repositories": {"Bank-AI-Lab/dev/App": {"image": "App", "expire_builds": False}},
                "retention": {
                    "keep_versions": 0,
                    "keep_days": 30,
                    "hold_days": 365,
                    "build_expiry_days": 30,  # ECR would expire builds gc holds
                },
                "staging_expiry_days": 1.5,
            }
        )
    )
    result = tf(terraform, dev, "plan", "-input=false", f"-var-file={bad.name}", check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "This is the dev configuration" in output
    assert "as ECR requires" in output
    assert "build_expiry_days is max(keep_days, hold_days, 1)" in output
    assert "staging_expiry_days must be a whole number greater than 0" in output
    # without retention (preprod and prod here) builds are kept; a tfvars file that has a
    # repository expire them anyway stops the plan
    for expire_builds, returncode in ((False, 0), (True, 1)):
        unkept = dev / "unkept.tfvars.json"
        repository = {"image": "app/x", "expire_builds": expire_builds}
        unkept.write_text(
            json.dumps({"repositories": {"bank-ai-lab/dev/app/x": repository}, "retention": None})
        )
        result = tf(terraform, dev, "plan", "-input=false", f"-var-file={unkept.name}", check=False)
        assert result.returncode == returncode, result.stdout + result.stderr
        if expire_builds:
            assert "var.retention is null" in result.stdout + result.stderr
        else:
            assert "Keep dev builds (content-*): imagefactory gc decides" in result.stdout
    assert ecr_client(moto_server).describe_repositories()["repositories"] == []


def test_render_refuses_a_name_too_long_for_ecr_before_terraform_runs(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / "imagefactory.yaml", tmp_path / "imagefactory.yaml")
    shutil.copytree(REPO_ROOT / "images", tmp_path / "images")
    project = tmp_path / "imagefactory.yaml"
    long_namespace = "bank-ai-lab/dev/" + "/".join(["n" * 60] * 4)
    project.write_text(
        project.read_text().replace("namespace: bank-ai-lab/dev", f"namespace: {long_namespace}")
    )
    out = tmp_path / "environments"
    result = CliRunner().invoke(
        app, ["-C", str(tmp_path), "render", "terraform", "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "ECR accepts 2-256" in result.output and "Traceback" not in result.output
    assert not out.exists()
