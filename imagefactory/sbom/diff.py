"""What changed between the SBOMs of two images: packages added, removed, or at a new version.

Packages are matched by their purl without version and ``distro`` (type, namespace, name and the
other qualifiers: ``pkg:deb/debian/libssl3?arch=amd64``), so the same package of two Debian point
releases, or of two architectures, is told apart as syft and grype tell it apart. Components
without a purl (the image's parent) are matched by name. Reads any CycloneDX JSON document, ours
or syft's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from packageurl import PackageURL

from imagefactory.errors import UserError


@dataclass(frozen=True)
class Change:
    """One package whose version differs: its key, name and both versions."""

    key: str
    name: str
    before: str
    after: str


@dataclass(frozen=True)
class Entry:
    """One package in one SBOM: its key, name and version."""

    key: str
    name: str
    version: str


@dataclass(frozen=True)
class SbomDiff:
    """``added`` and ``removed`` packages and ``changed`` versions, each sorted by key."""

    added: tuple[Entry, ...]
    removed: tuple[Entry, ...]
    changed: tuple[Change, ...]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff(before: str | bytes, after: str | bytes) -> SbomDiff:
    """The difference from the CycloneDX JSON ``before`` to ``after``."""
    old, new = _entries(before, "the first SBOM"), _entries(after, "the second SBOM")
    return SbomDiff(
        added=tuple(new[k] for k in sorted(new.keys() - old.keys())),
        removed=tuple(old[k] for k in sorted(old.keys() - new.keys())),
        changed=tuple(
            Change(k, new[k].name, old[k].version, new[k].version)
            for k in sorted(old.keys() & new.keys())
            if old[k].version != new[k].version
        ),
    )


def cyclonedx_components(text: str | bytes, what: str) -> list[dict[str, Any]]:
    """Every component of the CycloneDX document ``text`` (nested ones flattened); a
    UserError naming ``what`` when it is not one."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise UserError(f"{what} is not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("bomFormat") != "CycloneDX":
        raise UserError(f"{what} is not a CycloneDX document")
    return _components(document.get("components") or [])


def _entries(text: str | bytes, what: str) -> dict[str, Entry]:
    entries: dict[str, Entry] = {}
    for component in cyclonedx_components(text, what):
        name, version = str(component.get("name", "")), str(component.get("version", ""))
        key = _key(component.get("purl"), name, what)
        entries[key] = Entry(key, name, version)
    return entries


def _components(components: list[Any]) -> list[dict[str, Any]]:
    """The components and their nested components, flattened (syft nests none; others may).
    Bounded by the document: each component is visited once."""
    flat: list[dict[str, Any]] = []
    pending = list(components)
    while pending:
        component = pending.pop()
        if isinstance(component, dict):
            flat.append(component)
            pending += component.get("components") or []
    return flat


def _key(purl: object, name: str, what: str) -> str:
    if not isinstance(purl, str) or not purl:
        return f"name:{name}"
    try:
        parsed = PackageURL.from_string(purl)
    except ValueError as exc:
        raise UserError(f"{what} holds a bad purl {purl!r}: {exc}") from exc
    qualifiers = parsed.qualifiers if isinstance(parsed.qualifiers, dict) else {}
    kept = {k: v for k, v in qualifiers.items() if k not in ("distro", "upstream")}
    return PackageURL(parsed.type, parsed.namespace, parsed.name, None, kept).to_string()
