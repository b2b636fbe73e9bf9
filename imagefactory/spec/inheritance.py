"""What an image takes from its catalog parent: the two keys the spec inherits, and who a chain
runs as.

Docker already hands a child its parent's image config: ``ENV`` (``PATH`` among it),
``WORKDIR``, ``ENTRYPOINT``, ``CMD``, ``EXPOSE``, ``LABEL``, ``HEALTHCHECK`` and ``USER`` carry
over unless the child sets its own, and the parent's files (its venv, its accounts) are simply
there. Two keys also decide how imagefactory *renders* the child, so the loader resolves them
into every :class:`ImageSpec` (a spec holds its effective values; its content hash covers them):

* ``venv``: when no layer of the image (defaults, ``image.yaml``, a variant) sets it, the
  catalog parent's effective venv; so the child's ``pip`` installs into the venv the parent
  made and put on its ``PATH``, and ``tests.pip`` looks there. The first image of a chain (on a
  bootstrap rootfs or an external image) without one uses ``/opt/venv``.
* ``user``: when the image's merged ``user`` is unset (or ``null``), the catalog parent's
  effective user.

Nobody runs as root without saying so: a bootstrapped image has no parent to take a user from,
so it must set ``user`` (``user: root`` runs as root on purpose; :func:`user_issues`). Every
image of a chain rooted there then has a user. A chain on an external image that sets no
``user`` keeps ``None``: its build reads the external image's config, whose non-root user the
image then runs as, and refuses root there unless ``user: root`` is written (``build/users.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from imagefactory.errors import SpecIssue
from imagefactory.spec.catalog import CatalogImage
from imagefactory.spec.graph import build_order
from imagefactory.spec.parents import BootstrapParent
from imagefactory.spec.yamldoc import YamlDocument


def inherit(images: Mapping[str, CatalogImage]) -> dict[str, CatalogImage]:
    """Every image with ``venv`` and ``user`` resolved from its catalog parent (parents first).

    ``images`` has passed the loader's checks: every catalog parent is in it, and no cycle."""
    resolved: dict[str, CatalogImage] = {}
    for ref in build_order({ref: image.parent_ref for ref, image in images.items()}):
        image = images[ref]
        if image.parent_ref is not None:
            parent = resolved[image.parent_ref].spec
            spec = image.spec
            updates: dict[str, str | None] = {}
            if "venv" not in spec.model_fields_set:  # no layer set it (merge.py: set keys only)
                updates["venv"] = parent.venv
            if spec.user is None:
                updates["user"] = parent.user
            image = dataclasses.replace(image, spec=spec.model_copy(update=updates))
        resolved[ref] = image
    return resolved


def user_issues(
    images: Mapping[str, CatalogImage], docs: Mapping[Path, YamlDocument]
) -> list[SpecIssue]:
    """A bootstrapped image that names no user would run as root without anyone writing so."""
    return [
        SpecIssue(
            image.file,
            "user",
            f"'{image.spec.name}' is bootstrapped and names no user: it would run as root, "
            "and so would every image built on it that sets none",
            docs[image.file].line_of(("bootstrap",)),
            "write 'user: root' to run as root on purpose, or create an account and run as it "
            "(create_users: [{name: app, uid: 10001}] and user: app); images built on it "
            "inherit it",
        )
        for image in images.values()
        if isinstance(image.parent, BootstrapParent) and image.spec.user is None
    ]
