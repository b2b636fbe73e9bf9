"""The example catalog, built once per test session by the real CLI (for test_build*.py and most
other integration tests).

The copy differs from the repository's example in four ways, three in its imagefactory.yaml:

* every registry namespace becomes ``it-<session>/<stage>``: runs never share a repository;
* ``defaults.labels`` gains ``org.imagefactory.test-session: <session>``: the label is part of
  every content hash, so no image of an earlier run (or of a manual build of the example, which
  the build would reuse from the local engine by its content-hash label) matches, and the first
  build really builds. BuildKit still serves unchanged layers from its cache;
* ``build.proxy.no_proxy`` is set to a marker value that must never reach an image;

and it signs with a key pair of its own, made by the real ``imagefactory keygen``: the public key
at keys/cosign.pub (where the example's ``signing.public_key`` names it), the private key outside
the catalog, where ``IMAGEFACTORY_SIGNING_KEY`` (``registry_env``) names it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .registry import Registry
from .services import REPO_ROOT, docker, run, tail

EXAMPLE_REFS = ("base/debian12", "runtime/llm:cpu", "app/rag-api")
SESSION_LABEL = "org.imagefactory.test-session"
BUILD_TIMEOUT = 900  # a cold build (mmdebstrap, apt, pip) on a small CI machine
ROOTFS_CACHE = REPO_ROOT / ".imagefactory" / "cache"


def imagefactory(
    project: Path,
    *args: str,
    env: Mapping[str, str],
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI (``python -m imagefactory -C project ...``); never raises on exit codes."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "imagefactory", "-C", str(project), *args],
            env=dict(env),
            cwd=project,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"imagefactory {' '.join(args)} ran longer than {timeout}s") from exc


def cli_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The one JSON document a ``--json`` command printed; fails with the output otherwise."""
    try:
        document = json.loads(proc.stdout)
    except ValueError as exc:
        raise AssertionError(
            f"no JSON on stdout (exit {proc.returncode})\n--- stdout ---\n{tail(proc.stdout)}"
            f"\n--- stderr ---\n{tail(proc.stderr)}"
        ) from exc
    assert isinstance(document, dict), document
    return document


def git_commit(root: Path, message: str) -> str:
    """Commit everything in ``root`` (a git repository is created when there is none)."""
    if not (root / ".git").is_dir():
        run(["git", "init", "-q", str(root)], timeout=30)
    ident = [
        "-c", "user.name=imagefactory tests", "-c", "user.email=tests@example.invalid",
        "-c", "commit.gpgsign=false",
    ]  # fmt: skip
    run(["git", "-C", str(root), "add", "-A"], timeout=30)
    run(
        ["git", "-C", str(root), *ident, "commit", "-q", "--allow-empty", "-m", message], timeout=30
    )
    return run(["git", "-C", str(root), "rev-parse", "HEAD"], timeout=30).stdout.strip()


def link_or_copy_tree(source: Path, target: Path) -> None:
    """Hard-link every file of ``source`` into ``target`` (a copy across file systems)."""
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_file() and not item.name.endswith(".partial"):
            try:
                os.link(item, target / item.name)
            except OSError:
                shutil.copy2(item, target / item.name)


def edit_text(path: Path, old: str, new: str) -> None:
    """Replace ``old`` once in ``path``; fails loudly when it is not there."""
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@dataclass(frozen=True)
class ExampleBuild:
    """The example catalog copy the session fixture built (``imagefactory build app/rag-api``).

    Tests must not change ``root``: use the ``example_copy`` fixture to change a catalog.
    """

    root: Path
    session: str  # unique per test session: namespace root and label value
    namespace: str  # the dev registry's namespace, "it-<session>/dev"
    registry: Registry
    env: Mapping[str, str]  # os.environ + the registry credential variables
    outcomes: list[dict[str, Any]]  # the build's --json "images"
    stdout: str
    stderr: str
    seconds: float
    state_text: str  # the state file right after the build
    revision: str  # the git commit the build ran on
    dockerfiles: Mapping[str, str]  # ref -> the Dockerfile the build rendered for it

    @property
    def state_path(self) -> Path:
        return self.root / ".imagefactory" / "state.json"

    @property
    def records(self) -> dict[str, dict[str, Any]]:
        images = json.loads(self.state_text)["images"]
        assert isinstance(images, dict)
        return images

    def repository(self, name: str) -> str:
        return f"{self.registry.host}/{self.namespace}/{name}"

    def reference(self, ref: str) -> str:
        """The pushed content tag of ``ref`` (``host/ns/name:content-…``)."""
        record = self.records[ref]
        return f"{record['repository']}:{record['tag']}"


