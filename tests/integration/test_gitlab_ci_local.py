"""The generated pipeline of the example catalog, run for real by gitlab-ci-local.

gitlab-ci-local runs the jobs of ``imagefactory ci generate --builder host`` with its shell
executor on this machine: ``host`` is the builder for runners that bring their own engine (no job
image, no service, which a shell executor would ignore anyway); the jobs reach the local dockerd
through DOCKER_HOST and log in to the local registry with the credential variables the project
file names, passed in the environment (never on a command line).

The catalog is a copy of the session's example build (same images, same content hashes, so the base
and the runtime are reused from the local engine by their content-hash label; signed with the
session's key, so the build describes them in this namespace, where they have no evidence yet, and
the app's chain of parents verifies when it is promoted) in a git repository of its own whose
``origin/main`` holds the catalog as it was. One commit then changes the app, so ``rules:changes``
must put the app's jobs, and only those, into the pipeline. The jobs run with
``--shell-isolation``: each job works in its own copy of the tracked files and sees only the
artifacts its ``needs`` bring, as on GitLab. The run builds the app, tests it, pushes it to dev and
(the manual job, played) promotes it to preprod; the image must be in both registry namespaces
under the digest the build recorded. gitlab-ci-local sets ``CI=true`` and ``GITLAB_CI`` (to
"false", which ``ci_env.in_gitlab_ci`` takes as set), so the release jobs run the gate as GitLab CI
jobs do. The push job: the test job's record of that digest must come with its artifacts, and its
checkout (tracked files and ``.git``, with the ignored ``.imagefactory/`` work folder) and the
build's revision label must be clean. The catalog's .gitignore names only that folder (and
gitlab-ci-local's own): every artifact the jobs pass on, the JUnit report too, must lie in the work
folder, or the push job's checkout holds a file git does not ignore and the CI push refuses it. The
prod job, played last: approved only on a protected ref (``CI_COMMIT_REF_PROTECTED``, false under
gitlab-ci-local unless set), by the job's user, in prod's one protected environment (``prod``, the
job's ``CI_ENVIRONMENT_NAME``: the example does not set ``protected_per_image``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers.example import ExampleBuild, cli_json, edit_text, imagefactory
from .helpers.registry import Registry, registry_cleanup
from .helpers.services import run

GITLAB_CI_LOCAL = "gitlab-ci-local"
PIPELINE_TIMEOUT = 1200  # the app really builds (pip from PyPI); base and runtime are reused
JOB_TIMEOUT = 300  # one release job: a copy between registry namespaces
GITLAB_CI_LOCAL_OPTIONS = (
    "--shell-isolation",
    "--no-artifacts-to-source",
    "--no-color",
    "--variable",
    "DOCKER_HOST=unix:///var/run/docker.sock",
)
APP = "app/rag-api"
SHELL_LESS = "app/rag-api-distroless"  # built on the app: its change reaches it too
JOBS = [
    "catalog:validate",
    f"build:{APP}",
    f"test:{APP}",
    f"push:{APP}",
    f"promote:preprod:{APP}",
    f"build:{SHELL_LESS}",
    f"test:{SHELL_LESS}",
    f"push:{SHELL_LESS}",
]
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.oci.image.index.v1+json"
)


def safe_job_name(name: str) -> str:
    """gitlab-ci-local's folder name for a job (``Utils.safeDockerString``)."""
    return re.sub(
        r"[^\w-]+",
        lambda m: base64.urlsafe_b64encode(m.group().encode()).decode().rstrip("="),
        name,
    )


@dataclass(frozen=True)
class PipelineRun:
    root: Path
    namespace: str  # "it-<session>/gitlab-ci-local"; environments below it
    listed: dict[str, str]  # job -> when, as gitlab-ci-local evaluated the rules
    revision: str  # the commit the pipeline runs for
    env: dict[str, str]  # what gitlab-ci-local runs with
    output: str
    returncode: int
    seconds: float

    def artifact(self, job: str, relative: str) -> Path:
        return self.root / ".gitlab-ci-local" / "artifacts" / safe_job_name(job) / relative

    def state(self, job: str) -> dict[str, Any]:
        document = json.loads(self.artifact(job, ".imagefactory/state.json").read_text())
        assert isinstance(document, dict)
        return document

    def play(self, job: str, *variables: str) -> tuple[int, str]:
        """Run the one (manual) ``job`` again, on the artifacts of the jobs it needs from the
        pipeline run; ``variables`` (``NAME=value``) on top of gitlab-ci-local's own."""
        argv = [GITLAB_CI_LOCAL, *GITLAB_CI_LOCAL_OPTIONS, "--manual", job, job]
        for variable in variables:
            argv += ["--variable", variable]
        return run_bounded(argv, cwd=self.root, env=self.env, timeout=JOB_TIMEOUT)


