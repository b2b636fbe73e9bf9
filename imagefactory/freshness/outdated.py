"""``imagefactory outdated [IMAGE…]``: which built images hold Debian packages the mirror has
newer versions of, and how many of those are security updates.

An image is a catalog ref, optionally ``@sha256:<hex>`` (default: the digest its last build
recorded in state, else, on a runner without state, the digest its content tag names in the
build registry). What it holds comes from its SBOM (``imagefactory sbom``: the signed attestation,
the build's copy, or computed from the image), its Debian packages by purl. What the mirror
has comes from the current ``Packages`` indexes of the suite its chain was bootstrapped from
(:mod:`imagefactory.freshness.indexes`), for each architecture the image's packages name. An
image whose chain starts at an external image has no suite here: it is reported as such.

A package is pending when the mirror's newest version sorts after the installed one (dpkg's
ordering); it is a security update when that newest version is the security dist's.
"""

from __future__ import annotations

import itertools
from contextlib import nullcontext
from dataclasses import dataclass

from debian.debian_support import version_compare
from packageurl import PackageURL

from imagefactory.build.sbom_lookup import image_sbom
from imagefactory.errors import UserError
from imagefactory.freshness.indexes import (
    Available,
    Dist,
    Fetched,
    IndexCache,
    dists,
    index_url,
    merged,
)
from imagefactory.project.hashing import content_inputs
from imagefactory.project.naming import build_registry, content_tag, repository
from imagefactory.project.paths import ca_bundle_path, state_file, work_dir
from imagefactory.project.state import load_state
from imagefactory.project.targets import Target, target
from imagefactory.registry.client import RegistryClient, registry_session
from imagefactory.sbom.diff import cyclonedx_components
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.models import Bootstrap
from imagefactory.spec.parents import BootstrapParent


@dataclass(frozen=True)
class Installed:
    name: str
    version: str
    arch: str


@dataclass(frozen=True)
class Pending:
    package: str
    installed: str
    available: str
    dist: str  # where the newest version is (bookworm-security, bookworm-updates, …)
    security: bool


@dataclass(frozen=True)
class Freshness:
    image: str
    reference: str
    suite: str | None  # None: its chain does not start at a bootstrap
    packages: int  # Debian packages installed
    pending: tuple[Pending, ...]
    installed: tuple[Installed, ...] = ()

    @property
    def security(self) -> int:
        return sum(1 for p in self.pending if p.security)


@dataclass(frozen=True)
class OutdatedReport:
    images: tuple[Freshness, ...]
    indexes: tuple[Fetched, ...]
    not_built: tuple[str, ...] = ()  # refs with no build in state or the build registry


def outdated(
    catalog: Catalog,
    images: list[str],
    *,
    missing_ok: bool = False,
    client: RegistryClient | None = None,
) -> OutdatedReport:
    """The freshness of each of ``images`` (every built image of the catalog when empty); one
    named but never built is refused, or with ``missing_ok`` listed as not built. Read through
    ``client`` (a session open on the build registry; None: one opened for this report)."""
    session = registry_session(catalog, []) if client is None else nullcontext(client)
    with session as using:
        return _outdated(catalog, images, missing_ok, using)


