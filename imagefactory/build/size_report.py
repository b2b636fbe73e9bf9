"""``imagefactory size IMAGE…``: where an image's bytes are, per layer and per package.

An image is a catalog ref, optionally ``@sha256:<hex>`` (default: the digest its last build
recorded in state), in the build registry's repository; the local engine's copy is read (pulled
first when the engine does not have it), never run. The layers come from ``docker history``
(the instruction that made each, and its size), the packages from the image's filesystem
through ``docker image save``: each Debian package's listed files as the image holds them
(``Installed-Size`` without a list) and each Python distribution's bytes from its ``RECORD``,
largest first.
"""

from __future__ import annotations

from dataclasses import dataclass

from imagefactory.build.docker import Engine
from imagefactory.build.image_sbom import saved_root
from imagefactory.project.paths import work_dir
from imagefactory.project.targets import target
from imagefactory.registry.client import registry_session
from imagefactory.sbom.catalog import packages
from imagefactory.spec.catalog import Catalog


@dataclass(frozen=True)
class LayerSize:
    created_by: str  # the instruction, as the engine records it
    size_bytes: int


@dataclass(frozen=True)
class PackageSize:
    kind: str  # deb or pypi
    name: str
    version: str
    size_bytes: int


@dataclass(frozen=True)
class SizeReport:
    image: str  # the catalog ref
    reference: str  # repository@digest
    size_bytes: int  # the image's size, uncompressed, as the engine reports it
    layers: tuple[LayerSize, ...]  # lowest first; steps that wrote nothing are left out
    packages: tuple[PackageSize, ...]  # largest first

    def package_bytes(self, kind: str) -> int:
        return sum(p.size_bytes for p in self.packages if p.kind == kind)


def size_reports(catalog: Catalog, images: list[str]) -> list[SizeReport]:
    """The size report of each of ``images`` (``REF`` or ``REF@sha256:<hex>``), in order."""
    chosen = [target(catalog, image) for image in images]
    reports = []
    with registry_session(catalog, []) as client:
        engine = Engine(client.config_dir)
        for one in chosen:
            reference = f"{one.repository}@{one.digest}"
            _, size = engine.image_config(
                reference, hint=f"{reference} is neither in the local engine nor in the registry"
            )
            layers = tuple(
                LayerSize(created_by, layer_size)
                for created_by, layer_size in reversed(engine.history(reference))
                if layer_size > 0
            )
            found = sorted(
                (
                    PackageSize(p.kind, p.name, p.version, p.size_bytes)
                    for p in packages(saved_root(engine, reference, work_dir(catalog) / "sbom"))
                    if p.size_bytes is not None
                ),
                key=lambda p: (-p.size_bytes, p.kind, p.name),
            )
            reports.append(SizeReport(one.image.ref, reference, size, layers, tuple(found)))
    return reports
