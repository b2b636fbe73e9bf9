"""Benchmarks of imagefactory against the plain alternative, measured in the same run.

Three parts, each timed ``--repeat`` times (median reported, runs interleaved so that the noise
of a shared machine hits both sides alike):

1. no-op: on a private copy of the example catalog, after a full build of app/rag-api,
   ``imagefactory build app/rag-api`` again (everything reused) against a plain
   ``docker build`` of the same rendered build contexts with a warm BuildKit cache (and, for
   reference, the same plus ``docker push`` of each);
2. incremental: an edit of the app's main.py must rebuild exactly app/rag-api; a new label on
   the base must rebuild base/debian12 → runtime/llm:cpu → app/rag-api, each child FROM its
   parent's new digest. Reference: plain ``docker build`` of the three contexts + ``docker
   push`` after an equivalent app edit;
3. scale: ``imagefactory plan`` on a synthetic catalog (500 image files, depth 4) in a
   subprocess and in-process, against reading the same YAML files with ``yaml.safe_load``.

Parts 1-2 need the host services (dockerd, the registry on 127.0.0.1:5000); ``--skip-build``
runs part 3 alone. Run from the repository root::

    .venv/bin/python bench/build_bench.py --repeat 5
    .venv/bin/python bench/build_bench.py --skip-build --repeat 7

Nothing outside a fresh temporary folder is written; images go to the registry namespace
``imagefactory-bench/<run id>/`` and local tags made here are removed at the end.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import itertools
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_catalog import generate  # a sibling script, not a package

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
IMAGEFACTORY = REPO / ".venv" / "bin" / "imagefactory"
DOCKER = "/usr/bin/docker"
REGISTRY = "127.0.0.1:5000"
TARGET = "app/rag-api"
CHAIN = ["base/debian12", "runtime/llm:cpu", "app/rag-api"]
APP_MAIN = Path("images/app/rag-api/app/rag_api/main.py")
BASE_SPEC = Path("images/base/debian12/image.yaml")
BENCH_LABEL = "com.example-bank.bench-edit"
NOOP_TARGET = 0.25
JSON_SECONDS = "per image, from --json (0.1 s steps)"
PLAN_TARGET_S = 2.0
YAML_BASELINE = (
    "import pathlib, sys, yaml\n"
    "root = pathlib.Path(sys.argv[1])\n"
    "docs = [yaml.safe_load(p.read_text()) for p in "
    "[root / 'imagefactory.yaml', *sorted((root / 'images').rglob('image.yaml'))]]\n"
    "print(len(docs))\n"
)

T = TypeVar("T")


class BenchError(Exception):
    """A step failed or a result was not what the benchmark expects."""


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- measurements


@dataclass
class Measure:
    part: str
    name: str
    samples: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def as_dict(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "name": self.name,
            "median_s": round(self.median, 4),
            "min_s": round(min(self.samples), 4),
            "max_s": round(max(self.samples), 4),
            "samples_s": [round(s, 4) for s in self.samples],
            "note": self.note,
        }


@dataclass
class Verdict:
    name: str
    value: str
    target: str
    ok: bool | None  # None: informational, no target

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "target": self.target, "ok": self.ok}


@dataclass
class Report:
    measures: list[Measure] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def measure(self, part: str, name: str, note: str = "") -> Measure:
        found = Measure(part, name, note=note)
        self.measures.append(found)
        return found

    def ratio(self, name: str, top: Measure, bottom: Measure, at_most: float | None) -> float:
        value = top.median / bottom.median
        self.verdicts.append(
            Verdict(
                name,
                f"{value:.3f}x",
                f"<= {at_most}x" if at_most is not None else "-",
                value <= at_most if at_most is not None else None,
            )
        )
        return value

    def check(self, name: str, value: str, target: str, ok: bool | None) -> None:
        self.verdicts.append(Verdict(name, value, target, ok))

    def print(self) -> None:
        print()
        print(f"imagefactory benchmarks  {self.facts.get('date', '')}  {self.facts.get('machine')}")
        print(f"imagefactory from {self.facts.get('imagefactory')}")
        rows = [["part", "measurement", "median s", "min s", "max s", "n", "note"]]
        rows += [
            [
                m.part,
                m.name,
                f"{m.median:.3f}",
                f"{min(m.samples):.3f}",
                f"{max(m.samples):.3f}",
                str(len(m.samples)),
                m.note,
            ]
            for m in self.measures
        ]
        _print_table(rows)
        print()
        rows = [["check", "value", "target", "result"]]
        rows += [
            [v.name, v.value, v.target, {True: "PASS", False: "MISS", None: "info"}[v.ok]]
            for v in self.verdicts
        ]
        _print_table(rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "facts": self.facts,
            "measures": [m.as_dict() for m in self.measures],
            "checks": [v.as_dict() for v in self.verdicts],
        }


def _print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))


def timed(action: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def interleaved(repeat: int, pairs: Sequence[tuple[Measure, Callable[[], object]]]) -> None:
    """Time each action ``repeat`` times, rotating which goes first so noise hits all alike."""
    for index in range(repeat):
        shift = index % len(pairs)
        for measure, action in [*pairs[shift:], *pairs[:shift]]:
            seconds, _ = timed(action)
            measure.samples.append(seconds)


# --------------------------------------------------------------------------- processes


def run(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 3600,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in argv],
        env=dict(env) if env is not None else None,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout)[-3000:]
        raise BenchError(f"{' '.join(map(str, argv))} exited {result.returncode}:\n{tail}")
    return result


def registry_env() -> dict[str, str]:
    """The environment the CLI and Docker get: BuildKit, Debian's docker, registry credentials."""
    env = dict(os.environ)
    env["DOCKER_BUILDKIT"] = "1"
    env["IMAGEFACTORY_DOCKER"] = DOCKER
    env.setdefault("IMAGEFACTORY_REGISTRY_USER", "imagefactory")
    if not env.get("IMAGEFACTORY_REGISTRY_PASSWORD"):
        secret = REPO / ".host" / "registry.password"
        if not secret.is_file():
            raise BenchError(
                f"set IMAGEFACTORY_REGISTRY_PASSWORD or create {secret} (scripts/services.sh start)"
            )
        env["IMAGEFACTORY_REGISTRY_PASSWORD"] = secret.read_text(encoding="utf-8").strip()
    return env


