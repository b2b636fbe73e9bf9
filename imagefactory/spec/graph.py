"""The layer graph: which image is built on which, and the order to build them in."""

from __future__ import annotations

import graphlib
from collections.abc import Mapping


def find_cycle(parents: Mapping[str, str | None]) -> list[str] | None:
    """A cycle as ``[a, b, a]`` if the parent links have one, else None."""
    try:
        build_order(parents)
    except graphlib.CycleError as exc:
        cycle = list(reversed(exc.args[1]))
        return cycle
    return None


def build_order(parents: Mapping[str, str | None]) -> list[str]:
    """Refs in an order where every parent comes before its children; ties sorted by name."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for ref in sorted(parents):
        parent = parents[ref]
        sorter.add(ref, *([parent] if parent is not None and parent in parents else []))
    sorter.prepare()
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return order


def children_of(parents: Mapping[str, str | None]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {ref: [] for ref in parents}
    for ref in sorted(parents):
        parent = parents[ref]
        if parent in children:
            children[parent].append(ref)
    return children
