"""The layer graph as text: an indented tree, Mermaid, Graphviz DOT, or plain data.

Roots are what the catalog does not build itself — a bootstrapped rootfs or an external image —
so the picture shows where every layer's bytes come from.
"""

from __future__ import annotations

import json

from imagefactory.spec.catalog import Catalog
from imagefactory.spec.graph import children_of
from imagefactory.spec.parents import describe_parent


def render_graph(catalog: Catalog, fmt: str) -> str:
    return {"tree": as_tree, "mermaid": as_mermaid, "dot": as_dot, "json": as_json}[fmt](catalog)


def _roots(catalog: Catalog) -> dict[str, list[str]]:
    """Each external origin (bootstrap, external image) and the catalog images built on it."""
    roots: dict[str, list[str]] = {}
    for ref, image in catalog.images.items():
        if image.parent_ref is None:
            roots.setdefault(describe_parent(image.parent), []).append(ref)
    return dict(sorted(roots.items()))


def _children(catalog: Catalog) -> dict[str, list[str]]:
    return children_of(catalog.parents)


def _label(catalog: Catalog, ref: str) -> str:
    return f"{ref} ({catalog.images[ref].spec.version})"


def as_tree(catalog: Catalog) -> str:
    children = _children(catalog)
    lines: list[str] = []

    def walk(ref: str, prefix: str, last: bool) -> None:
        lines.append(f"{prefix}{'└── ' if last else '├── '}{_label(catalog, ref)}")
        below = children[ref]
        for index, child in enumerate(below):
            walk(child, prefix + ("    " if last else "│   "), index == len(below) - 1)

    for origin, refs in _roots(catalog).items():
        lines.append(origin)
        for index, ref in enumerate(refs):
            walk(ref, "", index == len(refs) - 1)
    return "\n".join(lines) + "\n"


def _ids(catalog: Catalog) -> dict[str, str]:
    ids = {image.ref: f"img{index}" for index, image in enumerate(catalog.in_build_order())}
    ids.update({origin: f"src{index}" for index, origin in enumerate(_roots(catalog))})
    return ids


def _edges(catalog: Catalog) -> list[tuple[str, str]]:
    edges = [(origin, ref) for origin, refs in _roots(catalog).items() for ref in refs]
    edges += [(parent, child) for parent, kids in _children(catalog).items() for child in kids]
    return edges


def as_mermaid(catalog: Catalog) -> str:
    ids = _ids(catalog)
    lines = ["graph TD"]
    lines += [f'  {ids[o]}[("{_escape(o)}")]' for o in _roots(catalog)]
    lines += [f'  {ids[r]}["{_escape(_label(catalog, r))}"]' for r in catalog.images]
    lines += [f"  {ids[a]} --> {ids[b]}" for a, b in _edges(catalog)]
    return "\n".join(lines) + "\n"


def as_dot(catalog: Catalog) -> str:
    ids = _ids(catalog)
    lines = ["digraph catalog {", "  rankdir=TB;", "  node [shape=box];"]
    lines += [f'  {ids[o]} [label="{_dot(o)}", shape=cylinder];' for o in _roots(catalog)]
    lines += [f'  {ids[r]} [label="{_dot(_label(catalog, r))}"];' for r in catalog.images]
    lines += [f"  {ids[a]} -> {ids[b]};" for a, b in _edges(catalog)]
    return "\n".join([*lines, "}"]) + "\n"


def as_json(catalog: Catalog) -> str:
    nodes = [
        {
            "image": ref,
            "version": image.spec.version,
            "parent": describe_parent(image.parent),
            "parent_in_catalog": image.parent_ref is not None,
        }
        for ref, image in catalog.images.items()
    ]
    order = [image.ref for image in catalog.in_build_order()]
    return json.dumps({"images": nodes, "build_order": order}, indent=2) + "\n"


def _escape(text: str) -> str:
    return text.replace('"', "'")


def _dot(text: str) -> str:
    """A DOT string's content: quotes as in Mermaid, and no backslash escape (\\N, \\l…) left
    for Graphviz to expand."""
    return _escape(text).replace("\\", "\\\\")
