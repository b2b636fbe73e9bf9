"""The installed entry points: ``imagefactory`` on PATH and ``python -m imagefactory``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagefactory", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_console_script_is_installed_next_to_the_interpreter() -> None:
    script = Path(sys.executable).parent / "imagefactory"
    found = shutil.which("imagefactory")
    if not script.exists() and found is None:
        pytest.fail(
            "the 'imagefactory' console script is not installed; run: pip install -e '.[dev]'"
        )
    result = subprocess.run(
        [str(script if script.exists() else found), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.startswith("imagefactory ")


def test_finds_the_catalog_from_a_subfolder(catalog_dir: Path) -> None:
    result = run("plan", "--json", cwd=catalog_dir / "images/runtime/llm")
    assert result.returncode == 0, result.stderr
    assert '"image": "base/debian12"' in result.stdout


def test_spec_error_exit_code_and_no_traceback(catalog_dir: Path) -> None:
    (catalog_dir / "images/base/debian12/image.yaml").write_text(
        "name: base/debian12\nversion: x\n"
    )
    result = run("validate", cwd=catalog_dir)
    assert result.returncode == 1
    assert "version" in result.stderr and "Traceback" not in result.stderr + result.stdout


def test_usage_error_exit_code(catalog_dir: Path) -> None:
    assert run("plan", "--no-such-option", cwd=catalog_dir).returncode == 2
