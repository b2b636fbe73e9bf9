"""Fixtures for the fast tests: a writable copy of the example catalog, and a way to edit it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

Edit = Callable[[str, str, str], None]


def copy_example_catalog(target: Path) -> Path:
    shutil.copy(REPO / "imagefactory.yaml", target / "imagefactory.yaml")
    shutil.copytree(REPO / "images", target / "images")
    return target


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    return copy_example_catalog(tmp_path)


@pytest.fixture
def edit(catalog_dir: Path) -> Edit:
    """Replace text in a catalog file; fails loudly when the text is not there."""

    def replace(relative: str, old: str, new: str) -> None:
        path = catalog_dir / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))

    return replace
