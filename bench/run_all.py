"""Every benchmark in one run: one summary table, each figure against its baseline measured in
the same run, and one results JSON.

Each part is a sibling script run as a subprocess with a results file of its own (its full
output goes to stderr as it runs); this script reads those files and writes the summary. The
results JSON has one number per key (no units; seconds where a key ends in ``_s``):

=============================  =====================================================  ==========
key                            figure (script)                                        target
=============================  =====================================================  ==========
``promote_same_registry_ratio``  promote / docker pull+tag+push, same registry          ≤ 0.3
                               (promote_bench.py)
``promote_cross_registry_ratio`` the same into a second (TLS) registry                  ≤ 0.25
``noop_fresh_engine_ratio``    no-op build on a fresh engine / plain ``docker build     ≤ 0.05
                               --cache-from`` + push (fresh_engine_bench.py)
``noop_warm_ratio``            no-op build / plain ``docker build`` of the contexts,   ≤ 1.5
                               warm cache (build_bench.py)
``cli_start_s``                ``--version`` above ``python -c pass``                  ≤ 0.15
                               (startup_bench.py)
``plan_5000_s``                ``imagefactory plan --json``, 5,000 image files, depth  < 2
                               6, as a subprocess (build_bench.py's scale part)
``ci_generate_depth200_s``     ``imagefactory ci generate`` of a 200-deep chain, as a  < 1
                               subprocess (ci_bench.py)
``test_overhead_ratio``        ``imagefactory test`` / the same checks as one plain    ≤ 1.1
                               pytest-testinfra run (test_bench.py)
=============================  =====================================================  ==========

Each figure's baseline is in the same part's results, measured in the same run (interleaved
where the part times two sides). ``--quick`` runs each part once or twice (about 5 minutes on
2 cores once BuildKit's cache holds the example's layers); the default repeats as each script
does. ``--skip-docker`` runs only the parts that need no daemon or registry (start-up, plan,
ci generate). Run from the repository root, after ``scripts/setup.sh`` and ``scripts/services.sh
start`` (and ``imagefactory keygen`` with ``IMAGEFACTORY_SIGNING_KEY`` set: the parts that build
sign what they push)::

    .venv/bin/python bench/run_all.py --quick --results /tmp/bench.json
    .venv/bin/python bench/run_all.py --skip-docker

Exit status: 0 when every part ran (a missed target is ``MISS`` in the table, not a failure),
1 when a part failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Figure:
    key: str
    what: str
    target: float
    #: The figure and its baseline's words, from the part's results.
    read: Callable[[dict[str, Any]], tuple[float, str]]


@dataclass(frozen=True)
class Part:
    script: str
    #: The script's arguments: (quick, full); the results file's option is added.
    quick: list[str]
    full: list[str]
    results_option: str
    docker: bool
    figures: list[Figure]


def _measure(results: dict[str, Any], name: str) -> float:
    """The median of build_bench's measure called ``name``."""
    for measure in results["measures"]:
        if measure["name"] == name:
            return float(measure["median_s"])
    raise KeyError(f"build_bench reported no measure {name!r}")


def _promote(target: str) -> Callable[[dict[str, Any]], tuple[float, str]]:
    def read(results: dict[str, Any]) -> tuple[float, str]:
        entry = results["targets"][target]
        return entry["ratio"], (
            f"{entry['promote']['median_s']:.2f} s vs docker pull+tag+push "
            f"{entry['docker']['median_s']:.2f} s"
        )

    return read


def _noop_warm(results: dict[str, Any]) -> tuple[float, str]:
    ours = _measure(results, "imagefactory build app/rag-api (3 reused)")
    plain = _measure(results, "plain docker build x3 contexts (cached)")
    return ours / plain, f"{ours:.3f} s vs plain docker build x3 {plain:.3f} s"


def _plan(results: dict[str, Any]) -> tuple[float, str]:
    ours = _measure(results, "imagefactory plan --json (no state)")
    yaml_names = [m["name"] for m in results["measures"] if m["name"].startswith("python -c")]
    plain = _measure(results, yaml_names[0])
    return ours, f"vs {plain:.3f} s to yaml.safe_load the same files in a subprocess"


def _fresh(results: dict[str, Any]) -> tuple[float, str]:
    ours, plain = results["imagefactory_s"]["median"], results["plain_s"]["median"]
    return results["noop_fresh_engine_ratio"], (
        f"{ours:.2f} s vs docker build --cache-from + push x3 {plain:.2f} s"
    )


def _start(results: dict[str, Any]) -> tuple[float, str]:
    return results["cli_start_s"], (
        f"--version {results['version_median_s']:.3f} s, python -c pass "
        f"{results['python_pass_median_s']:.3f} s"
    )