def passed_jobs(output: str) -> list[str]:
    """The jobs gitlab-ci-local's summary lists as PASS."""
    return re.findall(r"^\s*PASS\s+(\S+)", output, flags=re.MULTILINE)


def git(root: Path, *args: str) -> str:
    ident = ["-c", "user.name=imagefactory tests", "-c", "user.email=tests@example.invalid"]
    command = ["git", "-C", str(root), *ident, "-c", "commit.gpgsign=false", *args]
    return run(command, timeout=60).stdout.strip()


def job_environment(example_build: ExampleBuild) -> dict[str, str]:
    """The build's environment (credentials included), the venv's imagefactory first on PATH,
    and nothing of an outer CI run that could leak into the jobs' predefined variables."""
    env = {
        k: v
        for k, v in example_build.env.items()
        if not k.startswith(("CI_", "GITLAB_")) and k not in ("CI", "DOCKER_HOST")
    }
    venv_bin = Path(sys.executable).parent
    assert (venv_bin / "imagefactory").is_file(), f"no imagefactory script in {venv_bin}"
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    return env


def run_bounded(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run ``argv`` in its own process group; on timeout the whole group is killed."""
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate(timeout=60)
        raise AssertionError(
            f"{' '.join(argv[:2])} ran longer than {timeout}s\n{output[-6000:]}"
        ) from None
    return process.returncode, output


@pytest.fixture(scope="module")
def pipeline_run(
    example_build: ExampleBuild,
    registry: Registry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PipelineRun]:
    if shutil.which(GITLAB_CI_LOCAL) is None:
        pytest.fail("gitlab-ci-local is not installed; run scripts/setup.sh", pytrace=False)
    base = tmp_path_factory.mktemp("gitlab-ci-local")
    root = base / "catalog"
    root.mkdir()
    shutil.copytree(example_build.root / "images", root / "images")
    shutil.copytree(example_build.root / "keys", root / "keys")  # signed, as the session's build
    namespace = f"it-{example_build.session}/gitlab-ci-local"
    project = yaml.safe_load((example_build.root / "imagefactory.yaml").read_text())
    for stage, settings in project["registries"].items():
        settings["namespace"] = f"{namespace}/{stage}"
    (root / "imagefactory.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    (root / ".gitignore").write_text("/.imagefactory/\n/.gitlab-ci-local/\n")
    env = job_environment(example_build)
    generated = imagefactory(
        root, "ci", "generate", "--builder", "host", "--out", ".gitlab-ci.yml", env=env
    )
    assert generated.returncode == 0, generated.stderr
    # origin/main: the catalog as it was; then one commit that changes the app only
    run(["git", "init", "-q", "-b", "main", str(root)], timeout=60)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the example catalog")
    run(["git", "init", "-q", "--bare", str(base / "origin.git")], timeout=60)
    git(root, "remote", "add", "origin", str(base / "origin.git"))
    git(root, "push", "-q", "origin", "main")
    git(root, "remote", "set-head", "origin", "main")
    edit_text(
        root / "images" / "app" / "rag-api" / "image.yaml",
        '  RAG_API_PORT: "8080"\n',
        f'  RAG_API_PORT: "8080"\n  RAG_API_BUILD: gitlab-ci-local-{example_build.session}\n',
    )
    git(root, "commit", "-q", "-am", "app: a new environment variable")
    revision = git(root, "rev-parse", "HEAD")
    try:
        code, listing = run_bounded(
            [GITLAB_CI_LOCAL, "--list-json"], cwd=root, env=env, timeout=120
        )
        assert code == 0, listing
        listed = {job["name"]: job["when"] for job in json.loads(listing[listing.index("[") :])}
        started = time.monotonic()
        returncode, output = run_bounded(
            [GITLAB_CI_LOCAL, *GITLAB_CI_LOCAL_OPTIONS, "--manual", f"promote:preprod:{APP}"],
            cwd=root,
            env=env,
            timeout=PIPELINE_TIMEOUT,
        )
        seconds = time.monotonic() - started
        yield PipelineRun(root, namespace, listed, revision, env, output, returncode, seconds)
    finally:
        registry_cleanup(registry, namespace)


def test_rules_put_only_the_changed_app_in_the_pipeline(pipeline_run: PipelineRun) -> None:
    runnable = {job: when for job, when in pipeline_run.listed.items() if when != "never"}
    assert runnable == {
        "catalog:validate": "on_success",
        f"build:{APP}": "on_success",
        f"test:{APP}": "on_success",
        f"push:{APP}": "on_success",
        f"promote:preprod:{APP}": "manual",
        f"promote:prod:{APP}": "manual",
        f"build:{SHELL_LESS}": "on_success",
        f"test:{SHELL_LESS}": "on_success",
        f"push:{SHELL_LESS}": "on_success",
        f"promote:preprod:{SHELL_LESS}": "manual",
        f"promote:prod:{SHELL_LESS}": "manual",
    }
    for ref in ("base/debian12", "runtime/llm:cpu", "runtime/llm:cuda"):
        assert pipeline_run.listed[f"build:{ref}"] == "never"
    assert pipeline_run.listed["catalog:outdated"] == "never"  # scheduled pipelines only
    assert pipeline_run.listed["catalog:refresh"] == "never"


def test_the_pipeline_runs_build_test_push_and_promote(
    pipeline_run: PipelineRun, record_property: Any
) -> None:
    record_property("gitlab_ci_local_seconds", round(pipeline_run.seconds, 1))
    print(f"\ngitlab-ci-local ran the pipeline in {pipeline_run.seconds:.1f}s")
    assert pipeline_run.returncode == 0, pipeline_run.output[-8000:]
    passed = passed_jobs(pipeline_run.output)
    assert sorted(passed) == sorted(JOBS), pipeline_run.output[-4000:]
    assert f"promote:prod:{APP}" not in passed  # manual, not played
    assert pipeline_run.seconds < PIPELINE_TIMEOUT


def test_the_build_job_builds_the_app_and_reuses_its_ancestors(pipeline_run: PipelineRun) -> None:
    lines = [line for line in pipeline_run.output.splitlines() if line.startswith(f"build:{APP}")]
    text = "\n".join(lines)
    assert re.search(r"\[app/rag-api\] built", text), text
    assert re.search(r"\[base/debian12\] reused", text), text
    assert re.search(r"\[runtime/llm:cpu\] reused", text), text


def test_state_travels_along_the_chain_of_artifacts(pipeline_run: PipelineRun) -> None:
    built = pipeline_run.state(f"build:{APP}")["images"][APP]
    digest = built["digest"]
    assert built["repository"].endswith(f"{pipeline_run.namespace}/dev/app/rag-api")
    tested = pipeline_run.state(f"test:{APP}")["images"][APP]
    assert tested["digest"] == digest
    assert tested["test_runs"][digest]["passed"] is True
    pushed = pipeline_run.state(f"push:{APP}")["images"][APP]
    assert pushed["test_runs"][digest]["passed"] is True  # the test record came along
    assert pushed["environments"]["dev"]["digest"] == digest
    assert pushed["environments"]["dev"]["version"] == "0.3.0"
    promoted = pipeline_run.state(f"promote:preprod:{APP}")["images"][APP]
    assert promoted["environments"]["preprod"]["digest"] == digest
    assert promoted["environments"]["dev"] == pushed["environments"]["dev"]
    audit = pipeline_run.artifact(f"promote:preprod:{APP}", ".imagefactory/audit.jsonl")
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    # the push job's audit log came along too; each step written ahead: intent, then done
    assert [(r["action"], r["phase"]) for r in records] == [
        ("push", "intent"),
        ("push", "done"),
        ("promote", "intent"),
        ("promote", "done"),
    ]
    junit = pipeline_run.artifact(f"test:{APP}", ".imagefactory/junit-app_rag-api.xml").read_text()
    assert "<testsuite" in junit and 'name="app/rag-api"' in junit


def test_the_image_lands_in_dev_and_preprod(pipeline_run: PipelineRun, registry: Registry) -> None:
    digest = pipeline_run.state(f"build:{APP}")["images"][APP]["digest"]
    for environment in ("dev", "preprod"):
        repository = f"{pipeline_run.namespace}/{environment}/app/rag-api"
        status, headers, _ = registry.request(
            "HEAD", f"/v2/{repository}/manifests/0.3.0", headers={"Accept": MANIFEST_TYPES}
        )
        assert status == 200, (environment, status)
        there = {k.lower(): v for k, v in headers.items()}.get("docker-content-digest")
        assert there == digest, environment
    # the build job's checkout was clean (revision label = the commit), so push tagged it
    git_tag = f"git-{pipeline_run.revision[:8]}"
    status, headers, _ = registry.request(
        "HEAD",
        f"/v2/{pipeline_run.namespace}/dev/app/rag-api/manifests/{git_tag}",
        headers={"Accept": MANIFEST_TYPES},
    )
    assert status == 200, (git_tag, status)
    assert {k.lower(): v for k, v in headers.items()}.get("docker-content-digest") == digest
    status, _, _ = registry.request(
        "HEAD",
        f"/v2/{pipeline_run.namespace}/prod/app/rag-api/manifests/0.3.0",
        headers={"Accept": MANIFEST_TYPES},
    )
    assert status == 404  # prod is a manual, approved step


def test_the_promoted_app_verifies_down_to_its_bootstrapped_base(
    pipeline_run: PipelineRun,
) -> None:
    """Signed: the ancestors the build job reused from the local engine were pushed into this
    namespace and described there as reuses (their provenance names the local image), so the
    app's chain of parents verifies in preprod, as the promotion's chain check found it."""
    digest = pipeline_run.state(f"build:{APP}")["images"][APP]["digest"]
    proc = imagefactory(
        pipeline_run.root,
        "verify",
        f"{APP}@{digest}",
        "--env",
        "preprod",
        "--json",
        env=pipeline_run.env,
    )
    report = cli_json(proc)
    assert proc.returncode == 0 and report["ok"] is True, report
    lines = [line for line in pipeline_run.output.splitlines() if line.startswith(f"build:{APP}")]
    assert not [line for line in lines if "not signed" in line], "\n".join(lines)


def test_no_secret_in_logs_or_artifacts(pipeline_run: PipelineRun, registry: Registry) -> None:
    assert registry.password not in pipeline_run.output
    artifacts = pipeline_run.root / ".gitlab-ci-local" / "artifacts"
    for path in artifacts.rglob("*"):
        if path.is_file():
            assert registry.password not in path.read_text(errors="replace"), path
    generated = (pipeline_run.root / ".gitlab-ci.yml").read_text()
    assert "PASSWORD" not in generated.split("\n\n", 1)[1]  # only the header names the variable


def test_prod_takes_only_its_protected_deployment_job_as_approval(
    pipeline_run: PipelineRun, registry: Registry
) -> None:
    """The prod job of the generated pipeline (``environment: prod``, manual) approves only on
    a protected ref: gitlab-ci-local runs it with CI_COMMIT_REF_PROTECTED=false, and the gate
    refuses; the same job on a protected ref promotes, approved by its user. Last in the file:
    it fills prod, which the tests above find empty."""
    job = f"promote:prod:{APP}"
    generated = yaml.safe_load((pipeline_run.root / ".gitlab-ci.yml").read_text())
    # prod needs an approval and does not set protected_per_image: the one protected prod
    assert generated[job]["environment"]["name"] == "prod"
    digest = pipeline_run.state(f"build:{APP}")["images"][APP]["digest"]
    manifest = f"/v2/{pipeline_run.namespace}/prod/app/rag-api/manifests/0.3.0"
    code, output = pipeline_run.play(job)
    # a manual job may fail (allow_failure): gitlab-ci-local reports it WARN and exits 0
    assert code == 0 and passed_jobs(output) == [], output[-4000:]
    assert "only a job deploying to the protected environment prod approves" in output
    status, _, _ = registry.request("HEAD", manifest, headers={"Accept": MANIFEST_TYPES})
    assert status == 404
    code, output = pipeline_run.play(
        job, "CI_COMMIT_REF_PROTECTED=true", "GITLAB_USER_LOGIN=release-manager"
    )
    assert code == 0 and passed_jobs(output) == [job], output[-4000:]
    status, headers, _ = registry.request("HEAD", manifest, headers={"Accept": MANIFEST_TYPES})
    assert status == 200
    assert {k.lower(): v for k, v in headers.items()}.get("docker-content-digest") == digest
    audit = pipeline_run.artifact(job, ".imagefactory/audit.jsonl")
    done = [json.loads(line) for line in audit.read_text().splitlines()][-1]
    assert (done["action"], done["phase"], done["approver"]) == (
        "promote",
        "done",
        "release-manager",
    )
