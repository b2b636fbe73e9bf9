"""Benchmark: the no-op build on a fresh engine, which is what a CI runner has.

A pipeline job starts on a runner whose engine has never seen the catalog's images. Without
imagefactory, an unchanged image costs what a plain pipeline runs for it: ``docker build
--cache-from <its registry tag>`` (BuildKit's inline cache, read from the registry) and ``docker
push``. With imagefactory, it costs hashing the inputs and one registry HEAD per image.

Set-up (not timed): a private copy of the example catalog (``build_bench.make_sandbox``:
its own registry namespace and run label), ``imagefactory build app/rag-api`` on the host
engine (base/debian12 → runtime/llm:cpu → app/rag-api, pushed), and the plain pipeline's images:
each rendered build context built with ``--build-arg BUILDKIT_INLINE_CACHE=1`` and pushed to
``<namespace>/plain/<image>:latest``.

Each timed run gets an engine of its own, started before the timing and removed after it: a
second dockerd with an empty data root (its own socket, exec root, containerd namespace and
bridge interface; no iptables rules). On it, interleaved:

* **imagefactory**: ``imagefactory build app/rag-api --json`` as on a fresh checkout: the state
  file and the rendered build folder are removed first (a CI checkout has neither). All three
  images must be ``reused``.
* **plain**: for each of the three contexts, in order, ``docker build --network host
  --cache-from <tag> --build-arg BUILDKIT_INLINE_CACHE=1 -t <tag>`` and ``docker push <tag>``.

``noop_fresh_engine_ratio`` = median(imagefactory) / median(plain). Needs the host services
(dockerd, the registry on 127.0.0.1:5000) and root (it starts dockerd). Run from the
repository root::

    .venv/bin/python bench/fresh_engine_bench.py --repeat 3 [--results FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_bench import (  # a sibling script, not a package
    CHAIN,
    DOCKER,
    TARGET,
    BenchError,
    Sandbox,
    built_refs,
    cleanup_images,
    cli_json,
    make_sandbox,
    plain_build,
    run,
    say,
    timed,
)
from stats import summary

TARGET_RATIO = 0.05
#: Seconds a fresh dockerd gets to answer, and to stop.
ENGINE_START_S = 60
ENGINE_STOP_S = 30


@contextmanager
def fresh_engine(folder: Path) -> Iterator[str]:
    """A dockerd on an empty data root under ``folder``; yields its DOCKER_HOST."""
    folder.mkdir(parents=True)
    host = f"unix://{folder / 'docker.sock'}"
    name = f"bench-fresh-{os.getpid()}-{folder.name}"
    # A bridge of its own: with --bridge=none, dockerd deletes the interface docker0 at start,
    # which is the host engine's (whose containers then fail to start).
    bridge = f"ifb{os.getpid() % 10**6}"
    argv = [
        "dockerd",
        f"--data-root={folder / 'root'}",
        f"--exec-root={folder / 'exec'}",
        f"--pidfile={folder / 'dockerd.pid'}",
        f"--host={host}",
        f"--containerd-namespace={name}",
        f"--containerd-plugins-namespace={name}-plugins",
        f"--bridge={bridge}",
        "--iptables=false",
        "--ip6tables=false",
        "--ip-masq=false",
        "--log-level=warn",
    ]
    run(["ip", "link", "add", bridge, "type", "bridge"])
    proc: subprocess.Popen[bytes] | None = None
    try:
        with (folder / "dockerd.log").open("wb") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + ENGINE_START_S
        while True:
            probe = subprocess.run(
                [DOCKER, "-H", host, "version", "--format", "{{.Server.Version}}"],
                capture_output=True,
                check=False,
            )
            if probe.returncode == 0:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (folder / "dockerd.log").read_text(errors="replace")[-2000:]
                raise BenchError(f"the fresh dockerd did not answer:\n{tail}")
            time.sleep(0.2)
        yield host
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(ENGINE_STOP_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(ENGINE_STOP_S)
        subprocess.run(["ip", "link", "delete", bridge], capture_output=True, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def plain_pipeline(sandbox: Sandbox, contexts: Path, host: str | None) -> None:
    """What a pipeline without imagefactory runs per image: build the rendered context in
    ``contexts`` from the registry's inline cache, then push."""
    plain_build(sandbox, CHAIN, push=True, contexts=contexts, inline_cache=True, host=host)


def imagefactory_noop(sandbox: Sandbox, host: str) -> None:
    """The no-op build of a fresh checkout on a fresh engine: every image reused. A checkout
    has no state, rendered contexts or rootfs cache (.imagefactory/ is git-ignored)."""
    shutil.rmtree(sandbox.copy / ".imagefactory", ignore_errors=True)
    document = cli_json(sandbox.copy, {**sandbox.env, "DOCKER_HOST": host}, "build", TARGET)
    if built_refs(document):
        raise BenchError(f"the no-op build rebuilt {built_refs(document)}")


def measure(repeat: int, work: Path) -> dict[str, object]:
    sandbox = make_sandbox(work, seed_rootfs=True)
    try:
        return measure_in(sandbox, repeat, work)
    finally:
        cleanup_images(sandbox)


def measure_in(sandbox: Sandbox, repeat: int, work: Path) -> dict[str, object]:
    say(f"full build of {TARGET} on the host engine (namespace {sandbox.namespace}) ...")
    cli_json(sandbox.copy, sandbox.env, "build", TARGET)
    # That build's rendered contexts are the plain side's (imagefactory_noop removes the copy's
    # .imagefactory folder, as a fresh checkout has none).
    contexts = work / "contexts"
    shutil.copytree(sandbox.copy / ".imagefactory" / "build", contexts)
    say("plain pipeline's images, with inline cache, on the host engine ...")
    plain_pipeline(sandbox, contexts, None)
    samples: dict[str, list[float]] = {"imagefactory": [], "plain": []}
    sides = list(samples)
    for index in range(repeat):
        for side in sides[index % 2 :] + sides[: index % 2]:
            with fresh_engine(work / f"engine-{index}-{side}") as host:
                if side == "imagefactory":
                    seconds, _ = timed(lambda: imagefactory_noop(sandbox, host))
                else:
                    seconds, _ = timed(lambda: plain_pipeline(sandbox, contexts, host))
            samples[side].append(seconds)
            say(f"run {index + 1}/{repeat} {side:12} {seconds:6.2f} s")
    ours, theirs = summary(samples["imagefactory"]), summary(samples["plain"])
    return {
        "repeat": repeat,
        "imagefactory_s": ours,
        "plain_s": theirs,
        "samples_s": samples,
        "noop_fresh_engine_ratio": round(ours["median"] / theirs["median"], 4),
        "target_ratio": TARGET_RATIO,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", type=Path, help="also write the results here (JSON)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-fresh-engine-"))
    try:
        results = measure(args.repeat, work)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ours, theirs = results["imagefactory_s"], results["plain_s"]
    assert isinstance(ours, dict) and isinstance(theirs, dict)
    ratio = results["noop_fresh_engine_ratio"]
    print(f"no-op on a fresh engine, {args.repeat} runs per side (median, min-max)")
    for label, value in (
        (f"imagefactory build {TARGET}", ours),
        ("docker build --cache-from + push x3", theirs),
    ):
        print(f"  {label}: {value['median']:.2f} s ({value['min']:.2f}-{value['max']:.2f})")
    print(f"  noop_fresh_engine_ratio {ratio}  (target <= {TARGET_RATIO})")
    if args.results:
        args.results.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
