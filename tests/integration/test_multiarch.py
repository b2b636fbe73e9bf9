"""Multi-arch (issue 20, docs/multiarch.md) through ``imagefactory build``, against the real
engine, registry and QEMU emulation: a two-image chain (a bootstrapped base of the Essential set
with ``passwd`` and a user, and a tiny child with a file and a label) for linux/amd64 and
linux/arm64, signed.

Checked: each image's content tag is an OCI index of both platforms whose entries are the
per-platform digests ``build --json`` and the state report; the child's image of each platform
is built ``FROM`` its parent's image of that platform (its ``base.digest`` label), names its
architecture and carries the label; the arm64 child run under emulation says ``aarch64``; each
platform's digest and the index are signed; ``imagefactory test`` tests both platforms, push and
promote move the index with both platforms' images (digests equal in the target); a second
build reuses everything; and a change to the child, built one platform at a time
(``--platform``, as a pipeline's per-platform jobs do) and then indexed, rebuilds the child's
platforms only.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagefactory.build.emulation import check_emulation
from imagefactory.project.naming import BASE_DIGEST_LABEL

from .helpers.example import (
    SESSION_LABEL,
    cli_json,
    git_commit,
    imagefactory,
    keygen,
    remove_session_images,
)
from .helpers.registry import Registry, registry_cleanup
from .helpers.services import docker, tail, unique

pytestmark = pytest.mark.integration

PLATFORMS = ["linux/amd64", "linux/arm64"]
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join(
    [
        INDEX_TYPE,
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


@pytest.fixture(scope="module")
def session(registry: Registry) -> Iterator[str]:
    name = unique("multiarch")
    try:
        yield name
    finally:
        remove_session_images(name)
        registry_cleanup(registry, f"it-{name}")


def write_catalog(root: Path, registry: Registry, session: str) -> None:
    project = {
        "project": "it-multiarch",
        "registries": {
            "dev": {
                "url": registry.host,
                "namespace": f"it-{session}/dev",
                "username_env": "IMAGEFACTORY_REGISTRY_USER",
                "password_env": "IMAGEFACTORY_REGISTRY_PASSWORD",
                "tls_verify": False,
            },
            "prod": {
                "url": registry.host,
                "namespace": f"it-{session}/prod",
                "username_env": "IMAGEFACTORY_REGISTRY_USER",
                "password_env": "IMAGEFACTORY_REGISTRY_PASSWORD",
                "tls_verify": False,
            },
        },
        "environments": [
            {"name": "dev", "registries": ["dev"]},
            {"name": "prod", "registries": ["prod"]},
        ],
        "defaults": {"labels": {SESSION_LABEL: session}, "platforms": PLATFORMS},
        "signing": {"public_key": "keys/cosign.pub", "builders": ["local:"]},
    }
    base = {
        "name": "base/mini",
        "version": "1.0.0",
        "bootstrap": {"variant": "essential", "packages": ["passwd"]},
        "create_users": [{"name": "app", "uid": 10001, "gid": 10001}],
        "user": "app",
    }
    app = {
        "name": "app/tiny",
        "version": "1.0.0",
        "from": "base/mini",
        "files": [{"src": "hello.txt", "dest": "/opt/hello.txt"}],
        "labels": {"com.example.tier": "app"},
        "tests": {
            "files": [{"path": "/opt/hello.txt", "type": "file"}],
            "commands": [{"name": "runs", "run": ["cat", "/opt/hello.txt"]}],
            "metadata": {"user": "10001:10001"},
        },
    }
    (root / "imagefactory.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    for spec in (base, app):
        folder = root / "images" / str(spec["name"])
        folder.mkdir(parents=True)
        (folder / "image.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (root / "images" / "app" / "tiny" / "hello.txt").write_text("hello\n")
    (root / ".gitignore").write_text("/.imagefactory/\n")


def build(root: Path, env: dict[str, str], *args: str) -> dict[str, dict[str, Any]]:
    """``build app/tiny --json ARGS``'s outcomes by image; fails with the output's tail
    otherwise."""
    proc = imagefactory(root, "build", "app/tiny", "--json", *args, env=env, timeout=1500)
    assert "Traceback" not in proc.stderr, tail(proc.stderr, 60)
    document = cli_json(proc)
    assert proc.returncode == 0 and document["ok"] is True, tail(proc.stderr, 60)
    return {o["image"]: o for o in document["images"]}


def ok(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The --json document of a command that must succeed."""
    assert "Traceback" not in proc.stderr, tail(proc.stderr, 60)
    document = cli_json(proc)
    assert proc.returncode == 0, tail(proc.stderr, 60) + tail(proc.stdout, 60)
    return document


