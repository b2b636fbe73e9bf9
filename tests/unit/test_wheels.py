"""``wheels:``: the grammar, what validate refuses (a folder that leads out, a match that is not a
plain file with a wheel's name), what build refuses (no match, two wheels of one distribution),
the content hash, the Dockerfile and the build context. The example's tools/ci names
``dist/imagefactory-*.whl``; a clean checkout has no wheel there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagefactory.build.catalog import check_wheels
from imagefactory.errors import SpecError, UserError
from imagefactory.project.hashing import content_inputs
from imagefactory.render.dockerfile import ParentPin, render_dockerfile, write_build_context
from imagefactory.spec.grammar import wheel_pattern
from imagefactory.spec.loader import load_catalog

from .conftest import Edit
from .helpers import run

TOOLS = "tools/ci"
DIST = "images/tools/ci/dist"
WHEEL = "imagefactory-9.9.9-py3-none-any.whl"
PARENT = ParentPin("127.0.0.1:5000/bank-ai-lab/dev/base/debian12@sha256:" + "b" * 64, "b", None)


def put_wheel(root: Path, name: str = WHEEL, content: bytes = b"PK wheel") -> Path:
    path = root / DIST / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "value", ["dist/imagefactory-*.whl", "x.whl", "a/b/c-1.0-py3-none-any.whl", "*.whl"]
)
def test_the_grammar_takes_relative_wheel_paths(value: str) -> None:
    assert wheel_pattern(value) == value


@pytest.mark.parametrize(
    "value",
    ["../x.whl", "/x.whl", "dist/*", "a*/b.whl", "./x.whl", "d/../x.whl", "x.whl\n", "d//x.whl",
     "x y.whl", ".whl", "x$(id).whl", "x;y.whl", "dist/[ab].whl"],
)  # fmt: skip
def test_the_grammar_refuses_what_is_not_a_wheel_in_the_folder(value: str) -> None:
    with pytest.raises(ValueError, match="is not a wheel file in the image folder"):
        wheel_pattern(value)


def test_validate_takes_a_wheel_that_is_not_built_yet(catalog_dir: Path) -> None:
    assert not (catalog_dir / DIST).exists()
    load_catalog(catalog_dir)  # no error: a clean checkout has no built wheel


def issue_at_wheels(root: Path) -> str:
    with pytest.raises(SpecError) as caught:
        load_catalog(root)
    [issue] = [i for i in caught.value.issues if i.key_path == "wheels[0]"]
    return issue.message


def test_validate_refuses_a_wheel_folder_that_leads_out(catalog_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / WHEEL).write_bytes(b"the runner's file")
    (catalog_dir / DIST).symlink_to(outside)
    assert "leads out of the image folder" in issue_at_wheels(catalog_dir)


def test_validate_refuses_a_matched_symlink(catalog_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("x")
    (catalog_dir / DIST).mkdir()
    (catalog_dir / DIST / WHEEL).symlink_to(tmp_path / "secret")
    assert "a symlink" in issue_at_wheels(catalog_dir)


@pytest.mark.parametrize("name", ["imagefactory-$(id).whl", "imagefactory-latest.whl"])
def test_validate_refuses_a_matched_name_that_is_not_a_wheel(catalog_dir: Path, name: str) -> None:
    put_wheel(catalog_dir, name)  # a shell would read the first; pip cannot name the second
    assert "is not a wheel file name" in issue_at_wheels(catalog_dir)


def test_build_refuses_a_missing_wheel_with_the_command_that_makes_it(catalog_dir: Path) -> None:
    catalog = load_catalog(catalog_dir)
    with pytest.raises(UserError) as caught:
        check_wheels(catalog, [catalog.images[TOOLS]])
    assert "'dist/imagefactory-*.whl' matches no file" in caught.value.message
    assert caught.value.message.startswith("images/tools/ci/image.yaml: tools/ci:")
    assert caught.value.hint is not None
    assert "pip wheel --no-deps --wheel-dir images/tools/ci/dist ." in caught.value.hint
    check_wheels(catalog, [catalog.images["app/rag-api"]])  # no wheels: nothing to refuse


def test_the_cli_build_refuses_it_before_it_builds_anything(catalog_dir: Path) -> None:
    result = run(catalog_dir, "build", TOOLS)
    assert result.exit_code == 1, result.output
    assert "matches no file" in result.output and "pip wheel --no-deps" in result.output
    assert "building" not in result.output


def test_build_refuses_two_wheels_of_one_distribution(catalog_dir: Path) -> None:
    put_wheel(catalog_dir)
    put_wheel(catalog_dir, "imagefactory-9.9.8-py3-none-any.whl")
    catalog = load_catalog(catalog_dir)
    with pytest.raises(UserError, match="are both imagefactory: keep one"):
        check_wheels(catalog, [catalog.images[TOOLS]])


def test_a_wheel_is_an_input_of_the_content_hash_and_only_of_its_image(catalog_dir: Path) -> None:
    before = content_inputs(load_catalog(catalog_dir))
    path = put_wheel(catalog_dir)
    built = content_inputs(load_catalog(catalog_dir))
    path.write_bytes(b"PK another build")
    rebuilt = content_inputs(load_catalog(catalog_dir))
    assert len({before[TOOLS].files, built[TOOLS].files, rebuilt[TOOLS].files}) == 3
    path.rename(path.with_name("imagefactory-9.9.10-py3-none-any.whl"))  # the name counts too
    assert content_inputs(load_catalog(catalog_dir))[TOOLS].files != rebuilt[TOOLS].files
    for ref in before:
        if ref != TOOLS:
            assert before[ref] == rebuilt[ref], ref


def test_an_image_that_writes_no_wheels_keeps_its_hash(catalog_dir: Path, edit: Edit) -> None:
    before = content_inputs(load_catalog(catalog_dir))["runtime/llm:cpu"]
    edit("images/runtime/llm/image.yaml", "venv: /opt/venv\n", "venv: /opt/venv\nwheels: []\n")
    assert content_inputs(load_catalog(catalog_dir))["runtime/llm:cpu"] == before


def test_the_wheel_is_mounted_installed_without_dependencies_and_checked(
    catalog_dir: Path, tmp_path: Path
) -> None:
    put_wheel(catalog_dir, content=b"PK the wheel's bytes")
    catalog = load_catalog(catalog_dir)
    image = catalog.images[TOOLS]
    text = render_dockerfile(catalog, image, "sha256:" + "c" * 64, PARENT)
    assert "--mount=type=bind,source=wheels,target=/run/imagefactory/wheels" in text
    locked = "--require-hashes --no-deps -r /run/imagefactory/requirements.lock \\\n"
    wheel = f"--no-index --no-deps /run/imagefactory/wheels/{WHEEL} \\\n"
    assert text.index(locked) < text.index(wheel) < text.index(" && /opt/venv/bin/pip check\n")
    assert "COPY" not in text.split("pip check")[0].split("FROM")[1]  # no layer holds the file
    context = write_build_context(catalog, image, text, tmp_path / "context")
    assert (context / "wheels" / WHEEL).read_bytes() == b"PK the wheel's bytes"


def test_without_a_wheel_the_dockerfile_mounts_none(catalog_dir: Path) -> None:
    catalog = load_catalog(catalog_dir)
    text = render_dockerfile(catalog, catalog.images[TOOLS], "sha256:" + "c" * 64, PARENT)
    assert "wheels" not in text and "pip check" not in text


def test_defaults_cannot_set_wheels(catalog_dir: Path, edit: Edit) -> None:
    edit("imagefactory.yaml", "  targets: [docker]", "  targets: [docker]\n  wheels: [x.whl]")
    with pytest.raises(SpecError) as caught:
        load_catalog(catalog_dir)
    [issue] = [i for i in caught.value.issues if i.key_path == "defaults"]
    assert "defaults cannot set files or wheels" in issue.message


def test_build_exclude_leaves_the_image_out_and_keeps_the_ancestors_others_need(
    catalog_dir: Path,
) -> None:
    result = run(catalog_dir, "build", "--all", "--exclude", TOOLS, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    planned = [entry["image"] for entry in json.loads(result.stdout)["plan"]]
    assert TOOLS not in planned and "base/debian12" in planned and "app/rag-api" in planned
    result = run(
        catalog_dir, "build", "app/rag-api", "--exclude", "runtime/llm", "--dry-run", "--json"
    )
    planned = [entry["image"] for entry in json.loads(result.stdout)["plan"]]
    assert planned == ["base/debian12", "runtime/llm:cpu", "app/rag-api"]  # its ancestors stay
    refused = run(catalog_dir, "build", "--all", "--exclude", "tools/cii")
    assert refused.exit_code == 1 and "did you mean 'tools/ci'?" in refused.output
