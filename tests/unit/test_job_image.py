"""``ci.job_image``: the generated pipeline's default job image is the catalog's own tools image,
its version in the first environment, and the pipeline (which runs in it) does not build it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from imagefactory.errors import SpecError
from imagefactory.render.gitlab_ci import (
    PipelineOptions,
    default_job_image,
    pipeline,
    render_pipeline,
)
from imagefactory.spec.loader import load_catalog

from .conftest import REPO, Edit

EXAMPLE_DEFAULT = "${IMAGEFACTORY_CATALOG_REGISTRY}/${IMAGEFACTORY_DEV_NAMESPACE}/tools/ci:1.0.0"


def test_the_example_runs_its_jobs_in_its_tools_image(catalog_dir: Path) -> None:
    catalog = load_catalog(catalog_dir)
    data = pipeline(catalog, PipelineOptions())
    assert data["variables"] == {"IMAGEFACTORY_CI_IMAGE": EXAMPLE_DEFAULT}
    jobs = {name: job for name, job in data.items() if name not in ("stages", "variables")}
    assert all(job["image"] == "$IMAGEFACTORY_CI_IMAGE" for job in jobs.values())
    assert not [name for name in jobs if "tools/ci" in name]  # it runs them; it is not built here
    for ref in ("base/debian12", "app/rag-api"):  # the others keep every job
        assert {f"build:{ref}", f"test:{ref}", f"push:{ref}", f"promote:prod:{ref}"} <= set(jobs)
    text = render_pipeline(catalog, PipelineOptions())
    assert yaml.safe_load(text)["variables"] == data["variables"]
    assert (
        "IMAGEFACTORY_CI_IMAGE: optional, the job image (default: the catalog's tools/ci in dev, "
        "which this pipeline does not build; pin it by digest)"
    ) in text


def test_a_registry_without_variables_gives_its_literal_place(
    catalog_dir: Path, edit: Edit
) -> None:
    for line in (
        "    url_env: IMAGEFACTORY_CATALOG_REGISTRY     # set: replaces url (the CI child pipeline: $CI_REGISTRY)\n",
        "    namespace_env: IMAGEFACTORY_DEV_NAMESPACE\n",
    ):  # fmt: skip
        edit("imagefactory.yaml", line, "")
    catalog = load_catalog(catalog_dir)
    assert default_job_image(catalog) == "127.0.0.1:5000/bank-ai-lab/dev/tools/ci:1.0.0"


def test_a_variant_is_tagged_with_its_suffix(catalog_dir: Path, edit: Edit) -> None:
    edit("imagefactory.yaml", "job_image: tools/ci", "job_image: runtime/llm:cuda")
    catalog = load_catalog(catalog_dir)
    assert default_job_image(catalog) == EXAMPLE_DEFAULT.replace(
        "tools/ci:1.0.0", "runtime/llm:1.0.0-cuda"
    )
    jobs = pipeline(catalog, PipelineOptions())
    assert "build:runtime/llm:cuda" not in jobs and "build:tools/ci" in jobs


def test_without_a_job_image_the_pipeline_names_none_and_builds_everything(
    catalog_dir: Path, edit: Edit
) -> None:
    edit("imagefactory.yaml", "ci:\n  job_image: tools/ci\n", "")
    catalog = load_catalog(catalog_dir)
    assert default_job_image(catalog) is None
    jobs = pipeline(catalog, PipelineOptions())
    assert "variables" not in jobs and "build:tools/ci" in jobs
    text = render_pipeline(catalog, PipelineOptions())
    assert "IMAGEFACTORY_CI_IMAGE: the job image (imagefactory, the Docker CLI" in text


def test_a_host_pipeline_has_no_job_image(catalog_dir: Path) -> None:
    jobs = pipeline(load_catalog(catalog_dir), PipelineOptions(builder="host"))
    assert "variables" not in jobs and "build:tools/ci" not in jobs


@pytest.mark.parametrize(("named", "hint"), [("tools/cii", "did you mean 'tools/ci'?"),
                                              ("nothing/here", "name an image of the catalog")])  # fmt: skip
def test_validate_refuses_a_job_image_the_catalog_lacks(
    catalog_dir: Path, edit: Edit, named: str, hint: str
) -> None:
    edit("imagefactory.yaml", "job_image: tools/ci", f"job_image: {named}")
    with pytest.raises(SpecError) as caught:
        load_catalog(catalog_dir)
    [issue] = caught.value.issues
    assert (issue.key_path, issue.message) == ("ci.job_image", f"no catalog image '{named}'")
    assert issue.hint is not None and hint in issue.hint and issue.line is not None


def test_the_scheduled_refresh_leaves_the_job_image_out(catalog_dir: Path) -> None:
    jobs = pipeline(load_catalog(catalog_dir), PipelineOptions())
    assert jobs["catalog:refresh"]["script"] == [
        "imagefactory build --refresh --all --exclude tools/ci --merge-request"
    ]


def test_the_tools_image_pins_exactly_the_dependencies_of_imagefactory() -> None:
    """The wheel goes in without dependencies: ``pip:`` of tools/ci names each of
    pyproject.toml's, with its extras, at a version its specifier takes, and nothing else (the
    build's ``pip check`` would find a miss only in the integration test)."""
    wanted = {
        canonicalize_name(r.name): r
        for r in map(
            Requirement,
            tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"],
        )
    }
    spec = load_catalog(REPO).images["tools/ci"].spec
    pinned = {canonicalize_name(r.name): r for r in map(Requirement, spec.pip)}
    assert sorted(pinned) == sorted(wanted)
    for name, requirement in wanted.items():
        [pin] = pinned[name].specifier
        assert pin.operator == "==", pinned[name]
        assert requirement.specifier.contains(pin.version), (requirement, pin)
        assert requirement.extras <= pinned[name].extras, (requirement, pinned[name])
    assert spec.wheels == ["dist/imagefactory-*.whl"]
