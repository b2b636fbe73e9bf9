"""Hostile ENV, LABEL, WORKDIR and COPY values through the real engine: the built image's config
and files hold them exactly as the spec wrote them (BuildKit expands nothing, keeps quotes and
backslashes), past the loader's grammar (the spec models are changed with ``model_copy``).
The image is FROM the tiny busybox base: no RUN step, no pull, a few seconds."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagefactory.render.dockerfile import ParentPin, render_dockerfile, write_build_context
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.models import FileCopy

from .helpers.services import docker, unique

REPO = Path(__file__).resolve().parents[2]
VALUES = {
    "PRICE": "price $5 and ${HOME}",
    "SHELLISH": "`id` $(id) ; | & $$ \\$X \\\\ \"dq\" 'sq' #c =e",
    "SPACES": "\ttab  two  spaces ",
    "UNICODE": "ünï \u2028 end\\",
    "EMPTY": "",
}
WORKDIR = "/srv/$HOME/a b"
DEST = "/opt/${PATH}/q'\"\\z"


@pytest.fixture
def hostile_image(tiny_base: str, tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "imagefactory.yaml", root / "imagefactory.yaml")
    shutil.copytree(REPO / "images", root / "images")
    catalog = load_catalog(root)
    image = catalog.images["app/rag-api"]
    (image.folder / "payload.txt").write_text("payload\n")
    copy = FileCopy(src="payload.txt", dest="/opt/payload", mode="0644", owner="0:0")
    spec = image.spec.model_copy(
        update={
            "pip": [],
            "healthcheck": None,
            "entrypoint": None,
            "env": VALUES,
            "labels": {f"org.example.{k.lower()}": v for k, v in VALUES.items()},
            "workdir": WORKDIR,
            "files": [copy.model_copy(update={"dest": DEST})],  # past the loader's grammar
        }
    )
    build = catalog.project.build.model_copy(update={"ca_bundle": None})
    catalog = dataclasses.replace(
        catalog,
        project=catalog.project.model_copy(update={"build": build}),
        images={**catalog.images, image.ref: dataclasses.replace(image, spec=spec)},
    )
    image = catalog.images["app/rag-api"]
    text = render_dockerfile(
        catalog, image, "sha256:" + "0" * 64, ParentPin(tiny_base, "tiny", None)
    )
    folder = write_build_context(catalog, image, text, tmp_path / "context")
    ref = f"imagefactory-test/hostile:{unique('build')}"
    docker("build", "--quiet", "--tag", ref, str(folder), timeout=120)
    yield ref
    docker("rmi", "--force", ref, check=False)


def test_hostile_values_round_trip_through_the_engine(hostile_image: str) -> None:
    config = json.loads(
        docker("image", "inspect", "--format", "{{json .Config}}", hostile_image).stdout
    )
    env = dict(entry.split("=", 1) for entry in config["Env"])
    assert {k: env[k] for k in VALUES} == VALUES
    labels = config["Labels"]
    assert {k: labels[f"org.example.{k.lower()}"] for k in VALUES} == VALUES
    assert config["WorkingDir"] == WORKDIR
    shown = docker(
        "run", "--rm", "--user", "0:0", "--entrypoint", "/bin/cat", hostile_image, DEST
    ).stdout
    assert shown == "payload\n"
