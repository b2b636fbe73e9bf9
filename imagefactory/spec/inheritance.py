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
* ``platforms``: when no layer sets it, the catalog parent's (a chain's first image without
  one builds for the host's platform only). A child builds ``FROM`` its parent's image of each
  of its platforms, so they must be among its parent's (:func:`platform_issues`).

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
from imagefactory.spec.platforms import host_platform
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
            updates: dict[str, str | list[str] | None] = {}
            if "venv" not in spec.model_fields_set:  # no layer set it (merge.py: set keys only)
                updates["venv"] = parent.venv
            if spec.user is None:
                updates["user"] = parent.user
            if spec.platforms is None:
                updates["platforms"] = parent.platforms
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


def platform_issues(
    images: Mapping[str, CatalogImage], docs: Mapping[Path, YamlDocument]
) -> list[SpecIssue]:
    """A child that names a platform its catalog parent is not built for (``images`` resolved
    by :func:`inherit`; a parent without ``platforms`` is built for the host's only)."""
    issues = []
    for image in images.values():
        if image.parent_ref is None or image.spec.platforms is None:
            continue
        parent = images[image.parent_ref].spec
        allowed = parent.platforms or [host_platform()]
        extra = [name for name in image.spec.platforms if name not in allowed]
        if extra:
            issues.append(
                SpecIssue(
                    image.file,
                    "platforms",
                    f"'{image.ref}' is built for {', '.join(extra)}, which its parent "
                    f"'{image.parent_ref}' is not (it is built for {', '.join(allowed)})",
                    docs[image.file].line_of(("platforms",)),
                    f"a child's platforms are a subset of its parent's: drop {', '.join(extra)} "
                    f"here, or add it to 'platforms' of '{image.parent_ref}'",
                )
            )
    return issues
