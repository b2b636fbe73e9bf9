"""Who an image on an external parent runs as when its catalog chain writes no ``user``: the
user that parent's image config names, read at build time; never root by default.

The loader gives every image of a chain its parent's ``user`` (``spec/inheritance.py``), and a
bootstrapped image must write one; only a chain on an external image can have none. Its build
reads the external image's config: a non-root ``User`` is the one the chain's images end with
(``ParentPin.user``: the Dockerfile's last ``USER``, Packer's last change), as Docker would
have it; no user, root or uid 0 is refused: ``user: root`` runs an image as root on purpose.
"""

from __future__ import annotations

import json
import re

from imagefactory.errors import UserError
from imagefactory.spec import grammar
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.parents import ExternalParent

ROOT_NAMES = frozenset({"", "root", "0"})
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
    root."""
    return user.partition(":")[0].strip() in ROOT_NAMES


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
