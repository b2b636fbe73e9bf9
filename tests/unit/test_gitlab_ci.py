"""`imagefactory ci generate`: the GitLab CI pipeline of a catalog.

Golden files for the example catalog (every builder) and four synthetic catalogs (a single
image, a deep chain, a wide fan-out, variants); every pipeline validates against GitLab's CI
JSON schema as check-jsonschema vendors it, and against the rules GitLab applies beyond the
schema (needs name jobs of earlier stages, …). A small evaluator of the generated rules shows
which jobs a change creates. The CLI: --out, --check, bad builders and environments refused
before anything is written, and the repository's committed child pipeline kept up to date.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner, Result

import imagefactory.cli  # noqa: F401  (registers the commands on the app)
from imagefactory.cli import app
from imagefactory.errors import UserError
from imagefactory.release import gate
from imagefactory.render.gitlab_ci import (
    BUILDERS,
    OUTDATED_JOB,
    REFRESH_JOB,
    RELEASE_ARTIFACTS_EXPIRE_IN,
    STAGES,
    VALIDATE_JOB,
    PipelineOptions,
    pipeline,
    render_pipeline,
)
from imagefactory.render.gitlab_rules import IF_SCHEDULE as SCHEDULE
from imagefactory.spec.catalog import Catalog, ref_slug
from imagefactory.spec.loader import load_catalog

from .conftest import REPO, Edit, copy_example_catalog

GOLDEN = Path(__file__).parent / "golden" / "gitlab-ci"
COMMITTED = "ci/catalog-pipeline.yml"
SHELL_LESS = "app/rag-api-distroless"  # built on app/rag-api
EXAMPLE_REFS = ["base/debian12", "runtime/llm:cpu", "runtime/llm:cuda", "app/rag-api", SHELL_LESS]
APP = "images/app/rag-api/image.yaml"

TIERS = {"production", "staging", "testing", "development", "other"}
RESOURCE_GROUP = re.compile(r"[A-Za-z0-9_./${} -]+")  # GitLab's allowed characters
# Gitlab::Regex.environment_name_regex: no "/" first or last
ENVIRONMENT_NAME = re.compile(r"[a-zA-Z0-9_${}. -](?:[a-zA-Z0-9_/${}. -]*[a-zA-Z0-9_${}. -])?")

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1", "FORCE_COLOR": None, "TERM": "dumb"})


def run(*args: str | Path) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


# --------------------------------------------------------------------------- catalogs

PROJECT = """\
project: synthetic
registries:
  dev: {url: registry.example.invalid, namespace: synth/dev, username_env: REG_USER, password_env: REG_PASSWORD}
  preprod: {url: registry.example.invalid, namespace: synth/preprod, username_env: REG_USER, password_env: REG_PASSWORD}
  prod: {url: registry.example.invalid, namespace: synth/prod, username_env: REG_USER, password_env: REG_PASSWORD}
environments:
  - {name: dev, registries: [dev]}
  - {name: preprod, registries: [preprod]}
  - {name: prod, registries: [prod], approval: true}
"""

BOOTSTRAP = "bootstrap: {suite: bookworm, variant: minbase}\nuser: root\n"


def write_catalog(root: Path, images: dict[str, str], project: str = PROJECT) -> Path:
    """A catalog at ``root``: the project file and one image.yaml per name (its body given)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "imagefactory.yaml").write_text(project)
    for name, body in images.items():
        folder = root / "images" / name
        folder.mkdir(parents=True)
        (folder / "image.yaml").write_text(f"name: {name}\nversion: 1.0.0\n{body}")
    return root


def single(root: Path) -> Path:
    return write_catalog(root, {"base/minimal": BOOTSTRAP})


def deep_chain(root: Path) -> Path:
    images = {"chain/level0": BOOTSTRAP}
    images.update({f"chain/level{n}": f"from: chain/level{n - 1}\n" for n in range(1, 6)})
    return write_catalog(root, images)


def fan_out(root: Path) -> Path:
    images = {"base/os": BOOTSTRAP}
    images.update({f"apps/app{n:02d}": "from: base/os\n" for n in range(1, 9)})
    return write_catalog(root, images)


def variants(root: Path) -> Path:
    runtime = (
        "from: base/os\n"
        "variants:\n"
        "  python: {py311: {packages: [python3.11]}, py312: {packages: [python3.12]}}\n"
        "  accelerator: {cpu: {}, cuda: {env: {NVIDIA_VISIBLE_DEVICES: all}}}\n"
    )
    return write_catalog(
        root,
        {
            "base/os": BOOTSTRAP,
            "rt/python": runtime
            + "secrets: [{id: pip-index, env: PIP_INDEX_TOKEN, as_env: PIP_INDEX_URL}]\n",
            "apps/svc": "from: rt/python:py312-cuda\n"
            "secrets:\n"
            "  - {id: pip-index, env: PIP_INDEX_TOKEN, required: false}\n"
            "  - {id: netrc, file: /etc/ci/netrc, required: false}\n",
        },
    )


def multiarch(root: Path) -> Path:
    """A base and a child for amd64 and arm64, an arm64-only grandchild, and an amd64 image
    (no platforms) on the base: build jobs per platform, then the index job."""
    platforms = "platforms: [linux/amd64, linux/arm64]\n"
    return write_catalog(
        root,
        {
            "base/os": BOOTSTRAP + platforms,
            "apps/svc": "from: base/os\n",
            "apps/edge": "from: apps/svc\nplatforms: [linux/arm64]\n",
        },
    )


def example(root: Path) -> Path:
    root.mkdir(parents=True)
    return copy_example_catalog(root)


CATALOGS: dict[str, Callable[[Path], Path]] = {
    "example": example,
    "single": single,
    "deep-chain": deep_chain,
    "fan-out": fan_out,
    "variants": variants,
    "multiarch": multiarch,
}


def options(builder: str = "dind", **kwargs: Any) -> PipelineOptions:
    return PipelineOptions(
        builder=builder, command=f"imagefactory ci generate --builder {builder}", **kwargs
    )


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Checked:
    document: dict[str, Any]

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.document.items() if k not in ("stages", "variables")}


