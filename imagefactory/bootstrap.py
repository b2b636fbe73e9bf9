"""Root filesystems from Debian packages (mmdebstrap), for images whose parent is ``bootstrap:``.

No public base image is pulled: the rootfs is made from the configured Debian mirror, with
SOURCE_DATE_EPOCH so the same recipe gives the same bytes, and cached by recipe so a base image
rebuilt for another reason does not bootstrap again. The tar becomes the image's first layer
(``FROM scratch`` + ``ADD rootfs.tar /``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from imagefactory import tools
from imagefactory.spec.models import Bootstrap, BuildSettings

#: Bump when the argv below changes in a way that changes the rootfs (it is part of the
#: bootstrapped image's content hash). 2: no device nodes in the tar (``--skip=output/dev``):
#: an engine in a user namespace (rootless, dind-rootless) cannot create them, and the container
#: runtime mounts /dev anyway.
RECIPE_VERSION = 2
ROLLING_SUITES = frozenset({"sid", "unstable", "experimental"})
SLIM_DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
)


def recipe_key(recipe: Bootstrap, build: BuildSettings) -> str:
    data = {
        "v": RECIPE_VERSION,
        "recipe": recipe.model_dump(mode="json"),
        "mirrors": build.mirrors.model_dump(mode="json"),
        "epoch": build.source_date_epoch,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def mmdebstrap_argv(recipe: Bootstrap, build: BuildSettings, output: Path) -> list[str]:
    components = " ".join(recipe.components)
    sources = [f"deb {build.mirrors.debian} {recipe.suite} {components}"]
    if recipe.suite not in ROLLING_SUITES:
        sources += [
            f"deb {build.mirrors.debian} {recipe.suite}-updates {components}",
            f"deb {build.mirrors.debian_security} {recipe.suite}-security {components}",
        ]
    return [
        "mmdebstrap",
        "--quiet",
        "--mode=auto",
        "--format=tar",
        "--skip=output/dev",
        f"--variant={recipe.variant}",
        *([f"--include={','.join(recipe.packages)}"] if recipe.packages else []),
        *(f"--dpkgopt={option}" for option in SLIM_DPKG_OPTIONS),
        recipe.suite,
        str(output),
        *sources,
    ]


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
