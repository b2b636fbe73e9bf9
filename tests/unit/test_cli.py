"""The command line, end to end through typer's CliRunner, against a copy of the example catalog.

This typer version's runner keeps the streams apart: ``result.stdout`` holds results (tables,
JSON), ``result.stderr`` errors and hints, ``result.output`` both, interleaved.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import imagefactory.cli
import imagefactory.project.plan  # the plan command imports plan_images from it when it runs
from imagefactory import __version__
from imagefactory.cli import app
from imagefactory.cli.app import COMMANDS as ROOT_COMMANDS

from .conftest import Edit, copy_example_catalog

RUNTIME = "images/runtime/llm/image.yaml"
APP = "images/app/rag-api/image.yaml"
BASE = "images/base/debian12/image.yaml"
SHELL_LESS = "app/rag-api-distroless"
JOB_IMAGE = "tools/ci"  # imagefactory.yaml: ci.job_image
REFS = [
    "base/debian12",
    "runtime/llm:cpu",
    "runtime/llm:cuda",
    JOB_IMAGE,
    "app/rag-api",
    SHELL_LESS,
]
COMMANDS = sorted(ROOT_COMMANDS)  # every command the root declares (and loads when asked)

# A wide, colourless terminal: rich reads these when each command builds its consoles.
runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1", "FORCE_COLOR": None, "TERM": "dumb"})


def run(*args: str | Path) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    # Nothing may escape the CLI's error handling: only the SystemExit that carries the code.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def line_of(path: Path, text: str) -> int:
    lines = path.read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith(text))


def positions(text: str, refs: list[str]) -> list[int]:
    """Where each ref's row starts in a table; -1 when it is missing."""
    rows = [line.split()[0] if line.split() else "" for line in text.splitlines()]
    return [rows.index(ref) if ref in rows else -1 for ref in refs]


@pytest.fixture
def broken(catalog_dir: Path, edit: Edit) -> Path:
    """Two mistakes in two files: a key typo in the runtime, a bad version in the app."""
    edit(RUNTIME, "packages: [python3", "pakages: [python3")
    edit(APP, "version: 0.3.0", "version: 0.3")
    return catalog_dir


def test_the_commands_are_registered() -> None:
    assert imagefactory.cli.app is app
    assert {"graph", "plan", "validate"} <= set(COMMANDS)


# --------------------------------------------------------------------------- version and help


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"imagefactory {__version__}"


