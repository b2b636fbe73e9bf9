"""Benchmark of ``imagefactory test``: its overhead per image against the same checks by hand.

A benchmark, not a test: it prints figures and is not collected by ``scripts/test.sh`` (pytest
looks in ``tests/`` only; this module defines no test functions either). Run from the repository
root, with the host services up (dockerd, the registry on 127.0.0.1:5000)::

    .venv/bin/python bench/test_bench.py               # 5 interleaved runs of each side
    .venv/bin/python bench/test_bench.py --repeat 9 --results /tmp/test-bench.json

The two sides, timed as wall clock of everything a CI job would run for one image:

* **imagefactory**: ``imagefactory test app/rag-api --json`` (the app's image.yaml checks and its
  custom testinfra tests, in one container that imagefactory starts and removes);
* **plain**: the same checks written by hand as ONE pytest-testinfra file (in a temp folder),
  run as ``pytest --hosts=docker://<container>`` against a container started the way
  imagefactory starts it (``docker run -d -p 127.0.0.1::8080 --read-only`` with a tmpfs at
  ``/tmp``, ``<repository>@<digest>``), plus ``docker port`` and ``docker rm --force``.

Setup: ``imagefactory.yaml`` and ``images/`` are copied into a fresh temp folder; the registry
namespaces become ``bench-<run id>/<stage>``; the copy is git-initialised and committed; the
bootstrap rootfs cache ``.imagefactory/cache`` is linked from the repository; then
``imagefactory build app/rag-api`` (which reuses what the local engine already holds).

Reported: the medians (with min and max) of both sides, the ratio imagefactory / plain (target
<= 1.5x) and the extra seconds per image (target <= 3 s). A missed target is reported as MISS;
the exit status is 1 only when a step failed or a side's checks did not pass.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
DOCKER = "/usr/bin/docker"
TARGET = "app/rag-api"
RATIO_TARGET = 1.5
EXTRA_TARGET_S = 3.0
STEP_TIMEOUT = 900

# The app's image.yaml tests, written by hand: what a team would write without imagefactory.
# Keep in step with images/app/rag-api/image.yaml (`tests:`); the custom tests are appended
# verbatim from images/app/rag-api/tests/test_*.py.
PLAIN_TESTS = '''\
"""images/app/rag-api/image.yaml `tests:` by hand, for pytest-testinfra (--hosts=docker://…)."""

import json
import os
import subprocess
import time
import urllib.request

import pytest

IMAGE = os.environ["BENCH_IMAGE"]
PORT = int(os.environ["BENCH_PORT"])


@pytest.fixture(scope="module")
def config():
    out = subprocess.run(
        ["/usr/bin/docker", "image", "inspect", "--format", "{{json .Config}}", IMAGE],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    return json.loads(out)


def test_user(config):
    assert config["User"] == "10001:10001"


def test_exposes_8080(config):
    assert "8080/tcp" in (config.get("ExposedPorts") or {})


@pytest.mark.parametrize("port", ["22/tcp", "5000/tcp"])
def test_does_not_expose(config, port):
    assert port not in (config.get("ExposedPorts") or {})


def test_runs_as_non_root(config):
    assert (config.get("User") or "root").split(":")[0] not in ("", "root", "0")


@pytest.mark.parametrize("name", ["fastapi", "uvicorn"])
def test_pip_installed(host, name):
    assert host.pip(name, pip_path="/opt/venv/bin/pip").is_installed


def test_main_py(host):
    main = host.file("/opt/rag-api/rag_api/main.py")
    assert main.exists
    assert main.user == "root"
    assert main.mode == 0o644


def test_health_endpoint_answers():
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + 60
    while True:
        try:
            with opener.open(f"http://127.0.0.1:{PORT}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, "no HTTP 200 from /healthz within 60s"
        time.sleep(0.5)


# --- the custom tests of images/app/rag-api/tests/, as they are ---
'''


class BenchError(Exception):
    """A step failed, or a side's checks did not pass."""


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = STEP_TIMEOUT,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    command = [str(a) for a in argv]
    try:
        proc = subprocess.run(
            command,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"timed out after {timeout}s: {' '.join(command)}") from exc
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise BenchError(f"exit {proc.returncode}: {' '.join(command)}\n{tail}")
    return proc


def registry_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("IMAGEFACTORY_REGISTRY_USER", "imagefactory")
    if not env.get("IMAGEFACTORY_REGISTRY_PASSWORD"):
        password = REPO / ".host" / "registry.password"
        if not password.is_file():
            raise BenchError(f"{password} is missing: run scripts/services.sh start")
        env["IMAGEFACTORY_REGISTRY_PASSWORD"] = password.read_text().strip()
    env["DOCKER_BUILDKIT"] = "1"
    env.pop("DOCKER_HOST", None)
    return env


# --------------------------------------------------------------------------- measurements


@dataclass
class Measure:
    name: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def row(self) -> list[str]:
        return [
            self.name,
            f"{self.median:.3f}",
            f"{min(self.samples):.3f}",
            f"{max(self.samples):.3f}",
            str(len(self.samples)),
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "median_s": round(self.median, 4),
            "min_s": round(min(self.samples), 4),
            "max_s": round(max(self.samples), 4),
            "samples_s": [round(s, 4) for s in self.samples],
        }


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------- the sandbox


@dataclass(frozen=True)
class Sandbox:
    copy: Path
    run_id: str
    env: Mapping[str, str]

    def imagefactory(
        self, *args: str, timeout: float = STEP_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return run(
            [PYTHON, "-m", "imagefactory", "-C", self.copy, *args],
            env=self.env,
            cwd=self.copy,
            timeout=timeout,
            check=False,
        )

    def record(self) -> dict[str, Any]:
        state = json.loads((self.copy / ".imagefactory" / "state.json").read_text())
        record = state["images"][TARGET]
        assert isinstance(record, dict)
        return record


def make_sandbox(work: Path, env: Mapping[str, str]) -> Sandbox:
    run_id = uuid.uuid4().hex[:10]
    copy = work / "catalog"
    copy.mkdir()
    shutil.copytree(REPO / "images", copy / "images")
    if (REPO / "keys").is_dir():  # signing.public_key (IMAGEFACTORY_SIGNING_KEY signs)
        shutil.copytree(REPO / "keys", copy / "keys")
    project = yaml.safe_load((REPO / "imagefactory.yaml").read_text())
    for stage, registry in project["registries"].items():
        registry["namespace"] = f"bench-{run_id}/{stage}"
    (copy / "imagefactory.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    (copy / ".gitignore").write_text("/.imagefactory/\n__pycache__/\n")
    (copy / ".imagefactory").mkdir()
    cache = REPO / ".imagefactory" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    (copy / ".imagefactory" / "cache").symlink_to(cache, target_is_directory=True)
    ident = ["-c", "user.name=imagefactory bench", "-c", "user.email=bench@example.invalid"]
    run(["git", "init", "-q", copy])
    run(["git", "-C", copy, "add", "-A"])
    run(["git", "-C", copy, *ident, "commit", "-q", "-m", "benchmark copy of the example"])
    return Sandbox(copy, run_id, env)


def build(sandbox: Sandbox) -> float:
    started = time.perf_counter()
    proc = sandbox.imagefactory("build", TARGET, "--json")
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise BenchError(
            f"imagefactory build {TARGET} failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
        )
    return seconds


def write_plain_tests(folder: Path) -> Path:
    custom = sorted((REPO / "images" / "app" / "rag-api" / "tests").glob("test_*.py"))
    text = PLAIN_TESTS + "\n\n".join(path.read_text() for path in custom)
    folder.mkdir()
    tests = folder / "test_rag_api_plain.py"
    tests.write_text(text)
    (folder / "pytest.ini").write_text("[pytest]\n")
    return tests


# --------------------------------------------------------------------------- the two sides


def imagefactory_side(sandbox: Sandbox) -> dict[str, Any]:
    proc = sandbox.imagefactory("test", TARGET, "--json", timeout=600)
    if proc.returncode != 0:
        raise BenchError(
            f"imagefactory test {TARGET} failed:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}"
        )
    document = json.loads(proc.stdout)
    (image,) = document["images"]
    return image  # type: ignore[no-any-return]


def plain_side(
    sandbox: Sandbox, reference: str, tests: Path, phases: dict[str, list[float]]
) -> int:
    """docker run + docker port + ONE pytest --hosts=docker://… + docker rm; returns the count
    of tests pytest ran (all must pass)."""
    name = f"bench-plain-{uuid.uuid4().hex[:12]}"
    env = dict(sandbox.env)
    t0 = time.perf_counter()
    try:
        run(
            [
                DOCKER,
                "run",
                "-d",
                "--name",
                name,
                "-p",
                "127.0.0.1::8080",
                # as imagefactory starts an application's test container (and Kubernetes runs
                # it): a read-only root, a writable /tmp
                "--read-only",
                "--mount",
                "type=tmpfs,destination=/tmp,tmpfs-size=256m,tmpfs-mode=1777",
                reference,
            ],
            env=env,
            timeout=300,
        )
        port = run([DOCKER, "port", name, "8080/tcp"], env=env, timeout=30).stdout.splitlines()[0]
        t1 = time.perf_counter()
        env.update(BENCH_IMAGE=reference, BENCH_PORT=port.rsplit(":", 1)[1])
        report = tests.parent / "report.xml"
        proc = run(
            [
                PYTHON,
                "-m",
                "pytest",
                "-c",
                tests.parent / "pytest.ini",
                "--rootdir",
                tests.parent,
                "-p",
                "no:cacheprovider",
                f"--hosts=docker://{name}",
                f"--junitxml={report}",
                "-q",
                tests,
            ],
            env=env,
            cwd=tests.parent,
            timeout=600,
            check=False,
        )
        t2 = time.perf_counter()
    finally:
        run([DOCKER, "rm", "--force", "--volumes", name], env=env, timeout=60, check=False)
    t3 = time.perf_counter()
    if proc.returncode != 0:
        raise BenchError(
            f"the plain pytest run failed:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}"
        )
    phases["docker run + port"].append(t1 - t0)
    phases["pytest"].append(t2 - t1)
    phases["docker rm"].append(t3 - t2)
    text = report.read_text()
    return text.count("<testcase ")


# --------------------------------------------------------------------------- main


def machine() -> str:
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        kib = int(meminfo.read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    docker = run([DOCKER, "version", "--format", "{{.Server.Version}}"], check=False).stdout.strip()
    return f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()}{memory}; Docker Engine {docker}"


def revision() -> str:
    proc = run(["git", "-C", REPO, "describe", "--always", "--dirty"], check=False)
    return proc.stdout.strip() or "(not a git checkout)"


def cleanup(sandbox: Sandbox) -> None:
    """Untag the local tags of this run's namespace (the images themselves are shared)."""
    tags = run(
        [DOCKER, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], check=False
    ).stdout.split()
    mine = [t for t in tags if f"/bench-{sandbox.run_id}/" in t]
    if mine:
        run([DOCKER, "rmi", *mine], check=False, timeout=300)


def measure(repeat: int, keep: bool, results: Path | None) -> int:
    env = registry_env()
    work = Path(tempfile.mkdtemp(prefix="imagefactory-test-bench-"))
    sandbox = make_sandbox(work, env)
    say(f"catalog copy in {sandbox.copy}, namespace bench-{sandbox.run_id}/…")
    try:
        build_s = build(sandbox)
        record = sandbox.record()
        reference = f"{record['repository']}@{record['digest']}"
        say(f"built {TARGET} in {build_s:.1f} s: {reference}")
        tests = write_plain_tests(work / "plain")
        phases: dict[str, list[float]] = {"docker run + port": [], "pytest": [], "docker rm": []}
        say("warming up both sides (not timed) ...")
        image = imagefactory_side(sandbox)
        plain_count = plain_side(sandbox, reference, tests, {k: [] for k in phases})
        checks = len(image["checks"])
        ifactory = Measure(f"imagefactory test {TARGET} ({checks} checks)")
        plain = Measure(f"plain: docker run + pytest --hosts=docker:// ({plain_count} tests) + rm")
        check_sums = Measure("  of which imagefactory's check times (sum, from --json)")
        floor = Measure("imagefactory --version (CLI start-up floor)")
        for index in range(repeat):
            say(f"run {index + 1}/{repeat}")

            def ours() -> None:
                started = time.perf_counter()
                image = imagefactory_side(sandbox)
                ifactory.samples.append(time.perf_counter() - started)
                check_sums.samples.append(sum(c["seconds"] for c in image["checks"]))

            def theirs() -> None:
                started = time.perf_counter()
                count = plain_side(sandbox, reference, tests, phases)
                plain.samples.append(time.perf_counter() - started)
                if count != plain_count:
                    raise BenchError(f"the plain run ran {count} tests, expected {plain_count}")

            order: list[Callable[[], None]] = [ours, theirs] if index % 2 == 0 else [theirs, ours]
            for action in order:
                action()
            started = time.perf_counter()
            run([PYTHON, "-m", "imagefactory", "--version"], env=env, timeout=60)
            floor.samples.append(time.perf_counter() - started)
        phase_measures = [Measure(f"  plain {name}", samples) for name, samples in phases.items()]
        ratio = ifactory.median / plain.median
        extra = ifactory.median - plain.median
        facts = {
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "revision": revision(),
            "repeat": repeat,
            "reference": reference,
            "build_seconds": round(build_s, 2),
        }
        print()
        print(f"imagefactory test overhead  {facts['date']}  {facts['machine']}")
        print(
            f"working tree {facts['revision']}; {repeat} interleaved runs per side; {TARGET} = {reference}"
        )
        print()
        rows = [["measurement", "median s", "min s", "max s", "n"]]
        rows += [m.row() for m in (ifactory, check_sums, plain, *phase_measures, floor)]
        print(table(rows))
        print()
        verdicts = [
            ["check", "value", "target", "result"],
            [
                "imagefactory test / plain pytest run",
                f"{ratio:.2f}x",
                f"<= {RATIO_TARGET}x",
                "PASS" if ratio <= RATIO_TARGET else "MISS",
            ],
            [
                "extra seconds per image",
                f"{extra:+.2f} s",
                f"<= {EXTRA_TARGET_S:g} s",
                "PASS" if extra <= EXTRA_TARGET_S else "MISS",
            ],
        ]
        print(table(verdicts))
        if results is not None:
            results.write_text(
                json.dumps(
                    {
                        "facts": facts,
                        "measures": [
                            m.as_dict()
                            for m in (ifactory, check_sums, plain, *phase_measures, floor)
                        ],
                        "ratio": round(ratio, 4),
                        "extra_seconds": round(extra, 4),
                        "targets": {"ratio": RATIO_TARGET, "extra_seconds": EXTRA_TARGET_S},
                    },
                    indent=2,
                )
                + "\n"
            )
        return 0
    finally:
        if keep:
            say(f"kept {work}")
        else:
            cleanup(sandbox)
            shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per side (default 5)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder and local tags")
    parser.add_argument("--results", type=Path, help="also write the figures as JSON here")
    options = parser.parse_args(argv)
    if options.repeat < 1:
        parser.error("--repeat must be at least 1")
    try:
        return measure(options.repeat, options.keep, options.results)
    except BenchError as exc:
        say(f"FAILED: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
