"""The platforms an image may be built for: ``linux/<arch>[/<variant>]`` from an allowlist, and
what each one is called by the tools that make it (OCI, Debian, QEMU).

A spec that names no ``platforms`` builds for the host's platform only (today's behaviour: its
content hash, its state and its rendered files are those of a single-platform image).
"""

from __future__ import annotations

import platform as host
from dataclasses import dataclass

from imagefactory.spec.grammar import refuse, shown


@dataclass(frozen=True)
class PlatformFacts:
    architecture: str  # OCI's (an image config's ``architecture``, an index entry's platform)
    variant: str | None  # OCI's ``variant`` (arm/v7)
    debian: str  # dpkg's architecture name (mmdebstrap --architectures)
    qemu: str  # the binfmt_misc entry that runs it under emulation: qemu-<qemu>
    machine: str  # what ``uname -m`` prints on it

    def oci(self) -> dict[str, str]:
        """An OCI index entry's ``platform``."""
        return {
            "architecture": self.architecture,
            "os": "linux",
            **({"variant": self.variant} if self.variant else {}),
        }


PLATFORMS = {
    "linux/amd64": PlatformFacts("amd64", None, "amd64", "x86_64", "x86_64"),
    "linux/arm64": PlatformFacts("arm64", None, "arm64", "aarch64", "aarch64"),
    "linux/arm/v7": PlatformFacts("arm", "v7", "armhf", "arm", "armv7l"),
    "linux/ppc64le": PlatformFacts("ppc64le", None, "ppc64el", "ppc64le", "ppc64le"),
    "linux/s390x": PlatformFacts("s390x", None, "s390x", "s390x", "s390x"),
}


def platform_name(value: str) -> str:
    """The grammar of one ``platforms`` entry: a name from :data:`PLATFORMS`."""
    if value not in PLATFORMS:
        raise refuse(
            f"{shown(value)} is not a platform imagefactory builds",
            f"one of {', '.join(PLATFORMS)} (linux/<arch>[/<variant>])",
        )
    return value


def host_platform() -> str:
    """The platform of this machine (what an image without ``platforms`` is built for)."""
    machine = host.machine()
    for name, facts in PLATFORMS.items():
        if facts.machine == machine:
            return name
    return f"linux/{machine}"
