"""An offline scanner: an image's SBOM matched against a local folder of OSV advisories.

The SBOM (CycloneDX) names the digest it describes in ``metadata.component``; the report is a
scan of that digest (the gate judges no SBOM of another digest, nor one that names none).

What an air-gapped bank mirrors of osv.dev (``gs://osv-vulnerabilities/<Ecosystem>/all.zip``,
or the records unpacked): each advisory is an OSV record (ossf/osv-schema docs/schema.md,
validation/schema.json), read from every ``*.json`` below the folder and every ``*.json`` inside
a ``*.zip`` there, bounded in count and size and checked as it is read (a record that is not
what the schema says is an error naming the file and key). Two ecosystems are matched:

* **Debian** (``Debian:12``; a bare ``Debian`` matches every release): Debian advisories name the
  *source* package, so a deb purl of the SBOM is matched by its ``upstream`` qualifier (syft's
  ``SOURCE`` or ``SOURCE@SOURCEVERSION``; the package itself when it has none) at the source
  version, compared as dpkg does (python-debian ``debian_support.Version``); the release comes
  from the ``distro`` qualifier (``debian-12`` → ``Debian:12``).
* **PyPI**: the purl's name, PEP 503-normalised on both sides, compared as PEP 440 versions
  (``packaging.version``).

A package is affected when its version is listed in ``versions`` or falls in a range of type
``ECOSYSTEM`` (``SEMVER`` is read the same way for PyPI): the events sorted by version, an
``introduced`` at or below it makes it affected, a ``fixed`` or ``limit`` at or below it or a
``last_affected`` below it makes it not (the schema's evaluation algorithm; a ``limit`` fixes
nothing). ``GIT``
ranges name commits and are skipped. Withdrawn advisories are skipped. The fixed version shown
is the lowest ``fixed`` above the installed version. Severity: ``database_specific.severity``
(GitHub's LOW/MODERATE/HIGH/CRITICAL), else Debian's ``ecosystem_specific.urgency``, else the
highest CVSS v3 base score of the ``severity`` vectors (:mod:`imagefactory.scan.cvss`);
otherwise (a CVSS v4 vector only) unknown. The feed's time (the "database time" the gate
ages) is the newest ``modified`` read.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from debian.debian_support import Version as DebianVersion
from packageurl import PackageURL
from packaging.version import InvalidVersion
from packaging.version import Version as Pep440Version

from imagefactory import __version__
from imagefactory.atomic import read_regular
from imagefactory.errors import UserError
from imagefactory.sbom.catalog import normalise_name
from imagefactory.spec.models import Severity

from . import cvss
from .document import Node, parse_json, read_json
from .findings import Finding, Scanner, ScanReport
from .vex import image_digests, is_cyclonedx

#: Files and zip members read from one advisory folder (osv.dev's Debian and PyPI hold ~100k).
MAX_ADVISORIES = 1_000_000
#: Bytes of one advisory record.
MAX_ADVISORY_BYTES = 4 * 1024 * 1024
#: Bytes of one zip file of advisories.
MAX_ZIP_BYTES = 2 * 1024 * 1024 * 1024
SCANNER = "imagefactory-osv"
_SEVERITY: dict[str, Severity] = {
    "CRITICAL": "critical",
    "HIGH": "high",
    "MODERATE": "medium",
    "MEDIUM": "medium",
    "LOW": "low",
}
_URGENCY: dict[str, Severity] = {
    "high": "high",
    "medium": "medium",
    "low": "low",
    "unimportant": "low",
}
_EVENTS = ("introduced", "fixed", "last_affected", "limit")


@dataclass(frozen=True)
class Package:
    """A package of the SBOM as OSV names it: its ecosystem, name and the version compared
    (for Debian: the source package and version), and as the image names it."""

    ecosystem: str
    name: str
    version: str
    shown: str
    installed: str
    purl: str


@dataclass(frozen=True)
class Affected:
    ecosystem: str
    name: str
    versions: tuple[str, ...]
    ranges: tuple[tuple[tuple[str, str], ...], ...]  # each range: its (event, version)s
    severity: Severity


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    modified: datetime | None
    affected: tuple[Affected, ...]


@dataclass(frozen=True)
class Sbom:
    """A CycloneDX SBOM: the file it was read from, the image digests it says it describes
    (:func:`imagefactory.scan.vex.image_digests`) and its Debian and PyPI packages."""

    source: str
    subjects: tuple[str, ...]
    packages: tuple[Package, ...]


def read_sbom(path: Path) -> Sbom:
    """The CycloneDX SBOM at ``path`` (``imagefactory sbom``'s document, or syft's): its
    Debian and PyPI packages by their purls."""
    root = read_json(path, what="the SBOM")
    if not is_cyclonedx(root):
        raise root.error("is not a CycloneDX SBOM", hint="pass the file `imagefactory sbom` wrote")
    found = []
    for component in root.items("components"):
        text = component.optional_text("purl")
        if not text.startswith(("pkg:deb/", "pkg:pypi/")):
            continue
        try:
            purl = PackageURL.from_string(text)
        except ValueError as exc:
            raise component.get("purl").error(f"is not a package URL: {exc}") from exc
        if purl.version:
            found.append(_package(purl, text))
    return Sbom(root.source, image_digests(root), tuple(found))


def _package(purl: PackageURL, text: str) -> Package:
    version = purl.version or ""
    if purl.type == "pypi":
        name = normalise_name(purl.name)
        return Package("PyPI", name, version, purl.name, version, text)
    qualifiers = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
    distro = qualifiers.get("distro", "")
    release = distro.removeprefix("debian-").split(".")[0] if distro.startswith("debian-") else ""
    source, _, source_version = qualifiers.get("upstream", "").partition("@")
    return Package(
        f"Debian:{release}" if release else "Debian",
        source or purl.name,
        source_version or version,
        purl.name,
        version,
        text,
    )


def load_advisories(folder: Path) -> list[Advisory]:
    """Every advisory below ``folder`` (``*.json``, and ``*.json`` inside ``*.zip``)."""
    if not folder.is_dir():
        raise UserError(
            f"the OSV advisory folder {folder} does not exist",
            hint="point --osv at the folder the OSV mirror unpacks into (or holds all.zip)",
        )
    advisories = []
    for source, data in _records(folder):
        advisory = _advisory(parse_json(data, source, what="an OSV advisory"))
        if advisory is not None:
            advisories.append(advisory)
    return advisories


def _records(folder: Path) -> Iterator[tuple[str, bytes]]:
    count = 0
    for path in _files(folder):
        if path.suffix == ".json":
            count += 1
            yield str(path), read_regular(path, what="an OSV advisory", limit=MAX_ADVISORY_BYTES)
        elif path.suffix == ".zip":
            for name, data in _zip_records(path):
                count += 1
                yield f"{path}!{name}", data
                if count > MAX_ADVISORIES:
                    break
        if count > MAX_ADVISORIES:
            raise UserError(
                f"{folder} holds more than {MAX_ADVISORIES} advisories",
                hint="point --osv at the ecosystems the images use (Debian, PyPI)",
            )


def _files(folder: Path) -> Iterator[Path]:
    """The regular files below ``folder``, sorted; symlinks are not followed, and a FIFO or
    device is refused."""
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as entries:
                listed = sorted(entries, key=lambda e: e.name)
            modes = [(entry, entry.stat(follow_symlinks=False).st_mode) for entry in listed]
        except OSError as exc:
            raise UserError(
                f"cannot read the advisory folder {current}: {exc.strerror or exc}",
                hint="the mirror's folders must be readable by this user",
            ) from exc
        for entry, mode in modes:
            if stat.S_ISDIR(mode):
                pending.append(Path(entry.path))
            elif stat.S_ISREG(mode):
                yield Path(entry.path)
            elif not stat.S_ISLNK(mode):
                raise UserError(
                    f"{entry.path} is not a regular file",
                    hint="an advisory folder holds only folders, *.json and *.zip files",
                )


def _zip_records(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.stat().st_size > MAX_ZIP_BYTES:
        raise UserError(f"{path} is larger than {MAX_ZIP_BYTES // 2**30} GiB")
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir() or not info.filename.endswith(".json"):
                    continue
                if info.file_size > MAX_ADVISORY_BYTES:
                    raise UserError(f"{path}!{info.filename} is larger than 4 MiB")
                with archive.open(info) as member:
                    data = member.read(MAX_ADVISORY_BYTES + 1)
                if len(data) > MAX_ADVISORY_BYTES:  # the header lied about the size
                    raise UserError(f"{path}!{info.filename} is larger than 4 MiB")
                yield info.filename, data
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(
            f"cannot read {path}: {exc}", hint="mirror osv.dev's all.zip again"
        ) from exc


def _advisory(record: Node) -> Advisory | None:
    schema = record.optional_text("schema_version")
    if schema and schema.split(".")[0] != "1":
        raise record.get("schema_version").error(
            f"OSV schema {schema} is not read here (only 1.x)", hint="mirror the feed again"
        )
    if record.optional_text("withdrawn"):
        return None
    severity = _label(record.get("database_specific"))
    scored = _scored(record)
    affected = tuple(
        a
        for node in record.items("affected")
        if (a := _affected(node, severity, scored)) is not None
    )
    return Advisory(
        record.text("id"),
        tuple(dict.fromkeys([*record.texts("aliases"), *record.texts("upstream")])),
        record.time("modified"),
        affected,
    )


def _affected(node: Node, severity: Severity, scored: Severity) -> Affected | None:
    package = node.get("package")
    ecosystem = package.text("ecosystem")
    kind = ecosystem.partition(":")[0]
    if kind not in ("Debian", "PyPI"):
        return None
    specific = node.get("ecosystem_specific")
    own = _label(node.get("database_specific")) if severity == "unknown" else severity
    if own == "unknown" and specific.present():
        own = _URGENCY.get(specific.optional_text("urgency"), "unknown")
    if own == "unknown":
        own = _scored(node)
    if own == "unknown":
        own = scored
    name = package.text("name")
    ranges = []
    for entry in node.items("ranges"):
        if entry.text("type") not in ("ECOSYSTEM", "SEMVER"):
            continue
        events = []
        for event in entry.items("events"):
            pairs = [(k, v) for k, v in event.mapping().items() if k in _EVENTS]
            if len(pairs) != 1 or not isinstance(pairs[0][1], str):
                raise event.expected(f"one of {', '.join(_EVENTS)} with a version")
            if pairs[0][1] != "0":
                _version(kind, pairs[0][1], event)  # checked here, with the key to blame
            events.append(pairs[0])
        ranges.append(tuple(events))
    return Affected(
        ecosystem,
        normalise_name(name) if kind == "PyPI" else name,
        tuple(node.texts("versions")),
        tuple(ranges),
        own,
    )


def _label(node: Node) -> Severity:
    if not node.present() or not isinstance(node.value, dict):
        return "unknown"
    word = node.value.get("severity")
    return _SEVERITY.get(word.upper(), "unknown") if isinstance(word, str) else "unknown"


def _scored(node: Node) -> Severity:
    """The rating of the highest CVSS v3 base score among ``node``'s ``severity`` entries."""
    scores = [
        score
        for entry in node.items("severity")
        if entry.optional_text("type") == "CVSS_V3"
        and (score := cvss.base_score(entry.optional_text("score"))) is not None
    ]
    return cvss.rating(max(scores)) if scores else "unknown"


