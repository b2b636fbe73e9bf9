"""Benchmark: ``imagefactory ci generate`` on a single chain of images, 50, 100 and 200 deep.

A chain is the worst case for the pipeline's size: every image's ``rules:changes`` lists its own
folder and each ancestor's, so the YAML holds depth x depth paths (that part of the output is
inherent). The time should still grow linearly with the output, not faster. For each depth the
script writes a chain catalog (``chain/img-000`` bootstrapped, each next image ``from`` the one
before) into a temporary folder and times, ``--repeat`` times (median, min, max):

* in-process, ``load_catalog`` + ``render_pipeline`` (what the command does, without start-up);
* the plain alternative for the same data: ``yaml.dump`` of the pipeline's data with libyaml's
  ``CSafeDumper`` (the cheapest way to write that YAML at all, anchors aside);
* ``imagefactory ci generate --out …`` as a subprocess (start-up included).

Needs no daemon or network. Run from the repository root (another checkout's copy of this
script times that checkout)::

    .venv/bin/python bench/ci_bench.py --repeat 5
    .venv/bin/python bench/ci_bench.py --repeat 1 --depths 200
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from imagefactory.render.gitlab_ci import (  # noqa: E402
    PipelineOptions,
    pipeline,
    render_pipeline,
)
from imagefactory.spec.loader import load_catalog  # noqa: E402

DEPTHS = (50, 100, 200)
#: The CLI of the tree this script sits in (``PYTHONPATH``), so an older checkout can be timed.
CLI = [sys.executable, "-m", "imagefactory"]
PROJECT = """\
project: chain
catalog: images
state: .imagefactory/state.json
registries:
  dev: {url: 127.0.0.1:5000, namespace: chain/dev, tls_verify: false}
  prod: {url: 127.0.0.1:5000, namespace: chain/prod, tls_verify: false}
environments:
  - {name: dev, registries: [dev]}
  - {name: prod, registries: [prod], approval: true}
"""


def write_chain(root: Path, depth: int) -> None:
    """``depth`` images, each built on the one before; the first is bootstrapped."""
    (root / "imagefactory.yaml").write_text(PROJECT, encoding="utf-8")
    for index in range(depth):
        folder = root / "images" / "chain" / f"img-{index:03d}"
        folder.mkdir(parents=True)
        base = (
            "bootstrap: {suite: bookworm}\nuser: root"
            if index == 0
            else f"from: chain/img-{index - 1:03d}"
        )
        text = f"name: chain/img-{index:03d}\nversion: 1.0.0\n{base}\npackages: [curl]\n"
        (folder / "image.yaml").write_text(text, encoding="utf-8")


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times


def row(label: str, times: list[float]) -> str:
    return f"| {label} | {statistics.median(times):.3f} | {min(times):.3f} | {max(times):.3f} |"


def measure(depth: int, repeat: int) -> tuple[list[str], dict[str, float]]:
    """The table rows of one depth, and its medians (seconds; the output in MB)."""
    options = PipelineOptions()
    with tempfile.TemporaryDirectory(prefix=f"ci-bench-{depth}-") as temp:
        root = Path(temp)
        write_chain(root, depth)
        text = render_pipeline(load_catalog(root), options)
        catalog = load_catalog(root)
        data = pipeline(catalog, options)
        generate = [*CLI, "-C", str(root), "ci", "generate", "--out", "pipeline.yml"]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        measured = {
            "in_process_s": (
                f"{depth} deep: load_catalog + render_pipeline",
                timed(lambda: render_pipeline(load_catalog(root), options), repeat),
            ),
            "yaml_dump_s": (
                f"{depth} deep: plain `yaml.dump` (CSafeDumper) of the same data",
                timed(lambda: yaml.dump(data, Dumper=yaml.CSafeDumper), repeat),
            ),
            "command_s": (
                f"{depth} deep: `imagefactory ci generate --out` (subprocess)",
                timed(
                    lambda: subprocess.run(generate, check=True, capture_output=True, env=env),
                    repeat,
                ),
            ),
        }
        lines = [row(label, times) for label, times in measured.values()]
        lines.append(f"| {depth} deep: output | {len(text) / 1e6:.2f} MB | | |")
        medians = {key: statistics.median(times) for key, (_, times) in measured.items()}
        return lines, {**medians, "output_mb": len(text) / 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--depths", type=int, nargs="+", default=list(DEPTHS))
    parser.add_argument("--results", type=Path, help="also write the medians here (JSON)")
    args = parser.parse_args()
    print("| measurement | median s | min s | max s |")
    print("|---|---|---|---|")
    results: dict[str, object] = {"repeat": args.repeat}
    for depth in args.depths:
        lines, medians = measure(depth, args.repeat)
        for line in lines:
            print(line, flush=True)
        results[f"depth{depth}"] = medians
    if args.results:
        args.results.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