@pytest.fixture(scope="module")
def schema_validator() -> jsonschema.Draft7Validator:
    text = (
        resources.files("check_jsonschema")
        .joinpath("builtin_schemas/vendor/gitlab-ci.json")
        .read_text(encoding="utf-8")
    )
    schema = json.loads(text)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def paths_of(job: dict[str, Any]) -> list[str]:
    return next(r["changes"]["paths"] for r in job["rules"] if "changes" in r)


def check_pipeline(text: str, catalog: Catalog, validator: jsonschema.Draft7Validator) -> Checked:
    """Everything a generated pipeline must be, whatever the catalog."""
    tokens = list(yaml.scan(text))
    assert not [t for t in tokens if isinstance(t, yaml.AnchorToken | yaml.AliasToken)]
    document = yaml.safe_load(text)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    assert document["stages"] == list(STAGES)
    checked = Checked(document)
    jobs = checked.jobs
    # the job image (ci.job_image): the pipeline runs in it and does not build it
    job_image = catalog.project.ci.job_image
    built = {ref: image for ref, image in catalog.images.items() if ref != job_image}
    assert not any(name.endswith(f":{job_image}") for name in jobs), job_image
    for forbidden in ("include", "extends", "default", "<<"):  # flattened: each job complete
        assert forbidden not in document
        assert not any(forbidden in job for job in jobs.values())
    # never empty: one job has no rules at all
    assert "rules" not in jobs[VALIDATE_JOB]
    # a catalog that locks its packages checks every lock there too (files only, no engine)
    locks = ["imagefactory lock --all --check"] if catalog.locks else []
    assert jobs[VALIDATE_JOB]["script"] == ["imagefactory validate", *locks]
    order = {stage: n for n, stage in enumerate(STAGES)}
    for name, job in jobs.items():
        assert job["stage"] in order, name
        # what the schema leaves open but GitLab checks
        if "environment" in job:
            assert job["environment"]["deployment_tier"] in TIERS, name
            assert ENVIRONMENT_NAME.fullmatch(job["environment"]["name"]), name
        if "resource_group" in job:
            assert RESOURCE_GROUP.fullmatch(job["resource_group"]), name
        assert all(line.startswith("imagefactory ") for line in job["script"]), name
        assert not re.search(r"echo|PASSWORD|\$IMAGEFACTORY_REGISTRY", " ".join(job["script"]))
        for need in job.get("needs", []):
            needed = jobs.get(need["job"])
            if need.get("optional"):
                continue
            assert needed is not None, f"{name} needs the missing job {need['job']}"
            assert order[needed["stage"]] <= order[job["stage"]], (name, need)
            if "rules" in job and "rules" in needed:  # in the pipeline whenever this one is
                same = needed["rules"] == job["rules"] or paths_of(needed) == paths_of(job)
                assert same, (name, need)
    for ref, image in built.items():
        build, test = jobs[f"build:{ref}"], jobs[f"test:{ref}"]
        expected = [{"job": VALIDATE_JOB, "artifacts": False}]
        if image.parent_ref is not None:
            expected.append(
                {"job": f"build:{image.parent_ref}", "artifacts": False, "optional": True}
            )
        # an image built per platform: a job per platform first, the build job makes the index
        for platform in image.spec.platforms or []:
            expected.append({"job": f"build:{ref}:{platform}", "artifacts": False})
            one = jobs[f"build:{ref}:{platform}"]
            assert one["script"] == [f"imagefactory build {ref} --platform {platform}"]
            assert one["rules"] == build["rules"] and "artifacts" not in one
        assert build["needs"] == expected
        assert build["script"] == [f"imagefactory build {ref}"]
        assert test["needs"] == [{"job": f"build:{ref}", "artifacts": True}]
        junit = test["artifacts"]["reports"]["junit"]
        assert test["script"] == [f"imagefactory test {ref} --junit {junit}"]
        assert test["artifacts"]["when"] == "always"
        assert ".imagefactory/state.json" in test["artifacts"]["paths"]
        folders = [
            f"{i.folder.relative_to(catalog.root).as_posix()}/**/*" for i in catalog.lineage(ref)
        ]
        assert paths_of(build)[: len(folders)] == folders
        assert "imagefactory.yaml" in paths_of(build)
    per_platform = sum(len(i.spec.platforms or []) for i in built.values())
    assert sum(1 for n in jobs if n.startswith("build:")) == len(built) + per_platform
    assert sum(1 for n in jobs if n.startswith("test:")) == len(built)
    return checked


@pytest.fixture(params=sorted(CATALOGS))
def any_catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    yield load_catalog(CATALOGS[request.param](tmp_path / request.param))


# --------------------------------------------------------------------------- golden + schema


@pytest.mark.parametrize("builder", BUILDERS)
def test_example_pipeline_matches_golden_and_schema(
    tmp_path: Path,
    builder: str,
    golden: Callable[[Path, str], None],
    schema_validator: jsonschema.Draft7Validator,
) -> None:
    catalog = load_catalog(example(tmp_path / "example"))
    text = render_pipeline(catalog, options(builder))
    check_pipeline(text, catalog, schema_validator)
    golden(GOLDEN / f"example-{builder}.yml", text)


@pytest.mark.parametrize("name", ["single", "deep-chain", "fan-out", "variants", "multiarch"])
def test_synthetic_pipelines_match_golden_and_schema(
    tmp_path: Path,
    name: str,
    golden: Callable[[Path, str], None],
    schema_validator: jsonschema.Draft7Validator,
) -> None:
    catalog = load_catalog(CATALOGS[name](tmp_path / name))
    text = render_pipeline(catalog, options())
    check_pipeline(text, catalog, schema_validator)
    golden(GOLDEN / f"{name}.yml", text)


@pytest.mark.parametrize("builder", BUILDERS)
def test_every_catalog_and_builder_is_schema_valid(
    any_catalog: Catalog, builder: str, schema_validator: jsonschema.Draft7Validator
) -> None:
    check_pipeline(render_pipeline(any_catalog, options(builder)), any_catalog, schema_validator)


