"""``imagefactory version show`` and ``version bump`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import imagefactory.cli  # noqa: F401  (registers the commands on the app)
from imagefactory.cli.app import app
from imagefactory.project.state import ImageRecord, State, save_state
from imagefactory.release.parts import Part
from imagefactory.release.versions import assigned_versions, bumped

from .conftest import Edit

RUNTIME = "images/runtime/llm/image.yaml"
APP = "images/app/rag-api/image.yaml"
REFS = [
    "base/debian12",
    "runtime/llm:cpu",
    "runtime/llm:cuda",
    "tools/ci",
    "app/rag-api",
    "app/rag-api-distroless",
]

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1", "FORCE_COLOR": None, "TERM": "dumb"})


def run(*args: str | Path) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def show_json(catalog_dir: Path, *images: str) -> dict[str, dict[str, Any]]:
    result = run("-C", catalog_dir, "version", "show", *images, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert document["offline"] is True
    return {entry["image"]: entry for entry in document["images"]}


def write_state(catalog_dir: Path, records: dict[str, dict[str, Any]]) -> None:
    images = {
        ref: ImageRecord.model_validate({"inputs": {}, **fields}) for ref, fields in records.items()
    }
    save_state(catalog_dir / ".imagefactory" / "state.json", State(images=images))


# --------------------------------------------------------------------------- help


@pytest.mark.parametrize("command", ["show", "bump"])
def test_every_version_command_has_examples(command: str) -> None:
    result = run("version", command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert f"imagefactory version {command}" in result.stdout


def test_the_version_group_lists_its_commands() -> None:
    result = run("version", "--help")
    assert result.exit_code == 0
    assert "show" in result.stdout
    assert "bump" in result.stdout
    assert "Examples:" in result.stdout
    assert "version" in run("--help").stdout


def test_the_version_group_without_a_command_shows_its_help() -> None:
    result = run("version")
    assert result.exit_code == 2
    assert "Usage:" in result.output


# --------------------------------------------------------------------------- show


def test_show_a_catalog_never_pushed(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "version", "show")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()]
    assert [row[0] for row in rows if row and row[0] in REFS] == REFS  # build order
    assert next(row[:9] for row in rows if row and row[0] == "runtime/llm:cuda") == [
        "runtime/llm:cuda",
        "│",
        "1.0.0",
        "│",
        "-",
        "│",
        "1.0.0",
        "│",
        "as",
    ]
    assert "offline: the registry was not asked" in result.stderr


def test_show_json(catalog_dir: Path) -> None:
    entries = show_json(catalog_dir)
    assert list(entries) == REFS
    app_entry = entries["app/rag-api"]
    assert app_entry["spec_version"] == "0.3.0"
    assert app_entry["state_version"] is None
    assert app_entry["assigned"] == {}
    assert app_entry["next_version"] == "0.3.0"
    assert app_entry["reason"] == "as written in image.yaml"
    assert app_entry["content_hash"].startswith("sha256:")


def test_show_selected_images(catalog_dir: Path) -> None:
    assert list(show_json(catalog_dir, "runtime/llm")) == ["runtime/llm:cpu", "runtime/llm:cuda"]
    assert list(show_json(catalog_dir, "runtime/llm:cuda", "base/debian12")) == [
        "base/debian12",
        "runtime/llm:cuda",
    ]


def test_show_unchanged_content_keeps_the_version_it_was_given(catalog_dir: Path) -> None:
    current = show_json(catalog_dir)["runtime/llm:cpu"]["content_hash"]
    write_state(
        catalog_dir,
        {
            "runtime/llm:cpu": {
                "content_hash": current,
                "version": "1.0.1",
                "versions": {"1.0.0": "sha256:old", "1.0.1": current},
            }
        },
    )
    entry = show_json(catalog_dir)["runtime/llm:cpu"]
    assert entry["state_version"] == "1.0.1"
    assert entry["assigned"] == {"1.0.0": "sha256:old", "1.0.1": current}
    assert entry["next_version"] == "1.0.1"
    assert entry["reason"] == "unchanged content: same version"


def test_show_changed_content_without_a_bump_gets_the_next_patch(
    catalog_dir: Path, edit: Edit
) -> None:
    write_state(
        catalog_dir,
        {
            "runtime/llm:cuda": {
                "content_hash": "sha256:old",
                "version": "1.0.0",
                "versions": {"1.0.0": "sha256:old"},
            }
        },
    )
    result = run("-C", catalog_dir, "version", "show", "runtime/llm:cuda")
    assert result.exit_code == 0, result.output
    assert "1.0.1" in result.stdout
    assert "content changed since 1.0.0 and the version was not bumped: next patch" in (
        result.stdout
    )
    entries = show_json(catalog_dir)
    assert entries["runtime/llm:cuda"]["next_version"] == "1.0.1"
    assert entries["runtime/llm:cpu"]["next_version"] == "1.0.0"  # each variant its own record
    edit(RUNTIME, "version: 1.0.0", "version: 1.1.0")
    entry = show_json(catalog_dir)["runtime/llm:cuda"]
    assert (entry["next_version"], entry["reason"]) == ("1.1.0", "as written in image.yaml")


def test_show_a_record_without_versions_was_never_pushed(catalog_dir: Path) -> None:
    write_state(catalog_dir, {"app/rag-api": {"content_hash": "sha256:old", "version": "0.2.0"}})
    entry = show_json(catalog_dir)["app/rag-api"]
    assert entry["state_version"] == "0.2.0"
    assert entry["assigned"] == {}
    assert entry["next_version"] == "0.3.0"


def test_show_an_unknown_image(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "version", "show", "runtime/lm")
    assert result.exit_code == 1
    assert "no image 'runtime/lm' in the catalog" in result.stderr
    assert "did you mean 'runtime/llm'?" in result.stderr
    assert result.stdout == ""


def test_show_an_unknown_image_json(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "version", "show", "nope", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert "no image 'nope'" in document["error"]


def test_show_an_unreadable_state_file(catalog_dir: Path) -> None:
    state = catalog_dir / ".imagefactory" / "state.json"
    state.parent.mkdir()
    state.write_text("{not json")
    result = run("-C", catalog_dir, "version", "show")
    assert result.exit_code == 1
    assert "cannot read the state file" in result.stderr


def test_assigned_versions() -> None:
    assert assigned_versions(None) == {}
    record = ImageRecord(content_hash="h", inputs={}, version="1.0.0")
    assert assigned_versions(record) == {}
    record = ImageRecord.model_validate(
        {"content_hash": "h", "inputs": {}, "version": "1.0.0", "versions": {"1.0.0": "h"}}
    )
    assert assigned_versions(record) == {"1.0.0": "h"}


# --------------------------------------------------------------------------- bump


def test_bump_patch_edits_only_the_version(catalog_dir: Path) -> None:
    path = catalog_dir / RUNTIME
    before = path.read_text()
    result = run("-C", catalog_dir, "version", "bump", "runtime/llm", "patch")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"runtime/llm: 1.0.0 → 1.0.1 ({RUNTIME})"
    assert path.read_text() == before.replace("version: 1.0.0", "version: 1.0.1")
    entries = show_json(catalog_dir)
    assert entries["runtime/llm:cpu"]["spec_version"] == "1.0.1"  # variants share the file
    assert entries["runtime/llm:cuda"]["spec_version"] == "1.0.1"
    assert entries["base/debian12"]["spec_version"] == "1.0.0"


@pytest.mark.parametrize(
    ("part", "new"), [("major", "1.0.0"), ("minor", "0.4.0"), ("patch", "0.3.1")]
)
def test_bump_each_part(catalog_dir: Path, part: str, new: str) -> None:
    result = run("-C", catalog_dir, "version", "bump", "app/rag-api", part)
    assert result.exit_code == 0, result.output
    assert f"app/rag-api: 0.3.0 → {new}" in result.stdout
    assert f"version: {new}\n" in (catalog_dir / APP).read_text()


def test_bump_by_a_variant_ref_bumps_the_shared_file(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "version", "bump", "runtime/llm:cuda", "minor")
    assert result.exit_code == 0, result.output
    assert "runtime/llm: 1.0.0 → 1.1.0" in result.stdout
    assert "version: 1.1.0\n" in (catalog_dir / RUNTIME).read_text()


def test_bump_dry_run_writes_nothing(catalog_dir: Path) -> None:
    before = (catalog_dir / RUNTIME).read_text()
    result = run("-C", catalog_dir, "version", "bump", "runtime/llm", "major", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "runtime/llm: 1.0.0 → 2.0.0" in result.stdout
    assert "dry run, nothing written" in result.stdout
    assert (catalog_dir / RUNTIME).read_text() == before


def test_bump_json(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "version", "bump", "app/rag-api", "minor", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "ok": True,
        "image": "app/rag-api",
        "file": APP,
        "old": "0.3.0",
        "new": "0.4.0",
        "dry_run": False,
    }


def test_bump_keeps_a_quoted_version_and_its_comment(catalog_dir: Path, edit: Edit) -> None:
    edit(APP, "version: 0.3.0", 'version: "0.3.0"   # released with the Q3 model')
    result = run("-C", catalog_dir, "version", "bump", "app/rag-api", "patch")
    assert result.exit_code == 0, result.output
    assert 'version: "0.3.1"   # released with the Q3 model\n' in (catalog_dir / APP).read_text()


def test_then_show_gives_the_bumped_version(catalog_dir: Path) -> None:
    write_state(
        catalog_dir,
        {
            "app/rag-api": {
                "content_hash": "sha256:x",
                "version": "0.3.0",
                "versions": {"0.3.0": "x"},
            }
        },
    )
    assert show_json(catalog_dir)["app/rag-api"]["next_version"] == "0.3.1"
    assert run("-C", catalog_dir, "version", "bump", "app/rag-api", "minor").exit_code == 0
    entry = show_json(catalog_dir)["app/rag-api"]
    assert (entry["next_version"], entry["reason"]) == ("0.4.0", "as written in image.yaml")


def test_bump_an_unknown_image(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "version", "bump", "app/rag", "patch")
    assert result.exit_code == 1
    assert "no image 'app/rag' in the catalog" in result.stderr


def test_bump_an_unknown_part(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "version", "bump", "app/rag-api", "huge")
    assert result.exit_code == 2
    assert "'huge' is not one of" in result.stderr


def test_bump_an_invalid_catalog(catalog_dir: Path, edit: Edit) -> None:
    edit(APP, "version: 0.3.0", "version: 0.3")
    before = (catalog_dir / APP).read_text()
    result = run("-C", catalog_dir, "version", "bump", "app/rag-api", "patch")
    assert result.exit_code == 1
    assert "is not a semantic version" in result.stderr
    assert (catalog_dir / APP).read_text() == before


@pytest.mark.parametrize(
    ("version", "part", "new"),
    [
        ("1.2.3", Part.PATCH, "1.2.4"),
        ("1.2.3", Part.MINOR, "1.3.0"),
        ("1.2.3", Part.MAJOR, "2.0.0"),
        ("1.2.3-rc.1", Part.PATCH, "1.2.3"),
        ("1.3.0-rc.1", Part.MINOR, "1.3.0"),
        ("1.2.3-rc.1", Part.MINOR, "1.3.0"),
        ("2.0.0-rc.1", Part.MAJOR, "2.0.0"),
        ("1.2.3+build.9", Part.PATCH, "1.2.4"),
    ],
)
def test_bumped(version: str, part: Part, new: str) -> None:
    assert bumped(version, part) == new
