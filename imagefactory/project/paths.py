"""Where imagefactory finds its own resources and a project's files."""

from __future__ import annotations

import re
from pathlib import Path

from imagefactory.errors import ImageFactoryError, UserError
from imagefactory.spec.catalog import Catalog

#: The standard templates (dockerfile/, packer/, gitops/) that ship inside the package.
_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
#: A template set is only whole with its Dockerfile template: its folder enters every content hash.
_TEMPLATE_MARKER = "dockerfile/Dockerfile.j2"


def templates_dir() -> Path:
    """The package's standard templates. Their absence is a broken installation, never an
    empty template set: content hashes would silently differ from a whole installation's."""
    if not (_TEMPLATES / _TEMPLATE_MARKER).is_file():
        raise ImageFactoryError(
            f"imagefactory's standard templates are missing: no {_TEMPLATES / _TEMPLATE_MARKER}",
            hint="the installation is incomplete; reinstall imagefactory (pip install --force-reinstall imagefactory)",
        )
    return _TEMPLATES


def state_file(catalog: Catalog) -> Path:
    return catalog.root / catalog.project.state


def work_dir(catalog: Catalog) -> Path:
    """Where builds keep their contexts, logs and caches: the folder of the state file."""
    return state_file(catalog).parent


def ca_bundle_path(catalog: Catalog) -> Path | None:
    bundle = catalog.project.build.ca_bundle
    return None if bundle is None else catalog.root / bundle


def audit_log(catalog: Catalog) -> Path:
    """The append-only JSON-lines record of every push and promotion."""
    return work_dir(catalog) / "audit.jsonl"


def sbom_file(catalog: Catalog, digest: str) -> Path:
    """The local copy of the SBOM of the image ``digest`` (``sha256:<hex>``), written at build."""
    algorithm, _, hex_part = digest.partition(":")
    if algorithm != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hex_part):
        raise UserError(
            f"{digest!r} is not a manifest digest", hint="expected sha256:<64 hex digits>"
        )
    return work_dir(catalog) / "sbom" / f"sha256-{hex_part}.cdx.json"
