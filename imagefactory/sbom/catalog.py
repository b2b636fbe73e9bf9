"""The packages of a root filesystem, named as syft names them.

What syft does and this module repeats (anchore/syft, read at the sources named):

* **dpkg** (syft/pkg/cataloger/debian/parse_dpkg_db.go): every paragraph of
  ``var/lib/dpkg/status`` and of each ``var/lib/dpkg/status.d/*`` (distroless) with a
  ``Package``; a ``Status`` containing ``deinstall`` (removed, not purged) is skipped;
  ``Source: NAME (VERSION)`` splits into source name and version.
* **deb purl** (debian/package.go ``packageURL``, syft/pkg/url.go ``PURLQualifiers``): only when
  os-release ``ID`` or ``ID_LIKE`` is ``debian``; namespace = ``ID``; the qualifiers ``arch``,
  ``upstream`` (``SOURCE`` or ``SOURCE@SOURCEVERSION``, only when the paragraph has a
  ``Source``) and ``distro=ID-VERSION_ID``, empty ones dropped. Older syft appended ``distro``
  after the others; current syft's own test (debian/package_test.go ``Test_packageURL``:
  ``pkg:deb/debian/p@v?distro=debian-11&upstream=s%402.3``) has every qualifier sorted by key,
  and so does this module.
* **licenses** (debian/parse_copyright.go): only a machine-readable ``copyright`` (its first
  non-blank line is DEP-5's ``Format: https://www.debian.org/doc/packaging-manuals/
  copyright-format/…``); each ``License: WORD`` line and each ``/usr/share/common-licenses/NAME``
  reference, a trailing ``.`` dropped, ``none`` and ``X or Y``/``X and Y`` summaries skipped,
  sorted and unique.
* **Python** (syft/pkg/cataloger/python/): every ``*.dist-info/METADATA``; ``Name``, ``Version``,
  ``License`` (or, per core metadata 2.4, ``License-Expression``); purl ``pkg:pypi/NAME@VERSION``
  with the name lower-cased and runs of ``-_.`` made one ``-`` (PEP 503, as the purl spec asks).

The purl text is encoded as syft ≥ 1.5x writes it: every byte outside ``A-Z a-z 0-9 - . _ ~``
percent-encoded with upper-case hex (``1:1.35.0-4+b3`` → ``1%3A1.35.0-4%2Bb3``,
``glibc@2.36-9`` → ``glibc%402.36-9``), where packageurl-python keeps the ``:`` of an epoch;
tests/unit/test_sbom.py holds syft's own output to compare with.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from typing import Literal
from urllib.parse import quote

from debian import deb822
from packageurl import PackageURL

from imagefactory.errors import UserError

from .rootfs import RootFiles

Kind = Literal["deb", "pypi"]

_STATUS_D = re.compile(r"var/lib/dpkg/status\.d/[^/]+")
_METADATA = re.compile(r"(?:.+/)?[^/]+\.dist-info/METADATA")
_SOURCE = re.compile(r"(?P<name>\S+)(?: \((?P<version>.*)\))?")
_DEP5 = re.compile(r"^Format:\s*https?://www\.debian\.org/doc/packaging-manuals/copyright-format/")
_LICENSE_LINE = re.compile(r"^License: (?P<license>\S*)")
_COMMON_LICENSE = re.compile(r"/usr/share/common-licenses/(?P<license>[0-9A-Za-z_.\-]+)")
_PEP503 = re.compile(r"[-_.]+")


@dataclass(frozen=True)
class OsRelease:
    """What ``os-release`` says: ``ID``, ``ID_LIKE`` (split) and ``VERSION_ID``."""

    id: str = ""
    id_like: tuple[str, ...] = ()
    version_id: str = ""

    @property
    def debian_like(self) -> bool:
        return self.id == "debian" or "debian" in self.id_like


@dataclass(frozen=True)
class Package:
    """One package found in the image: its kind, name and version as the package manager
    writes them, its purl (syft's text), licenses, the path it was read from, and the bytes it
    takes (a Debian package's listed files as they are in the image, else dpkg's Installed-Size;
    the sizes a wheel's RECORD lists; None when unknown)."""

    kind: Kind
    name: str
    version: str
    purl: str
    licenses: tuple[str, ...]
    location: str
    arch: str = ""
    source: str = ""
    source_version: str = ""
    size_bytes: int | None = None


def os_release(root: RootFiles) -> OsRelease:
    """``etc/os-release`` (or ``usr/lib/os-release``) of the image; empty when it has none."""
    raw = root.read("etc/os-release") or root.read("usr/lib/os-release")
    if raw is None:
        return OsRelease()
    values: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            values[key] = value.strip().strip("\"'")
    return OsRelease(
        values.get("ID", ""), tuple(values.get("ID_LIKE", "").split()), values.get("VERSION_ID", "")
    )


def packages(root: RootFiles) -> list[Package]:
    """Every Debian and Python package of the image, sorted by purl then location."""
    release = os_release(root)
    found = [*debian_packages(root, release), *python_packages(root)]
    return sorted(found, key=lambda p: (p.purl, p.location))


def debian_packages(root: RootFiles, release: OsRelease) -> list[Package]:
    databases = ["var/lib/dpkg/status"] if "var/lib/dpkg/status" in root.files else []
    databases += root.matching(_STATUS_D)
    found: list[Package] = []
    for location in databases:
        raw = root.files[location]
        for paragraph in deb822.Deb822.iter_paragraphs(raw.decode("utf-8", "replace")):
            name = paragraph.get("Package", "").strip()
            if not name or "deinstall" in paragraph.get("Status", ""):
                continue
            found.append(_debian_package(root, release, paragraph, name, location))
    return found


def _debian_package(
    root: RootFiles, release: OsRelease, paragraph: deb822.Deb822, name: str, location: str
) -> Package:
    version = paragraph.get("Version", "").strip()
    arch = paragraph.get("Architecture", "").strip()
    source, source_version = "", ""
    match = _SOURCE.match(paragraph.get("Source", "").strip())
    if match:
        source, source_version = match["name"], match["version"] or ""
    purl = ""
    if release.debian_like:
        qualifiers = {"arch": arch}
        if source:
            qualifiers["upstream"] = f"{source}@{source_version}" if source_version else source
        if release.id and release.version_id:
            qualifiers["distro"] = f"{release.id}-{release.version_id}"
        purl = syft_purl("deb", release.id, name, version, qualifiers)
    copyright_text = root.read(f"usr/share/doc/{name}/copyright")
    licenses = copyright_licenses(copyright_text) if copyright_text is not None else ()
    size = _listed_bytes(root, name, arch)
    installed = paragraph.get("Installed-Size", "").strip()  # KiB, before any path-exclude
    if size is None and installed.isdigit():
        size = int(installed) * 1024
    return Package(
        "deb", name, version, purl, licenses, location, arch, source, source_version, size
    )


def copyright_licenses(raw: bytes) -> tuple[str, ...]:
    """The licenses a machine-readable (DEP-5) Debian ``copyright`` file names; none for a
    free-form one."""
    found: set[str] = set()
    verified = False
    for line in raw.decode("utf-8", "replace").splitlines():
        if not verified:
            if not line.strip():
                continue
            if not _DEP5.match(line):
                return ()
            verified = True
        for pattern in (_LICENSE_LINE, _COMMON_LICENSE):
            match = pattern.search(line) if pattern is _COMMON_LICENSE else pattern.match(line)
            if match:
                value = _single_license(match["license"])
                if value:
                    found.add(value)
    return tuple(sorted(found))


def _single_license(candidate: str) -> str:
    candidate = candidate.replace("\n", " ").strip()
    if " or " in candidate or " and " in candidate or candidate.lower() == "none":
        return ""
    return candidate.removesuffix(".")


def python_packages(root: RootFiles) -> list[Package]:
    found: list[Package] = []
    for location in root.matching(_METADATA):
        headers = BytesHeaderParser().parsebytes(root.files[location])
        name, version = (headers.get("Name") or "").strip(), (headers.get("Version") or "").strip()
        if not name:
            continue
        license_text = (headers.get("License-Expression") or headers.get("License") or "").strip()
        licenses = (license_text,) if license_text and "\n" not in license_text else ()
        purl = syft_purl("pypi", "", normalise_name(name), version, {})
        record = root.files.get(location.removesuffix("METADATA") + "RECORD")
        size = _record_bytes(record) if record is not None else None
        found.append(Package("pypi", name, version, purl, licenses, location, size_bytes=size))
    return found


def _listed_bytes(root: RootFiles, name: str, arch: str) -> int | None:
    """The bytes of the files dpkg lists for package ``name`` (``info/NAME[:ARCH].list``) as
    they are in the image (what a path-exclude kept out is not there); None without a list."""
    listed = root.files.get(f"var/lib/dpkg/info/{name}.list")
    if listed is None:
        listed = root.files.get(f"var/lib/dpkg/info/{name}:{arch}.list")
    if listed is None:
        return None
    paths = {
        root.resolve(line) for line in listed.decode("utf-8", "replace").splitlines() if line
    }  # resolved: on merged /usr, /bin/ls is /usr/bin/ls
    return sum(root.sizes.get(path, 0) for path in paths)


def _record_bytes(record: bytes) -> int:
    """The sum of the sizes a wheel's ``RECORD`` lists (CSV: path, hash, size; the RECORD
    itself and compiled files have no size)."""
    rows = csv.reader(io.StringIO(record.decode("utf-8", "replace")))
    return sum(int(row[2]) for row in rows if len(row) >= 3 and row[2].isdigit())


def normalise_name(name: str) -> str:
    """A Python distribution name as PEP 503 normalises it (``Foo_Bar.baz`` → ``foo-bar-baz``)."""
    return _PEP503.sub("-", name).lower()


def _escape(text: str) -> str:
    return quote(text, safe="-._~")


def syft_purl(
    kind: str, namespace: str, name: str, version: str, qualifiers: dict[str, str]
) -> str:
    """The purl text syft writes: qualifiers sorted by key, empty ones dropped; every part
    percent-encoded outside the unreserved characters."""
    if not name:
        raise UserError(f"a {kind} package without a name")
    text = f"pkg:{kind}/"
    if namespace:
        text += "/".join(_escape(part) for part in namespace.split("/")) + "/"
    text += _escape(name)
    if version:
        text += "@" + _escape(version)
    pairs = [(k, v) for k, v in sorted(qualifiers.items()) if v]
    if pairs:
        text += "?" + "&".join(f"{k}={_escape(v)}" for k, v in pairs)
    return text


class SyftPackageURL(PackageURL):
    """A packageurl-python purl that serialises as syft's text (see :func:`syft_purl`), so the
    CycloneDX document carries the purl syft would write, byte for byte."""

    def to_string(self, encode: bool | None = True) -> str:
        qualifiers = self.qualifiers if isinstance(self.qualifiers, dict) else {}
        return syft_purl(
            self.type, self.namespace or "", self.name, self.version or "", dict(qualifiers)
        )

    def __str__(self) -> str:
        return self.to_string()
