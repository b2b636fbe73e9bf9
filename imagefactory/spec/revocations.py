"""``revocations.yaml``, next to ``imagefactory.yaml``: every digest revoked, one entry each.

The catalog's own record of a revocation, beside the signed lifecycle attestation that
``imagefactory revoke`` writes into the registry. Anyone who can write to the registry can drop
an attestation from a ``.att`` manifest (its set of layers is not signed); this file changes
only through the catalog repository's reviewed merge requests, so a revocation lifted by
deleting its entry shows in review and history. The release gate refuses a digest listed here
whatever the registry holds. Read like every catalog file (bounded, plain data, unknown keys
forbidden; errors with file, line and key path), and checked against the catalog: each entry
names one of its images.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AwareDatetime, Field, StringConstraints, ValidationError

from imagefactory.errors import SpecError, SpecIssue, UserError
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.issues import format_key_path, issues_from_validation, near_miss
from imagefactory.spec.models import Frozen, NonEmpty
from imagefactory.spec.parents import DIGEST_PATTERN
from imagefactory.spec.yamldoc import YamlDocument, read_yaml

REVOCATIONS_FILE = "revocations.yaml"
#: The one top-level key: the list of entries.
KEY = "revoked"
#: A new file's first lines.
HEADER = (
    "# Revoked digests: the release gate lets none of them into any environment.\n"
    "# Written by `imagefactory revoke`; lifting a revocation is deleting its entry, through a\n"
    "# reviewed merge request (docs/supply-chain.md, Revocation).\n"
)
_APPEND_HINT = (
    f"write '{KEY}:' as the file's one key, its entries as a block list ('- image: …' lines) "
    "at the end of the file"
)

Digest = Annotated[str, StringConstraints(pattern=DIGEST_PATTERN.pattern)]


class Entry(Frozen):
    """One revoked digest of a catalog image: why, by whom, when, and (found by
    ``--descendants``) the revoked digest it was built on."""

    image: NonEmpty = Field(description="the catalog image's ref (name, or name:variant)")
    digest: Digest
    reason: Annotated[NonEmpty, StringConstraints(max_length=500)]
    by: Annotated[NonEmpty, StringConstraints(max_length=200)]
    at: AwareDatetime = Field(
        description='ISO 8601 with an offset, quoted: "2026-12-02T10:00:00+00:00"'
    )
    built_on: Digest | None = None


class Document(Frozen):
    revoked: list[Entry] = Field(default_factory=list)


@dataclass(frozen=True)
class Listed:
    """An entry of the file, and where it is written (for messages: ``revocations.yaml:12``)."""

    entry: Entry
    line: int | None

    @property
    def location(self) -> str:
        return REVOCATIONS_FILE if self.line is None else f"{REVOCATIONS_FILE}:{self.line}"


@dataclass(frozen=True)
class Revocations:
    """The file as loaded (``listed`` empty when there is none)."""

    path: Path
    listed: tuple[Listed, ...] = ()

    def of(self, digest: str) -> Listed | None:
        """The first entry that lists ``digest`` (under any image: a revoked digest goes into no
        environment); None: none does."""
        return next((item for item in self.listed if item.entry.digest == digest), None)

    def entry(self, image: str, digest: str) -> Listed | None:
        """The entry of ``digest`` of image ``image``; None: there is none."""
        wanted = (image, digest)
        return next((i for i in self.listed if (i.entry.image, i.entry.digest) == wanted), None)


def revocations_file(catalog: Catalog) -> Path:
    return catalog.root / REVOCATIONS_FILE


def load_revocations(catalog: Catalog) -> Revocations:
    """The catalog's revocations; a SpecError naming every problem (file, line, key path) when
    the file does not read, does not validate, names an image the catalog does not hold or lists
    an image's digest twice."""
    path = revocations_file(catalog)
    if not path.exists() and not path.is_symlink():
        return Revocations(path)
    doc = read_yaml(path)
    issues = [
        SpecIssue(path, format_key_path(p.key_path), p.message, p.line, p.hint)
        for p in doc.problems
    ]
    if issues:
        raise SpecError(issues)
    if doc.data is None:  # empty, or comments only
        return Revocations(path)
    if not isinstance(doc.data, dict):
        raise SpecError(
            [SpecIssue(path, "", "the file is not a mapping", doc.line_of(()), _APPEND_HINT)]
        )
    try:
        document = Document.model_validate(doc.data)
    except ValidationError as exc:
        raise SpecError(issues_from_validation(exc, doc, Document)) from exc
    listed = tuple(
        Listed(entry, doc.line_of((KEY, index))) for index, entry in enumerate(document.revoked)
    )
    issues = _catalog_issues(catalog, doc, listed)
    if issues:
        raise SpecError(issues)
    return Revocations(path, listed)


