"""The catalog report as one self-contained HTML file: inline CSS, the layer graph as inline SVG,
no script, and a Content-Security-Policy that forbids every fetch.

The page renders from the report's JSON document (the one ``report --json`` prints) in the
project's one sandboxed Jinja environment, with HTML autoescaping on: every value is text. The
graph is Graphviz's SVG of the catalog's DOT (``render.graph.as_dot``, labels escaped for DOT),
and is then rebuilt from an allowlist: only SVG's drawing elements and presentation attributes
survive, every text and attribute value escaped again, so no script, link, style sheet,
external reference or event handler can reach the page whatever a label holds.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from imagefactory import tools
from imagefactory.errors import UserError
from imagefactory.render.environment import render_template
from imagefactory.render.graph import as_dot
from imagefactory.spec.catalog import Catalog

TEMPLATE = "report/report.html.j2"
#: Every fetch refused: no script, font, frame, connection or form; only the page's own inline
#: styles and data: images.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
DOT_TIMEOUT = 60
_SVG_NS = "{http://www.w3.org/2000/svg}"
_ELEMENTS = frozenset({"svg", "g", "title", "polygon", "polyline", "path", "ellipse", "text"})
_ATTRIBUTES = frozenset(
    {
        "width", "height", "viewBox", "transform", "id", "class", "points", "d",
        "cx", "cy", "rx", "ry", "x", "y", "fill", "stroke", "stroke-width",
        "stroke-dasharray", "fill-opacity", "stroke-opacity", "text-anchor",
        "font-family", "font-size", "font-weight", "font-style",
    }
)  # fmt: skip
#: What no kept attribute value may hold: a reference (url(), a scheme), markup or an entity.
_UNSAFE_VALUE = re.compile(r"url\(|[a-z][a-z0-9+.-]*:|[<>&\"'`]|\\", re.IGNORECASE)


class Safe(str):
    """Markup built here from escaped parts: autoescaping writes it as it is."""

    def __html__(self) -> str:
        return str(self)


def report_html(root: Path, document: dict[str, Any], graph: Safe) -> str:
    """The page of ``document`` (the report's JSON) with ``graph`` (see :func:`graph_svg`)."""
    return render_template(
        root,
        TEMPLATE,
        {"report": document, "graph": graph, "policy": CONTENT_SECURITY_POLICY},
    )


def graph_svg(catalog: Catalog) -> Safe:
    """The catalog's layer graph drawn by Graphviz (``dot -Tsvg``), sanitised."""
    dot = tools.require("dot", hint="install Graphviz (Debian: apt-get install graphviz)")
    result = tools.run(
        [dot, "-Tsvg"],
        stdin=as_dot(catalog).encode(),
        timeout=DOT_TIMEOUT,
        separate_stderr=True,
        exact_output=True,
        hint="Graphviz could not draw the layer graph",
    )
    return sanitized_svg(result.output)


def sanitized_svg(text: str) -> Safe:
    """``text`` (an SVG document) rebuilt from the allowlist: the prolog, DOCTYPE, comments,
    every other element (with its content) and every other attribute dropped; values escaped."""
    start = text.find("<svg")
    try:
        tree = ET.fromstring(text[start:]) if start >= 0 else None
    except ET.ParseError as exc:
        raise UserError(f"Graphviz wrote an SVG that does not parse: {exc}") from exc
    if tree is None or _local(tree.tag) != "svg":
        raise UserError("Graphviz wrote no SVG", hint="check the graphviz installation")
    return Safe(_element(tree))


def _local(tag: object) -> str | None:
    """An SVG element's name; None for one of another namespace (or a comment)."""
    if not isinstance(tag, str):
        return None
    if tag.startswith(_SVG_NS):
        return tag[len(_SVG_NS) :]
    return None if tag.startswith("{") else tag


def _element(element: ET.Element) -> str:
    name = _local(element.tag)
    if name not in _ELEMENTS:
        return ""
    attributes = "".join(
        f' {key}="{html.escape(value)}"'
        for key, value in sorted(element.attrib.items())
        if key in _ATTRIBUTES and not _UNSAFE_VALUE.search(value)
    )
    inner = html.escape(element.text or "", quote=False)
    for child in element:
        inner += _element(child) + html.escape(child.tail or "", quote=False)
    return f"<{name}{attributes}>{inner}</{name}>"
