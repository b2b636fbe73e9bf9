"""The ``imagefactory`` command line: typer apps, one module per command group."""

from __future__ import annotations

from imagefactory.cli import build as _build  # noqa: F401  (registers its commands)
from imagefactory.cli import catalog as _catalog  # noqa: F401
from imagefactory.cli import image as _image  # noqa: F401
from imagefactory.cli.app import app


def main() -> None:
    app(prog_name="imagefactory")
