"""render and build through the CLI, without a daemon: rendering, --check, --dry-run, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import imagefactory.cli  # noqa: F401  (registers the commands)
from imagefactory.cli import app

from .conftest import Edit


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_render_writes_contexts_and_check_detects_staleness(
    pinned_catalog_dir: Path, edit: Edit
) -> None:
    result = run("-C", pinned_catalog_dir, "render", "app/rag-api", "runtime/llm")
    assert result.exit_code == 0, result.output
    folder = pinned_catalog_dir / "rendered"
    assert sorted(p.name for p in folder.iterdir()) == [
        "app_rag-api",
        "runtime_llm_cpu",
        "runtime_llm_cuda",
    ]
    assert run("-C", pinned_catalog_dir, "render", "app/rag-api", "--check").exit_code == 0
    edit("images/app/rag-api/image.yaml", 'RAG_API_PORT: "8080"', 'RAG_API_PORT: "8081"')
    stale = run("-C", pinned_catalog_dir, "render", "app/rag-api", "--check", "--json")
    assert stale.exit_code == 1
    report = json.loads(stale.stdout)
    assert report["stale"] == {"app/rag-api": ["Dockerfile"]}
    assert "Traceback" not in stale.output
    missing = run("-C", pinned_catalog_dir, "render", "base/debian12", "--check")
    assert missing.exit_code == 1 and "(missing)" in missing.stderr


def test_render_is_deterministic_across_runs(pinned_catalog_dir: Path, tmp_path: Path) -> None:
    for out in ("a", "b"):
        assert run("-C", pinned_catalog_dir, "render", "--out", tmp_path / out).exit_code == 0
    for dockerfile in (tmp_path / "a").glob("*/Dockerfile"):
        assert (
            dockerfile.read_bytes()
            == (tmp_path / "b" / dockerfile.parent.name / "Dockerfile").read_bytes()
        )


def test_build_needs_images_or_all(pinned_catalog_dir: Path) -> None:
    result = run("-C", pinned_catalog_dir, "build")
    assert result.exit_code == 2 and "--all" in result.output


def test_build_dry_run_lists_the_closure_and_touches_nothing(pinned_catalog_dir: Path) -> None:
    result = run("-C", pinned_catalog_dir, "build", "app/rag-api", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)["plan"]
    assert [e["image"] for e in plan] == ["base/debian12", "runtime/llm:cpu", "app/rag-api"]
    assert not (pinned_catalog_dir / ".imagefactory").exists()
    text = run("-C", pinned_catalog_dir, "build", "app/rag-api", "--dry-run")
    assert "app/rag-api: would build (new)" in text.stdout


def test_build_without_registry_credentials_says_which_variables(
    pinned_catalog_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMAGEFACTORY_REGISTRY_USER", raising=False)
    monkeypatch.delenv("IMAGEFACTORY_REGISTRY_PASSWORD", raising=False)
    result = run("-C", pinned_catalog_dir, "build", "app/rag-api")
    assert result.exit_code == 1
    assert "IMAGEFACTORY_REGISTRY_USER" in result.stderr and "Traceback" not in result.output


def test_build_with_an_unreachable_daemon_is_one_clear_sentence(
    pinned_catalog_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEFACTORY_REGISTRY_USER", "someone")
    monkeypatch.setenv("IMAGEFACTORY_REGISTRY_PASSWORD", "not-a-real-password")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = run("-C", pinned_catalog_dir, "build", "app/rag-api")
    assert result.exit_code == 1, result.output
    assert "the Docker engine is not reachable" in result.stderr
    assert "not-a-real-password" not in result.output and "Traceback" not in result.output


def test_build_without_environments_explains_the_build_registry(
    pinned_catalog_dir: Path, edit: Edit
) -> None:
    text = (pinned_catalog_dir / "imagefactory.yaml").read_text()
    start, end = text.index("environments:"), text.index("build:")
    (pinned_catalog_dir / "imagefactory.yaml").write_text(text[:start] + text[end:])
    result = run("-C", pinned_catalog_dir, "build", "base/debian12")
    assert result.exit_code == 1 and "no environments" in result.stderr
