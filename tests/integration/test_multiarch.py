"""Multi-arch, first slice (issue 20, docs/multiarch.md): the pieces imagefactory has for it,
against the real engine, registry and QEMU emulation. A two-image chain (a bootstrapped
minbase rootfs and a tiny child with a file and a label) is made for linux/amd64 and
linux/arm64: mmdebstrap per architecture (after the emulation preflight), ``docker build
--platform`` per platform with BuildKit, the child ``FROM`` its parent's per-platform digest,
each pushed, and the child's OCI index assembled through the registry API. Checked: the tag is
an index of both platforms, each image config names its architecture, and the arm64 child run
under emulation says ``aarch64``.

``imagefactory build`` does not drive this yet (docs/multiarch.md, "Not yet").
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path

from imagefactory.build.bootstrap import rootfs_tar
from imagefactory.build.emulation import check_emulation
from imagefactory.registry.http import RegistryHTTP
from imagefactory.registry.index import INDEX_TYPE, assemble_index
from imagefactory.spec.models import Bootstrap, BuildSettings
from imagefactory.spec.models import Registry as RegistrySpec

from .helpers.registry import Registry, registry_cleanup
from .helpers.services import docker, unique

PLATFORMS = ("linux/amd64", "linux/arm64")


def _build_push(context: Path, dockerfile: str, platform: str, ref: str, config: Path) -> str:
    (context / "Dockerfile").write_text(dockerfile)
    docker(
        "build", "--platform", platform, "--tag", ref, str(context),
        docker_config=config, timeout=900,
    )  # fmt: skip
    docker("push", ref, docker_config=config, timeout=300)
    found = docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref).stdout
    return str(json.loads(found)[0].rpartition("@")[2])


def test_a_chain_builds_for_amd64_and_arm64_under_one_index(
    registry: Registry, docker_config: Path, tmp_path: Path
) -> None:
    check_emulation(PLATFORMS, bootstrap=True)
    namespace = unique("multiarch")
    base_repo, app_repo = f"{namespace}/base", f"{namespace}/app"
    seconds: dict[str, float] = {}
    children: dict[str, str] = {}
    cleanup: list[Callable[[], object]] = []  # the index: registry_cleanup deletes images only
    try:
        for platform in PLATFORMS:
            started = time.monotonic()
            arch = platform.rpartition("/")[2]
            context = tmp_path / arch
            context.mkdir()
            tar = rootfs_tar(Bootstrap(), BuildSettings(), tmp_path / "cache", platform=platform)
            tar.rename(context / "rootfs.tar")
            base = f"{registry.host}/{base_repo}:{arch}"
            base_digest = _build_push(
                context, "FROM scratch\nADD rootfs.tar /\n", platform, base, docker_config
            )
            (context / "rootfs.tar").unlink()
            (context / "hello.txt").write_text("hello\n")
            child = (
                f"FROM {registry.host}/{base_repo}@{base_digest}\n"
                "COPY hello.txt /hello.txt\nLABEL com.example.tier=app\n"
            )
            app = f"{registry.host}/{app_repo}:{arch}"
            children[platform] = _build_push(context, child, platform, app, docker_config)
            seconds[platform] = time.monotonic() - started

        basic = base64.b64encode(f"{registry.user}:{registry.password}".encode()).decode()
        api = RegistryHTTP(RegistrySpec(url=registry.host, tls_verify=False), basic)
        index_digest = assemble_index(api, app_repo, "content", children)
        cleanup.append(lambda: api.delete_manifest(app_repo, index_digest))

        got = api.manifest(app_repo, "content")
        assert got is not None
        body, media_type = got
        assert media_type == INDEX_TYPE and api.digest(app_repo, "content") == index_digest
        entries = json.loads(body)["manifests"]
        assert [(e["platform"]["architecture"], e["digest"]) for e in entries] == [
            ("amd64", children["linux/amd64"]),
            ("arm64", children["linux/arm64"]),
        ]
        for entry in entries:
            manifest_body = api.manifest(app_repo, entry["digest"])
            assert manifest_body is not None
            manifest = json.loads(manifest_body[0])
            config = json.loads(api.blob(app_repo, manifest["config"]["digest"], limit=1 << 20))
            assert config["architecture"] == entry["platform"]["architecture"]
            assert config["config"]["Labels"]["com.example.tier"] == "app"

        ran = docker(
            "run", "--rm", "--platform", "linux/arm64",
            f"{registry.host}/{app_repo}@{children['linux/arm64']}",
            "sh", "-c", "uname -m && cat /hello.txt",
            docker_config=docker_config, timeout=300,
        )  # fmt: skip
        assert ran.stdout.split() == ["aarch64", "hello"]
        print(f"\nmultiarch chain build seconds: {json.dumps(seconds)}")
    finally:
        for step in cleanup:
            step()
        for arch in ("amd64", "arm64"):
            for repo in (base_repo, app_repo):
                docker("rmi", "--force", f"{registry.host}/{repo}:{arch}", check=False)
        registry_cleanup(registry, namespace)