def _ci(results: dict[str, Any]) -> tuple[float, str]:
    depth = results["depth200"]
    return depth["command_s"], (
        f"in-process {depth['in_process_s']:.3f} s; libyaml dump of the same data "
        f"{depth['yaml_dump_s']:.3f} s; {depth['output_mb']:.1f} MB"
    )


def _test(results: dict[str, Any]) -> tuple[float, str]:
    medians = {m["name"]: m["median_s"] for m in results["measures"]}
    return results["ratio"], ", ".join(f"{n} {s:.2f} s" for n, s in list(medians.items())[:3])


PARTS = [
    Part(
        "startup_bench.py",
        ["--repeat", "5"],
        ["--repeat", "9"],
        "--results",
        False,
        [Figure("cli_start_s", "CLI start above python -c pass (s)", 0.15, _start)],
    ),
    Part(
        "build_bench.py",
        ["--repeat", "2", "--images", "5000", "--depth", "6", "--skip-incremental"],
        ["--repeat", "5", "--images", "5000", "--depth", "6"],
        "--results",
        True,
        [
            Figure("noop_warm_ratio", "no-op build / plain docker build, warm", 1.5, _noop_warm),
            Figure("plan_5000_s", "plan --json, 5,000 images, depth 6 (s)", 2.0, _plan),
        ],
    ),
    Part(
        "ci_bench.py",
        ["--repeat", "2", "--depths", "200"],
        ["--repeat", "5", "--depths", "50", "100", "200"],
        "--results",
        False,
        [Figure("ci_generate_depth200_s", "ci generate, 200-deep chain (s)", 1.0, _ci)],
    ),
    Part(
        "fresh_engine_bench.py",
        ["--repeat", "1"],
        ["--repeat", "3"],
        "--results",
        True,
        [Figure("noop_fresh_engine_ratio", "no-op build / plain, fresh engine", 0.05, _fresh)],
    ),
    Part(
        "promote_bench.py",
        ["--repeat", "1"],
        ["--repeat", "3"],
        "--json",
        True,
        [
            Figure(
                "promote_same_registry_ratio",
                "promote / docker, same registry",
                0.3,
                _promote("same"),
            ),
            Figure(
                "promote_cross_registry_ratio",
                "promote / docker, second registry",
                0.25,
                _promote("b"),
            ),
        ],
    ),
    Part(
        "test_bench.py",
        ["--repeat", "1"],
        ["--repeat", "5"],
        "--results",
        True,
        [Figure("test_overhead_ratio", "imagefactory test / plain pytest", 1.1, _test)],
    ),
]


def run_part(part: Part, quick: bool, folder: Path) -> tuple[dict[str, Any] | None, float]:
    """The part's results (None when it failed) and its wall-clock seconds."""
    results = folder / f"{Path(part.script).stem}.json"
    argv = [sys.executable, str(HERE / part.script), *(part.quick if quick else part.full)]
    argv += [part.results_option, str(results)]
    print(f"[run_all] {' '.join(argv[1:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    proc = subprocess.run(argv, stdout=sys.stderr, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0 or not results.is_file():
        print(f"[run_all] {part.script} failed (exit {proc.returncode})", file=sys.stderr)
        return None, seconds
    found: dict[str, Any] = json.loads(results.read_text())
    return found, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each part once or twice (~5 min)")
    parser.add_argument("--skip-docker", action="store_true", help="only the daemonless parts")
    parser.add_argument("--results", type=Path, help="write the figures here (JSON)")
    args = parser.parse_args()
    figures: dict[str, float] = {}
    rows = [["key", "measured", "target", "result", "baseline (same run)"]]
    failed = []
    parts: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-all-") as temp:
        for part in PARTS:
            if args.skip_docker and part.docker:
                continue
            results, seconds = run_part(part, args.quick, Path(temp))
            parts[part.script] = seconds
            if results is None:
                failed.append(part.script)
                continue
            for figure in part.figures:
                value, baseline = figure.read(results)
                figures[figure.key] = round(value, 4)
                verdict = "PASS" if value <= figure.target else "MISS"
                rows.append([figure.key, f"{value:.3f}", f"≤ {figure.target:g}", verdict, baseline])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))
    print(
        f"parts ({'--quick' if args.quick else 'full'}): "
        + ", ".join(f"{script} {seconds:.0f} s" for script, seconds in parts.items())
    )
    for script in failed:
        print(f"FAILED: {script} (its output is above, on stderr)")
    if args.results:  # the figures only: one number per key, as the keys above are documented
        args.results.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
