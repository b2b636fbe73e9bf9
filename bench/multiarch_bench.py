"""Benchmark: the same two-image chain built for linux/arm64 under QEMU emulation against
linux/amd64 natively (on an amd64 host; the other way round on an arm64 one), as a ratio.

The chain is the one ``tests/integration/test_multiarch.py`` builds: a bootstrapped base of the
Essential set (mmdebstrap's ``essential`` variant) with ``passwd`` and a user (``create_users``:
a ``RUN`` under emulation) and a tiny child (a file and a label), in a temporary catalog whose
images name both platforms. Measured per platform, interleaved, ``--repeat`` times:
``imagefactory build app/tiny --platform P --no-cache`` (both images built and pushed; the
rootfs of each architecture comes from the cache after the first run), and once, the cold
bootstrap of each architecture (``mmdebstrap --architectures``).

Needs the host services (``scripts/services.sh start``) and binfmt_misc with qemu-user-static
(``.ci/run`` enables it). Run from the repository root::

    .venv/bin/python bench/multiarch_bench.py [--repeat 3] [--results FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from stats import summary  # noqa: E402  (bench/stats.py: the script's folder is on sys.path)

from imagefactory.spec.platforms import host_platform  # noqa: E402

PLATFORMS = ["linux/amd64", "linux/arm64"]


def catalog(root: Path, namespace: str) -> None:
    registry = {
        "url": "127.0.0.1:5000",
        "namespace": namespace,
        "username_env": "IMAGEFACTORY_REGISTRY_USER",
        "password_env": "IMAGEFACTORY_REGISTRY_PASSWORD",
        "tls_verify": False,
    }
    project = {
        "project": "bench-multiarch",
        "registries": {"dev": registry},
        "environments": [{"name": "dev", "registries": ["dev"]}],
        "defaults": {"platforms": PLATFORMS},
    }
    images = {
        "base/mini": {
            "bootstrap": {"variant": "essential", "packages": ["passwd"]},
            "create_users": [{"name": "app", "uid": 10001, "gid": 10001}],
            "user": "app",
        },
        "app/tiny": {
            "from": "base/mini",
            "files": [{"src": "hello.txt", "dest": "/opt/hello.txt"}],
            "labels": {"com.example.tier": "app"},
        },
    }
    (root / "imagefactory.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    for name, spec in images.items():
        folder = root / "images" / name
        folder.mkdir(parents=True)
        document = {"name": name, "version": "1.0.0", **spec}
        (folder / "image.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    (root / "images" / "app" / "tiny" / "hello.txt").write_text("hello\n")


def environment() -> dict[str, str]:
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    env.setdefault("IMAGEFACTORY_REGISTRY_USER", "imagefactory")
    if "IMAGEFACTORY_REGISTRY_PASSWORD" not in env:
        secret = REPO / ".host" / "registry.password"
        env["IMAGEFACTORY_REGISTRY_PASSWORD"] = secret.read_text().strip()
    return env


def build(root: Path, platform: str, env: dict[str, str], *extra: str) -> float:
    argv = [sys.executable, "-m", "imagefactory", "-C", str(root), "build", "app/tiny"]
    started = time.monotonic()
    result = subprocess.run(
        [*argv, "--platform", platform, "--json", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"build --platform {platform} failed:\n{result.stderr[-3000:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()
    env = environment()
    native = host_platform()
    [emulated] = [p for p in PLATFORMS if p != native]
    results: dict[str, Any] = {"native": native, "emulated": emulated}
    with tempfile.TemporaryDirectory(prefix="if-multiarch-bench-") as folder:
        root = Path(folder) / "catalog"
        root.mkdir()
        catalog(root, f"bench-multiarch-{uuid.uuid4().hex[:8]}")
        # the first build of each platform: its bootstrap (mmdebstrap), both images, pushes
        results["cold_s"] = {p: round(build(root, p, env), 1) for p in (native, emulated)}
        runs: dict[str, list[float]] = {native: [], emulated: []}
        for _ in range(args.repeat):
            for platform in (native, emulated):
                runs[platform].append(build(root, platform, env, "--no-cache"))
    results["chain_s"] = {
        p: {k: round(v, 2) for k, v in summary(values).items()} for p, values in runs.items()
    }
    results["emulated_ratio"] = round(
        results["chain_s"][emulated]["median"] / results["chain_s"][native]["median"], 2
    )
    results["cold_ratio"] = round(results["cold_s"][emulated] / results["cold_s"][native], 2)
    print(json.dumps(results, indent=2))
    if args.results is not None:
        args.results.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