def _version(kind: str, text: str, node: Node | None = None) -> Any:
    try:
        return DebianVersion(text) if kind == "Debian" else Pep440Version(text)
    except (ValueError, InvalidVersion) as exc:
        if node is None:
            raise
        raise node.error(f"{text!r} is not a {kind} version") from exc


def match(sbom: Sbom, advisories: list[Advisory], source: str) -> ScanReport:
    """The findings of ``advisories`` against the packages of ``sbom``, a scan of the digests
    it describes."""
    index: dict[tuple[str, str], list[tuple[Advisory, Affected]]] = {}
    for advisory in advisories:
        for affected in advisory.affected:
            index.setdefault((affected.ecosystem.partition(":")[0], affected.name), []).append(
                (advisory, affected)
            )
    findings = []
    for package in sbom.packages:
        kind = package.ecosystem.partition(":")[0]
        for advisory, affected in index.get((kind, package.name), []):
            if affected.ecosystem not in (kind, package.ecosystem):
                continue
            fixed = _affecting(kind, package.version, affected)
            if fixed is None:
                continue
            findings.append(
                Finding(
                    id=advisory.id,
                    package=package.shown,
                    installed=package.installed,
                    severity=affected.severity,
                    purl=package.purl,
                    fixed=fixed,
                    fix_state="fixed" if fixed else "not_fixed",
                    aliases=advisory.aliases,
                )
            )
    times = [a.modified for a in advisories if a.modified is not None]
    return ScanReport(
        Scanner(SCANNER, __version__, max(times) if times else None),
        tuple(findings),
        sbom.subjects,
        source,
    )


