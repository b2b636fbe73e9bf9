"""imagefactory init: the starters ship in the package, make a catalog that validates and whose
pipeline is current, take the project name only by its grammar, and never write over a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from imagefactory.cli.app import app
from imagefactory.cli.starter import STARTER_CHOICES
from imagefactory.project.recipe import recipe_key
from imagefactory.render.starter import DOT, PIPELINE, PLACEHOLDER, STARTERS, starter_files
from imagefactory.spec.loader import load_catalog

REPO = Path(__file__).resolve().parents[2]
STARTER_ROOT = REPO / "imagefactory" / "templates" / "starters"
runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1", "FORCE_COLOR": None, "TERM": "dumb"})


def imagefactory(*args: str) -> Result:
    return runner.invoke(app, list(args))


def init(target: Path, *args: str) -> Result:
    result = imagefactory("init", str(target), *args)
    assert result.exit_code == 0, result.output
    return result


def files_below(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("template", STARTERS)
def test_init_writes_a_catalog_that_validates_with_a_current_pipeline(
    tmp_path: Path, template: str
) -> None:
    root = tmp_path / "platform-images"
    result = init(root, "--template", template, "--json")
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["project"] == "platform-images"
    assert set(document["written"]) == set(files_below(root))
    for needed in ("imagefactory.yaml", "gitops.yaml", ".gitignore", "README.md", ".gitlab-ci.yml"):
        assert needed in document["written"]

    validated = imagefactory("-C", str(root), "validate", "--json")
    assert validated.exit_code == 0, validated.output
    images = {i["image"] for i in json.loads(validated.stdout)["images"]}
    expected = {"base/debian12"} | ({"runtime/llm", "app/llm-api"} if template == "llm" else set())
    assert images == expected
    for ref in images:  # the pipeline builds and tests every image
        assert f"build:{ref}" in document["jobs"] and f"test:{ref}" in document["jobs"]

    check = imagefactory("-C", str(root), "ci", "generate", "--out", ".gitlab-ci.yml", "--check")
    assert check.exit_code == 0, check.output
    assert "up to date" in check.output
    header = (root / ".gitlab-ci.yml").read_text().splitlines()[1]
    assert "`imagefactory ci generate --builder dind --out .gitlab-ci.yml`" in header


def test_project_name_comes_from_the_folder_or_name_and_no_placeholder_stays(
    tmp_path: Path,
) -> None:
    init(tmp_path / "cat", "--template", "llm")
    init(tmp_path / "Other Folder", "--name", "ml.images")
    for root, name in ((tmp_path / "cat", "cat"), (tmp_path / "Other Folder", "ml.images")):
        assert yaml.safe_load((root / "imagefactory.yaml").read_text())["project"] == name
        assert (root / "README.md").read_text().startswith(f"# {name}: ")
        assert not [path for path, data in files_below(root).items() if PLACEHOLDER in data]


@pytest.mark.parametrize("name", ["My Catalog", "cat\nproject: evil", "-x", "a" * 65, "ÿ"])
def test_a_name_outside_the_project_grammar_is_refused_and_nothing_written(
    tmp_path: Path, name: str
) -> None:
    result = imagefactory("init", str(tmp_path / "cat"), "--name", name)
    assert result.exit_code == 1
    assert "is not a project name" in result.output and "hint: pass --name" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "cat").exists()


def test_folder_name_outside_the_grammar_says_to_pass_a_name(tmp_path: Path) -> None:
    result = imagefactory("init", str(tmp_path / "My Catalog"))
    assert result.exit_code == 1 and "'My Catalog' is not a project name" in result.output
    assert not (tmp_path / "My Catalog").exists()


def test_existing_files_are_listed_and_nothing_is_written(tmp_path: Path) -> None:
    root = tmp_path / "cat"
    (root / "images" / "base" / "debian12").mkdir(parents=True)
    (root / "README.md").write_text("ours\n")
    (root / "images" / "base" / "debian12" / "image.yaml").write_text("ours\n")
    (root / "notes.txt").write_text("unrelated\n")
    before = files_below(root)

    result = imagefactory("init", str(root))

    assert result.exit_code == 1, result.output
    assert "already holds README.md, images/base/debian12/image.yaml:" in result.output
    assert "init writes nothing over an existing file" in result.output
    assert files_below(root) == before  # not one file written, none changed


def test_an_existing_pipeline_alone_also_refuses(tmp_path: Path) -> None:
    root = tmp_path / "cat"
    root.mkdir()
    (root / PIPELINE).write_text("stages: [ours]\n")
    result = imagefactory("init", str(root))
    assert result.exit_code == 1 and "already holds .gitlab-ci.yml:" in result.output
    assert files_below(root) == {".gitlab-ci.yml": b"stages: [ours]\n"}


def test_a_symlink_or_a_file_in_the_way_refuses(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "gitops.yaml").symlink_to(elsewhere / "gitops.yaml")  # dangling: still a file
    result = imagefactory("init", str(linked))
    assert result.exit_code == 1 and "already holds gitops.yaml:" in result.output
    assert not (elsewhere / "gitops.yaml").exists()

    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "images").write_text("a file where a folder goes\n")
    result = imagefactory("init", str(blocked))
    assert result.exit_code == 1 and "images/base/debian12/image.yaml" in result.output
    assert sorted(files_below(blocked)) == ["images"]


def test_unknown_template_is_a_usage_error(tmp_path: Path) -> None:
    result = imagefactory("init", str(tmp_path / "cat"), "--template", "huge")
    assert result.exit_code == 2 and "'huge' is not one of minimal, llm" in result.output
    assert not (tmp_path / "cat").exists()


def test_the_options_choices_are_the_starters() -> None:
    assert tuple(STARTERS) == STARTER_CHOICES
    assert all((STARTER_ROOT / layer).is_dir() for layers in STARTERS.values() for layer in layers)


def test_starter_files_are_package_data_without_dotfiles() -> None:
    """Setuptools' package-data glob (templates/**/*) leaves dotfiles out of the wheel: a
    starter spells a leading dot as 'dot-' (tests/integration/test_wheel.py checks the wheel)."""
    shipped = [p for p in STARTER_ROOT.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert shipped and not [p for p in shipped if p.name.startswith(".")]
    assert ".gitignore" in starter_files("minimal")
    assert not [name for name in starter_files("llm") if Path(name).name.startswith(DOT)]


def test_minimal_base_is_the_examples_recipe(tmp_path: Path) -> None:
    """The starter's base is derived from the example's: the same bootstrap recipe and mirrors,
    so its rootfs cache entry is the example's (the integration test reuses it)."""
    init(tmp_path / "cat")
    starter, example = load_catalog(tmp_path / "cat"), load_catalog(REPO)
    [base] = starter.select(["base/debian12"])
    [example_base] = example.select(["base/debian12"])
    assert base.spec.bootstrap is not None and example_base.spec.bootstrap is not None
    assert recipe_key(base.spec.bootstrap, starter.project.build) == recipe_key(
        example_base.spec.bootstrap, example.project.build
    )
    assert base.spec.create_users == example_base.spec.create_users
    assert [e.name for e in starter.project.environments] == ["dev", "preprod", "prod"]
    assert {r.url for r in starter.project.registries.values()} == {"127.0.0.1:5000"}
    assert {r.url_env for r in starter.project.registries.values()} == {"CI_REGISTRY"}


def test_a_relative_folder_is_named_by_where_it_leads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "team-images" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "team-images" / "sub")
    document = json.loads(init(Path(".."), "--json").stdout)
    assert document["project"] == "team-images" and document["root"] == str(
        tmp_path / "team-images"
    )
