"""``refresh.yaml``, next to ``imagefactory.yaml``: the Debian versions a refresh asked for.

``imagefactory build --refresh`` writes it when the mirror has newer versions of packages an
image holds (``imagefactory outdated``): under the image that installed each package, the
newest version the mirror had. The file is an input of those images' content hashes, so a
commit of it rebuilds exactly them and their descendants, on any runner, and review shows what
changed; their builds check that each package is installed at that version or a later one.

::

    refreshed:
      base/debian12:
        libc6: 2.36-9+deb12u10

Read like every catalog file (bounded, plain data, unknown keys forbidden; errors with file,
line and key path): each key is an image of the catalog, each package a Debian name, each
version a Debian version.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field

from imagefactory.errors import SpecIssue
from imagefactory.spec import grammar
from imagefactory.spec.issues import read_model, unknown_images
from imagefactory.spec.models import Frozen

REFRESH_FILE = "refresh.yaml"
KEY = "refreshed"
HEADER = (
    "# Written by `imagefactory build --refresh`: the Debian versions each image must hold at\n"
    "# least (the newest the mirror had). An input of their content hashes: commit it, and the\n"
    "# images named here and their descendants rebuild (docs/images.md, Refresh).\n"
)

PackageName = Annotated[str, AfterValidator(grammar.debian_package_name)]
Version = Annotated[str, AfterValidator(grammar.debian_version)]
#: image ref → package → the version it must hold at least
Refreshed = Mapping[str, Mapping[str, str]]


class Document(Frozen):
    refreshed: dict[str, dict[PackageName, Version]] = Field(default_factory=dict)


def load_refresh(root: Path, images: Collection[str] | None) -> tuple[Refreshed, list[SpecIssue]]:
    """The file's records (none when it is absent) and its problems, each with line and key
    path; ``images`` are the catalog's refs, which every key must be (None: not checked, the
    catalog has problems of its own)."""
    path = root / REFRESH_FILE
    document, doc, issues = read_model(path, Document)
    if document is None or doc is None:
        return {}, issues
    if images is None:
        return document.refreshed, issues
    issues += unknown_images(
        path,
        doc,
        KEY,
        document.refreshed,
        images,
        what="an image of the catalog",
        otherwise="remove its entry (imagefactory build --refresh writes the file)",
    )
    return document.refreshed, issues


def refresh_text(records: Refreshed) -> str:
    """The file for ``records``: the header, then images and packages in sorted order (the same
    records always give the same bytes); empty records give the header and an empty mapping."""
    lines = [HEADER.rstrip("\n"), f"{KEY}:" + ("" if any(records.values()) else " {}")]
    for ref in sorted(records):
        if records[ref]:
            lines.append(f"  '{ref}':")
            lines += [f"    {name}: {records[ref][name]!r}" for name in sorted(records[ref])]
    return "\n".join(lines) + "\n"
