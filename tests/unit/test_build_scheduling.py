"""The build scheduler: DAG order, parallel independent images, failures stop only descendants."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import cast

from imagefactory.build.run import BuildOptions, BuildRun
from imagefactory.build.schedule import Outcome, images_to_build, run_in_dag_order
from imagefactory.project.paths import state_file
from imagefactory.project.plan import make_plan
from imagefactory.project.state import ImageRecord, State, load_state, save_state
from imagefactory.registry.client import RegistryClient
from imagefactory.spec.catalog import CatalogImage
from imagefactory.spec.loader import load_catalog


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def queued(self, ref: str) -> None:
        with self.lock:
            self.events.append(("queued", ref))

    def started(self, ref: str, why: str) -> None:
        pass

    def log(self, ref: str, line: str) -> None:
        pass

    def finished(self, outcome: Outcome) -> None:
        with self.lock:
            self.events.append((outcome.status, outcome.ref))


def wide_catalog(root: Path) -> Path:
    """base → {a, b, c}; a → a1; each image bootstrapped or FROM a catalog parent."""
    (root / "imagefactory.yaml").write_text("project: p\n")
    specs = {
        "base": "bootstrap: {}\nuser: root",
        "a": "from: base",
        "b": "from: base",
        "c": "from: base",
        "a1": "from: a",
    }
    for name, parent in specs.items():
        folder = root / "images" / name
        folder.mkdir(parents=True)
        (folder / "image.yaml").write_text(f"name: {name}\nversion: 1.0.0\n{parent}\n")
    return root


def test_parents_finish_before_children_start_and_siblings_overlap(tmp_path: Path) -> None:
    catalog = load_catalog(wide_catalog(tmp_path))
    finished: dict[str, float] = {}
    started: dict[str, float] = {}
    active, peak = 0, 0
    lock = threading.Lock()

    def work(image: CatalogImage) -> Outcome:
        nonlocal active, peak
        with lock:
            started[image.ref] = time.monotonic()
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
            finished[image.ref] = time.monotonic()
        return Outcome(image.ref, "built")

    outcomes = run_in_dag_order(catalog.in_build_order(), 3, work, Recorder())
    assert [o.status for o in outcomes] == ["built"] * 5
    for image in catalog.images.values():
        if image.parent_ref:
            assert finished[image.parent_ref] <= started[image.ref]
    assert peak >= 2  # a, b and c are independent


def test_failure_skips_descendants_only(tmp_path: Path) -> None:
    catalog = load_catalog(wide_catalog(tmp_path))

    def work(image: CatalogImage) -> Outcome:
        return Outcome(image.ref, "failed" if image.ref == "a" else "built")

    recorder = Recorder()
    outcomes = {
        o.ref: o.status for o in run_in_dag_order(catalog.in_build_order(), 2, work, recorder)
    }
    assert outcomes == {"base": "built", "a": "failed", "b": "built", "c": "built", "a1": "skipped"}
    assert ("skipped", "a1") in recorder.events


def test_selection_brings_its_ancestors_in_build_order(tmp_path: Path) -> None:
    catalog = load_catalog(wide_catalog(tmp_path))
    chosen = images_to_build(catalog, catalog.select(["a1", "c"]))
    assert [i.ref for i in chosen] == ["base", "a", "c", "a1"]


def test_a_build_says_why_in_the_words_of_the_plan(catalog_dir: Path) -> None:
    catalog = load_catalog(catalog_dir)
    built = {
        e.ref: ImageRecord(
            content_hash=e.inputs.content_hash, inputs=e.inputs.as_dict(), version=e.version
        )
        for e in make_plan(catalog, State())
    }
    save_state(state_file(catalog), State(images=built))
    main = catalog_dir / "images/app/rag-api/app/rag_api/main.py"
    main.write_text(main.read_text() + "\n# changed\n")
    catalog = load_catalog(catalog_dir)
    [entry] = make_plan(catalog, load_state(state_file(catalog)), ["app/rag-api"])
    run = BuildRun(catalog, cast(RegistryClient, None), BuildOptions(), Recorder())
    why = run._why("app/rag-api", run.inputs["app/rag-api"])
    assert why == ", ".join(entry.reasons) == "file changed"
