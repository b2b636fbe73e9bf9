"""``imagefactory build`` against the real engine and registry: a content tag is write-once
(a rebuild that makes another digest keeps the registry's, is reported as not reproducible and
is not recorded), a build from a dirty tree says so in its revision label, and an image on an
external parent without a ``user`` runs as that parent's config names, never as root unless
``user: root`` is written.

Each test has its own catalog (one image FROM the tiny busybox base, pushed to the registry and
pinned by digest; a COPY, no RUN: a build takes seconds) in its own repository.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagefactory.registry.client import RegistryClient
from imagefactory.spec.models import Registry as RegistrySpec

from .helpers.example import (
    SESSION_LABEL,
    cli_json,
    git_commit,
    imagefactory,
    remove_session_images,
)
from .helpers.registry import Registry, registry_cleanup
from .helpers.services import docker, unique

pytestmark = pytest.mark.integration

IMAGE = "probe/tiny"
REVISION = "org.opencontainers.image.revision"
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.oci.image.manifest.v1+json"
)
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@pytest.fixture(scope="module")
def session(registry: Registry) -> Iterator[str]:
    """This module's namespace part and session label; its images and manifests go at the end."""
    name = unique("tags")
    try:
        yield name
    finally:
        remove_session_images(name)
        registry_cleanup(registry, f"it-{name}")


def pushed(local: str, target: str, docker_config: Path) -> str:
    """Push the local image ``local`` as ``target``; its digest in the registry."""
    docker("tag", local, target)
    docker("push", "--quiet", target, docker_config=docker_config, timeout=120)
    digests = json.loads(
        docker("image", "inspect", "--format", "{{json .RepoDigests}}", target).stdout
    )
    repository = target.rpartition(":")[0]
    [digest] = [d.partition("@")[2] for d in digests if d.startswith(repository + "@")]
    return str(digest)


@pytest.fixture(scope="module")
def bases(session: str, registry: Registry, tiny_base: str, docker_config: Path) -> dict[str, str]:
    """The tiny base in the registry by digest, as it is (root: its config names no user) and
    with ``USER 10001:10001``."""
    repository = f"{registry.host}/it-{session}/external/tiny"
    root = f"{repository}@{pushed(tiny_base, f'{repository}:root', docker_config)}"
    nonroot_tag = f"{repository}:nonroot"
    docker(
        "build", "--quiet", "--tag", nonroot_tag, "--label", f"{SESSION_LABEL}={session}", "-",
        input_text=f"FROM {root}\nUSER 10001:10001\n", docker_config=docker_config, timeout=120,
    )  # fmt: skip
    nonroot = f"{repository}@{pushed(nonroot_tag, nonroot_tag, docker_config)}"
    return {"root": root, "nonroot": nonroot}


Catalog = Callable[..., Path]