def test_a_platform_job_follows_its_parents_job_of_that_platform_on_its_runners(
    tmp_path: Path, schema_validator: jsonschema.Draft7Validator
) -> None:
    catalog = load_catalog(multiarch(tmp_path / "c"))
    tagged = options(runner_tags=(("linux/arm64", "arm64"), ("linux/arm64", "native")))
    jobs = check_pipeline(render_pipeline(catalog, tagged), catalog, schema_validator).jobs
    edge = jobs["build:apps/edge:linux/arm64"]
    assert edge["needs"][1:] == [
        {"job": "build:apps/svc:linux/arm64", "artifacts": False, "optional": True}
    ]
    assert edge["tags"] == ["arm64", "native"]
    assert "tags" not in jobs["build:apps/svc:linux/amd64"]  # the pipeline's runners
    assert "tags" not in jobs["build:apps/svc"]  # the index job runs anywhere
    assert "build:apps/edge:linux/amd64" not in jobs


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ((("linux/mips", "x"),), "'linux/mips' is not a platform"),
        ((("linux/arm64", "a b"),), "'a b' is not a runner tag"),
    ],
)
def test_bad_runner_tags_are_refused(
    tmp_path: Path, tags: tuple[tuple[str, str], ...], message: str
) -> None:
    catalog = load_catalog(multiarch(tmp_path / "c"))
    with pytest.raises(UserError, match=message):
        render_pipeline(catalog, options(runner_tags=tags))


def test_ci_generate_takes_runner_tags_and_says_them_in_the_header(tmp_path: Path) -> None:
    root = multiarch(tmp_path / "c")
    result = run("-C", root, "ci", "generate", "--runner-tag", "linux/arm64=arm64")
    assert result.exit_code == 0, result.output
    assert "--runner-tag linux/arm64=arm64" in result.stdout
    assert "      - arm64" in result.stdout or "    - arm64" in result.stdout
    bad = run("-C", root, "ci", "generate", "--runner-tag", "linux/arm64")
    assert bad.exit_code == 2 and "is not PLATFORM=TAG" in bad.output


def test_the_schema_check_is_real(schema_validator: jsonschema.Draft7Validator) -> None:
    """The vendored schema does reject what GitLab rejects (so passing it means something)."""
    bad = [
        {"job": {"stage": "build", "script": ["x"], "needs": [{"artifacts": True}]}},
        {"job": {"script": ["x"], "when": "sometimes"}},
        {"job": {"script": ["x"], "rules": [{"changes": {"compare_to": "main"}}]}},
        {"job": {"script": ["x"], "artifacts": {"reports": {"junit": 3}}}},
    ]
    for document in bad:
        assert list(schema_validator.iter_errors(document)), document


def test_deep_chain_needs_follow_the_parents(
    tmp_path: Path, schema_validator: jsonschema.Draft7Validator
) -> None:
    catalog = load_catalog(deep_chain(tmp_path / "c"))
    jobs = check_pipeline(render_pipeline(catalog, options()), catalog, schema_validator).jobs
    for n in range(1, 6):
        needs = [need["job"] for need in jobs[f"build:chain/level{n}"]["needs"]]
        assert needs == [VALIDATE_JOB, f"build:chain/level{n - 1}"]
    # the deepest image reacts to every level's folder, the root only to its own
    assert len([p for p in paths_of(jobs["build:chain/level5"]) if p.startswith("images/")]) == 6
    assert [p for p in paths_of(jobs["build:chain/level0"]) if p.startswith("images/")] == [
        "images/chain/level0/**/*"
    ]


def test_fan_out_children_wait_only_for_the_base(
    tmp_path: Path, schema_validator: jsonschema.Draft7Validator
) -> None:
    catalog = load_catalog(fan_out(tmp_path / "c"))
    jobs = check_pipeline(render_pipeline(catalog, options()), catalog, schema_validator).jobs
    for n in range(1, 9):
        build = jobs[f"build:apps/app{n:02d}"]
        assert [need["job"] for need in build["needs"]] == [VALIDATE_JOB, "build:base/os"]
        assert "images/base/os/**/*" in paths_of(build)
        assert not any(f"app{m:02d}" in p for p in paths_of(build) for m in range(1, 9) if m != n)


def test_variants_each_get_their_jobs(
    tmp_path: Path, schema_validator: jsonschema.Draft7Validator
) -> None:
    catalog = load_catalog(variants(tmp_path / "c"))
    jobs = check_pipeline(render_pipeline(catalog, options()), catalog, schema_validator).jobs
    refs = ["rt/python:py311-cpu", "rt/python:py311-cuda", "rt/python:py312-cpu"]
    for ref in [*refs, "rt/python:py312-cuda"]:
        assert f"build:{ref}" in jobs and f"promote:prod:{ref}" in jobs
    svc = jobs["build:apps/svc"]
    assert svc["needs"][1]["job"] == "build:rt/python:py312-cuda"
    assert jobs["test:rt/python:py312-cuda"]["artifacts"]["reports"]["junit"] == (
        ".imagefactory/junit-rt_python_py312-cuda.xml"
    )


def test_every_artifact_lies_in_the_work_folder(tmp_path: Path) -> None:
    """The push job gets all of the test job's artifacts, and in CI it refuses a checkout with
    a file git does not ignore (imagefactory's work folder aside): a JUnit report at the root
    (``junit-<slug>.xml``, as before) made every CI push of a catalog without a gitignore rule
    for it fail."""
    catalog = load_catalog(example(tmp_path / "c"))
    jobs = pipeline(catalog, options())
    paths = [
        path
        for name, job in jobs.items()
        if name != "stages"
        for path in job.get("artifacts", {}).get("paths", [])
    ]
    assert paths and all(path.startswith(".imagefactory/") for path in paths), paths
    test = jobs["test:app/rag-api"]
    assert test["artifacts"]["paths"] == [
        ".imagefactory/state.json",
        ".imagefactory/junit-app_rag-api.xml",
    ]
    assert test["script"] == [
        "imagefactory test app/rag-api --junit .imagefactory/junit-app_rag-api.xml"
    ]


def test_output_is_byte_identical(tmp_path: Path) -> None:
    """Same catalog → same bytes: rendered twice, and from a copy in another folder."""
    first = load_catalog(example(tmp_path / "a"))
    second = load_catalog(example(tmp_path / "elsewhere" / "b"))
    text = render_pipeline(first, options())
    assert render_pipeline(first, options()) == text
    assert render_pipeline(second, options()) == text
    assert str(tmp_path) not in text


