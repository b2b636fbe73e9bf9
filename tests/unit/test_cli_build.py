"""render and build through the CLI, without a daemon: rendering, --check, --dry-run, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest
from typer.testing import CliRunner, Result

import imagefactory.build.catalog  # the build command imports build_images from it when it runs
import imagefactory.cli
from imagefactory.build.schedule import Outcome, Status
from imagefactory.cli import app
from imagefactory.cli.progress import STYLES

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


def test_build_platform_names_a_known_platform_and_the_docker_engine(
    pinned_catalog_dir: Path,
) -> None:
    unknown = run("-C", pinned_catalog_dir, "build", "--all", "--platform", "linux/mips")
    assert unknown.exit_code == 2 and "'linux/mips' is not one of linux/amd64" in unknown.output
    packer = run(
        "-C", pinned_catalog_dir, "build", "--all", "--platform", "linux/arm64",
        "--engine", "packer",
    )  # fmt: skip
    assert packer.exit_code == 2 and "without --refresh" in packer.output
    assert not (pinned_catalog_dir / ".imagefactory").exists()


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


KEPT = "sha256:" + "a" * 64
DISCARDED = "sha256:" + "b" * 64
UNREPRODUCIBLE = Outcome(
    "app/rag-api",
    "unreproducible",
    12.5,
    KEPT,
    f"not reproducible: registry has {KEPT}, this build made {DISCARDED}; kept the registry's",
)


@pytest.fixture
def outcomes(monkeypatch: pytest.MonkeyPatch) -> list[Outcome]:
    """What ``build_images`` returns (the build itself needs a daemon: tests/integration)."""
    returned = [
        Outcome("base/debian12", "reused", 0.1, "sha256:" + "c" * 64, "reused from the registry"),
        Outcome("runtime/llm:cpu", "built", 30.0, "sha256:" + "d" * 64, "built and pushed"),
        UNREPRODUCIBLE,
    ]
    monkeypatch.setattr(imagefactory.build.catalog, "build_images", lambda *_: returned)
    return returned


def test_build_json_shows_the_discarded_digest_of_an_unreproducible_build(
    pinned_catalog_dir: Path, outcomes: list[Outcome]
) -> None:
    result = run("-C", pinned_catalog_dir, "build", "app/rag-api", "--json")
    assert result.exit_code == 0, result.output
    entries = {e["image"]: e for e in json.loads(result.stdout)["images"]}
    entry = entries["app/rag-api"]
    assert entry["status"] == "unreproducible" and entry["digest"] == KEPT
    assert DISCARDED in entry["detail"]
    assert entries["base/debian12"]["detail"] == "reused from the registry"


def test_build_summary_counts_an_unreproducible_build_apart(
    pinned_catalog_dir: Path, outcomes: list[Outcome]
) -> None:
    result = run("-C", pinned_catalog_dir, "build", "app/rag-api")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "1 built, 1 reused, 1 not reproducible"  # was: 1 built, 2 reused
    assert lines[1] == f"  app/rag-api: {UNREPRODUCIBLE.detail}"


def test_progress_styles_every_status() -> None:
    assert set(STYLES) >= {"queued", "building", *get_args(Status)}
    assert STYLES["unreproducible"] == "yellow"
