"""The CycloneDX 1.6 JSON document of an image, made with cyclonedx-python-lib.

``metadata.component`` is the image itself (type ``container``: its repository as name, its
manifest digest as version (as syft writes it: syft's and grype's readers take the version for
the digest), as a SHA-256 hash and in an OCI purl, its own version as property
``imagefactory:version``); the parent image is a component
of its own (type ``container``, the reference and digest the caller resolved, property
``imagefactory:role=parent``); each file the spec copies into the image is a ``file``
component (its path in the image, its SHA-256, property ``imagefactory:source``); every package
of :func:`imagefactory.sbom.catalog.packages` is a ``library`` whose ``bom-ref`` and purl are
syft's purl text. The image depends on all of them.

The same image gives the same bytes: components are sorted, the timestamp is the caller's, and
the serial number is the caller's or, when none is given, a UUIDv5 of the image digest (never
random). :func:`validate` runs the library's strict JSON-schema validator for 1.6.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.spdx import fixup_id, is_expression
from packageurl import PackageURL

from imagefactory import __version__
from imagefactory.errors import UserError
from imagefactory.spec.parents import DIGEST_PATTERN

from .catalog import Package, SyftPackageURL
from .catalog import packages as find_packages
from .rootfs import RootFiles

#: The namespace of the serial numbers derived from an image digest.
SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://imagefactory/sbom")


@dataclass(frozen=True)
class ImageIdentity:
    """An image as the SBOM names it: ``name`` its repository (``registry/path``), ``version``
    its version (semver or a tag), ``digest`` its manifest digest (``sha256:<hex>``)."""

    name: str
    version: str
    digest: str

    def __post_init__(self) -> None:
        _check_digest(self.digest, self.name)


@dataclass(frozen=True)
class ParentImage:
    """The image this one is built ``FROM``: its reference as written and its digest."""

    reference: str
    digest: str

    def __post_init__(self) -> None:
        _check_digest(self.digest, self.reference)


@dataclass(frozen=True)
class CopiedFile:
    """A file the spec copies into the image: its absolute ``path`` there, the SHA-256 (hex) of
    its bytes, and its ``source`` in the catalog (relative to the catalog root)."""

    path: str
    sha256: str
    source: str


def _check_digest(digest: str, of: str) -> None:
    if not DIGEST_PATTERN.fullmatch(digest):
        raise UserError(
            f"{of}: {digest!r} is not a manifest digest", hint="expected sha256:<64 hex digits>"
        )


def sbom_json(
    root: RootFiles,
    image: ImageIdentity,
    *,
    timestamp: datetime.datetime,
    parent: ParentImage | None = None,
    serial: uuid.UUID | None = None,
    files: Sequence[CopiedFile] = (),
) -> str:
    """The CycloneDX 1.6 JSON of the image whose root filesystem is ``root`` (sorted keys,
    two-space indent, a final newline)."""
    if timestamp.tzinfo is None:
        raise UserError("the SBOM timestamp needs a time zone")
    # the version is the digest, as syft writes it: syft's and grype's CycloneDX readers take
    # metadata.component.version for the manifest digest (grype `sbom:` then names the image)
    subject = _container(image.name, image.digest, image.digest, "image")
    subject.properties.add(Property(name="imagefactory:version", value=image.version))
    bom = Bom(
        serial_number=serial or uuid.uuid5(SERIAL_NAMESPACE, image.digest),
        metadata=BomMetaData(
            timestamp=timestamp,
            component=subject,
            tools=ToolRepository(
                components=[
                    Component(
                        type=ComponentType.APPLICATION,
                        name="imagefactory",
                        version=__version__,
                        bom_ref="tool:imagefactory",
                    )
                ]
            ),
        ),
    )
    found: list[Component] = []
    if parent is not None:
        base = _container(parent.reference, parent.digest, parent.digest, "parent")
        base.properties.add(Property(name="imagefactory:role", value="parent"))
        found.append(base)
    found += [_file(f) for f in sorted(files, key=lambda f: f.path)]
    found += [_library(p) for p in find_packages(root)]
    for component in found:
        bom.components.add(component)
    bom.register_dependency(subject, found)
    text = JsonV1Dot6(bom).output_as_string()
    return json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _container(name: str, version: str, digest: str, ref: str) -> Component:
    repository = _repository(name)
    purl = PackageURL(
        "oci",
        name=repository.rsplit("/", 1)[-1],
        version=digest,
        qualifiers={"repository_url": repository},
    )
    return Component(
        type=ComponentType.CONTAINER,
        name=name,
        version=version,
        bom_ref=f"{ref}:{name}@{digest}",
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=digest.removeprefix("sha256:"))],
        purl=purl,
    )


def _repository(reference: str) -> str:
    """``reference`` without its digest and tag: ``reg:5000/a/b:1@sha256:…`` → ``reg:5000/a/b``."""
    head, _, last = reference.partition("@")[0].rpartition("/")
    last = last.partition(":")[0]
    return f"{head}/{last}" if head else last


def _file(copied: CopiedFile) -> Component:
    return Component(
        type=ComponentType.FILE,
        name=copied.path,
        bom_ref=f"file:{copied.path}",
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=copied.sha256)],
        properties=[Property(name="imagefactory:source", value=copied.source)],
    )


def _library(package: Package) -> Component:
    properties = [Property(name="imagefactory:location", value=f"/{package.location}")]
    if package.source:
        properties.append(Property(name="imagefactory:deb:source", value=package.source))
    return Component(
        type=ComponentType.LIBRARY,
        name=package.name,
        version=package.version,
        bom_ref=package.purl or f"{package.kind}:{package.name}@{package.version}",
        purl=SyftPackageURL(*PackageURL.from_string(package.purl)) if package.purl else None,
        licenses=_licenses(package.licenses),
        properties=properties,
    )


def _licenses(values: tuple[str, ...]) -> list[DisjunctiveLicense] | list[LicenseExpression]:
    """One SPDX expression alone (CycloneDX allows no other license beside one), else each
    value as an SPDX id where it is one and as a name where it is not (Debian's ``GPL-2+``)."""
    if len(values) == 1 and " " in values[0] and is_expression(values[0]):
        return [LicenseExpression(values[0])]
    licenses = []
    for value in values:
        spdx = fixup_id(value)
        licenses.append(DisjunctiveLicense(id=spdx) if spdx else DisjunctiveLicense(name=value))
    return licenses


def validate(text: str) -> None:
    """Raise UserError unless ``text`` is valid CycloneDX 1.6 JSON (the library's strict
    validator: no property the schema does not name)."""
    # imported here, not with the module: the validator loads jsonschema's format checkers, whose
    # IRI grammar (rfc3987_syntax) takes over a second to build, on every command's start
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise UserError(f"the SBOM is not valid CycloneDX 1.6: {error}")