def plain_docker_env(env: Mapping[str, str], folder: Path) -> dict[str, str]:
    """A private DOCKER_CONFIG logged in to the registry, as imagefactory gives its builds."""
    token = f"{env['IMAGEFACTORY_REGISTRY_USER']}:{env['IMAGEFACTORY_REGISTRY_PASSWORD']}"
    folder.mkdir(mode=0o700)
    config = folder / "config.json"
    config.touch(mode=0o600)
    auth = base64.b64encode(token.encode()).decode()
    config.write_text(json.dumps({"auths": {REGISTRY: {"auth": auth}}}), encoding="utf-8")
    return {**env, "DOCKER_CONFIG": str(folder)}


def cli_json(
    copy: Path, env: Mapping[str, str], *args: str, timeout: float = 3600
) -> dict[str, Any]:
    result = run([IMAGEFACTORY, "-C", copy, *args, "--json"], env=env, timeout=timeout)
    document: dict[str, Any] = json.loads(result.stdout)
    if not document.get("ok"):
        raise BenchError(f"imagefactory {' '.join(args)} answered {result.stdout[-2000:]}")
    return document


def built_refs(document: Mapping[str, Any]) -> list[str]:
    return [entry["image"] for entry in document["images"] if entry["status"] == "built"]


# --------------------------------------------------------------------------- parts 1 and 2


@dataclass
class Sandbox:
    work: Path
    copy: Path
    run_id: str
    namespace: str
    env: dict[str, str]
    plain_env: dict[str, str]

    def git_commit(self, message: str) -> None:
        run(["git", "-C", self.copy, "add", "-A"])
        run(
            [
                "git",
                "-C",
                self.copy,
                "-c",
                "user.name=imagefactory bench",
                "-c",
                "user.email=bench@localhost",
                "commit",
                "-q",
                "--no-verify",
                "-m",
                message,
            ]
        )

    def context(self, ref: str) -> Path:
        return self.copy / ".imagefactory" / "build" / re.sub(r"[^a-z0-9._-]+", "_", ref)

    def plain_tag(self, ref: str) -> str:
        slug = re.sub(r"[^a-z0-9._-]+", "_", ref)
        return f"{REGISTRY}/{self.namespace}/plain/{slug}:latest"


