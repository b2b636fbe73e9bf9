"""The build scheduler: each image once its parent is done, independent images in parallel.

An image whose parent failed (or was skipped) is skipped; every other image still runs. The
work on one image (reuse, or build and push) is the caller's: :class:`imagefactory.build.run.BuildRun`.
"""

from __future__ import annotations

import graphlib
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Literal, Protocol

from imagefactory.errors import ImageFactoryError
from imagefactory.spec.catalog import Catalog, CatalogImage

#: ``unreproducible``: built, but its content tag held another digest already, which is kept
#: (the outcome's digest) and recorded; its detail names both.
Status = Literal["built", "reused", "unreproducible", "failed", "skipped"]


@dataclass(frozen=True)
class Outcome:
    ref: str
    status: Status
    seconds: float = 0.0
    digest: str | None = None
    detail: str = ""
    error: ImageFactoryError | None = None
    size_bytes: int | None = None  # the image's size as its build recorded it (None: unknown)
    #: platform → digest, for an image built per platform (``digest`` is then its index's)
    platforms: dict[str, str] = field(default_factory=dict)


class BuildReporter(Protocol):
    """Progress sink; called from worker threads."""

    def queued(self, ref: str) -> None: ...
    def started(self, ref: str, why: str) -> None: ...
    def log(self, ref: str, line: str) -> None: ...
    def finished(self, outcome: Outcome) -> None: ...


def images_to_build(catalog: Catalog, selected: list[CatalogImage]) -> list[CatalogImage]:
    """The selected images and all their catalog ancestors, in build order."""
    needed = {ancestor.ref for image in selected for ancestor in catalog.lineage(image.ref)}
    return [image for image in catalog.in_build_order() if image.ref in needed]


def run_in_dag_order(
    images: list[CatalogImage],
    jobs: int,
    work: Callable[[CatalogImage], Outcome],
    reporter: BuildReporter,
) -> list[Outcome]:
    """Run ``work`` on each image once its parent is done, up to ``jobs`` at a time.

    An image whose parent failed (or was skipped) is skipped; every other image still runs.
    """
    by_ref = {image.ref: image for image in images}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for image in images:
        sorter.add(image.ref, *([image.parent_ref] if image.parent_ref in by_ref else []))
    sorter.prepare()
    for image in images:
        reporter.queued(image.ref)
    outcomes: dict[str, Outcome] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        running: dict[Future[Outcome], str] = {}
        while sorter.is_active():
            for ref in sorted(sorter.get_ready()):
                parent = by_ref[ref].parent_ref
                if parent in outcomes and outcomes[parent].status in ("failed", "skipped"):
                    outcomes[ref] = Outcome(ref, "skipped", detail=f"parent {parent} did not build")
                    reporter.finished(outcomes[ref])
                    sorter.done(ref)
                else:
                    running[pool.submit(work, by_ref[ref])] = ref
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                ref = running.pop(future)
                outcomes[ref] = future.result()
                reporter.finished(outcomes[ref])
                sorter.done(ref)
    return [outcomes[image.ref] for image in images]