def test_a_catalog_without_environments_is_refused(tmp_path: Path) -> None:
    catalog = load_catalog(write_catalog(tmp_path / "c", {"a/b": BOOTSTRAP}, "project: p\n"))
    with pytest.raises(UserError, match="no environments"):
        render_pipeline(catalog, options())


# --------------------------------------------------------------------------- release jobs


def test_release_jobs_of_the_example(tmp_path: Path) -> None:
    catalog = load_catalog(example(tmp_path / "c"))
    jobs = pipeline(catalog, options())
    push = jobs["push:app/rag-api"]
    assert push["needs"] == [
        {"job": "test:app/rag-api", "artifacts": True},
        {"job": "push:runtime/llm:cpu", "artifacts": False, "optional": True},
    ]
    assert push["environment"] == {"name": "dev/app_rag-api", "deployment_tier": "development"}
    assert push["resource_group"] == "push-app_rag-api"
    assert push["script"] == ["imagefactory push app/rag-api"]
    assert all("when" not in rule for rule in push["rules"][1:])  # dev: automatic
    assert push["artifacts"] == {
        "paths": [".imagefactory/state.json", ".imagefactory/audit.jsonl"],
        "expire_in": "1 year",
    }
    preprod = jobs["promote:preprod:app/rag-api"]
    assert preprod["needs"] == [{"job": "push:app/rag-api", "artifacts": True}]
    assert preprod["environment"] == {"name": "preprod/app_rag-api", "deployment_tier": "staging"}
    assert preprod["resource_group"] == "promote-preprod-app_rag-api"
    prod = jobs["promote:prod:app/rag-api"]
    assert prod["needs"] == [{"job": "promote:preprod:app/rag-api", "artifacts": True}]
    # prod needs an approval and does not set protected_per_image: the one protected prod
    assert prod["environment"] == {"name": "prod", "deployment_tier": "production"}
    assert prod["resource_group"] == "promote-prod-app_rag-api"
    assert prod["artifacts"] == push["artifacts"]
    assert prod["script"] == ["imagefactory promote app/rag-api --to prod"]
    for job in (preprod, prod):
        assert job["rules"][0] == {"if": SCHEDULE, "when": "never"}
        assert all(r["when"] == "manual" and r["allow_failure"] is True for r in job["rules"][1:])
    for job in (push, preprod, prod):  # releases only from tags and the default branch
        assert [r["if"] for r in job["rules"]] == [
            SCHEDULE,
            "$CI_COMMIT_TAG",
            "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH",
        ]
        assert job["interruptible"] is False


def release_jobs(jobs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: j for n, j in jobs.items() if n.startswith(("push:", "promote:"))}


@pytest.mark.parametrize("name", sorted(CATALOGS))
def test_every_image_deploys_to_environments_and_resource_groups_of_its_own(
    tmp_path: Path, name: str
) -> None:
    """One shared ``prod`` environment (and ``promote-prod`` group) let a newer pipeline of image
    B make an older pipeline's pending prod promotion of image A outdated ("prevent outdated
    deployment jobs"): each (environment, image) is now its own GitLab environment and group."""
    catalog = load_catalog(CATALOGS[name](tmp_path / name))
    jobs = release_jobs(pipeline(catalog, options()))
    groups = [job["resource_group"] for job in jobs.values()]
    # the job image (ci.job_image): the pipeline does not build it, nor release it
    built = [ref for ref in catalog.images if ref != catalog.project.ci.job_image]
    count = len(catalog.project.environments) * len(built)
    assert len(set(groups)) == len(jobs) == count
    first = catalog.project.environments[0].name
    approval = {e.name for e in catalog.project.environments if e.approval}
    for job_name, job in jobs.items():
        if job_name.startswith("push:"):  # push:<ref>; a ref may hold a ":" of its own
            env, ref = first, job_name.removeprefix("push:")
        else:  # promote:<env>:<ref>
            env, _, ref = job_name.removeprefix("promote:").partition(":")
        slug = ref_slug(ref)
        # an approval environment without protected_per_image: its one protected environment
        assert job["environment"]["name"] == (env if env in approval else f"{env}/{slug}")
        expected_group = f"push-{slug}" if job_name.startswith("push:") else f"promote-{env}-{slug}"
        assert job["resource_group"] == expected_group


def test_the_gate_takes_the_image_s_own_prod_job_as_approval_and_no_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``protected_per_image`` the prod jobs deploy to the images' own environments, and
    the one GitLab gives the prod job (CI_ENVIRONMENT_NAME) is the one the gate accepts for that
    image; another image's does not approve it."""
    root = example(tmp_path / "c")
    path = root / "imagefactory.yaml"
    path.write_text(
        path.read_text().replace(
            "approval: true\n", "approval: true\n    protected_per_image: true\n"
        )
    )
    catalog = load_catalog(root)
    jobs = pipeline(catalog, options())
    own = jobs["promote:prod:app/rag-api"]["environment"]["name"]
    other = jobs["promote:prod:runtime/llm:cpu"]["environment"]["name"]
    assert own == "prod/app_rag-api"
    _, prod = catalog.environment("prod")
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("GITLAB_CI", "true")
    monkeypatch.setenv("CI_COMMIT_REF_PROTECTED", "true")
    monkeypatch.setenv("GITLAB_USER_LOGIN", "release-manager")
    monkeypatch.setenv("CI_ENVIRONMENT_NAME", own)
    approve = {"approve": False, "named": None}
    assert gate.approver(prod, root, ref="app/rag-api", **approve) == "release-manager"
    monkeypatch.setenv("CI_ENVIRONMENT_NAME", other)
    assert gate.approver(prod, root, ref="app/rag-api", **approve) is None
    monkeypatch.setenv("CI_ENVIRONMENT_NAME", "prod")  # a hand-written job deploying to prod
    assert gate.approver(prod, root, ref="app/rag-api", **approve) == "release-manager"


