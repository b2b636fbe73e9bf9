"""``imagefactory report``: the catalog's records (``collect``) as one JSON document, and as one
self-contained HTML page rendered from that same document (``render.report``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from imagefactory.atomic import write_atomically
from imagefactory.project.state import unwritable
from imagefactory.render.report import graph_svg, report_html
from imagefactory.report.collect import collect
from imagefactory.spec.catalog import Catalog


def report_document(catalog: Catalog, *, offline: bool) -> dict[str, Any]:
    """The report as JSON-ready data: every field of ``collect``'s answer, None where nothing
    records it."""
    return dataclasses.asdict(collect(catalog, offline=offline))


def write_report(catalog: Catalog, out: Path, *, offline: bool) -> dict[str, Any]:
    """Write the HTML page to ``out`` (whole or not at all); the document it shows."""
    document = report_document(catalog, offline=offline)
    page = report_html(catalog.root, document, graph_svg(catalog))
    try:
        write_atomically(out, page.encode(), mode=0o644)
    except OSError as exc:
        raise unwritable(out, exc) from exc
    return document
