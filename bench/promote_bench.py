"""Benchmark: ``imagefactory promote`` against ``docker pull`` + ``docker tag`` + ``docker push``.

What is measured, for the app image (app/rag-api, the example catalog's top image):

* **same registry**: dev → preprod where both are repositories of registry A
  (127.0.0.1:5000, plain HTTP, htpasswd), so blobs can be mounted instead of uploaded;
* **A → B**: dev on registry A → preprod on registry B, a second ``docker-registry`` started
  here on a free loopback port with TLS from a CA made for the run and htpasswd
  (tests/integration/helpers/tls_registry.py); ``build.ca_bundle`` is the host bundle plus that CA.

Each side writes the same five tags (``X.Y.Z``, ``git-<sha>``, ``X.Y``, ``X``, ``latest``) into a
fresh repository every repetition, so every run really copies. The plain side is
``docker pull <dev>:X.Y.Z`` (warm: the image is in the local engine, so the pull only fetches
the manifest and config), five ``docker tag`` and one ``docker push --all-tags``.
Repetitions are interleaved (the order rotates) so a shared machine's noise hits both alike.

For every run the target registry's access log (already written by distribution) tells what
was uploaded: blobs completed by ``PUT …/blobs/uploads/…?digest=`` (their sizes from the
registry's storage), blobs mounted by ``POST …?mount=``, manifests written; the source
registry's log tells what was downloaded. The storage growth of the target registry is
reported too (blobs are content-addressed there, so re-uploaded identical bytes do not grow it).
The digest each side leaves in the target is compared with the digest in dev.

One more promotion per target runs under ``cProfile`` with both registries' access logs read
for it: where the promotion's time goes (start-up, HTTP round trips, signing, git) and every
request it made, by method and kind (manifest, blob, upload, tag list), on each registry.

Needs the host services (``scripts/services.sh start``). Writes only under a fresh temporary
folder, the registry namespace ``imagefactory-bench/promote-<run id>/`` (deleted at the end) and,
for the run, ``/etc/docker/certs.d/127.0.0.1:<port of B>/ca.crt`` so that dockerd trusts B
(removed at the end). Run from the repository root::

    .venv/bin/python bench/promote_bench.py --repeat 5 [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.integration.helpers.registry import Registry, registry_cleanup  # noqa: E402
from tests.integration.helpers.tls_registry import (  # noqa: E402  (the repository is not installed)
    HOST_BUNDLE,
    make_ca_and_server_cert,
    running_registry,
    write_bundle,
)

PYTHON = REPO / ".venv" / "bin" / "python"
DOCKER = "/usr/bin/docker"
SKOPEO = "/usr/bin/skopeo"
REGISTRY_A = "127.0.0.1:5000"
HOST_DIR = Path(os.environ.get("IMAGEFACTORY_HOST_DIR") or REPO / ".host")
A_DATA = HOST_DIR / "registry" / "data"
A_LOG = HOST_DIR / "registry.log"
A_USER = "imagefactory"
APP = "app/rag-api"
APP_NAME = "app/rag-api"
TARGET_RATIO = 0.3
RUN_LABEL = "org.imagefactory.bench-run"
B_BCRYPT_COST = 6  # as registry A (scripts/services.sh): every request pays the same check
B_USER_ENV = "IMAGEFACTORY_BENCH_REGISTRY_B_USER"
B_PASSWORD_ENV = "IMAGEFACTORY_BENCH_REGISTRY_B_PASSWORD"
CERTS_D = Path("/etc/docker/certs.d")
ACCESS = re.compile(
    r'"(?P<method>[A-Z]+) (?P<uri>/v2/\S+) HTTP/[0-9.]+" (?P<status>\d{3}) (?P<size>\d+|-)'
)
HOTTEST = 30  # imagefactory's functions listed by their cumulative time in a profiled promotion
#: What a profiled promotion's time is split into: (name, module path part, function name).
PARTS = (
    ("HTTP round trips", "imagefactory/registry/http.py", "_send"),
    ("credentials (401 answers)", "imagefactory/registry/http.py", "_authorization"),
    ("signing", "imagefactory/signing/keys.py", "sign"),
    ("verifying signatures", "imagefactory/signing/keys.py", "verifies"),
    ("processes (git, ...)", "imagefactory/tools.py", "run"),
    ("imports", "<frozen importlib._bootstrap>", "_find_and_load"),
)


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


def run(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    timeout: float = 600,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(a) for a in argv],
        env=dict(env) if env is not None else None,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(
            f"failed (exit {proc.returncode}): {' '.join(map(str, argv))}\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def imagefactory(
    root: Path,
    *args: str,
    env: Mapping[str, str],
    timeout: float = 900,
    profile: Path | None = None,
) -> dict[str, Any]:
    profiled = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
    proc = run(
        [PYTHON, *profiled, "-m", "imagefactory", "-C", root, *args, "--json"],
        env=env,
        timeout=timeout,
        cwd=root,
    )
    document = json.loads(proc.stdout)
    if document.get("ok") is not True:
        raise BenchError(f"imagefactory {' '.join(args)}: {proc.stdout[-2000:]}")
    assert isinstance(document, dict)
    return document


def tree_bytes(path: Path) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(folder) / name).stat().st_size
    return total


def blob_size(data: Path, digest_hex: str) -> int:
    path = data / "docker/registry/v2/blobs/sha256" / digest_hex[:2] / digest_hex / "data"
    return path.stat().st_size if path.exists() else 0


@dataclass
class Traffic:
    """What one run did to the registries, from their access logs (requests under a prefix)."""

    uploaded_blobs: int = 0
    uploaded_bytes: int = 0
    mounted_blobs: int = 0
    manifests_put: int = 0
    downloaded_bytes: int = 0
    requests: int = 0


def log_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def new_log_lines(path: Path, offset: int) -> list[str]:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace").splitlines()


def traffic(
    target_log: Path,
    target_offset: int,
    target_data: Path,
    target_prefix: str,
    source_log: Path,
    source_offset: int,
    source_prefix: str,
) -> Traffic:
    found = Traffic()
    for line in new_log_lines(target_log, target_offset):
        match = ACCESS.search(line)
        if not match or not match["uri"].startswith(f"/v2/{target_prefix}/"):
            continue
        found.requests += 1
        method, uri, status = match["method"], match["uri"], match["status"]
        if method == "PUT" and "/blobs/uploads/" in uri and status == "201":
            digest = re.search(r"digest=sha256(?:%3A|:)([0-9a-f]{64})", uri)
            if digest:
                found.uploaded_blobs += 1
                found.uploaded_bytes += blob_size(target_data, digest[1])
        elif method == "POST" and "mount=" in uri and status == "201":
            found.mounted_blobs += 1
        elif method == "PUT" and "/manifests/" in uri and status == "201":
            found.manifests_put += 1
    for line in new_log_lines(source_log, source_offset):
        match = ACCESS.search(line)
        if (
            match
            and match["uri"].startswith(f"/v2/{source_prefix}/")
            and match["method"] == "GET"
            and "/blobs/" in match["uri"]
            and match["size"] != "-"
        ):
            found.downloaded_bytes += int(match["size"])
    return found


# --------------------------------------------------------------------------- set-up


@dataclass
class Setup:
    work: Path
    root: Path  # the catalog copy
    run_id: str
    namespace: str  # imagefactory-bench/promote-<run>
    env: dict[str, str]
    docker_config: Path
    tls: Path  # the run's CA and the 127.0.0.1 server certificate, shared by every registry B
    bundle: Path  # host bundle + the run's CA: the catalog's build.ca_bundle
    digest: str
    version: str
    revision: str
    image_bytes: int  # the app's compressed layers + config, as its manifest lists them
    layers: int

    @property
    def dev_repo(self) -> str:
        return f"{REGISTRY_A}/{self.namespace}/dev/{APP_NAME}"

    @property
    def tags(self) -> list[str]:
        major, minor, _ = self.version.split(".")
        return [self.version, f"git-{self.revision[:8]}", f"{major}.{minor}", major, "latest"]


def write_project(root: Path, preprod: Mapping[str, Any], bundle: Path) -> None:
    path = root / "imagefactory.yaml"
    project = yaml.safe_load(path.read_text())
    project["registries"]["preprod"] = dict(preprod)
    project["build"]["ca_bundle"] = str(bundle)
    path.write_text(yaml.safe_dump(project, sort_keys=False))


def prepare_catalog(work: Path, namespace: str, run_id: str) -> Path:
    root = work / "catalog"
    root.mkdir()
    shutil.copytree(REPO / "images", root / "images")
    project = yaml.safe_load((REPO / "imagefactory.yaml").read_text())
    for stage, registry in project["registries"].items():
        registry["namespace"] = f"{namespace}/{stage}"
    # a run label: new content hashes, so the first build really builds (BuildKit cache helps)
    labels = project.setdefault("defaults", {}).setdefault("labels", {})
    labels[RUN_LABEL] = run_id
    (root / "imagefactory.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    (root / ".gitignore").write_text("/.imagefactory/\n")
    if (REPO / "keys").is_dir():  # signing.public_key (IMAGEFACTORY_SIGNING_KEY signs)
        shutil.copytree(REPO / "keys", root / "keys")
    cache = REPO / ".imagefactory" / "cache"
    if cache.is_dir():  # the mmdebstrap rootfs cache: hard links, saves the bootstrap
        target = root / ".imagefactory" / "cache"
        target.mkdir(parents=True)
        for item in cache.iterdir():
            if item.is_file() and not item.name.endswith(".partial"):
                try:
                    os.link(item, target / item.name)
                except OSError:
                    shutil.copy2(item, target / item.name)
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    run(["git", "init", "-q", root], timeout=30)
    run(["git", "-C", root, "add", "-A"], timeout=30)
    run(["git", "-C", root, *ident, "commit", "-q", "-m", "bench catalog"], timeout=30)
    return root


def docker_env(config: Path) -> dict[str, str]:
    return {**os.environ, "DOCKER_CONFIG": str(config)}


def docker_login(config: Path, host: str, user: str, password: str) -> None:
    run(
        [DOCKER, "login", host, "--username", user, "--password-stdin"],
        env=docker_env(config),
        input_text=password + "\n",
        timeout=60,
    )


@contextlib.contextmanager
def setup(work: Path) -> Iterator[Setup]:
    run_id = uuid.uuid4().hex[:8]
    namespace = f"imagefactory-bench/promote-{run_id}"
    password = (HOST_DIR / "registry.password").read_text().strip()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CI", "GITLAB_CI", "GITLAB_USER_LOGIN") and not k.startswith("CI_")
    }
    env.update(
        IMAGEFACTORY_REGISTRY_USER=A_USER,
        IMAGEFACTORY_REGISTRY_PASSWORD=password,
        DOCKER_BUILDKIT="1",
    )
    say(f"catalog copy in {work}, namespace {namespace}")
    root = prepare_catalog(work, namespace, run_id)
    docker_config = work / "docker-config"
    docker_config.mkdir(mode=0o700)
    try:
        started = time.monotonic()
        imagefactory(root, "build", APP, env=env, timeout=1800)
        say(f"built the chain in {time.monotonic() - started:.1f} s")
        imagefactory(root, "test", APP, env=env)
        [pushed] = imagefactory(root, "push", APP, env=env)["images"]
        say(f"pushed {APP} {pushed['version']} {pushed['digest'][:19]}… to dev")
        revision = run(["git", "-C", root, "rev-parse", "HEAD"], timeout=30).stdout.strip()
        ca, _, _ = make_ca_and_server_cert(work / "tls")
        bundle = write_bundle(work / "ca-bundle.pem", HOST_BUNDLE, ca)
        docker_login(docker_config, REGISTRY_A, A_USER, password)
        manifest = json.loads(
            run(
                [SKOPEO, "inspect", "--raw", "--tls-verify=false", "--authfile",
                 docker_config / "config.json", f"docker://{REGISTRY_A}/{namespace}/dev/"
                 f"{APP_NAME}@{pushed['digest']}"],
                timeout=60,
            ).stdout
        )  # fmt: skip
        size = manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
        yield Setup(
            work, root, run_id, namespace, env, docker_config, work / "tls", bundle,
            pushed["digest"], pushed["version"], revision, size, len(manifest["layers"]),
        )  # fmt: skip
    finally:
        registry_cleanup(Registry(REGISTRY_A, A_USER, password), namespace)
        remove_local_images(namespace, run_id)


def remove_local_images(namespace: str, run_id: str) -> None:
    """Remove the local tags this run made, and the images it built (by the run label)."""
    proc = subprocess.run(
        [DOCKER, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    mine = [ref for ref in proc.stdout.split() if f"/{namespace}/" in ref]
    if mine:
        subprocess.run([DOCKER, "rmi", *mine], capture_output=True, timeout=300, check=False)
    ids = subprocess.run(
        [DOCKER, "image", "ls", "-q", "--filter", f"label={RUN_LABEL}={run_id}"],
        capture_output=True, text=True, timeout=60, check=False,
    ).stdout.split()  # fmt: skip
    if ids:
        subprocess.run(
            [DOCKER, "rmi", "--force", *sorted(set(ids))],
            capture_output=True, timeout=300, check=False,
        )  # fmt: skip


@dataclass(frozen=True)
class Target:
    host: str
    namespace: str
    data: Path  # the registry's storage
    log: Path  # its access log
    user_env: str
    password_env: str
    tls_verify: bool


@contextlib.contextmanager
def target(s: Setup, kind: str, name: str) -> Iterator[Target]:
    """A fresh target repository: in registry A (``same``), or in a registry B started for this
    one run (``b``: empty storage, so nothing can be mounted or skipped; dockerd trusts it through
    ``/etc/docker/certs.d/<host>/ca.crt`` for the run)."""
    namespace = f"{s.namespace}/{name}"
    if kind == "same":
        yield Target(
            REGISTRY_A, namespace, A_DATA, A_LOG,
            "IMAGEFACTORY_REGISTRY_USER", "IMAGEFACTORY_REGISTRY_PASSWORD", False,
        )  # fmt: skip
        return
    with running_registry(
        s.work / f"registry-{name}", tls_from=s.tls, bcrypt_cost=B_BCRYPT_COST
    ) as registry:
        trusted = CERTS_D / registry.host
        if trusted.exists():
            raise BenchError(f"{trusted} exists already; not touching it")
        made_certs_d = not CERTS_D.exists()
        trusted.mkdir(parents=True)
        try:
            shutil.copyfile(registry.ca_cert, trusted / "ca.crt")
            docker_login(s.docker_config, registry.host, registry.user, registry.password)
            s.env[B_USER_ENV], s.env[B_PASSWORD_ENV] = registry.user, registry.password
            yield Target(
                registry.host, namespace, registry.data_dir, registry.log_file,
                B_USER_ENV, B_PASSWORD_ENV, True,
            )  # fmt: skip
        finally:
            shutil.rmtree(trusted, ignore_errors=True)
            if made_certs_d:
                with contextlib.suppress(OSError):
                    CERTS_D.rmdir()
            subprocess.run(
                [DOCKER, "logout", registry.host], env=docker_env(s.docker_config),
                capture_output=True, timeout=60, check=False,
            )  # fmt: skip
            run_rmi_prefix(registry.host)


def run_rmi_prefix(host: str) -> None:
    proc = subprocess.run(
        [DOCKER, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    mine = [ref for ref in proc.stdout.split() if ref.startswith(host + "/")]
    if mine:
        subprocess.run([DOCKER, "rmi", *mine], capture_output=True, timeout=300, check=False)


# --------------------------------------------------------------------------- one run each


@dataclass
class Sample:
    method: str  # promote | docker
    kind: str  # same | b
    seconds: float
    digests: dict[str, str]  # tag -> digest in the target
    traffic: Traffic
    storage_growth: int


def skopeo_tls(s: Setup, where: Target) -> list[str]:
    if not where.tls_verify:
        return ["--tls-verify=false"]
    certs = s.work / "skopeo-certs"
    if not certs.exists():
        certs.mkdir()
        shutil.copyfile(s.tls / "ca.crt", certs / "ca.crt")
    return ["--tls-verify=true", "--cert-dir", str(certs)]


def digests_in(s: Setup, where: Target, repository: str, tags: Sequence[str]) -> dict[str, str]:
    found = {}
    for tag in tags:
        proc = run(
            [SKOPEO, "inspect", "--no-tags", "--format={{.Digest}}", *skopeo_tls(s, where),
             "--authfile", s.docker_config / "config.json", f"docker://{repository}:{tag}"],
            timeout=60,
        )  # fmt: skip
        found[tag] = proc.stdout.strip()
    return found


def measure(s: Setup, method: str, kind: str, name: str, *, profile: Path | None = None) -> Sample:
    with target(s, kind, name) as where:
        repository = f"{where.host}/{where.namespace}/{APP_NAME}"
        before_storage = tree_bytes(where.data)
        offsets = (log_size(where.log), log_size(A_LOG))
        if method == "promote":
            write_project(
                s.root,
                {
                    "url": where.host,
                    "namespace": where.namespace,
                    "username_env": where.user_env,
                    "password_env": where.password_env,
                    "tls_verify": where.tls_verify,
                },
                s.bundle,
            )
            started = time.perf_counter()
            document = imagefactory(
                s.root, "promote", APP, "--to", "preprod", env=s.env, profile=profile
            )
            seconds = time.perf_counter() - started
            if document["digest"] != s.digest:
                raise BenchError(f"promote reported {document['digest']}, dev holds {s.digest}")
        else:
            env = docker_env(s.docker_config)
            source = f"{s.dev_repo}:{s.version}"
            started = time.perf_counter()
            run([DOCKER, "pull", "-q", source], env=env)
            for tag in s.tags:
                run([DOCKER, "tag", source, f"{repository}:{tag}"], env=env)
            run([DOCKER, "push", "--all-tags", repository], env=env)
            seconds = time.perf_counter() - started
        moved = traffic(
            where.log, offsets[0], where.data, where.namespace,
            A_LOG, offsets[1], f"{s.namespace}/dev",
        )  # fmt: skip
        if profile is not None:
            census = request_census(where.log, offsets[0], "target")
            if where.log != A_LOG:
                census.update(request_census(A_LOG, offsets[1], "source"))
            profile.with_suffix(".requests.json").write_text(json.dumps(census))
        growth = tree_bytes(where.data) - before_storage
        found = digests_in(s, where, repository, s.tags)
    return Sample(method, kind, seconds, found, moved, growth)


def request_census(log: Path, offset: int, side: str) -> Counter[str]:
    """``"<side> <METHOD> <kind> <status>"`` → how many such requests ``log`` got since
    ``offset`` (every repository: what one promotion asked of that registry)."""
    found: Counter[str] = Counter()
    for line in new_log_lines(log, offset):
        match = ACCESS.search(line)
        if match:
            path = match["uri"].split("?")[0]
            kind = next(
                (
                    k
                    for k in ("/manifests/", "/blobs/uploads/", "/blobs/", "/tags/list")
                    if k in path
                ),
                "/" if path == "/v2/" else "other",
            ).strip("/")
            mounted = "?mount=" in match["uri"]
            found[
                f"{side} {match['method']} {kind}{' mount' if mounted else ''} {match['status']}"
            ] += 1
    return found


def anatomy(s: Setup, kind: str) -> dict[str, Any]:
    """One more promotion, profiled: its seconds in each of ``PARTS`` (cumulative, so they
    overlap where one calls another) and every request it made."""
    profile = s.work / f"anatomy-{kind}.prof"
    sample = measure(s, "promote", kind, f"anatomy-{kind}", profile=profile)
    stats = pstats.Stats(str(profile))
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    parts: dict[str, dict[str, float]] = {}
    for name, where, function in PARTS:
        rows = [v for (f, _, n), v in table.items() if where in f and n == function]
        outer = [r for r in rows if not any(where in f and n == function for (f, _, n) in r[4])]
        parts[name] = {
            "seconds": round(sum(r[3] for r in outer), 3),
            "calls": sum(r[0] for r in outer),
        }
    total = max(v[3] for v in table.values())
    census = json.loads(profile.with_suffix(".requests.json").read_text())
    ours = sorted(
        ((v[3], f"{Path(f).name}:{n}") for (f, _, n), v in table.items() if "imagefactory/" in f),
        reverse=True,
    )
    return {"wall_s": round(sample.seconds, 3), "profiled_s": round(total, 3), "parts": parts,
            "hottest": [[name, round(t, 3)] for t, name in ours[:HOTTEST]],
            "requests": dict(sorted(census.items()))}  # fmt: skip


# --------------------------------------------------------------------------- report


def mb(value: float) -> str:
    return f"{value / 1e6:.1f} MB"


def summarize(
    s: Setup, samples: list[Sample], anatomies: Mapping[str, dict[str, Any]], repeat: int
) -> dict[str, Any]:
    out: dict[str, Any] = {"targets": {}}
    for target in ("same", "b"):
        entry: dict[str, Any] = {}
        for method in ("promote", "docker"):
            mine = [x for x in samples if x.method == method and x.kind == target]
            times = [x.seconds for x in mine]
            digests = {d for x in mine for d in x.digests.values()}
            last = mine[-1]
            entry[method] = {
                "median_s": statistics.median(times),
                "min_s": min(times),
                "max_s": max(times),
                "samples_s": times,
                "uploaded_bytes": statistics.median(x.traffic.uploaded_bytes for x in mine),
                "uploaded_blobs": last.traffic.uploaded_blobs,
                "mounted_blobs": last.traffic.mounted_blobs,
                "manifests_put": last.traffic.manifests_put,
                "downloaded_bytes": statistics.median(x.traffic.downloaded_bytes for x in mine),
                "requests": statistics.median(x.traffic.requests for x in mine),
                "storage_growth": statistics.median(x.storage_growth for x in mine),
                "digests": sorted(digests),
                "digest_preserved": digests == {s.digest},
            }
        entry["ratio"] = entry["promote"]["median_s"] / entry["docker"]["median_s"]
        entry["anatomy"] = anatomies[target]
        out["targets"][target] = entry
    out["facts"] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "repeat": repeat,
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()}",
        "docker": run([DOCKER, "version", "--format", "{{.Server.Version}}"]).stdout.strip(),
        "skopeo": run([SKOPEO, "--version"]).stdout.strip(),
        "image": f"{APP} {s.version} {s.digest}",
        "image_bytes": s.image_bytes,
        "layers": s.layers,
        "commit": subprocess.run(
            ["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
    }
    return out


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))


def print_report(summary: dict[str, Any], dev_digest: str) -> None:
    facts = summary["facts"]
    print()
    print(f"promotion benchmark  {facts['date']}  {facts['machine']}  docker {facts['docker']}")
    print(
        f"image {facts['image']}: {mb(facts['image_bytes'])} compressed in "
        f"{facts['layers']} layers; {facts['repeat']} interleaved runs per row"
    )
    names = {"same": "A → A (same registry)", "b": "A → B (TLS registry)"}
    rows = [[
        "path", "method", "median s", "min s", "max s", "uploaded", "blobs up/mounted",
        "downloaded", "storage growth", "digest in target",
    ]]  # fmt: skip
    for target, entry in summary["targets"].items():
        for method in ("promote", "docker"):
            m = entry[method]
            digests = m["digests"]
            shown = "= dev" if digests == [dev_digest] else ", ".join(d[:19] + "…" for d in digests)
            rows.append([
                names[target],
                "imagefactory promote" if method == "promote" else "docker pull+tag+push",
                f"{m['median_s']:.2f}", f"{m['min_s']:.2f}", f"{m['max_s']:.2f}",
                mb(m["uploaded_bytes"]), f"{m['uploaded_blobs']}/{m['mounted_blobs']}",
                mb(m["downloaded_bytes"]), mb(m["storage_growth"]), shown,
            ])  # fmt: skip
    print_table(rows)
    print()
    rows = [["check", "value", "target", "result"]]
    for target, entry in summary["targets"].items():
        ratio = entry["ratio"]
        rows.append([
            f"{names[target]}: promote / docker", f"{ratio:.2f}x", f"≤ {TARGET_RATIO}x",
            "PASS" if ratio <= TARGET_RATIO else "MISS",
        ])  # fmt: skip
    print_table(rows)
    for target, entry in summary["targets"].items():
        seen = entry["anatomy"]
        print(
            f"\n{names[target]}: one profiled promotion, {seen['wall_s']:.2f} s "
            f"({seen['profiled_s']:.2f} s in the profile)"
        )
        for part, spent in seen["parts"].items():
            print(f"  {part:28} {spent['seconds']:6.2f} s in {spent['calls']} calls")
        print("  hottest functions of imagefactory (cumulative s):")
        for name, seconds in seen["hottest"]:
            print(f"    {seconds:6.2f}  {name}")
        total = sum(seen["requests"].values())
        print(f"  {total} requests:")
        for request, count in seen["requests"].items():
            print(f"    {count:4}  {request}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="promote-bench-"))
    try:
        with setup(work) as s:
            samples: list[Sample] = []
            order = [("promote", "same"), ("docker", "same"), ("promote", "b"), ("docker", "b")]
            for index in range(args.repeat):
                shift = index % len(order)
                for method, target in order[shift:] + order[:shift]:
                    sample = measure(s, method, target, f"r{index}-{method}-{target}")
                    say(
                        f"run {index + 1}/{args.repeat} {method:7} {target:4} "
                        f"{sample.seconds:6.2f} s  up {mb(sample.traffic.uploaded_bytes)}"
                    )
                    samples.append(sample)
            anatomies = {target: anatomy(s, target) for target in ("same", "b")}
            summary = summarize(s, samples, anatomies, args.repeat)
            print_report(summary, s.digest)
            if args.json:
                args.json.write_text(json.dumps(summary, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
