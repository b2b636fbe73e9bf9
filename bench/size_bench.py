"""Benchmark: the example's image sizes against their references, and ``outdated`` with a warm
cache.

Sizes are uncompressed, as the engine reports them (``docker image ls``). The references:

* ``base/debian12`` against ``debian:bookworm-slim``'s published 74.8 MB (no public registry is
  reachable here, so it cannot be pulled; the figure is the one Docker Hub lists for
  bookworm-slim, amd64);
* ``runtime/llm:cpu`` and ``app/rag-api`` against hand-written Dockerfiles of the same packages
  built here in the same run, FROM the same base digest, written the way Docker's best-practice
  guide says (``--no-install-recommends``, apt lists removed, ``pip --no-cache-dir``), with the
  pins read from the catalog.

``outdated`` runs on the three images once to warm the index cache, then ``--repeat`` times;
the median is reported (what a scheduled pipeline pays per run, on top of start-up).

The refresh cascade: in a copy of the catalog and its state, a simulated security update is
recorded in refresh.yaml (what ``build --refresh`` writes), once for a base package (libc6) and
once for a runtime package (python3.11), and ``build --all --dry-run`` says what would rebuild:
exactly the recorded image and its descendants, against all of them for the plain alternative
(a rebuild of everything, or of nothing, by hand).

Needs the example built in this checkout (``imagefactory build app/rag-api``, as
``scripts/quickstart.sh`` does; ``--build`` runs it first), a Docker engine and the Debian
mirror. Run from the repository root::

    .venv/bin/python bench/size_bench.py [--build] [--repeat 5] [--results FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from imagefactory.spec.loader import load_catalog  # noqa: E402

DOCKER = "/usr/bin/docker"
IMAGEFACTORY = [sys.executable, "-m", "imagefactory", "-C", str(REPO)]
SLIM_MB = 74.8  # debian:bookworm-slim, amd64, as Docker Hub lists it
MB = 1000 * 1000
EXAMPLE = ("base/debian12", "runtime/llm:cpu", "app/rag-api")


def run(argv: list[str], env: dict[str, str], timeout: float = 1800) -> str:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result.stdout


def environment() -> dict[str, str]:
    env = dict(os.environ, DOCKER_BUILDKIT="1", IMAGEFACTORY_DOCKER=DOCKER)
    env.setdefault("IMAGEFACTORY_REGISTRY_USER", "imagefactory")
    secret = REPO / ".host" / "registry.password"
    if not env.get("IMAGEFACTORY_REGISTRY_PASSWORD") and secret.is_file():
        env["IMAGEFACTORY_REGISTRY_PASSWORD"] = secret.read_text(encoding="utf-8").strip()
    return env


def hand_written(base: str) -> tuple[str, str]:
    """The Dockerfiles (runtime, app) of the same packages, pins and files, by hand."""
    catalog = load_catalog(REPO)
    runtime, app = catalog.images["runtime/llm:cpu"].spec, catalog.images["app/rag-api"].spec
    runtime_file = f"""\
FROM {base}
USER 0:0
RUN apt-get update && apt-get install -y --no-install-recommends {" ".join(runtime.packages)} \\
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir {" ".join(runtime.pip)}
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER app
"""
    app_file = f"""\
