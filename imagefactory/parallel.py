"""Independent calls run at once, each to its end before any failure is raised."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor


def at_once(calls: Sequence[Callable[[], object]], *, limit: int | None = None) -> None:
    """Every call of ``calls`` in a thread of its own, at most ``limit`` at a time (all of them
    when None); the first failure, in the order of ``calls``, raised once all have finished."""
    if not calls:
        return
    with ThreadPoolExecutor(max_workers=min(limit or len(calls), len(calls))) as pool:
        for done in [pool.submit(call) for call in calls]:
            done.result()
