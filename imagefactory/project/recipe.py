"""How a bootstrapped root filesystem is made: the recipe's key and its mmdebstrap command line.

Pure facts of the recipe (no process runs here): the key names the cached rootfs tar and the
recipe version enters the content hash of every bootstrapped image; :mod:`imagefactory.build.bootstrap`
runs the command.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

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


def mmdebstrap_argv(
    recipe: Bootstrap, build: BuildSettings, output: Path, releases: Path
) -> list[str]:
    """mmdebstrap's argv for ``recipe`` into the tar ``output``; before it empties the apt
    lists, a hook writes the SHA-256 of each mirror's Release/InRelease file apt verified into
    ``releases`` (``sha256sum``'s lines: the build's provenance names them). The rootfs is the
    same with or without the hook."""
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
        '--customize-hook=cd "$1/var/lib/apt/lists" && sha256sum -- *Release > '
        + shlex.quote(str(releases)),
        recipe.suite,
        str(output),
        *sources,
    ]
