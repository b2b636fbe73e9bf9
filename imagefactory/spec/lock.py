"""``image.lock``, next to an ``image.yaml``: the exact packages each of its images installs.

``imagefactory lock`` writes it (:mod:`imagefactory.freshness.lock`): per concrete image (each
variant of the folder's image.yaml), the architecture it was resolved for, every Debian package
apt installs for the image's ``packages:`` (the whole closure, each at the version apt chose)
and every Python distribution pip installs for its ``pip:`` (each at its version, with the
SHA-256 of the file pip chose for that architecture). The file is an input of those images'
content hashes; their Dockerfiles install exactly it: ``apt-get install NAME=VERSION`` for the
whole closure (apt has no choice left) and ``pip install --require-hashes --no-deps``.

::

    locks:
      runtime/llm:cpu:
        arch: amd64
        apt:
          libgomp1: 12.2.0-14
        pip:
          numpy: {version: 2.2.6, hash: 'sha256:…'}

Read like every catalog file (bounded, plain data, unknown keys forbidden; errors with file,
line and key path): each key an image of the image.yaml beside it, each Debian name and version
by Debian's grammar, each Python name normalised (PEP 503) and version canonical (PEP 440),
each hash ``sha256:`` and 64 lowercase hex digits. A lock holds nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Annotated

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pydantic import AfterValidator, Field

from imagefactory.errors import SpecIssue
from imagefactory.spec import grammar
from imagefactory.spec.issues import read_model, unknown_images
from imagefactory.spec.models import Frozen

LOCK_FILE = "image.lock"
KEY = "locks"
HEADER = (
    "# Written by `imagefactory lock`: the exact Debian packages (the closure apt resolved) and\n"
    "# Python distributions (with their SHA-256) each image installs. An input of their content\n"
    "# hashes: commit it; `imagefactory lock IMAGE` resolves again (docs/images.md, Locks).\n"
)
SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


def _pip_name(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", value) or canonicalize_name(value) != value:
        raise grammar.refuse(
            f"{grammar.shown(value)} is not a normalised Python distribution name",
            "lowercase letters and digits, runs of - . _ written as one '-' (PEP 503), "
            "e.g. huggingface-hub",
        )
    return value


def _pip_version(value: str) -> str:
    try:
        canonical = str(Version(value))
    except InvalidVersion:
        canonical = ""
    if canonical != value:
        raise grammar.refuse(
            f"{grammar.shown(value)} is not a canonical Python version",
            "a PEP 440 version as pip reports it, e.g. 2.2.6 or 1.0rc1",
        )
    return value


def _sha256(value: str) -> str:
    if not SHA256.fullmatch(value):
        raise grammar.refuse(
            f"{grammar.shown(value)} is not a SHA-256 digest",
            "'sha256:' and 64 lowercase hexadecimal digits",
        )
    return value


DebianName = Annotated[str, AfterValidator(grammar.debian_package_name)]
DebianVersion = Annotated[str, AfterValidator(grammar.debian_version)]
DebianArch = Annotated[str, AfterValidator(grammar.debian_arch)]
PipName = Annotated[str, AfterValidator(_pip_name)]
PipVersion = Annotated[str, AfterValidator(_pip_version)]
Sha256 = Annotated[str, AfterValidator(_sha256)]


class PipPin(Frozen):
    version: PipVersion
    hash: Sha256


class ImageLock(Frozen):
    """What one image installs, exactly: resolved for ``arch``."""

    arch: DebianArch
    apt: dict[DebianName, DebianVersion] = Field(default_factory=dict)
    pip: dict[PipName, PipPin] = Field(default_factory=dict)


class Document(Frozen):
    locks: dict[str, ImageLock] = Field(default_factory=dict)


#: image ref → its lock
Locks = Mapping[str, ImageLock]


def load_lock(folder: Path, images: Collection[str]) -> tuple[Locks, list[SpecIssue]]:
    """The locks of ``folder``'s image.lock (none when it is absent) and its problems, each with
    line and key path; every key must be one of ``images``, the refs its image.yaml gives."""
    path = folder / LOCK_FILE
    document, doc, issues = read_model(path, Document)
    if document is None or doc is None:
        return {}, issues
    issues += unknown_images(
        path,
        doc,
        KEY,
        document.locks,
        images,
        what="an image of the image.yaml beside this lock",
        otherwise="remove its entry, or run 'imagefactory lock' to write the file again",
    )
    return ({} if issues else document.locks), issues


def lock_text(locks: Locks) -> str:
    """The file for ``locks``: the header, then images and packages in sorted order (the same
    locks always give the same bytes)."""
    lines = [HEADER.rstrip("\n"), f"{KEY}:" + ("" if locks else " {}")]
    for ref in sorted(locks):
        lock = locks[ref]
        lines += [f"  '{ref}':", f"    arch: {lock.arch}"]
        if lock.apt:
            lines.append("    apt:")
            lines += [f"      {name}: '{lock.apt[name]}'" for name in sorted(lock.apt)]
        if lock.pip:
            lines.append("    pip:")
            lines += [
                f"      {name}: {{version: '{pin.version}', hash: '{pin.hash}'}}"
                for name, pin in sorted(lock.pip.items())
            ]
    return "\n".join(lines) + "\n"


def pip_requirements(lock: ImageLock) -> str:
    """The requirements file ``pip install --require-hashes --no-deps -r`` installs the lock's
    distributions from (names and versions by grammar, so no line can be an option)."""
    return "".join(
        f"{name}=={pin.version} --hash={pin.hash}\n" for name, pin in sorted(lock.pip.items())
    )
