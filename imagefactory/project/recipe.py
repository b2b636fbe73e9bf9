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
#: runtime mounts /dev anyway. 3: merged-/usr by mmdebstrap's own hook, not by the usrmerge
#: package (which pulls perl: ~47 MB); info pages and gconv modules excluded too; apt's and
#: debconf's caches, backups and logs removed. 4: the leap-second zones, shell completions,
#: lintian overrides, doc-base, menu and pixmap files, libstdc++'s gdb printers, apt's ftp, rsh,
#: ssh and cdrom methods and OpenSSL's engines excluded; the debconf templates control files
#: removed (see SLIM_DPKG_OPTIONS and CLEANUP_HOOK).
RECIPE_VERSION = 4
ROLLING_SUITES = frozenset({"sid", "unstable", "experimental"})
#: mmdebstrap's hook that sets up merged-/usr itself and installs a dummy ``usr-is-merged``, so
#: ``usrmerge`` (and perl with it) is never installed. Shipped by Debian's mmdebstrap package.
MERGED_USR_HOOKS = "/usr/share/mmdebstrap/hooks/merged-usr"
#: What dpkg never unpacks (written to /etc/dpkg/dpkg.cfg.d/ in the rootfs, so the packages
#: child images install are slimmed the same way): documentation but the copyright files (the
#: SBOM reads them), man and info pages, translations, and the gconv modules of legacy
#: character sets (UTF-8 and the ISO 8859-1 / UTF-16 / UTF-32 conversions are built into glibc;
#: the gconv-modules configuration stays, so iconv names the missing ones clearly). Also what
#: only a desktop, an interactive shell, a packager or a debugger reads: tzdata's ``right/``
#: zones (leap seconds counted, which a container's POSIX clock never is; the usual zones and
#: ``posix/`` stay), bash and zsh completions, lintian overrides, doc-base, menu and pixmap
#: entries, libstdc++'s gdb pretty-printers (``/usr/share/gcc``); apt's methods for sources an
#: image never has (ftp, rsh/ssh, cdrom: such a source fails with "The method driver
#: /usr/lib/apt/methods/ftp could not be found"); and OpenSSL's deprecated ENGINE modules
#: (afalg, padlock, loader_attic; the providers, the legacy one included, stay).
SLIM_DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/lib/*/gconv/*",
    "path-include=/usr/lib/*/gconv/gconv-modules*",
    "path-exclude=/usr/share/zoneinfo/right/*",
    "path-exclude=/usr/share/bash-completion/*",
    "path-exclude=/usr/share/zsh/*",
    "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/doc-base/*",
    "path-exclude=/usr/share/menu/*",
    "path-exclude=/usr/share/pixmaps/*",
    "path-exclude=/usr/share/gcc/*",
    "path-exclude=/usr/lib/apt/methods/ftp",
    "path-exclude=/usr/lib/apt/methods/rsh",
    "path-exclude=/usr/lib/apt/methods/ssh",
    "path-exclude=/usr/lib/apt/methods/cdrom",
    "path-exclude=/usr/lib/*/engines-3/*",
)
#: Run last in the rootfs: what a finished image never needs (apt's package cache and its
#: pkgcache, the backups dpkg and debconf keep of their databases, the bootstrap's logs), and
#: the bootstrapped packages' ``*.templates`` control files: debconf loaded them into its
#: templates.dat, which stays, and dpkg-reconfigure and every question's description work from
#: there (a package a child installs or upgrades brings its own again). Kept on purpose:
#: templates.dat (debconf fails on a question whose template it lacks), the ``*.symbols``
#: files (dpkg-shlibdeps has no other dependency information for most libraries, so building
#: a package in a child would fail) and the ``*.md5sums`` (``dpkg --verify``).
CLEANUP_HOOK = (
    'rm -rf -- "$1"/var/cache/apt/* "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old'
    ' "$1"/var/lib/dpkg/info/*.templates'
    ' && find "$1/var/log" -type f -delete'
)


def recipe_key(
    recipe: Bootstrap, build: BuildSettings, refresh: str = "", architecture: str = ""
) -> str:
    """The cache key of a rootfs; ``refresh``: the image's refresh input (a refreshed image
    is bootstrapped again, from the mirror as it is now); ``architecture``: the Debian
    architecture it is made for ("": the host's, the key as it was before platforms)."""
    data = {
        **({"arch": architecture} if architecture else {}),
        "v": RECIPE_VERSION,
        "recipe": recipe.model_dump(mode="json"),
        "mirrors": build.mirrors.model_dump(mode="json"),
        "epoch": build.source_date_epoch,
        **({"refresh": refresh} if refresh else {}),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def mmdebstrap_argv(
    recipe: Bootstrap, build: BuildSettings, output: Path, releases: Path, architecture: str = ""
) -> list[str]:
    """mmdebstrap's argv for ``recipe`` into the tar ``output``; before it empties the apt
    lists, a hook writes the SHA-256 of each mirror's Release/InRelease file apt verified into
    ``releases`` (``sha256sum``'s lines: the build's provenance names them). The rootfs is the
    same with or without the hook. ``architecture``: the Debian architecture to make it for
    (``--architectures``; a foreign one runs under QEMU's binfmt emulation); "": the host's."""
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
        *([f"--architectures={architecture}"] if architecture else []),
        *([f"--include={','.join(recipe.packages)}"] if recipe.packages else []),
        f"--hook-dir={MERGED_USR_HOOKS}",
        *(f"--dpkgopt={option}" for option in SLIM_DPKG_OPTIONS),
        '--customize-hook=cd "$1/var/lib/apt/lists" && sha256sum -- *Release > '
        + shlex.quote(str(releases)),
        f"--customize-hook={CLEANUP_HOOK}",
        recipe.suite,
        str(output),
        *sources,
    ]