def make_sandbox(work: Path, seed_rootfs: bool) -> Sandbox:
    """The example catalog copied, its namespaces made unique, git-initialised and committed."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d%H%M%S")
    run_id = f"{stamp}-{random.randrange(16**6):06x}"
    namespace = f"imagefactory-bench/{run_id}"
    copy = work / "catalog"
    copy.mkdir()
    shutil.copytree(
        REPO / "images", copy / "images", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    if (REPO / "keys").is_dir():  # signing.public_key (IMAGEFACTORY_SIGNING_KEY signs)
        shutil.copytree(REPO / "keys", copy / "keys")
    project = yaml.safe_load((REPO / "imagefactory.yaml").read_text(encoding="utf-8"))
    for name, registry in project["registries"].items():
        registry["namespace"] = f"{namespace}/{name}"
    # The example's content hashes do not depend on the namespace, so images the example built
    # before (in this engine) would be reused and nothing rendered: a run label makes them new.
    project.setdefault("defaults", {}).setdefault("labels", {})["org.imagefactory.bench.run"] = (
        run_id
    )
    (copy / "imagefactory.yaml").write_text(
        yaml.safe_dump(project, sort_keys=False), encoding="utf-8"
    )
    (copy / ".gitignore").write_text("/.imagefactory/\n__pycache__/\n", encoding="utf-8")
    if seed_rootfs:  # the bootstrap cache is keyed by recipe: reuse the repository's rootfs tars
        cache = copy / ".imagefactory" / "cache"
        for tar in sorted((REPO / ".imagefactory" / "cache").glob("rootfs-*.tar")):
            cache.mkdir(parents=True, exist_ok=True)
            try:
                os.link(tar, cache / tar.name)
            except OSError:
                shutil.copy2(tar, cache / tar.name)
    env = registry_env()
    sandbox = Sandbox(
        work, copy, run_id, namespace, env, plain_docker_env(env, work / "docker-config")
    )
    run(["git", "init", "-q", copy])
    sandbox.git_commit("benchmark copy of the example catalog")
    return sandbox


def check_plain_buildable(sandbox: Sandbox) -> None:
    """The plain baseline passes no secrets or build args: make sure none are needed."""
    from imagefactory.spec.loader import load_catalog

    catalog = load_catalog(sandbox.copy)
    for ref in CHAIN:
        spec = catalog.images[ref].spec
        if spec.secrets or spec.build_args:
            raise BenchError(f"{ref} declares secrets or build args; the plain baseline has none")
    if catalog.project.build.proxy.http or catalog.project.build.proxy.https:
        raise BenchError("the project sets a proxy; the plain baseline passes no proxy args")


def plain_build(
    sandbox: Sandbox,
    refs: Sequence[str],
    push: bool = False,
    *,
    contexts: Path | None = None,
    inline_cache: bool = False,
    host: str | None = None,
) -> None:
    """``docker build`` of the rendered contexts (those of ``contexts`` when given), image by
    image (and ``docker push``); ``inline_cache``: from and with the registry tag's inline
    cache; ``host``: on that engine (DOCKER_HOST)."""
    env = {**sandbox.plain_env, **({"DOCKER_HOST": host} if host else {})}
    for ref in refs:
        tag = sandbox.plain_tag(ref)
        context = sandbox.context(ref) if contexts is None else contexts / sandbox.context(ref).name
        cache = (
            ["--cache-from", tag, "--build-arg", "BUILDKIT_INLINE_CACHE=1"] if inline_cache else []
        )
        run(
            [DOCKER, "build", "--network", "host", "--progress=plain", *cache, "-t", tag, context],
            env=env,
        )
        if push:
            run([DOCKER, "push", "--quiet", tag], env=env)


def noop_part(sandbox: Sandbox, repeat: int, report: Report) -> None:
    say(f"full build of {TARGET} in {sandbox.copy} (namespace {sandbox.namespace}) ...")
    seconds, document = timed(lambda: cli_json(sandbox.copy, sandbox.env, "build", TARGET))
    statuses = {entry["image"]: entry["status"] for entry in document["images"]}
    full = report.measure("setup", "imagefactory build (first, warm BuildKit cache)")
    full.samples.append(seconds)
    full.note = ", ".join(f"{ref} {status}" for ref, status in statuses.items())
    if list(statuses) != CHAIN:
        raise BenchError(f"expected {CHAIN} to be built, got {list(statuses)}")
    for ref in CHAIN:
        if not (sandbox.context(ref) / "Dockerfile").is_file():
            raise BenchError(f"no rendered build context for {ref} at {sandbox.context(ref)}")
    check_plain_buildable(sandbox)

    reuse: dict[str, Measure] = {}

    def imagefactory_noop() -> None:
        document = cli_json(sandbox.copy, sandbox.env, "build", TARGET)
        if built_refs(document):
            raise BenchError(f"the no-op build rebuilt {built_refs(document)}")
        for entry in document["images"]:
            if entry["image"] in reuse:
                reuse[entry["image"]].samples.append(float(entry["seconds"]))

    say("warming up the plain docker build (and push) and the no-op build ...")
    plain_build(sandbox, CHAIN, push=True)  # the plain repositories exist from here on
    imagefactory_noop()
    say(f"no-op: {repeat} x imagefactory build vs plain docker build ...")
    noop = report.measure("no-op", f"imagefactory build {TARGET} (3 reused)")
    for ref in CHAIN:
        reuse[ref] = report.measure("no-op", f"  of which {ref} reused", JSON_SECONDS)
    plain = report.measure("no-op", "plain docker build x3 contexts (cached)")
    pushed = report.measure("no-op", "plain docker build + push x3 (cached, pushed)")
    interleaved(
        repeat,
        [
            (noop, imagefactory_noop),
            (plain, lambda: plain_build(sandbox, CHAIN)),
            (pushed, lambda: plain_build(sandbox, CHAIN, push=True)),
        ],
    )
    report.ratio("no-op: imagefactory / plain docker build", noop, plain, NOOP_TARGET)
    report.ratio("no-op: imagefactory / plain docker build + push", noop, pushed, None)


def edit_app(sandbox: Sandbox, marker: str) -> None:
    path = sandbox.copy / APP_MAIN
    path.write_text(path.read_text(encoding="utf-8") + f"# {marker}\n", encoding="utf-8")


def edit_base_label(sandbox: Sandbox, marker: str) -> None:
    path = sandbox.copy / BASE_SPEC
    lines = [
        line
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
        if BENCH_LABEL not in line
    ]
    at = lines.index("labels:\n") + 1  # the base's top-level labels mapping
    lines.insert(at, f'  {BENCH_LABEL}: "{marker}"\n')
    path.write_text("".join(lines), encoding="utf-8")


def check_pins(sandbox: Sandbox, document: Mapping[str, Any]) -> None:
    """Each rebuilt child's Dockerfile says FROM its parent's digest from this very run."""
    digests = {entry["image"]: entry["digest"] for entry in document["images"]}
    for parent, child in itertools.pairwise(CHAIN):
        dockerfile = (sandbox.context(child) / "Dockerfile").read_text(encoding="utf-8")
        line = next(x for x in dockerfile.splitlines() if x.startswith("FROM "))
        if not line.endswith(f"@{digests[parent]}"):
            raise BenchError(f"{child} was built {line!r}, not on {parent}@{digests[parent]}")


def incremental_part(sandbox: Sandbox, repeat: int, report: Report) -> None:
    app = report.measure("incremental", "imagefactory build after app edit")
    plain = report.measure("incremental", "plain docker build x3 + push x3 after app edit")
    base = report.measure("incremental", "imagefactory build after base label")
    per_image = {
        ref: report.measure("incremental", f"  of which {ref} built", JSON_SECONDS) for ref in CHAIN
    }
    app_counts: list[int] = []
    base_counts: list[int] = []
    base_orders: list[list[str]] = []
    for index in range(repeat):
        say(f"incremental {index + 1}/{repeat}: app edit ...")
        edit_app(sandbox, f"bench edit {sandbox.run_id} {index}")
        sandbox.git_commit(f"app edit {index}")
        seconds, document = timed(lambda: cli_json(sandbox.copy, sandbox.env, "build", TARGET))
        app.samples.append(seconds)
        app_counts.append(len(built_refs(document)))
        if built_refs(document) != [TARGET]:
            raise BenchError(f"an app edit rebuilt {built_refs(document)}, expected [{TARGET}]")

        say(f"incremental {index + 1}/{repeat}: plain reference (another app edit) ...")
        context_main = sandbox.context(TARGET) / "files" / "0" / "rag_api" / "main.py"
        context_main.write_text(
            context_main.read_text(encoding="utf-8") + f"# plain edit {sandbox.run_id} {index}\n",
            encoding="utf-8",
        )
        seconds, _ = timed(lambda: plain_build(sandbox, CHAIN, push=True))
        plain.samples.append(seconds)

        say(f"incremental {index + 1}/{repeat}: base label ...")
        edit_base_label(sandbox, f"{sandbox.run_id}-{index}")
        sandbox.git_commit(f"base label {index}")
        seconds, document = timed(lambda: cli_json(sandbox.copy, sandbox.env, "build", TARGET))
        base.samples.append(seconds)
        base_counts.append(len(built_refs(document)))
        base_orders.append(built_refs(document))
        if built_refs(document) != CHAIN:
            raise BenchError(f"a base label rebuilt {built_refs(document)}, expected {CHAIN}")
        check_pins(sandbox, document)
        for entry in document["images"]:
            per_image[entry["image"]].samples.append(float(entry["seconds"]))
    report.ratio("incremental app edit: imagefactory / plain build+push", app, plain, None)
    report.check(
        "app edit: images rebuilt",
        ", ".join(map(str, app_counts)),
        "1 each run",
        all(c == 1 for c in app_counts),
    )
    report.check(
        "base label: images rebuilt",
        ", ".join(map(str, base_counts)),
        "3 each run",
        all(c == len(CHAIN) for c in base_counts),
    )
    report.check(
        "base label: build order, FROM parent digest",
        " -> ".join(base_orders[0]) if base_orders else "-",
        " -> ".join(CHAIN),
        all(order == CHAIN for order in base_orders),
    )


def cleanup_images(sandbox: Sandbox) -> None:
    """Remove the local images of this run's namespace (their layers stay in BuildKit's cache).

    Untagging an image can leave it dangling under a repository digest, so this takes passes.
    """
    prefix = f"{REGISTRY}/{sandbox.namespace}/"
    for _ in range(4):
        listed = run(
            [DOCKER, "image", "ls", "--format", "{{.Repository}} {{.Tag}} {{.ID}}"],
            env=sandbox.env,
        ).stdout.splitlines()
        doomed = [
            f"{repo}:{tag}" if tag != "<none>" else image_id
            for repo, tag, image_id in (line.split() for line in listed if line.count(" ") == 2)
            if repo.startswith(prefix)
        ]
        if not doomed:
            return
        for name in sorted(doomed, key=lambda n: not n.startswith(REGISTRY)):  # tags first
            subprocess.run([DOCKER, "image", "rm", name], capture_output=True, check=False)
    say(f"some local images of {prefix} could not be removed")


# --------------------------------------------------------------------------- part 3


def scale_part(work: Path, images: int, depth: int, repeat: int, report: Report) -> None:
    from imagefactory.project.paths import state_file
    from imagefactory.project.plan import PlanEntry, make_plan
    from imagefactory.project.state import load_state
    from imagefactory.spec.loader import load_catalog

    root = work / "synthetic"
    written = generate(root, images, depth, namespace="imagefactory-bench/synthetic")
    files = [root / "imagefactory.yaml", *sorted((root / "images").rglob("image.yaml"))]

    def load_and_plan() -> list[PlanEntry]:
        catalog = load_catalog(root)
        return make_plan(catalog, load_state(state_file(catalog)))

    def yaml_only() -> int:
        return len([yaml.safe_load(path.read_text(encoding="utf-8")) for path in files])

    def cli_plan() -> list[dict[str, Any]]:
        result = run([IMAGEFACTORY, "-C", root, "plan", "--json"], timeout=600)
        entries: list[dict[str, Any]] = json.loads(result.stdout)["plan"]
        return entries

    def python_yaml() -> None:
        run([PYTHON, "-c", YAML_BASELINE, root], timeout=600)

    entries = load_and_plan()  # warm-up: imports, page cache
    yaml_only()
    concrete = len(entries)
    report.facts["scale"] = {"image_files": written, "concrete_images": concrete, "depth": depth}
    say(f"scale: {written} image files, {concrete} concrete images, depth {depth} ...")

    inproc = report.measure("scale", "in-process load_catalog + make_plan", f"{concrete} images")
    base_inproc = report.measure("scale", f"in-process yaml.safe_load x{len(files)} files")
    interleaved(repeat, [(inproc, load_and_plan), (base_inproc, yaml_only)])

    sub = report.measure("scale", "imagefactory plan --json (no state)", "subprocess")
    base_sub = report.measure("scale", f"python -c 'yaml.safe_load x{len(files)}'", "subprocess")
    cli_plan()
    interleaved(repeat, [(sub, cli_plan), (base_sub, python_yaml)])

    # A state file where every image is up to date: what CI sees on an unchanged catalog.
    records = {
        entry.ref: {
            "content_hash": entry.inputs.content_hash,
            "inputs": entry.inputs.as_dict(),
            "version": entry.version,
        }
        for entry in entries
    }
    state = root / ".imagefactory" / "state.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"schema": 1, "images": records}), encoding="utf-8")
    if any(entry["action"] != "skip" for entry in cli_plan()):
        raise BenchError("with a state of the same catalog, plan still wants to build")
    with_state = report.measure("scale", "imagefactory plan --json (all up to date)", "subprocess")
    startup = report.measure("scale", "imagefactory --version", "CLI start-up floor")
    interleaved(
        repeat, [(with_state, cli_plan), (startup, lambda: run([IMAGEFACTORY, "--version"]))]
    )

    report.ratio("scale in-process: load+plan / yaml.safe_load", inproc, base_inproc, None)
    report.ratio("scale subprocess: imagefactory plan / python+yaml", sub, base_sub, None)
    for measure in (sub, with_state, inproc):
        report.check(
            f"scale: {measure.name}",
            f"{measure.median:.3f} s",
            f"< {PLAN_TARGET_S} s",
            measure.median < PLAN_TARGET_S,
        )


# --------------------------------------------------------------------------- main


def machine_facts() -> dict[str, Any]:
    docker = subprocess.run(
        [DOCKER, "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    import imagefactory

    package = Path(imagefactory.__file__).resolve().parent.parent
    revision = subprocess.run(
        ["git", "-C", package, "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "imagefactory": f"{package} {revision.stdout.strip() or '(not a git checkout)'}",
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()}",
        "python": platform.python_version(),
        "docker_server": docker.stdout.strip() or None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark imagefactory against plain docker build and plain YAML parsing."
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (5)")
    parser.add_argument(
        "--skip-build", action="store_true", help="scale part only: no daemon or registry needed"
    )
    parser.add_argument(
        "--skip-incremental", action="store_true", help="the no-op and scale parts only"
    )
    parser.add_argument("--images", type=int, default=500, help="synthetic image files (500)")
    parser.add_argument("--depth", type=int, default=4, help="synthetic DAG depth (4)")
    parser.add_argument(
        "--no-seed-rootfs",
        action="store_true",
        help="do not reuse the repository's bootstrap cache (the first build runs mmdebstrap)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder and local tags")
    parser.add_argument("--results", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    report = Report(facts=machine_facts())
    report.facts["repeat"] = args.repeat
    work = Path(tempfile.mkdtemp(prefix="imagefactory-bench-"))
    say(f"working in {work}")
    sandbox: Sandbox | None = None
    failed: BenchError | None = None
    try:
        if not args.skip_build:
            sandbox = make_sandbox(work, seed_rootfs=not args.no_seed_rootfs)
            report.facts["namespace"] = sandbox.namespace
            noop_part(sandbox, args.repeat, report)
            if not args.skip_incremental:
                incremental_part(sandbox, args.repeat, report)
        scale_part(work, args.images, args.depth, args.repeat, report)
    except BenchError as exc:
        failed = exc
    finally:
        if args.keep:
            say(f"kept {work}")
        else:
            if sandbox is not None:
                cleanup_images(sandbox)
            shutil.rmtree(work, ignore_errors=True)
    if report.measures:
        report.print()
    if args.results:
        args.results.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    if failed is not None:
        print(f"\nbenchmark failed: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
