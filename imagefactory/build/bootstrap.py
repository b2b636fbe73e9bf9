"""Root filesystems from Debian packages (mmdebstrap), for images whose parent is ``bootstrap:``.

No public base image is pulled: the rootfs is made from the configured Debian mirror, with
SOURCE_DATE_EPOCH so the same recipe gives the same bytes, and cached by recipe so a base image
rebuilt for another reason does not bootstrap again. The tar becomes the image's first layer
(``FROM scratch`` + ``ADD rootfs.tar /``). Beside it, the SHA-256 of the mirrors' Release files
the bootstrap installed from (:func:`release_hashes`), for the build's provenance: mmdebstrap
empties the apt lists, so they are taken before it does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from imagefactory import tools
from imagefactory.atomic import read_regular
from imagefactory.errors import UserError
from imagefactory.project.recipe import mmdebstrap_argv, recipe_key
from imagefactory.spec.models import Bootstrap, BuildSettings

#: The most bytes of a bootstrap's Release hashes (a few lines).
RELEASES_LIMIT = 64 * 1024
_RELEASE_LINE = re.compile(r"(?P<sha256>[0-9a-f]{64})  (?P<name>[A-Za-z0-9._~%+-]+_(?:In)?Release)")


def rootfs_path(recipe: Bootstrap, build: BuildSettings, cache_dir: Path) -> Path:
    """Where the rootfs tar of ``recipe`` is cached."""
    return cache_dir / f"rootfs-{recipe_key(recipe, build)}.tar"


def releases_path(rootfs: Path) -> Path:
    """The SHA-256 of the Release/InRelease files the bootstrap of ``rootfs`` installed from
    (``sha256sum``'s lines), kept beside the cached tar; absent for a tar cached before."""
    return rootfs.with_suffix(".releases")


def release_hashes(rootfs: Path) -> list[tuple[str, str]]:
    """(apt list file name, SHA-256) of each Release/InRelease file the bootstrap of the cached
    ``rootfs`` installed from; none when it was cached without them."""
    path = releases_path(rootfs)
    if not path.exists():
        return []
    found = []
    for line in read_regular(
        path, what="bootstrap Release hashes", limit=RELEASES_LIMIT
    ).splitlines():
        match = _RELEASE_LINE.fullmatch(line.decode("utf-8", "replace"))
        if match is None:
            raise UserError(
                f"{path}: {line[:80]!r} is not a Release file's hash",
                hint=f"remove {path} and {rootfs} to bootstrap again",
            )
        found.append((match["name"], match["sha256"]))
    return found


def rootfs_tar(
    recipe: Bootstrap,
    build: BuildSettings,
    cache_dir: Path,
    *,
    on_line: Callable[[str], None] | None = None,
) -> Path:
    """The rootfs tar for ``recipe``: from the cache, or made now (atomically) and cached, with
    its Release files' hashes (:func:`releases_path`)."""
    target = rootfs_path(recipe, build, cache_dir)
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".tar.partial")
    releases = target.with_suffix(".releases.partial")
    partial.unlink(missing_ok=True)
    tools.require("mmdebstrap", "install Debian's mmdebstrap (scripts/setup.sh does)")
    try:
        tools.run(
            mmdebstrap_argv(recipe, build, partial, releases),
            env={"SOURCE_DATE_EPOCH": str(build.source_date_epoch)},
            timeout=1800,
            hint="check that the Debian mirror in imagefactory.yaml (build.mirrors) is reachable",
            on_line=on_line,
        )
        releases.rename(releases_path(target))
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)
        releases.unlink(missing_ok=True)
    return target
