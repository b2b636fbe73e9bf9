"""The shell-less final stage of an image that sets ``distroless:`` (docs/images.md).

The Dockerfile builds the image as any other, then runs the closure script (``shell-less.sh``,
shipped beside the standard Dockerfile template and bound into that one RUN from the build
context) to lay out what the application needs at run time, and a ``FROM scratch`` stage copies
only that. A scratch stage inherits no image config, so the config block is rendered again
there with the values the whole lineage gives the image (what Docker would have handed it
down): the environment and labels merged root first, the ports of every ancestor, and the
nearest ``workdir``, ``entrypoint``, ``cmd`` and ``healthcheck``.
"""

from __future__ import annotations

from typing import Any

from imagefactory.project.paths import templates_dir
from imagefactory.spec.catalog import Catalog, CatalogImage

#: The closure script: its name in the standard templates' dockerfile/ and in the build context.
CLOSURE_SCRIPT = "shell-less.sh"


def closure_script() -> str:
    return (templates_dir() / "dockerfile" / CLOSURE_SCRIPT).read_text(encoding="utf-8")


def closure_arguments(catalog: Catalog, image: CatalogImage) -> list[str]:
    """The closure script's arguments: the venv, the trees the chain put in place (its files,
    its working folder, its users' homes), the accounts it created, the packages kept."""
    assert image.spec.distroless is not None
    lineage = list(reversed(catalog.lineage(image.ref)))  # the root first
    accounts = [account for i in lineage for account in i.spec.create_users]
    workdir = catalog.lineage_value(image.ref, "workdir")
    paths = [
        *(copy.dest for i in lineage for copy in i.spec.files),
        *([workdir] if workdir else []),
        *(account.home for account in accounts if account.home),
    ]
    return [
        "--venv",
        image.spec.venv,
        *(word for path in dict.fromkeys(paths) for word in ("--path", path)),
        *(word for name in dict.fromkeys(a.name for a in accounts) for word in ("--account", name)),
        *(word for name in image.spec.distroless.keep_packages for word in ("--package", name)),
    ]


def lineage_config(catalog: Catalog, image: CatalogImage) -> dict[str, Any]:
    """The image config the lineage gives ``image``, by the names of the Dockerfile context;
    ``labels`` are the ancestors' own (the image's come on top of them)."""
    lineage = list(reversed(catalog.lineage(image.ref)))
    env: dict[str, str] = {}
    labels: dict[str, str] = {}
    for ancestor in lineage:
        env.update(ancestor.spec.env)
        labels.update(ancestor.spec.labels)
    healthcheck = catalog.lineage_value(image.ref, "healthcheck")
    return {
        "env": env,
        "labels": labels,
        "ports": list(dict.fromkeys(port for i in lineage for port in i.spec.ports)),
        "workdir": catalog.lineage_value(image.ref, "workdir"),
        "healthcheck": healthcheck.model_dump() if healthcheck else None,
        "entrypoint": catalog.lineage_value(image.ref, "entrypoint"),
        "cmd": catalog.lineage_value(image.ref, "cmd"),
    }
