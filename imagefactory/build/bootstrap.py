"""Root filesystems from Debian packages (mmdebstrap), for images whose parent is ``bootstrap:``.

No public base image is pulled: the rootfs is made from the configured Debian mirror, with
SOURCE_DATE_EPOCH so the same recipe gives the same bytes, and cached by recipe so a base image
rebuilt for another reason does not bootstrap again. The tar becomes the image's first layer
(``FROM scratch`` + ``ADD rootfs.tar /``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from imagefactory import tools
from imagefactory.project.recipe import mmdebstrap_argv, recipe_key
from imagefactory.spec.models import Bootstrap, BuildSettings


def rootfs_tar(
    recipe: Bootstrap,
    build: BuildSettings,
    cache_dir: Path,
    *,
    on_line: Callable[[str], None] | None = None,
) -> Path:
    """The rootfs tar for ``recipe``: from the cache, or made now (atomically) and cached."""
    target = cache_dir / f"rootfs-{recipe_key(recipe, build)}.tar"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".tar.partial")
    partial.unlink(missing_ok=True)
    tools.require("mmdebstrap", "install Debian's mmdebstrap (scripts/setup.sh does)")
    try:
        tools.run(
            mmdebstrap_argv(recipe, build, partial),
            env={"SOURCE_DATE_EPOCH": str(build.source_date_epoch)},
            timeout=1800,
            hint="check that the Debian mirror in imagefactory.yaml (build.mirrors) is reachable",
            on_line=on_line,
        )
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)
    return target