def test_no_arguments_shows_the_help() -> None:
    result = run()
    assert result.exit_code == 2
    assert "Usage:" in result.output
    for command in COMMANDS:
        assert command in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_has_an_example(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout
    assert f"imagefactory {command}" in result.stdout


def test_short_help_option() -> None:
    assert run("validate", "-h").stdout == run("validate", "--help").stdout


def test_root_help_lists_exit_codes() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "Exit codes" in result.stdout
    for command in COMMANDS:
        assert command in result.stdout


def test_root_help_has_an_example() -> None:
    assert "Example" in run("--help").stdout


# --------------------------------------------------------------------------- validate


def test_validate_the_example(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "validate")
    assert result.exit_code == 0, result.output
    assert "catalog 'bank-ai-lab' is valid: 6 images from 5 image files" in result.stdout
    assert all(p >= 0 for p in positions(result.stdout, REFS)), result.stdout
    assert "bootstrap: debian bookworm/apt" in result.stdout
    assert result.stderr == ""


def test_validate_json(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "validate", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert document["project"] == "bank-ai-lab"
    images = {i["image"]: i for i in document["images"]}
    assert sorted(images) == sorted(REFS)
    assert images["app/rag-api"] == {
        "image": "app/rag-api",
        "version": "0.3.0",
        "parent": "runtime/llm:cpu",
        "file": APP,
    }
    assert images["runtime/llm:cuda"]["parent"] == "base/debian12"


def test_validate_reports_every_error_with_file_line_and_key(broken: Path) -> None:
    result = run("-C", broken, "validate")
    assert result.exit_code == 1
    runtime, app_file = broken.resolve() / RUNTIME, broken.resolve() / APP
    typo = f"{runtime}:{line_of(runtime, 'pakages:')}: pakages: unknown key 'pakages'"
    version = (
        f"{app_file}:{line_of(app_file, 'version:')}: version: '0.3' is not a semantic version"
    )
    assert "the catalog has 2 errors" in result.stderr
    assert typo in result.stderr
    assert "hint: did you mean 'packages'?" in result.stderr
    assert version in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_validate_verbose_shows_the_traceback(broken: Path) -> None:
    result = run("-v", "-C", broken, "validate")
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "SpecError" in result.stderr
    assert "did you mean 'packages'?" in result.stderr


def test_validate_json_on_a_broken_catalog(broken: Path) -> None:
    result = run("-C", broken, "validate", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert document["ok"] is False
    assert "2 errors" in document["error"]
    issues = {i["key"]: i for i in document["issues"]}
    assert sorted(issues) == ["pakages", "version"]
    typo = issues["pakages"]
    assert typo["file"] == str(broken.resolve() / RUNTIME)
    assert typo["line"] == line_of(broken / RUNTIME, "pakages:")
    assert typo["message"] == "unknown key 'pakages'"
    assert typo["hint"] == "did you mean 'packages'?"
    assert issues["version"]["file"] == str(broken.resolve() / APP)
    assert "Traceback" not in result.output


def test_the_catalog_is_found_from_the_current_folder(catalog_dir: Path) -> None:
    with contextlib.chdir(catalog_dir / "images" / "app"):
        result = run("validate")
    assert result.exit_code == 0, result.output
    assert "is valid" in result.stdout


# --------------------------------------------------------------------------- plan


def test_plan_lists_every_image_in_build_order(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "plan")
    assert result.exit_code == 0, result.output
    base, cpu, cuda, job, app_row, shell_less = positions(result.stdout, REFS)
    assert min(base, cpu, cuda, job, app_row, shell_less) >= 0, result.stdout
    assert base < cpu < app_row < shell_less and base < cuda and base < job
    for line in result.stdout.splitlines():
        if line.split() and line.split()[0] in REFS:
            assert " build " in line and line.rstrip().endswith("new"), line
    assert "6 to build, 0 up to date" in result.stdout


def test_plan_json(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "plan", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is True
    entries = document["plan"]
    order = [e["image"] for e in entries]
    assert sorted(order) == sorted(REFS)
    assert (
        order.index("base/debian12") < order.index("runtime/llm:cpu") < order.index("app/rag-api")
    )
    for entry in entries:
        assert entry["action"] == "build"
        assert entry["reasons"] == ["new"]
        assert entry["content_hash"].startswith("sha256:") and len(entry["content_hash"]) == 71
    assert entries[order.index("app/rag-api")]["parent"] == "runtime/llm:cpu"
    assert len({e["content_hash"] for e in entries}) == 6


def test_plan_is_stable_across_runs(catalog_dir: Path) -> None:
    first = run("-C", catalog_dir, "plan", "--json").stdout
    assert run("-C", catalog_dir, "plan", "--json").stdout == first


def test_plan_skips_what_the_state_says_is_built(catalog_dir: Path) -> None:
    entries = json.loads(run("-C", catalog_dir, "plan", "--json").stdout)["plan"]
    base = next(e for e in entries if e["image"] == "base/debian12")
    state = catalog_dir / ".imagefactory" / "state.json"
    state.parent.mkdir()
    record = {"content_hash": base["content_hash"], "inputs": {}, "version": "1.0.0"}
    state.write_text(json.dumps({"schema": 1, "images": {"base/debian12": record}}))
    result = run("-C", catalog_dir, "plan", "--json")
    assert result.exit_code == 0, result.output
    actions = {e["image"]: e["action"] for e in json.loads(result.stdout)["plan"]}
    assert actions == {ref: "skip" if ref == "base/debian12" else "build" for ref in REFS}
    assert "5 to build, 1 up to date" in run("-C", catalog_dir, "plan").stdout


def test_plan_for_one_image(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "plan", "app/rag-api", "--json")
    assert result.exit_code == 0, result.output
    assert [e["image"] for e in json.loads(result.stdout)["plan"]] == ["app/rag-api"]


def test_plan_for_a_name_takes_all_its_variants(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "plan", "runtime/llm")
    assert result.exit_code == 0, result.output
    rows = positions(result.stdout, REFS)
    assert rows[0] == rows[3] == rows[4] == rows[5] == -1 and rows[1] >= 0 and rows[2] >= 0
    assert "2 to build, 0 up to date" in result.stdout


def test_plan_for_an_unknown_image(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "plan", "app/rag-apy")
    assert result.exit_code == 1
    assert "no image 'app/rag-apy' in the catalog" in result.stderr
    assert "did you mean 'app/rag-api'?" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_plan_with_a_garbage_state_file(catalog_dir: Path) -> None:
    state = catalog_dir / ".imagefactory" / "state.json"
    state.parent.mkdir()
    state.write_text("{not json at all")
    result = run("-C", catalog_dir, "plan")
    assert result.exit_code == 1
    assert "cannot read the state file" in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "content",
    ["[]", '{"schema": 1, "images": []}', '{"schema": 99, "images": {}}', "\xff\xfe"],
    ids=["list", "images-not-a-map", "future-schema", "not-utf8"],
)
def test_plan_with_an_unreadable_state_file(catalog_dir: Path, content: str) -> None:
    state = catalog_dir / ".imagefactory" / "state.json"
    state.parent.mkdir()
    state.write_bytes(content.encode("latin-1"))
    result = run("-C", catalog_dir, "plan")
    assert result.exit_code == 1, result.output
    assert "the state file" in result.stderr
    assert "Traceback" not in result.output


def test_plan_with_a_deeply_nested_state_file(catalog_dir: Path) -> None:
    state = catalog_dir / ".imagefactory" / "state.json"
    state.parent.mkdir()
    state.write_text("[" * 100_000)
    result = run("-C", catalog_dir, "plan")
    assert result.exit_code == 1, result.output
    assert "cannot read the state file" in result.stderr


# --------------------------------------------------------------------------- graph


def test_graph_tree(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "graph")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "bootstrap: debian bookworm/apt\n"
        "└── base/debian12 (1.0.0)\n"
        "    ├── runtime/llm:cpu (1.0.0)\n"
        "    │   └── app/rag-api (0.3.0)\n"
        "    │       └── app/rag-api-distroless (0.3.0)\n"
        "    ├── runtime/llm:cuda (1.0.0)\n"
        "    └── tools/ci (1.0.0)\n"
    )


def test_graph_mermaid(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "graph", "--format", "mermaid")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("graph TD\n")
    for ref in REFS:
        assert ref in result.stdout
    assert result.stdout.count("-->") == 6


def test_graph_dot(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "graph", "-f", "dot")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("digraph")
    assert result.stdout.rstrip().endswith("}")
    assert result.stdout.count("->") == 6


def test_graph_json(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "graph", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["build_order"] == REFS
    nodes = {n["image"]: n for n in document["images"]}
    assert nodes["base/debian12"]["parent_in_catalog"] is False
    assert nodes["app/rag-api"]["parent"] == "runtime/llm:cpu"


def test_graph_bad_format_is_a_usage_error(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir, "graph", "--format", "png")
    assert result.exit_code == 2
    assert "'png' is not one of tree, mermaid, dot, json" in result.stderr
    assert result.stdout == ""


# --------------------------------------------------------------------------- usage and failures


@pytest.mark.parametrize(
    "args",
    [["validate", "--bogus"], ["--bogus", "validate"], ["nosuchcommand"], ["graph", "--format"]],
    ids=["command-option", "root-option", "command", "missing-value"],
)
def test_usage_errors_exit_2(catalog_dir: Path, args: list[str]) -> None:
    result = run("-C", catalog_dir, *args)
    assert result.exit_code == 2
    assert "Error:" in result.stderr
    assert "Traceback" not in result.output


def test_a_project_that_is_a_file_is_a_usage_error(catalog_dir: Path) -> None:
    result = run("-C", catalog_dir / "imagefactory.yaml", "validate")
    assert result.exit_code == 2


def test_outside_any_catalog_with_project_option(tmp_path: Path) -> None:
    result = run("-C", tmp_path, "validate")
    assert result.exit_code == 1
    assert "imagefactory.yaml" in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.output


def test_outside_any_catalog_with_project_option_says_so_plainly(tmp_path: Path) -> None:
    result = run("-C", tmp_path, "validate")
    assert f"no imagefactory.yaml in {tmp_path.resolve()}" in result.stderr
    assert "image.yaml found" not in result.stderr


def test_outside_any_catalog_from_the_current_folder(tmp_path: Path) -> None:
    folder = tmp_path / "somewhere"
    folder.mkdir()
    assert not any((p / "imagefactory.yaml").exists() for p in [folder, *folder.parents])
    with contextlib.chdir(folder):
        result = run("plan")
    assert result.exit_code == 1
    assert f"no imagefactory.yaml in {folder.resolve()} or any folder above it" in result.stderr
    assert "hint: run imagefactory inside a catalog repository" in result.stderr
    assert "Traceback" not in result.output


def test_an_internal_error_is_exit_3_without_traceback(
    catalog_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(imagefactory.project.plan, "plan_images", explode)
    result = run("-C", catalog_dir, "plan")
    assert result.exit_code == 3
    assert "internal error: RuntimeError: boom" in result.stderr
    assert "rerun with -v" in result.stderr
    assert "Traceback" not in result.output

    verbose = run("-v", "-C", catalog_dir, "plan")
    assert verbose.exit_code == 3
    assert "internal error: RuntimeError: boom" in verbose.stderr
    assert "Traceback (most recent call last)" in verbose.stderr
    assert "RuntimeError: boom" in verbose.stderr.split("Traceback")[-1]


def test_an_internal_error_in_json_mode_is_exit_3(
    catalog_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(imagefactory.project.plan, "plan_images", explode)
    result = run("-C", catalog_dir, "plan", "--json")
    assert result.exit_code == 3
    assert "internal error" in result.stderr
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- regressions


def test_validate_prints_external_parents_verbatim(catalog_dir: Path, edit: Edit) -> None:
    digest = "sha256:" + "a" * 64
    edit(APP, "from: runtime/llm:cpu", f'from: "registry.example.com/x[/y]@{digest}"')
    result = run("-C", catalog_dir, "validate")
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 0:
        assert "registry.example.com/x[/y]" in result.stdout


def test_validate_json_refuses_an_absolute_catalog_outside_the_root(tmp_path: Path) -> None:
    """A catalog folder outside the project is never read (issue 13: a setting reads only its
    documented place): one JSON document with the issue on the project file's ``catalog``."""
    shared = copy_example_catalog(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    text = (shared / "imagefactory.yaml").read_text()
    (project / "imagefactory.yaml").write_text(
        text.replace("catalog: images", f"catalog: {shared.resolve() / 'images'}")
    )
    assert run("-C", project, "validate").exit_code == 1
    result = run("-C", project, "validate", "--json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert {i["key"] for i in document["issues"]} == {"catalog"}
    assert "not a relative path that stays inside its folder" in result.stdout


def test_validate_with_an_impossible_date(catalog_dir: Path, edit: Edit) -> None:
    edit(APP, "version: 0.3.0", "version: 2024-13-01")
    result = run("-C", catalog_dir, "validate")
    assert result.exit_code == 1, result.output
    assert f"{catalog_dir.resolve() / APP}:" in result.stderr