@pytest.fixture
def catalog(session: str, registry: Registry, tmp_path: Path) -> Catalog:
    """A committed catalog of one image FROM ``parent`` in a namespace of its own."""

    def make(parent: str, *, user: str | None = "root", folder: str = "catalog") -> Path:
        root = tmp_path / folder
        image_folder = root / "images" / IMAGE
        image_folder.mkdir(parents=True)
        project = {
            "project": "it-content-tags",
            "registries": {
                "dev": {
                    "url": registry.host,
                    "namespace": f"it-{session}/{unique('t')}",
                    "username_env": "IMAGEFACTORY_REGISTRY_USER",
                    "password_env": "IMAGEFACTORY_REGISTRY_PASSWORD",
                    "tls_verify": False,
                }
            },
            "environments": [{"name": "dev", "registries": ["dev"]}],
            "defaults": {"labels": {SESSION_LABEL: session}},
        }
        image: dict[str, Any] = {
            "name": IMAGE,
            "version": "1.0.0",
            "from": parent,
            "files": [{"src": "payload.txt", "dest": "/opt/payload.txt", "owner": "0:0"}],
        }
        if user is not None:
            image["user"] = user
        (root / "imagefactory.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
        (image_folder / "image.yaml").write_text(yaml.safe_dump(image, sort_keys=False))
        (image_folder / "payload.txt").write_text(f"payload {unique('p')}\n")
        git_commit(root, "catalog")
        return root

    return make


def build(root: Path, env: dict[str, str], *args: str) -> tuple[int, dict[str, Any], str]:
    """(exit code, the --json document, the progress lines) of ``build probe/tiny ARGS``."""
    proc = imagefactory(root, "build", IMAGE, "--json", *args, env=env, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
    return proc.returncode, cli_json(proc), proc.stderr


def record_of(root: Path) -> dict[str, Any]:
    state = json.loads((root / ".imagefactory" / "state.json").read_text())
    record = state["images"][IMAGE]
    assert isinstance(record, dict)
    return record


def tag_digest(registry: Registry, repository: str, tag: str) -> str | None:
    """What ``repository:tag`` names in the registry (read over HTTP, not through imagefactory)."""
    path = repository.removeprefix(f"{registry.host}/")
    status, headers, _ = registry.request(
        "HEAD", f"/v2/{path}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES}
    )
    if status == 404:
        return None
    assert status == 200, status
    return {k.lower(): v for k, v in headers.items()}["docker-content-digest"]


def config_of(image: str) -> dict[str, Any]:
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert isinstance(config, dict)
    return config


def test_a_rebuild_never_moves_the_content_tag(
    catalog: Catalog, bases: dict[str, str], registry: Registry, registry_env: dict[str, str]
) -> None:
    """The issue's second clone: ``build --no-cache`` of content whose tag exists makes another
    digest (a new image config: its creation time). The tag keeps the first; the rebuild is
    reported with both digests and not recorded; the first clone's state stays where it was."""
    first = catalog(bases["root"])
    code, document, _ = build(first, registry_env)
    assert code == 0 and document["images"][0]["status"] == "built", document
    built = record_of(first)
    digest, repository, tag = built["digest"], built["repository"], built["tag"]
    assert tag_digest(registry, repository, tag) == digest

    second = first.parent / "second-clone"
    shutil.copytree(first, second, ignore=shutil.ignore_patterns(".imagefactory"))
    code, document, progress = build(second, registry_env, "--no-cache")

    assert code == 0, progress[-4000:]
    [outcome] = document["images"]
    assert (outcome["status"], outcome["digest"]) == ("unreproducible", digest), outcome
    found = re.search(
        rf"not reproducible: registry has {re.escape(digest)}, this build made ({DIGEST.pattern})",
        progress,
    )
    assert found is not None, progress[-4000:]
    assert found.group(1) != digest
    assert tag_digest(registry, repository, tag) == digest
    assert record_of(second)["digest"] == digest
    assert record_of(second)["tag"] == tag

    code, document, _ = build(first, registry_env)
    assert code == 0
    assert [(o["status"], o["digest"]) for o in document["images"]] == [("reused", digest)]
    assert record_of(first)["digest"] == digest


def test_a_dirty_tree_labels_its_revision_dirty(
    catalog: Catalog, bases: dict[str, str], registry_env: dict[str, str]
) -> None:
    root = catalog(bases["root"])
    payload = root / "images" / IMAGE / "payload.txt"
    assert build(root, registry_env)[0] == 0
    payload.write_text("committed change\n")
    sha = git_commit(root, "a change")  # .imagefactory/ (state, contexts) is untracked now

    assert build(root, registry_env)[0] == 0
    clean = record_of(root)
    payload.write_text("not committed\n")
    assert build(root, registry_env)[0] == 0
    dirty = record_of(root)

    assert config_of(clean["image_id"])["Labels"][REVISION] == sha
    assert dirty["content_hash"] != clean["content_hash"]
    assert config_of(dirty["image_id"])["Labels"][REVISION] == f"{sha}-dirty"


def test_an_external_root_parent_needs_user_root_written(
    catalog: Catalog, bases: dict[str, str], registry_env: dict[str, str]
) -> None:
    root = catalog(bases["root"], user=None)

    code, document, _ = build(root, registry_env)

    assert code == 1, document
    assert document["ok"] is False
    assert f"{IMAGE} writes no 'user'" in document["error"]
    assert "names no user, so it would run as root" in document["error"]
    assert f"write 'user: root' in images/{IMAGE}/image.yaml" in document["hint"]
    state = root / ".imagefactory" / "state.json"
    assert not state.exists() or IMAGE not in json.loads(state.read_text())["images"]

    spec = root / "images" / IMAGE / "image.yaml"
    spec.write_text(spec.read_text() + "user: root\n")
    code, document, progress = build(root, registry_env)
    assert code == 0, progress[-4000:]
    assert config_of(record_of(root)["image_id"])["User"] == "0:0"


def test_an_external_non_root_parent_gives_its_user(
    catalog: Catalog, bases: dict[str, str], registry_env: dict[str, str]
) -> None:
    root = catalog(bases["nonroot"], user=None)

    code, document, progress = build(root, registry_env)

    assert code == 0, progress[-4000:]
    assert document["images"][0]["status"] == "built"
    assert config_of(record_of(root)["image_id"])["User"] == "10001:10001"


def test_the_first_writer_of_a_content_tag_keeps_it(
    session: str, registry: Registry, tiny_base: str, bases: dict[str, str], docker_config: Path
) -> None:
    """Two runners built the same content into two digests and pushed each to the staging tag:
    whoever writes the content tag first keeps it; the other's write leaves it and reads the
    first one back (the registry client's write-once primitive, over the registry's HTTP API)."""
    repository = f"{registry.host}/it-{session}/race/tiny"
    first = pushed(tiny_base, f"{repository}:staging-first", docker_config)
    second = pushed(bases["nonroot"], f"{repository}:staging-second", docker_config)
    assert first != second
    client = RegistryClient(config_dir=docker_config)
    spec = RegistrySpec(url=registry.host, tls_verify=False)

    assert client.tag_once(spec, repository, first, "content-race") == first
    assert client.tag_once(spec, repository, second, "content-race") == first
    assert client.tag_once(spec, repository, first, "content-race") == first
    assert tag_digest(registry, repository, "content-race") == first