def _catalog_issues(
    catalog: Catalog, doc: YamlDocument, listed: Sequence[Listed]
) -> list[SpecIssue]:
    issues = []
    seen: dict[tuple[str, str], int] = {}
    for index, item in enumerate(listed):
        entry = item.entry
        if entry.image not in catalog.images:
            guess = near_miss(entry.image, catalog.images)
            issues.append(
                SpecIssue(
                    doc.path,
                    f"{KEY}[{index}].image",
                    f"'{entry.image}' is not an image of the catalog",
                    doc.line_of((KEY, index, "image")),
                    f"did you mean '{guess}'?"
                    if guess
                    else "an image's ref as `imagefactory validate` lists it (name:variant for "
                    "a variant)",
                )
            )
        first = seen.setdefault((entry.image, entry.digest), index)
        if first != index:
            issues.append(
                SpecIssue(
                    doc.path,
                    f"{KEY}[{index}].digest",
                    f"{entry.image}@{entry.digest} is listed twice (first at "
                    f"{listed[first].location})",
                    doc.line_of((KEY, index, "digest")),
                    "remove one of the two entries",
                )
            )
    return issues


def appended(path: Path, text: str | None, entries: Sequence[Entry]) -> str:
    """``text`` (the file as it is, None: there is none) with ``entries`` at the end of its list,
    everything else (comments, order, quoting) as written. UserError, with nothing changed,
    when the file is not written so that lines appended at its end extend the list."""
    if not entries:
        return text or ""
    root = _compose(path, text) if text else None
    if root is None:  # no file, an empty one, or comments only
        head, column = _ended(text or HEADER) + f"{KEY}:\n", 2
    else:
        head, column = _ended(text or ""), _item_column(path, root)
    lines = [_entry_text(entry, column) for entry in entries]
    edited = head + "".join(lines)
    before = _entries_of(text or "") or []
    after = _entries_of(edited)
    wanted = [*before, *(entry.model_dump(mode="json", exclude_none=True) for entry in entries)]
    if after != wanted:
        raise UserError(
            f"cannot append to {path}: the entries would not read back", hint=_APPEND_HINT
        )
    return edited


def _compose(path: Path, text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {exc}", hint=_APPEND_HINT) from exc


def _ended(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def _item_column(path: Path, root: yaml.Node) -> int:
    """Where the list's ``-`` stands (2 when the list is empty: ``revoked:`` alone)."""
    if not isinstance(root, yaml.MappingNode):
        raise UserError(f"{path} is not a mapping", hint=_APPEND_HINT)
    values = [v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == KEY]
    if not values:
        raise UserError(f"{path} has no top-level '{KEY}:'", hint=_APPEND_HINT)
    node = values[-1]
    if isinstance(node, yaml.SequenceNode) and node.value and not node.flow_style:
        return int(node.start_mark.column)
    return 2


def _entries_of(text: str) -> list[Any] | None:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if data is None:
        return []
    items = data.get(KEY) if isinstance(data, dict) else None
    return [] if isinstance(data, dict) and items is None else items


def _entry_text(entry: Entry, column: int) -> str:
    """One entry as block YAML, its list item's ``-`` at ``column``; text values quoted the JSON
    way (a valid YAML double-quoted scalar), so no value reads as anything else."""
    values = entry.model_dump(mode="json", exclude_none=True)
    pad = " " * column
    lines = [
        f"{pad}{'- ' if index == 0 else '  '}{key}: {json.dumps(value, ensure_ascii=False)}\n"
        for index, (key, value) in enumerate(values.items())
    ]
    return "".join(lines)