def _affecting(kind: str, text: str, affected: Affected) -> str | None:
    """None when version ``text`` is not affected; else the lowest fixed version above it
    ("" when there is none)."""
    if text in affected.versions:
        return _lowest_fix(kind, text, affected)
    try:
        version = _version(kind, text)
    except (ValueError, InvalidVersion):
        return None  # not comparable: only an exact ``versions`` entry can match it
    for events in affected.ranges:
        if _in_range(kind, version, events):
            return _lowest_fix(kind, text, affected)
    return None


def _in_range(kind: str, version: Any, events: tuple[tuple[str, str], ...]) -> bool:
    def key(event: tuple[str, str]) -> tuple[int, Any]:
        return (0, 0) if event[1] == "0" else (1, _version(kind, event[1]))

    affected = False
    for event, bound in sorted(events, key=key):
        if event == "introduced":
            affected = affected or bound == "0" or version >= _version(kind, bound)
        elif event in ("fixed", "limit"):  # a limit bounds the range, exclusive, fixing nothing
            affected = affected and version < _version(kind, bound)
        else:  # last_affected
            affected = affected and version <= _version(kind, bound)
    return affected


def _lowest_fix(kind: str, text: str, affected: Affected) -> str:
    version = _version(kind, text) if _comparable(kind, text) else None
    fixes = [
        bound
        for events in affected.ranges
        for event, bound in events
        if event == "fixed" and (version is None or _version(kind, bound) > version)
    ]
    return min(fixes, key=lambda bound: _version(kind, bound)) if fixes else ""


def _comparable(kind: str, text: str) -> bool:
    try:
        _version(kind, text)
    except (ValueError, InvalidVersion):
        return False
    return True