def _outdated(
    catalog: Catalog, images: list[str], missing_ok: bool, client: RegistryClient
) -> OutdatedReport:
    chosen, not_built = _targets(catalog, images, missing_ok, client)
    cache = IndexCache(
        work_dir(catalog) / "cache" / "debian-indexes",
        catalog.project.build,
        ca_bundle_path(catalog),
    )
    fetched: dict[str, tuple[dict[str, str], Fetched]] = {}
    results = []
    for one in chosen:
        found = image_sbom(catalog, f"{one.image.ref}@{one.digest}", client)
        installed = installed_debian(found.text)
        recipe = _bootstrap(catalog, one.image.ref)
        if recipe is None:
            results.append(
                Freshness(one.image.ref, one.reference, None, len(installed), (), tuple(installed))
            )
            continue
        archs = sorted({p.arch for p in installed if p.arch and p.arch != "all"}) or ["amd64"]
        per_index: list[tuple[Dist, dict[str, str]]] = []  # merged keeps each name's newest
        for dist in dists(recipe.suite, catalog.project.build):
            for component, arch in itertools.product(recipe.components, archs):
                url = index_url(dist, component, arch)
                if url not in fetched:
                    fetched[url] = cache.read(dist, component, arch)
                per_index.append((dist, fetched[url][0]))
        available = merged(per_index)
        results.append(
            Freshness(
                one.image.ref,
                one.reference,
                recipe.suite,
                len(installed),
                pending_updates(installed, available),
                tuple(installed),
            )
        )
    return OutdatedReport(
        tuple(results), tuple(how for _, how in fetched.values()), tuple(not_built)
    )


def _targets(
    catalog: Catalog, images: list[str], missing_ok: bool, client: RegistryClient
) -> tuple[list[Target], list[str]]:
    """Each image at a digest: the one named (``REF@sha256:…``), else the one state records,
    else the one its content tag names in the build registry now (a runner has no state); with
    no images named, every image of the catalog, and (second) the refs of those never built."""
    records = load_state(state_file(catalog)).images
    found: dict[str, Target] = {}
    missing = []
    for image in images or list(catalog.images):
        ref, _, digest = image.partition("@")
        chosen = catalog.one(ref)
        record = records.get(chosen.ref)
        if digest or (record is not None and record.digest):
            found[image] = target(catalog, image)
        else:
            missing.append((image, chosen))
    not_built: list[str] = []
    if missing:
        inputs = content_inputs(catalog)
        registry = build_registry(catalog.project)
        for image, chosen in missing:
            repo = repository(registry, chosen.spec.name)
            tag = f"{repo}:{content_tag(inputs[chosen.ref].content_hash)}"
            held = client.digest(registry, tag)
            if held is not None:
                found[image] = Target(chosen, repo, held)
            elif images and not missing_ok:
                raise UserError(
                    f"{chosen.ref} has no recorded build and the build registry has no {tag}",
                    hint=f"build it first (imagefactory build {chosen.ref}), or name the "
                    f"digest: {chosen.ref}@sha256:…",
                )
            else:
                not_built.append(chosen.ref)
    return [found[i] for i in images or list(catalog.images) if i in found], not_built


def pending_updates(
    installed: list[Installed], available: dict[str, Available]
) -> tuple[Pending, ...]:
    """The installed packages the mirror has a newer version of, by name."""
    found = []
    for package in sorted(installed, key=lambda p: p.name):
        newer = available.get(package.name)
        if newer is not None and version_compare(newer.version, package.version) > 0:
            found.append(
                Pending(package.name, package.version, newer.version, newer.dist, newer.security)
            )
    return tuple(found)


def installed_debian(sbom: str) -> list[Installed]:
    """The Debian packages an SBOM lists (its ``pkg:deb`` purls), once each."""
    found: dict[tuple[str, str], Installed] = {}
    for component in cyclonedx_components(sbom, "the image's SBOM"):
        text = component.get("purl")
        if not isinstance(text, str) or not text.startswith("pkg:deb/"):
            continue
        try:
            purl = PackageURL.from_string(text)
        except ValueError:
            continue
        if purl.version:
            arch = str((purl.qualifiers or {}).get("arch", ""))
            found[(purl.name, arch)] = Installed(purl.name, purl.version, arch)
    return sorted(found.values(), key=lambda p: (p.name, p.arch))


def _bootstrap(catalog: Catalog, ref: str) -> Bootstrap | None:
    """The bootstrap recipe the chain of ``ref`` starts at; None for an external parent."""
    root = catalog.lineage(ref)[-1]
    return root.parent.bootstrap if isinstance(root.parent, BootstrapParent) else None