def digest_of(state: dict[str, Any]) -> str:
    digest = state["app/tiny"]["digest"]
    assert isinstance(digest, str)
    return digest


def manifest(registry: Registry, repository: str, reference: str) -> tuple[str, dict[str, Any]]:
    """(media type, document) of ``repository:reference`` read over HTTP, not by imagefactory."""
    status, headers, body = registry.request(
        "GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT}
    )
    assert status == 200, (status, repository, reference)
    media_type = {k.lower(): v for k, v in headers.items()}["content-type"]
    return media_type, json.loads(body)


def config(registry: Registry, repository: str, digest: str) -> dict[str, Any]:
    _, document = manifest(registry, repository, digest)
    status, _, body = registry.request(
        "GET", f"/v2/{repository}/blobs/{document['config']['digest']}"
    )
    assert status == 200
    found = json.loads(body)
    assert isinstance(found, dict)
    return found


def test_a_chain_builds_for_amd64_and_arm64_under_one_index(
    registry: Registry,
    registry_env: dict[str, str],
    docker_config: Path,
    session: str,
    tmp_path: Path,
) -> None:
    check_emulation(PLATFORMS, bootstrap=True)
    root = tmp_path / "catalog"
    root.mkdir()
    write_catalog(root, registry, session)
    key = tmp_path / "signing.key"
    keygen(root, key)
    env = {**registry_env, "IMAGEFACTORY_SIGNING_KEY": str(key)}
    git_commit(root, "multiarch catalog")

    started = time.monotonic()
    outcomes = build(root, env)
    cold = time.monotonic() - started
    state = json.loads((root / ".imagefactory" / "state.json").read_text())["images"]
    for ref in ("base/mini", "app/tiny"):
        outcome, record = outcomes[ref], state[ref]
        assert outcome["status"] == "built", outcome
        assert outcome["digest"] == record["digest"]
        assert set(outcome["platforms"]) == set(PLATFORMS)
        assert outcome["platforms"] == record["platforms"]
        repository = f"it-{session}/dev/{ref}"
        media_type, index = manifest(registry, repository, record["tag"])
        assert media_type == INDEX_TYPE
        assert [(m["platform"]["architecture"], m["digest"]) for m in index["manifests"]] == [
            ("amd64", record["platforms"]["linux/amd64"]),
            ("arm64", record["platforms"]["linux/arm64"]),
        ]
        status, headers, _ = registry.request(
            "HEAD", f"/v2/{repository}/manifests/{record['tag']}", headers={"Accept": ACCEPT}
        )
        assert status == 200
        assert {k.lower(): v for k, v in headers.items()}["docker-content-digest"] == (
            record["digest"]
        )
        # signed: each platform's digest and the index (cosign's sha256-<hex>.sig tags)
        for digest in [record["digest"], *record["platforms"].values()]:
            signature = digest.replace(":", "-") + ".sig"
            assert (
                registry.request(
                    "HEAD", f"/v2/{repository}/manifests/{signature}", headers={"Accept": ACCEPT}
                )[0]
                == 200
            ), (ref, digest)

    base, app = state["base/mini"]["platforms"], state["app/tiny"]["platforms"]
    for platform in PLATFORMS:
        arch = platform.rpartition("/")[2]
        found = config(registry, f"it-{session}/dev/app/tiny", app[platform])
        assert found["architecture"] == arch
        labels = found["config"]["Labels"]
        assert labels["com.example.tier"] == "app"
        assert labels[BASE_DIGEST_LABEL] == base[platform], "FROM the parent's platform image"
        assert (
            config(registry, f"it-{session}/dev/base/mini", base[platform])["architecture"] == arch
        )

    ran = docker(
        "run", "--rm", "--platform", "linux/arm64", "--entrypoint", "sh",
        f"{registry.host}/it-{session}/dev/app/tiny@{app['linux/arm64']}",
        "-c", "uname -m && cat /opt/hello.txt",
        docker_config=docker_config, timeout=300,
    )  # fmt: skip
    assert ran.stdout.split() == ["aarch64", "hello"]

    tested = ok(imagefactory(root, "test", "app/tiny", "--json", env=env, timeout=600))
    names = {c["name"] for image in tested["images"] for c in image["checks"]}
    for platform in PLATFORMS:
        assert {f"{platform}: /opt/hello.txt", f"{platform}: runs"} <= names, names

    [pushed] = ok(imagefactory(root, "push", "app/tiny", "--json", env=env, timeout=600))["images"]
    assert pushed["digest"] == state["app/tiny"]["digest"]
    ok(imagefactory(root, "promote", "app/tiny", "--to", "prod", "--json", env=env, timeout=600))
    prod = f"it-{session}/prod/app/tiny"
    media_type, index = manifest(registry, prod, "1.0.0")
    assert media_type == INDEX_TYPE
    assert {m["digest"] for m in index["manifests"]} == set(app.values())
    for digest in app.values():  # every platform's image moved with the index, by digest
        assert manifest(registry, prod, digest)[1]["config"]["digest"]
    verified = imagefactory(root, "verify", "app/tiny", "--env", "prod", "--json", env=env)
    assert verified.returncode == 0, tail(verified.stdout, 80) + tail(verified.stderr, 20)
    bundle = tmp_path / "prod.oci.tar"
    ok(
        imagefactory(
            root, "export", "--env", "prod", "app/tiny", "--out", str(bundle), "--json", env=env
        )
    )
    with tarfile.open(bundle) as archive:
        names = set(archive.getnames())
        held = {f"blobs/sha256/{d.partition(':')[2]}" for d in [digest_of(state), *app.values()]}
        assert held <= names, "the archive holds the index and both platforms' manifests"

    again = build(root, env)
    assert {ref: o["status"] for ref, o in again.items()} == {
        "base/mini": "reused",
        "app/tiny": "reused",
    }
    assert again["app/tiny"]["platforms"] == app

    # a pipeline's way: one job per platform (no index), then the index job reuses both
    (root / "images" / "app" / "tiny" / "hello.txt").write_text("hello again\n")
    git_commit(root, "a change to the child only")
    made = {}
    for platform in PLATFORMS:
        one = build(root, env, "--platform", platform)
        assert one["base/mini"]["status"] == "reused"
        assert one["base/mini"]["platforms"] == {platform: base[platform]}
        assert one["app/tiny"]["status"] == "built"
        made.update(one["app/tiny"]["platforms"])
    assert (
        set(made).isdisjoint(app.values())
        and json.loads((root / ".imagefactory" / "state.json").read_text())["images"]["app/tiny"][
            "platforms"
        ]
        == app
    ), "a --platform build records no index"
    changed = build(root, env)
    assert changed["base/mini"]["status"] == "reused"
    assert changed["app/tiny"]["status"] == "built"  # the index, of the platforms reused
    assert changed["app/tiny"]["platforms"] == made
    print(f"\nmultiarch chain: cold build {cold:.0f} s")
