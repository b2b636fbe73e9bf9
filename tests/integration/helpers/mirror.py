"""What the real Debian mirror holds, asked with apt in a container of the session's base,
independently of imagefactory."""

from __future__ import annotations

import pytest

from .services import docker

CANDIDATES = ("libexpat1", "libsqlite3-0", "libxml2", "libcurl4")  # none is in the base


def older_version(base: str) -> tuple[str, str, str, bool]:
    """(package, its bookworm version, its newest version, whether the newest is a security
    update) of the first candidate the mirror has a newer version of (``apt-get update`` +
    ``apt-cache madison``: the first whose bookworm point-release version is not its newest)."""
    script = "apt-get update -qq >/dev/null && apt-cache madison " + " ".join(CANDIDATES)
    proc = docker(
        "run", "--rm", "--network", "host", "--user", "0:0", "--entrypoint", "sh", base,
        "-c", script, timeout=300,
    )  # fmt: skip
    versions: dict[str, list[tuple[str, str]]] = {}
    for line in proc.stdout.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) == 3 and fields[2].endswith("Packages"):
            versions.setdefault(fields[0], []).append((fields[1], fields[2]))
    for name in CANDIDATES:
        found = versions.get(name, [])  # newest first, as madison lists them
        release = [v for v, where in found if " bookworm/main " in f" {where} "]
        if found and release and release[0] != found[0][0]:
            return name, release[0], found[0][0], "security" in found[0][1]
    pytest.fail(f"no candidate has a newer version than bookworm's: {versions}")
