"""Before a foreign platform is built: is QEMU's binfmt emulation there to run its programs?

A build for another architecture runs that architecture's binaries (a Dockerfile's ``RUN``,
mmdebstrap's maintainer scripts) through the kernel's binfmt_misc, which hands them to Debian's
qemu-user-static. Without it a build fails deep inside with "exec format error"; this says up
front what is missing and how to enable it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from imagefactory import tools
from imagefactory.errors import UserError
from imagefactory.spec.platforms import PLATFORMS, host_platform

BINFMT = Path("/proc/sys/fs/binfmt_misc")
SETUP_HINT = (
    "install Debian's qemu-user-static, binfmt-support and arch-test (scripts/setup.sh does), "
    "mount binfmt_misc (mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc) and "
    "enable the emulator (update-binfmts --enable qemu-{qemu})"
)


def check_emulation(platforms: Iterable[str], *, bootstrap: bool, binfmt: Path = BINFMT) -> None:
    """A UserError unless every foreign platform of ``platforms`` has its binfmt entry
    (``qemu-<arch>``) enabled and, for a ``bootstrap`` (mmdebstrap), ``arch-test`` says the
    architecture runs here."""
    for name in platforms:
        if name == host_platform():
            continue
        facts = PLATFORMS[name]
        hint = SETUP_HINT.format(qemu=facts.qemu)
        entry = binfmt / f"qemu-{facts.qemu}"
        if not (binfmt / "status").is_file():
            raise UserError(
                f"cannot build {name} on this machine: binfmt_misc is not mounted", hint=hint
            )
        lines = entry.read_text().splitlines() if entry.is_file() else []
        if "enabled" not in lines:
            state = "is disabled" if lines else "is not registered"
            raise UserError(
                f"cannot build {name} on this machine: its emulator ({entry}) {state}", hint=hint
            )
        if bootstrap:
            tools.require("arch-test", hint)
            result = tools.run(["arch-test", facts.debian], check=False)
            if result.returncode != 0:
                raise UserError(
                    f"cannot bootstrap {name} on this machine: arch-test {facts.debian} says "
                    f"{result.output.strip()[-200:]!r}",
                    hint=hint,
                )
