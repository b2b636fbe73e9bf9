"""Two bootstraps of the base from the same recipe and the same mirror state give the same
bytes; two builds of the base from them give the same layer contents.

The session's base/debian12 was bootstrapped into the example's rootfs cache; a second
bootstrap goes into a cache of its own. Same Release files (the mirror state) → byte-identical
rootfs tars. (When the mirror published a new state in between, a third bootstrap from that
state is the comparison.) The base's build context is then built twice with ``--no-cache``,
once from each tar: the rootfs layer has the same digest, and every other layer the same
files (names, modes, owners, contents); this engine's BuildKit stamps the files a RUN or COPY
step writes with the time of the build, and the config with the time of each step, so those
layers' digests and the image's digest differ (docs/images.md, Locks: what is reproducible).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from imagefactory.build.bootstrap import release_hashes, rootfs_tar
from imagefactory.project.hashing import content_inputs
from imagefactory.render.catalog import Pins
from imagefactory.render.dockerfile import render_dockerfile, write_build_context
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.parents import BootstrapParent

from .helpers.example import ExampleBuild
from .helpers.services import docker

BASE = "base/debian12"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _members(layer: bytes) -> list[tuple[str, int, int, int, str, str]]:
    """Each entry of a layer tar without its time: name, mode, uid, gid, link, content hash."""
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        return [
            (
                m.name,
                m.mode,
                m.uid,
                m.gid,
                m.linkname,
                hashlib.sha256(tar.extractfile(m).read()).hexdigest()  # type: ignore[union-attr]
                if m.isfile()
                else "",
            )
            for m in tar.getmembers()
        ]


def _saved(tag: str, folder: Path) -> tuple[dict[str, Any], list[bytes]]:
    """The config and the layer tars, lowest first, of the local image ``tag``."""
    archive = folder / "image.tar"
    docker("image", "save", "--output", str(archive), tag, timeout=300)
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = json.load(tar.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        layers = [tar.extractfile(name).read() for name in manifest["Layers"]]  # type: ignore[union-attr]
    return config, layers


def test_the_base_bootstraps_byte_identically_and_builds_the_same_files(
    example_build: ExampleBuild, tmp_path: Path
) -> None:
    catalog = load_catalog(example_build.root)
    image = catalog.images[BASE]
    assert isinstance(image.parent, BootstrapParent)
    recipe = image.parent.bootstrap
    build = catalog.project.build
    first = rootfs_tar(recipe, build, example_build.root / ".imagefactory" / "cache")
    second = rootfs_tar(recipe, build, tmp_path / "cache-2")
    if release_hashes(second) != release_hashes(first):  # the mirror moved on in between
        first = rootfs_tar(recipe, build, tmp_path / "cache-3")
        assert release_hashes(first) == release_hashes(second), "the mirror moved twice"
    assert first != second and first.name == second.name  # two caches, one recipe key
    assert _sha256(first) == _sha256(second)

    inputs = content_inputs(catalog)
    text = render_dockerfile(
        catalog, image, inputs[BASE].content_hash, Pins(catalog.project, inputs, {}).parent(image)
    )
    built: list[tuple[dict[str, Any], list[bytes]]] = []
    for index, rootfs in enumerate([first, second]):
        context = write_build_context(
            catalog, image, text, tmp_path / f"context-{index}", rootfs=rootfs
        )
        tag = f"imagefactory-it-reproducible:{example_build.session}-{index}"
        docker(
            "build",
            "--quiet",
            "--no-cache",
            "--network=host",
            "--tag",
            tag,
            str(context),
            timeout=900,
        )
        try:
            built.append(_saved(tag, tmp_path / f"context-{index}"))
        finally:
            docker("rmi", tag, check=False)
    (config_a, layers_a), (config_b, layers_b) = built
    assert len(layers_a) == len(layers_b) > 1
    assert layers_a[0] == layers_b[0]  # ADD rootfs.tar: the same layer, byte for byte
    assert config_a["rootfs"]["diff_ids"][0] == config_b["rootfs"]["diff_ids"][0]
    assert [_members(layer) for layer in layers_a] == [_members(layer) for layer in layers_b]

    def timeless(config: dict[str, Any]) -> dict[str, Any]:
        history = [{k: v for k, v in h.items() if k != "created"} for h in config["history"]]
        rest = {k: v for k, v in config.items() if k not in ("created", "history", "rootfs")}
        return {**rest, "history": history}

    assert timeless(config_a) == timeless(config_b)  # only times (and so diff ids) differ