def test_without_protected_per_image_a_per_image_job_never_approves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitLab protects environments by exact name: a job deploying to ``prod/<image>`` that
    nobody protected could be run by any developer, so only ``prod`` itself approves."""
    root = example(tmp_path / "c")
    catalog = load_catalog(root)
    assert pipeline(catalog, options())["promote:prod:app/rag-api"]["environment"]["name"] == "prod"
    _, prod = catalog.environment("prod")
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("GITLAB_CI", "true")
    monkeypatch.setenv("CI_COMMIT_REF_PROTECTED", "true")
    monkeypatch.setenv("GITLAB_USER_LOGIN", "developer")
    monkeypatch.setenv("CI_ENVIRONMENT_NAME", "prod/app_rag-api")
    assert gate.approver(prod, root, approve=False, named=None, ref="app/rag-api") is None


def test_artifacts_a_manual_job_needs_outlive_gitlab_s_default_expiry(tmp_path: Path) -> None:
    """A manual promotion in an old pipeline takes the state file from the job before it;
    GitLab refuses to run a job whose needed artifacts expired (instance default: 30 days)."""
    assert RELEASE_ARTIFACTS_EXPIRE_IN == "1 year"
    jobs = pipeline(load_catalog(example(tmp_path / "c")), options())
    manual = {
        name: job
        for name, job in jobs.items()
        if name != "stages" and any(r.get("when") == "manual" for r in job.get("rules", []))
    }
    assert manual and all(name.startswith("promote:") for name in manual)
    for name, job in manual.items():
        for need in job["needs"]:
            assert need["artifacts"] is True
            needed = jobs[need["job"]]
            assert needed["artifacts"]["expire_in"] == RELEASE_ARTIFACTS_EXPIRE_IN, name
    for name, job in release_jobs(jobs).items():  # each may be the one the next manual job needs
        assert job["artifacts"]["expire_in"] == RELEASE_ARTIFACTS_EXPIRE_IN, name


def header(text: str) -> list[str]:
    return [line[2:] for line in text.splitlines() if line.startswith("# ")]


def test_the_header_names_every_variable_the_jobs_read_build_secrets_included(
    tmp_path: Path,
) -> None:
    """Without its build secret's variable a build job fails (build/run.py reads the value from
    the job's environment; as_env hands it to pip): the header must say to set it."""
    root = example(tmp_path / "c")
    runtime = root / "images/runtime/llm/image.yaml"
    runtime.write_text(
        runtime.read_text()
        + "secrets:\n"
        + "  - {id: pip-index, env: PIP_INDEX_SECRET, as_env: PIP_INDEX_URL}\n"
        + "  - {id: netrc, file: /etc/ci/netrc, required: false}\n"
    )
    lines = header(render_pipeline(load_catalog(root), options()))
    assert lines[3:10] == [
        "CI/CD variables the jobs read (Settings → CI/CD → Variables):",
        "  IMAGEFACTORY_CI_IMAGE: optional, the job image (default: the catalog's tools/ci in dev,"
        " which this pipeline does not build; pin it by digest)",
        "  IMAGEFACTORY_DIND_IMAGE: optional, the engine service (default docker:27-dind; pin it"
        " by digest)",
        "  IMAGEFACTORY_REGISTRY_PASSWORD, IMAGEFACTORY_REGISTRY_USER (masked): registry logins",
        "  IMAGEFACTORY_CATALOG_REGISTRY, IMAGEFACTORY_DEV_NAMESPACE, IMAGEFACTORY_PREPROD_NAMESPACE,"
        " IMAGEFACTORY_PROD_NAMESPACE: optional, registry hosts and namespaces (replace url /"
        " namespace)",
        "  PIP_INDEX_SECRET (masked): build secret pip-index (runtime/llm:cpu, runtime/llm:cuda)",
        "Files the build jobs read (build secrets by file; relative to the catalog):",
    ]
    assert (
        lines[10]
        == "  /etc/ci/netrc: build secret netrc (runtime/llm:cpu, runtime/llm:cuda), optional"
    )
    host = header(render_pipeline(load_catalog(root), options("host")))
    assert (
        "  PIP_INDEX_SECRET (masked): build secret pip-index (runtime/llm:cpu, runtime/llm:cuda)"
        in host
    )
    assert not any("IMAGEFACTORY_CI_IMAGE" in line for line in host)  # no job image on a host
    assert not any("IMAGEFACTORY_DIND_IMAGE" in line for line in host)  # nor a service


def test_a_hostile_secret_file_path_stays_in_the_header_comment(tmp_path: Path) -> None:
    root = example(tmp_path / "c")
    plain = yaml.safe_load(render_pipeline(load_catalog(root), options()))
    runtime = root / "images/runtime/llm/image.yaml"
    hostile = '/x: y" # ]]}} --- &a *a !!python/object:os.system'
    runtime.write_text(runtime.read_text() + f"secrets: [{{id: s, file: '{hostile}'}}]\n")
    text = render_pipeline(load_catalog(root), options())
    assert f"#   {hostile}: build secret s (runtime/llm:cpu, runtime/llm:cuda)\n" in text
    assert yaml.safe_load(text) == plain  # a comment, whatever it holds


def test_the_header_names_the_gitops_token_when_promotions_open_merge_requests(
    tmp_path: Path,
) -> None:
    root = example(tmp_path / "c")
    shutil.copy(REPO / "gitops.yaml", root / "gitops.yaml")
    text = (root / "gitops.yaml").read_text()
    assert "mode: merge_request" in text and "token_env: GITLAB_TOKEN" in text
    lines = header(render_pipeline(load_catalog(root), options()))
    assert "  GITLAB_TOKEN (masked): GitOps merge requests (promote jobs)" in lines
    (root / "gitops.yaml").write_text(text.replace("mode: merge_request", "mode: push"))
    lines = header(render_pipeline(load_catalog(root), options()))
    assert not any("GITLAB_TOKEN" in line for line in lines)  # pushes need no GitLab token


def test_auto_promotes_an_environment_on_the_default_branch(tmp_path: Path) -> None:
    catalog = load_catalog(example(tmp_path / "c"))
    jobs = pipeline(catalog, options(auto=("preprod",)))
    assert all("when" not in r for r in jobs["promote:preprod:app/rag-api"]["rules"][1:])
    assert all(r["when"] == "manual" for r in jobs["promote:prod:app/rag-api"]["rules"][1:])


