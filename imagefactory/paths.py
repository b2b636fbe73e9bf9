"""Where imagefactory finds its own resources and a project's files."""

from __future__ import annotations

from pathlib import Path

from imagefactory.spec.catalog import Catalog

#: The standard templates (dockerfile/, packer/, …) that ship with imagefactory.
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def state_file(catalog: Catalog) -> Path:
    return catalog.root / catalog.project.state
