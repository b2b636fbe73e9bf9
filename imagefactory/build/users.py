"""Who an image on an external parent runs as when its catalog chain writes no ``user``: the
user that parent's image config names, read at build time; never root by default.

The loader gives every image of a chain its parent's ``user`` (``spec/inheritance.py``), and a
bootstrapped image must write one; only a chain on an external image can have none. Its build
reads the external image's config: a non-root ``User`` is the one the chain's images end with
(``with_user`` writes it into the image's spec: the Dockerfile's last ``USER``, Packer's last
change), as Docker would have it; no user, root or uid 0 is refused: ``user: root`` runs an
image as root on purpose.
"""

from __future__ import annotations

import dataclasses
import json
import re

from imagefactory.build.docker import Engine
from imagefactory.errors import ToolError, UserError
from imagefactory.spec import grammar
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.parents import ExternalParent

ROOT_NAMES = frozenset({"", "root"})
ACCOUNT = re.compile(grammar.ACCOUNT)


def unwritten_user_parent(catalog: Catalog, image: CatalogImage) -> ExternalParent | None:
    """The external image ``image``'s chain starts at, when no image of the chain writes
    ``user``; None otherwise."""
    chain = catalog.lineage(image.ref)
    if any(link.spec.user is not None for link in chain):
        return None
    top = chain[-1].parent
    return top if isinstance(top, ExternalParent) else None


def runs_as_root(user: str) -> bool:
    """Whether an image config's ``User`` (``name``, ``uid``, ``user:group``; empty: root) is
    root: its user part is empty, ``root``, or uid 0 in any spelling (``0``, ``00``, ``000``)."""
    name = user.partition(":")[0].strip()
    return name in ROOT_NAMES or (name.isdigit() and int(name) == 0)


def parent_user(
    catalog: Catalog, image: CatalogImage, parent: ExternalParent, configured: str | None
) -> str:
    """The user ``image`` runs as: ``configured``, what the config of ``parent`` (the external
    image its chain starts at) names; a UserError when that is root, or None (the config could
    not be read)."""
    if configured is not None and not runs_as_root(configured) and ACCOUNT.fullmatch(configured):
        return configured
    where = image.file.relative_to(catalog.root).as_posix()
    on = f"{parent.reference}@{parent.digest}"
    chain = "" if image.parent == parent else ", nor does any catalog image it is built on"
    shown = json.dumps(configured)  # from an image config: quoted, control characters escaped
    if configured is None:
        found = f"the user of {on} could not be read from its image config"
    elif not runs_as_root(configured):
        found = f"{on} runs as {shown}, which is not USER or USER:GROUP"
    elif configured:
        found = f"{on} runs as {shown}, so it would run as root"
    else:
        found = f"{on} names no user, so it would run as root"
    raise UserError(
        f"{image.ref} writes no 'user'{chain}, and {found}",
        hint=f"write 'user: root' in {where} to run it as root on purpose, or name the user to "
        "run as (one of create_users, or one the parent image has)",
    )


def external_user(engine: Engine, catalog: Catalog, image: CatalogImage) -> str | None:
    """The user ``image`` runs as because its chain writes none: the one the config of the
    external image the chain starts at names (read through ``engine``, which pulls it when it
    must; :func:`parent_user` refuses root). None when the chain writes a user or starts
    elsewhere."""
    parent = unwritten_user_parent(catalog, image)
    if parent is None:
        return None
    try:
        config, _ = engine.image_config(
            f"{parent.reference}@{parent.digest}", hint="it is the image's external parent"
        )
    except ToolError:
        configured = None  # not pullable: its build would fail on it too; this says more
    else:
        configured = str(config.get("User") or "")
    return parent_user(catalog, image, parent, configured)


def with_user(
    catalog: Catalog, image: CatalogImage, user: str | None
) -> tuple[Catalog, CatalogImage]:
    """``catalog`` and ``image`` with ``user`` (:func:`external_user`'s) written into the image's
    spec, so that its render ends as that user; as they are for None."""
    if user is None:
        return catalog, image
    written = dataclasses.replace(image, spec=image.spec.model_copy(update={"user": user}))
    images = {**catalog.images, image.ref: written}
    return dataclasses.replace(catalog, images=images), written
