"""``status``: the interrupted steps it lists, gc deletions among them."""

from __future__ import annotations

from pathlib import Path

from imagefactory.project.paths import audit_log
from imagefactory.release import audit
from imagefactory.release.status import status
from imagefactory.spec.loader import load_catalog


def test_an_interrupted_gc_deletion_of_an_image_with_variants_is_listed(catalog_dir: Path) -> None:
    catalog = load_catalog(catalog_dir)
    intent = audit.new_record(
        action="gc",
        image="runtime/llm",  # gc names the repository's image: the name, not a variant's ref
        version="1.0.0-cpu",
        digest="sha256:" + "a" * 64,
        source="dev",
        target="dev",
        tags=["1.0.0-cpu"],
        git_revision=None,
        approver=None,
        registries=["dev"],
        reason="not among the 10 highest of its line",
    )
    audit.append(audit_log(catalog), intent)
    [pending] = status(catalog, catalog.select([])).incomplete
    assert pending.id == intent.id
    assert pending.command() == "imagefactory gc --env dev"