@pytest.mark.parametrize(
    ("auto", "message"),
    [
        ("nowhere", "no environment 'nowhere'"),
        ("prod", "needs an approval"),
        ("dev", "first environment"),
    ],
)
def test_auto_refuses_what_cannot_be_automatic(tmp_path: Path, auto: str, message: str) -> None:
    catalog = load_catalog(example(tmp_path / "c"))
    with pytest.raises(UserError, match=message):
        render_pipeline(catalog, options(auto=(auto,)))


def test_unknown_builder_is_refused_by_the_renderer(tmp_path: Path) -> None:
    catalog = load_catalog(example(tmp_path / "c"))
    with pytest.raises(UserError, match="unknown builder 'kaniko'") as caught:
        render_pipeline(catalog, options("kaniko"))
    assert caught.value.hint is not None and "archived" in caught.value.hint


def test_builders(tmp_path: Path) -> None:
    catalog = load_catalog(example(tmp_path / "c"))
    dind = pipeline(catalog, options("dind"))
    build = dind["build:app/rag-api"]
    # the service image is a variable: the job's default, which a CI/CD variable overrides
    assert build["services"] == [{"name": "$IMAGEFACTORY_DIND_IMAGE", "alias": "docker"}]
    assert build["variables"] == {
        "IMAGEFACTORY_DIND_IMAGE": "docker:27-dind",
        "DOCKER_HOST": "tcp://docker:2376",
        "DOCKER_TLS_CERTDIR": "/certs",
        "DOCKER_CERT_PATH": "/certs/client",
        "DOCKER_TLS_VERIFY": "1",
    }
    assert dind["test:app/rag-api"]["services"] == build["services"]
    assert "services" not in dind["push:app/rag-api"]  # skopeo needs no engine
    rootless = pipeline(catalog, options("rootless"))
    for job in ("build:app/rag-api", "test:app/rag-api"):  # tests run containers too
        assert rootless[job]["services"] == build["services"]
        assert rootless[job]["variables"] == {
            **build["variables"],
            "IMAGEFACTORY_DIND_IMAGE": "docker:27-dind-rootless",
        }
    assert "services" not in rootless["push:app/rag-api"]
    host = pipeline(catalog, options("host"))
    for job in host.values():
        if isinstance(job, dict):
            assert not {"image", "services", "variables"} & set(job)
    assert "kaniko" not in render_pipeline(catalog, options("rootless"))


# --------------------------------------------------------------------------- rules, evaluated


