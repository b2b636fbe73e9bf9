"""imagefactory keygen: its relative paths start at the project root (-C, or the nearest folder
holding imagefactory.yaml), as signing.public_key's does, not at the current folder."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from imagefactory.cli.app import app

from .helpers import run, runner


@pytest.fixture(autouse=True)
def _no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMAGEFACTORY_SIGNING_KEY_PASSWORD", raising=False)


def test_relative_paths_start_at_the_project_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, elsewhere = tmp_path / "catalog", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    args = ["keygen", "--public", "keys/cosign.pub", "--private", "secret/signing.key"]
    result = run(root, *args, "--json")
    assert result.exit_code == 0, result.output
    assert (root / "keys" / "cosign.pub").is_file()
    assert stat.S_IMODE((root / "secret" / "signing.key").stat().st_mode) == 0o600
    assert list(elsewhere.iterdir()) == []
    document = json.loads(result.stdout)
    assert document["public"] == str(root.resolve() / "keys" / "cosign.pub")
    absolute = tmp_path / "away" / "signing.key"  # an absolute path is where it says
    again = run(root, "keygen", "--public", "keys/other.pub", "--private", str(absolute))
    assert again.exit_code == 0, again.output
    assert absolute.is_file()
    assert "public key: keys/other.pub (sha256:" in again.stdout


def test_without_the_option_they_start_at_the_nearest_project(
    catalog_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(catalog_dir / "images")
    args = ["keygen", "--public", "keys/new.pub", "--private", "secret/new.key"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (catalog_dir / "keys" / "new.pub").is_file()
    assert (catalog_dir / "secret" / "new.key").is_file()
    assert not (catalog_dir / "images" / "keys").exists()