FROM imagefactory-bench/hand-runtime:1
USER 0:0
RUN /opt/venv/bin/pip install --no-cache-dir {" ".join(app.pip)}
COPY rag_api /opt/rag-api/rag_api
USER app
"""
    return runtime_file, app_file


def refresh_cascade(env: dict[str, str]) -> dict[str, Any]:
    """Per simulated update: the images ``build --all`` would rebuild, and whether that is
    exactly the recorded image and its descendants."""
    catalog = load_catalog(REPO)
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "catalog"
        shutil.copytree(REPO / "images", copy / "images")
        shutil.copy2(REPO / "imagefactory.yaml", copy / "imagefactory.yaml")
        (copy / ".imagefactory").mkdir()
        shutil.copy2(REPO / ".imagefactory" / "state.json", copy / ".imagefactory" / "state.json")
        for image, package in (("base/debian12", "libc6"), ("runtime/llm:cpu", "python3.11")):
            (copy / "refresh.yaml").write_text(f"refreshed:\n  {image}:\n    {package}: '1:0'\n")
            argv = [sys.executable, "-m", "imagefactory", "-C", str(copy), "build", "--all"]
            plan = json.loads(run([*argv, "--dry-run", "--json"], env))["plan"]
            rebuilt = sorted(e["image"] for e in plan if e["reasons"])
            expected = sorted(
                ref for ref in catalog.images if image in [i.ref for i in catalog.lineage(ref)]
            )
            found[f"refresh_{package}"] = {
                "rebuilt": len(rebuilt),
                "of": len(plan),
                "exact": rebuilt == expected,
            }
    return found


def image_size(reference: str, env: dict[str, str]) -> int:
    return int(run([DOCKER, "image", "inspect", "--format", "{{.Size}}", reference], env).strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", action="store_true", help="build the example first")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()
    env = environment()
    if args.build:
        run([*IMAGEFACTORY, "build", "app/rag-api", "--json"], env, timeout=3600)
    sizes = {
        report["image"]: report
        for report in json.loads(run([*IMAGEFACTORY, "size", *EXAMPLE, "--json"], env))["images"]
    }
    base = sizes["base/debian12"]["reference"]
    runtime_file, app_file = hand_written(base)
    with tempfile.TemporaryDirectory() as folder:
        context = Path(folder)
        shutil.copytree(REPO / "images/app/rag-api/app/rag_api", context / "rag_api")
        for tag, text in (
            ("imagefactory-bench/hand-runtime:1", runtime_file),
            ("imagefactory-bench/hand-app:1", app_file),
        ):
            (context / "Dockerfile").write_text(text)
            run([DOCKER, "build", "--network", "host", "--quiet", "--tag", tag, str(context)], env)
    hand = {
        "runtime/llm:cpu": image_size("imagefactory-bench/hand-runtime:1", env),
        "app/rag-api": image_size("imagefactory-bench/hand-app:1", env),
    }
    run([*IMAGEFACTORY, "outdated", *EXAMPLE, "--json"], env)  # warm the index cache
    times = []
    for _ in range(args.repeat):
        started = time.monotonic()
        run([*IMAGEFACTORY, "outdated", *EXAMPLE, "--json"], env)
        times.append(time.monotonic() - started)
    outdated = json.loads(run([*IMAGEFACTORY, "outdated", *EXAMPLE, "--json"], env))
    results: dict[str, Any] = {
        "base_mb": round(sizes["base/debian12"]["size_bytes"] / MB, 1),
        "base_vs_slim_ratio": round(sizes["base/debian12"]["size_bytes"] / MB / SLIM_MB, 3),
        "runtime_mb": round(sizes["runtime/llm:cpu"]["size_bytes"] / MB, 1),
        "runtime_hand_mb": round(hand["runtime/llm:cpu"] / MB, 1),
        "runtime_vs_hand_ratio": round(
            sizes["runtime/llm:cpu"]["size_bytes"] / hand["runtime/llm:cpu"], 3
        ),
        "app_mb": round(sizes["app/rag-api"]["size_bytes"] / MB, 1),
        "app_hand_mb": round(hand["app/rag-api"] / MB, 1),
        "app_vs_hand_ratio": round(sizes["app/rag-api"]["size_bytes"] / hand["app/rag-api"], 3),
        "outdated_warm_s": round(statistics.median(times), 3),
        "outdated_warm_min_s": round(min(times), 3),
        "outdated_warm_max_s": round(max(times), 3),
        "pending": {i["image"]: [i["pending"], i["security"]] for i in outdated["images"]},
        "largest_base_packages": [
            [p["name"], round(p["size_bytes"] / MB, 2)]
            for p in sizes["base/debian12"]["packages"][:8]
        ],
    }
    results.update(refresh_cascade(env))
    for key, value in results.items():
        print(f"{key:28} {value}")
    if args.results:
        args.results.write_text(json.dumps(results, indent=2) + "\n")
    for tag in ("imagefactory-bench/hand-app:1", "imagefactory-bench/hand-runtime:1"):
        subprocess.run([DOCKER, "rmi", tag], env=env, capture_output=True, check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
