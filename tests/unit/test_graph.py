"""Build order, cycles, and the graph pictures (golden files: update them by hand when the
format changes on purpose; a diff here means every user's pasted picture changes too)."""

from pathlib import Path

import pytest

from imagefactory.render.formats import FORMATS
from imagefactory.render.graph import render_graph
from imagefactory.spec.graph import build_order, children_of, find_cycle
from imagefactory.spec.loader import load_catalog

GOLDEN = Path(__file__).parent / "golden"


def test_parents_come_before_children_and_ties_sort_by_name() -> None:
    parents = {"app": "rt", "rt": "base", "base": None, "tool": "base", "other": None}
    assert build_order(parents) == ["base", "other", "rt", "tool", "app"]


def test_parents_outside_the_map_are_ignored() -> None:
    assert build_order({"a": "external", "b": "a"}) == ["a", "b"]


def test_cycle_is_a_closed_chain() -> None:
    cycle = find_cycle({"a": "b", "b": "c", "c": "a", "d": None})
    assert cycle is not None
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"} and len(cycle) == 4
    assert find_cycle({"a": None, "b": "a"}) is None


def test_self_parent_is_a_cycle() -> None:
    assert find_cycle({"a": "a"}) == ["a", "a"]


def test_children() -> None:
    assert children_of({"a": None, "c": "a", "b": "a"}) == {"a": ["b", "c"], "b": [], "c": []}


@pytest.mark.parametrize("fmt", FORMATS)
def test_graph_views_of_the_example_catalog_match_golden(catalog_dir: Path, fmt: str) -> None:
    rendered = render_graph(load_catalog(catalog_dir), fmt)
    assert rendered == (GOLDEN / f"graph.{fmt}").read_text()
    assert render_graph(load_catalog(catalog_dir), fmt) == rendered  # deterministic


def test_external_parents_are_roots_of_the_tree(tmp_path: Path) -> None:
    (tmp_path / "imagefactory.yaml").write_text("project: p\n")
    digest = "sha256:" + "c" * 64
    for name, parent in [
        ("tools/cli", f"registry.example.com/debian@{digest}"),
        ("tools/ext", "tools/cli"),
    ]:
        folder = tmp_path / "images" / name
        folder.mkdir(parents=True)
        (folder / "image.yaml").write_text(f"name: {name}\nversion: 2.0.0\nfrom: '{parent}'\n")
    assert render_graph(load_catalog(tmp_path), "tree") == (
        f"registry.example.com/debian@{digest}\n└── tools/cli (2.0.0)\n    └── tools/ext (2.0.0)\n"
    )