def slug(ref: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "_", ref)


def prepare_example_catalog(target: Path, session: str, private_key: Path) -> Path:
    """A copy of the example catalog at ``target``, rewritten for this session, with a new key
    pair: keys/cosign.pub in the copy, ``private_key`` (not there yet) outside (see above)."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO_ROOT / "images", target / "images")
    project = yaml.safe_load((REPO_ROOT / "imagefactory.yaml").read_text())
    for stage, registry in project["registries"].items():
        registry["namespace"] = f"it-{session}/{stage}"
    project.setdefault("defaults", {}).setdefault("labels", {})[SESSION_LABEL] = session
    proxy = project.setdefault("build", {}).setdefault("proxy", {})
    proxy["no_proxy"] = f"no-proxy-marker-{session}.invalid"
    (target / "imagefactory.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    work = target / ".imagefactory"
    work.mkdir()
    if ROOTFS_CACHE.is_dir():  # a warm mmdebstrap cache: saves ~20 s; a cold run makes its own
        link_or_copy_tree(ROOTFS_CACHE, work / "cache")
    (target / ".gitignore").write_text("/.imagefactory/\n")
    keygen(target, private_key)
    return target


def keygen(root: Path, private_key: Path) -> None:
    """A new key pair for the catalog at ``root`` (keys/cosign.pub) by the real CLI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEFACTORY_SIGNING_KEY")}
    proc = imagefactory(
        root, "keygen", "--public", "keys/cosign.pub", "--private", str(private_key), env=env
    )
    assert proc.returncode == 0, f"keygen failed\n{tail(proc.stdout)}\n{tail(proc.stderr)}"
    assert (root / "keys" / "cosign.pub").is_file() and private_key.is_file()


def build_example(
    root: Path, session: str, registry: Registry, env: Mapping[str, str]
) -> ExampleBuild:
    """Commit the prepared catalog at ``root`` and build and push ``app/rag-api`` (and so its
    ancestors) with the real CLI; fails the test with the output's tail when the build fails."""
    revision = git_commit(root, "example catalog")
    started = time.monotonic()
    proc = imagefactory(root, "build", "app/rag-api", "--json", env=env, timeout=BUILD_TIMEOUT)
    seconds = time.monotonic() - started
    document = cli_json(proc)
    if proc.returncode != 0 or document.get("ok") is not True:
        pytest.fail(
            f"the session build of the example catalog failed (exit {proc.returncode})\n"
            f"--- stdout ---\n{tail(proc.stdout, 40)}\n--- stderr ---\n{tail(proc.stderr, 60)}",
            pytrace=False,
        )
    images = document["images"]
    assert isinstance(images, list)
    build_dir = root / ".imagefactory" / "build"
    return ExampleBuild(
        root=root,
        session=session,
        namespace=f"it-{session}/dev",
        registry=registry,
        env=env,
        outcomes=images,
        stdout=proc.stdout,
        stderr=proc.stderr,
        seconds=seconds,
        state_text=(root / ".imagefactory" / "state.json").read_text(),
        revision=revision,
        dockerfiles={
            ref: (build_dir / slug(ref) / "Dockerfile").read_text()
            for ref in EXAMPLE_REFS
            if (build_dir / slug(ref) / "Dockerfile").is_file()
        },
    )


def copy_built_example(example: ExampleBuild, target: Path) -> Path:
    """A private, changeable copy of the built catalog at ``target``: same images, state, git
    history and registry namespace (so unchanged images are reused from there), its own build
    folder; the rootfs cache is shared with the session's catalog (a symlink)."""
    shutil.copytree(
        example.root,
        target,
        symlinks=True,
        ignore=lambda folder, names: (
            ["build", "cache"] if Path(folder) == example.root / ".imagefactory" else []
        ),
    )
    cache = example.root / ".imagefactory" / "cache"
    cache.mkdir(exist_ok=True)
    (target / ".imagefactory" / "cache").symlink_to(cache, target_is_directory=True)
    return target


def remove_session_images(session: str) -> None:
    ids = docker(
        "image", "ls", "-a", "-q", "--filter", f"label={SESSION_LABEL}={session}", check=False
    ).stdout.split()
    if ids:
        docker("rmi", "--force", *sorted(set(ids)), check=False, timeout=300)
