"""Root filesystems from Debian packages (mmdebstrap), for images whose parent is ``bootstrap:``.

No public base image is pulled: the rootfs is made from the configured Debian mirror, with
SOURCE_DATE_EPOCH so the same recipe gives the same bytes, and cached by recipe so a base image
rebuilt for another reason does not bootstrap again. The tar becomes the image's first layer
(``FROM scratch`` + ``ADD rootfs.tar /``). Beside it, the SHA-256 of the mirrors' Release files
the bootstrap installed from (:func:`release_hashes`), for the build's provenance: mmdebstrap
empties the apt lists, so they are taken before it does. The image built on the tar carries them
too, in a label (:func:`releases_label`): a later build that reuses that local image (another
work folder, another catalog clone) recovers them from the image itself, not from a cached tar
that may since have been bootstrapped again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from imagefactory import tools
from imagefactory.atomic import read_regular
from imagefactory.build.emulation import check_emulation
from imagefactory.errors import UserError
from imagefactory.project.recipe import MERGED_USR_HOOKS, mmdebstrap_argv, recipe_key
from imagefactory.spec.models import Bootstrap, BuildSettings
from imagefactory.spec.platforms import PLATFORMS

#: The most bytes of a bootstrap's Release hashes (a few lines).
RELEASES_LIMIT = 64 * 1024
#: The label of a bootstrapped image naming the Release files its rootfs installed from.
RELEASES_LABEL = "org.imagefactory.bootstrap.releases"
_SHA256 = r"(?P<sha256>[0-9a-f]{64})"
_NAME = r"(?P<name>[A-Za-z0-9._~%+-]+_(?:In)?Release)"
_RELEASE_LINE = re.compile(rf"{_SHA256}  {_NAME}")
_RELEASE_ENTRY = re.compile(rf"{_NAME}={_SHA256}")


def rootfs_path(
    recipe: Bootstrap,
    build: BuildSettings,
    cache_dir: Path,
    refresh: str = "",
    architecture: str = "",
) -> Path:
    """Where the rootfs tar of ``recipe`` is cached (``refresh``, ``architecture``: see
    recipe_key)."""
    return cache_dir / f"rootfs-{recipe_key(recipe, build, refresh, architecture)}.tar"


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


def releases_label(hashes: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The label (``NAME=SHA256``, comma-separated) a bootstrapped image carries for the Release
    files' ``hashes``; none without any."""
    if not hashes:
        return {}
    return {RELEASES_LABEL: ",".join(f"{name}={sha256}" for name, sha256 in hashes)}


def labelled_releases(labels: Mapping[str, str]) -> list[tuple[str, str]]:
    """(apt list file name, SHA-256) of each Release file an image's ``labels`` name
    (:func:`releases_label`); none when it has no such label (built before it existed)."""
    value = labels.get(RELEASES_LABEL, "")
    found = []
    for entry in value.split(",") if value else []:
        match = _RELEASE_ENTRY.fullmatch(entry)
        if match is None:
            raise UserError(
                f"the image's label {RELEASES_LABEL} holds {entry[:80]!r}, not a Release file's hash",
                hint="build it again (imagefactory build --no-cache)",
            )
        found.append((match["name"], match["sha256"]))
    return found


def rootfs_tar(
    recipe: Bootstrap,
    build: BuildSettings,
    cache_dir: Path,
    *,
    refresh: str = "",
    platform: str | None = None,
    on_line: Callable[[str], None] | None = None,
) -> Path:
    """The rootfs tar for ``recipe``: from the cache, or made now (atomically) and cached, with
    its Release files' hashes (:func:`releases_path`). ``platform``: the platform to make it
    for (None: the host's); a foreign one needs QEMU's emulation (:func:`check_emulation`)."""
    architecture = PLATFORMS[platform].debian if platform is not None else ""
    target = rootfs_path(recipe, build, cache_dir, refresh, architecture)
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".tar.partial")
    releases = target.with_suffix(".releases.partial")
    partial.unlink(missing_ok=True)
    tools.require("mmdebstrap", "install Debian's mmdebstrap (scripts/setup.sh does)")
    if not Path(MERGED_USR_HOOKS, "setup00.sh").is_file():
        raise UserError(
            f"mmdebstrap's merged-/usr hook is missing ({MERGED_USR_HOOKS})",
            hint="install Debian's mmdebstrap 1.3 or later (scripts/setup.sh does)",
        )
    if platform is not None:
        check_emulation([platform], bootstrap=True)
    try:
        tools.run(
            mmdebstrap_argv(recipe, build, partial, releases, architecture),
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