def glob_regex(pattern: str) -> re.Pattern[str]:
    """GitLab's rules:changes globs (File.fnmatch with FNM_PATHNAME | FNM_DOTMATCH)."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


@dataclass(frozen=True)
class Context:
    branch: str | None = "main"
    tag: str | None = None
    pushed: tuple[str, ...] = ()  # files the push changed (default branch)
    against_default: tuple[str, ...] = ()  # files that differ from the default branch
    source: str = "push"  # $CI_PIPELINE_SOURCE


def evaluate(job: dict[str, Any], context: Context) -> str:
    """The ``when`` of the first matching rule, "never" when none matches (as GitLab does)."""
    if "rules" not in job:
        return "on_success"
    for rule in job["rules"]:
        condition = rule.get("if")
        if condition == "$CI_COMMIT_TAG" and not context.tag:
            continue
        if condition == "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" and context.branch != "main":
            continue
        if condition == SCHEDULE and context.source != "schedule":
            continue
        assert condition in (
            None,
            "$CI_COMMIT_TAG",
            "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH",
            SCHEDULE,
        )
        if "changes" in rule:
            changes = rule["changes"]
            files = context.against_default if "compare_to" in changes else context.pushed
            assert changes.get("compare_to", "refs/heads/$CI_DEFAULT_BRANCH") == (
                "refs/heads/$CI_DEFAULT_BRANCH"
            )
            patterns = [glob_regex(p) for p in changes["paths"]]
            # without a push to compare with (a tag, a schedule), GitLab takes changes as true
            pushless = context.tag is not None or context.source == "schedule"
            if not pushless and not any(p.fullmatch(f) for p in patterns for f in files):
                continue
        return str(rule.get("when", "on_success"))
    return "never"


def created(jobs: dict[str, Any], context: Context) -> dict[str, str]:
    result = {
        name: evaluate(job, context)
        for name, job in jobs.items()
        if name not in ("stages", "variables")
    }
    return {name: when for name, when in result.items() if when != "never"}


@pytest.fixture
def example_jobs(tmp_path: Path) -> dict[str, Any]:
    return pipeline(load_catalog(example(tmp_path / "c")), options(templates="templates"))


def test_a_change_to_the_app_builds_only_the_app_and_its_shell_less_child(
    example_jobs: dict[str, Any],
) -> None:
    jobs = created(example_jobs, Context(pushed=("images/app/rag-api/app/rag_api/main.py",)))
    assert jobs == {
        VALIDATE_JOB: "on_success",
        **{
            job: when
            for ref in ("app/rag-api", SHELL_LESS)
            for job, when in {
                f"build:{ref}": "on_success",
                f"test:{ref}": "on_success",
                f"push:{ref}": "on_success",
                f"promote:preprod:{ref}": "manual",
                f"promote:prod:{ref}": "manual",
            }.items()
        },
    }


@pytest.mark.parametrize(
    "changed",
    [
        "images/base/debian12/image.yaml",
        "templates/dockerfile/Dockerfile.j2",
        "imagefactory.yaml",
        "refresh.yaml",  # the jobs run; the content hashes rebuild only what it names
    ],
)
def test_a_change_below_everything_rebuilds_everything(
    example_jobs: dict[str, Any], changed: str
) -> None:
    jobs = created(example_jobs, Context(pushed=(changed,)))
    for ref in EXAMPLE_REFS:
        assert jobs[f"build:{ref}"] == jobs[f"push:{ref}"] == "on_success"
        assert jobs[f"promote:prod:{ref}"] == "manual"


def test_a_change_to_the_runtime_spares_the_base(example_jobs: dict[str, Any]) -> None:
    jobs = created(example_jobs, Context(pushed=("images/runtime/llm/image.yaml",)))
    builds = sorted(name for name in jobs if name.startswith("build:"))
    assert builds == [
        "build:app/rag-api",
        f"build:{SHELL_LESS}",
        "build:runtime/llm:cpu",
        "build:runtime/llm:cuda",
    ]


def test_a_scheduled_pipeline_checks_freshness_and_releases_nothing(
    example_jobs: dict[str, Any],
) -> None:
    """A schedule has no push: rules:changes is true there, so without the first rule of every
    image job a nightly schedule would rebuild and release every image."""
    jobs = created(example_jobs, Context(source="schedule"))
    assert jobs == {
        VALIDATE_JOB: "on_success", OUTDATED_JOB: "on_success", REFRESH_JOB: "on_success"
    }  # fmt: skip
    outdated = example_jobs[OUTDATED_JOB]
    assert outdated["script"] == ["imagefactory outdated"]
    assert outdated["needs"] == [{"job": VALIDATE_JOB, "artifacts": False}]
    assert "services" in outdated  # an SBOM not attested is computed from the image
    refresh = example_jobs[REFRESH_JOB]
    # the job image (ci.job_image) is left out: the pipeline does not build it
    assert refresh["script"] == [
        "imagefactory build --refresh --all --exclude tools/ci --merge-request"
    ]
    assert refresh["needs"] == [{"job": OUTDATED_JOB, "artifacts": False}]
    assert refresh["stage"] == "build" and "services" in refresh
    pushed = created(example_jobs, Context(pushed=("imagefactory.yaml",)))
    assert OUTDATED_JOB not in pushed and REFRESH_JOB not in pushed


def test_no_changed_image_leaves_a_valid_pipeline(example_jobs: dict[str, Any]) -> None:
    assert created(example_jobs, Context(pushed=("README.md", "docs/catalog.md"))) == {
        VALIDATE_JOB: "on_success"
    }


def test_feature_branches_build_and_test_but_never_release(example_jobs: dict[str, Any]) -> None:
    context = Context(
        branch="feature/x",
        pushed=("README.md",),  # the last push alone would miss the branch's earlier commits
        against_default=("images/app/rag-api/image.yaml",),
    )
    assert created(example_jobs, context) == {
        VALIDATE_JOB: "on_success",
        "build:app/rag-api": "on_success",
        "test:app/rag-api": "on_success",
        f"build:{SHELL_LESS}": "on_success",
        f"test:{SHELL_LESS}": "on_success",
    }


def test_the_default_branch_never_compares_with_itself(example_jobs: dict[str, Any]) -> None:
    """On main, `compare_to: main` would see no change: only the pushed files count there."""
    context = Context(pushed=(), against_default=("images/app/rag-api/image.yaml",))
    assert created(example_jobs, context) == {VALIDATE_JOB: "on_success"}


def test_tags_build_everything_and_promote_by_hand(example_jobs: dict[str, Any]) -> None:
    jobs = created(example_jobs, Context(branch=None, tag="v1"))
    # all but "stages", "variables" and the two scheduled jobs
    assert len(jobs) == len(example_jobs) - 4
    assert {when for name, when in jobs.items() if name.startswith("promote:")} == {"manual"}
    assert {when for name, when in jobs.items() if not name.startswith("promote:")} == {
        "on_success"
    }


# --------------------------------------------------------------------------- paths


def test_playbooks_and_a_repository_ca_bundle_are_change_paths(tmp_path: Path) -> None:
    root = write_catalog(
        tmp_path / "c",
        {"base/os": BOOTSTRAP + "playbooks: [ansible/harden.yml]\n", "apps/a": "from: base/os\n"},
        PROJECT + "build: {ca_bundle: certs/ca.pem}\n",
    )
    (root / "ansible").mkdir()
    (root / "ansible" / "harden.yml").write_text("- hosts: all\n")
    (root / "certs").mkdir()
    shutil.copy(Path(__file__).parent / "fixtures" / "ca.pem", root / "certs" / "ca.pem")
    jobs = pipeline(load_catalog(root), options())
    assert paths_of(jobs["build:apps/a"]) == [
        "images/apps/a/**/*",
        "images/base/os/**/*",
        "ansible/harden.yml",
        "ansible/harden.yml/**/*",
        "certs/ca.pem",
        "imagefactory.yaml",
        "refresh.yaml",  # its records are inputs of the images they name
    ]
    (root / "ansible" / "roles" / "hardening").mkdir(
        parents=True
    )  # roles are hashed: a change path
    jobs = pipeline(load_catalog(root), options())
    assert "ansible/roles/**/*" in paths_of(jobs["build:apps/a"])


def test_a_catalog_in_a_subfolder_of_the_repository(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()  # the repository root, as the CLI finds it
    root = single(tmp_path / "platform" / "catalog")
    result = run("-C", root, "ci", "generate")
    assert result.exit_code == 0, result.output
    jobs = yaml.safe_load(result.stdout)
    build = jobs["build:base/minimal"]
    assert build["script"] == ["imagefactory -C platform/catalog build base/minimal"]
    assert paths_of(build) == [
        "platform/catalog/images/base/minimal/**/*",
        "platform/catalog/imagefactory.yaml",
        "platform/catalog/refresh.yaml",
    ]
    assert build["artifacts"]["paths"] == ["platform/catalog/.imagefactory/state.json"]
    assert jobs[VALIDATE_JOB]["script"] == ["imagefactory -C platform/catalog validate"]
    # --junit is read from the job's folder (the repository root), as the artifact paths are
    junit = "platform/catalog/.imagefactory/junit-base_minimal.xml"
    test = jobs["test:base/minimal"]
    assert test["script"] == [f"imagefactory -C platform/catalog test base/minimal --junit {junit}"]
    assert test["artifacts"]["reports"]["junit"] == junit


# --------------------------------------------------------------------------- CLI


def test_cli_prints_the_pipeline(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "ci", "generate")
    assert result.exit_code == 0, result.output
    expected = render_pipeline(load_catalog(catalog_dir), options())
    assert result.stdout == expected
    assert result.stderr == ""


def test_cli_writes_then_checks(catalog_dir: Path) -> None:
    out = catalog_dir / "ci" / "pipeline.yml"
    result = run("-C", catalog_dir, "ci", "generate", "--out", "ci/pipeline.yml")
    assert result.exit_code == 0, result.output
    assert "28 jobs" in result.stdout
    text = out.read_text()
    assert "# Generated by `imagefactory ci generate --builder dind --out ci/pipeline.yml`" in text
    check = run("-C", catalog_dir, "ci", "generate", "--out", "ci/pipeline.yml", "--check")
    assert check.exit_code == 0, check.output
    assert "up to date" in check.stdout
    again = run("-C", catalog_dir, "ci", "generate", "--out", "ci/pipeline.yml")
    assert again.exit_code == 0 and out.read_text() == text


def test_check_fails_when_stale_and_writes_nothing(catalog_dir: Path, edit: Edit) -> None:
    run("-C", catalog_dir, "ci", "generate", "--out", "pipeline.yml")
    before = (catalog_dir / "pipeline.yml").read_text()
    edit(APP, "from: runtime/llm:cpu", "from: runtime/llm:cuda")
    result = run("-C", catalog_dir, "ci", "generate", "--out", "pipeline.yml", "--check")
    assert result.exit_code == 1
    assert "is stale" in result.stderr
    assert "imagefactory ci generate --builder dind --out pipeline.yml" in result.stderr
    assert (catalog_dir / "pipeline.yml").read_text() == before


def test_check_fails_for_another_builder(catalog_dir: Path) -> None:
    run("-C", catalog_dir, "ci", "generate", "--out", "pipeline.yml")
    args = ("ci", "generate", "--out", "pipeline.yml", "--check", "--builder", "rootless")
    assert run("-C", catalog_dir, *args).exit_code == 1


def test_check_of_a_file_that_is_not_utf8(catalog_dir: Path) -> None:
    (catalog_dir / "pipeline.yml").write_bytes(b"\xff\xfe not a pipeline\n")
    result = run("-C", catalog_dir, "ci", "generate", "--out", "pipeline.yml", "--check")
    assert result.exit_code == 1  # stale, not a decoding traceback
    assert "is stale" in result.stderr


def test_check_of_a_missing_file(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "ci", "generate", "--out", "nope.yml", "--check", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)  # one document, the error in it
    assert document["ok"] is False and document["stale"] is True
    assert "is missing" in document["error"]
    assert not (catalog_dir / "nope.yml").exists()


def test_check_needs_a_file(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "ci", "generate", "--check")
    assert result.exit_code == 2
    assert "--out" in result.output


@pytest.mark.parametrize(
    ("builder", "why"),
    [
        ("kaniko", "archived"),
        ("buildkit", "cannot start the containers image tests need"),
        ("docker", None),
        ("", None),
    ],
)
def test_unknown_builder_fails_before_writing(
    catalog_dir: Path, builder: str, why: str | None
) -> None:
    result = run("-C", catalog_dir, "ci", "generate", "--builder", builder, "--out", "p.yml")
    assert result.exit_code == 2
    assert "dind, rootless, host" in result.output
    if why is not None:
        assert why in result.output
    assert not (catalog_dir / "p.yml").exists()


@pytest.mark.parametrize(
    ("auto", "message"),
    [("staging", "no environment 'staging'"), ("prod", "needs an approval")],
)
def test_bad_environment_fails_before_writing(catalog_dir: Path, auto: str, message: str) -> None:
    (catalog_dir / "p.yml").write_text("kept\n")
    result = run("-C", catalog_dir, "ci", "generate", "--auto", auto, "--out", "p.yml")
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert (catalog_dir / "p.yml").read_text() == "kept\n"


def test_invalid_catalog_fails_before_writing(catalog_dir: Path, edit: Edit) -> None:
    edit(APP, "version: 0.3.0", "version: 0.3")
    result = run("-C", catalog_dir, "ci", "generate", "--out", "p.yml")
    assert result.exit_code == 1
    assert "0.3" in result.stderr
    assert not (catalog_dir / "p.yml").exists()


def test_json_output(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "ci", "generate", "--out", "p.yml", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["written"] is True
    assert document["builder"] == "dind"
    assert document["jobs"][0] == VALIDATE_JOB
    assert len(document["jobs"]) == 28
    printed = json.loads(run("-C", catalog_dir, "ci", "generate", "--json").stdout)
    assert printed["pipeline"] == (catalog_dir / "p.yml").read_text().replace(
        "--builder dind --out p.yml", "--builder dind"
    )


def test_ci_help_has_examples() -> None:
    result = run("ci", "generate", "--help")
    assert result.exit_code == 0
    assert "imagefactory ci generate" in result.stdout
    assert "dind" in result.stdout and "rootless" in result.stdout


# --------------------------------------------------------------------------- this repository


def test_the_committed_child_pipeline_is_up_to_date() -> None:
    """ci/catalog-pipeline.yml is the example catalog's pipeline; regenerate it when stale:
    imagefactory ci generate --builder dind --out ci/catalog-pipeline.yml"""
    result = run("-C", REPO, "ci", "generate", "--builder", "dind", "--out", COMMITTED, "--check")
    assert result.exit_code == 0, result.output


def test_the_repository_pipeline_includes_it_as_a_child(
    schema_validator: jsonschema.Draft7Validator,
) -> None:
    document = yaml.safe_load((REPO / ".gitlab-ci.yml").read_text())
    assert not list(schema_validator.iter_errors(document))
    triggers = [job for job in document.values() if isinstance(job, dict) and "trigger" in job]
    assert len(triggers) == 1
    assert triggers[0]["trigger"] == {
        "include": [{"local": COMMITTED}],
        "strategy": "depend",
    }
    # opt-in: its registries are the project file's URLs (127.0.0.1:5000), which a job
    # container of a GitLab runner does not reach
    assert triggers[0]["rules"] == [{"if": '$IMAGEFACTORY_CATALOG_PIPELINE == "true"'}]
    scripts = " ".join(
        line for job in document.values() if isinstance(job, dict) for line in job.get("script", [])
    )
    for tool in ("ruff check", "ruff format --check", "mypy", "tests/unit", "tests/integration"):
        assert tool in scripts
    child = (REPO / COMMITTED).read_text()
    catalog = load_catalog(REPO)
    check_pipeline(child, catalog, schema_validator)
    assert "templates/dockerfile/**/*" in child  # the repository holds the standard templates
