"""Fixtures for the fast tests: a writable copy of the example catalog, and a way to edit it."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

Edit = Callable[[str, str, str], None]


def copy_example_catalog(target: Path) -> Path:
    """The example catalog without its ``signing:`` section: its key pair is made per checkout
    (keys/ is not committed), and the fast tests of signing give catalogs keys of their own."""
    text = (REPO / "imagefactory.yaml").read_text()
    unsigned = re.sub(r"^signing:\n(?:[ \t]+.*\n)*", "", text, count=1, flags=re.MULTILINE)
    assert unsigned != text, "the example's imagefactory.yaml has no signing: section"
    (target / "imagefactory.yaml").write_text(unsigned)
    shutil.copytree(REPO / "images", target / "images")
    return target


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    return copy_example_catalog(tmp_path)


#: The example's shell-less application, built on app/rag-api.
SHELL_LESS_EXAMPLE = "images/app/rag-api-distroless"


def without_shell_less(root: Path) -> Path:
    """The catalog at ``root`` without the shell-less example: for tests that speak of one
    application, or of a chain that it cannot be built on."""
    shutil.rmtree(root / SHELL_LESS_EXAMPLE)
    return root


@pytest.fixture
def edit(catalog_dir: Path) -> Edit:
    """Replace text in a catalog file; fails loudly when the text is not there."""

    def replace(relative: str, old: str, new: str) -> None:
        path = catalog_dir / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))

    return replace


FIXTURES = Path(__file__).parent / "fixtures"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite the golden files from the current output instead of comparing",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[Path, str], None]:
    """Compare text with a golden file (or rewrite it with --update-golden)."""

    def check(path: Path, text: str) -> None:
        if request.config.getoption("--update-golden"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        assert path.exists(), f"no golden file {path}; run pytest --update-golden"
        assert text == path.read_text(), f"{path} differs; if intended, run pytest --update-golden"

    return check


@pytest.fixture
def pinned_catalog_dir(catalog_dir: Path, edit: Edit) -> Path:
    """The example catalog with a CA bundle from the tests, so hashes match on every machine."""
    shutil.copy(FIXTURES / "ca.pem", catalog_dir / "ca.pem")
    edit("imagefactory.yaml", "ca_bundle: /etc/ssl/certs/ca-certificates.crt", "ca_bundle: ca.pem")
    return catalog_dir
