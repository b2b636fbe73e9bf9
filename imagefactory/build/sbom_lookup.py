"""``imagefactory sbom IMAGE`` and ``sbom diff A B``: the SBOM of a digest, from where it is kept.

An image is a catalog ref, optionally ``@sha256:<hex>`` (default: the digest its last build
recorded in state), in the build registry's repository. Its SBOM comes, in this order, from:

1. **registry**: the latest SBOM attestation of the digest, when the project signs and the
   digest's evidence verifies (signature, attestations' signatures and subjects, builder);
   evidence that does not verify is not used, and the answer says why (``note``);
2. **cache**: the copy the build wrote under the work folder (``project.paths.sbom_file``);
3. **engine**: computed now from the local engine's image (pulled when it is not there), and
   cached. Its parent comes from the image's ``base.name``/``base.digest`` labels; the files
   the spec copies are listed only when the image's content label is the catalog's content
   now (otherwise the catalog's files are not the ones built).

``diff`` takes two images or two CycloneDX files (a path that exists is a file).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from imagefactory.atomic import read_regular, write_atomically
from imagefactory.build.docker import Engine
from imagefactory.build.image_sbom import copied_files, saved_root
from imagefactory.evidence.keys import builders, signing_enabled, verifying_key
from imagefactory.evidence.predicates import SBOM
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.evidence.verify import identities, verify_digest
from imagefactory.project.hashing import content_inputs
from imagefactory.project.naming import (
    BASE_DIGEST_LABEL,
    CONTENT_LABEL,
    build_registry,
    repository,
)
from imagefactory.project.paths import sbom_file, work_dir
from imagefactory.project.targets import target
from imagefactory.registry.client import RegistryClient, registry_session
from imagefactory.sbom.diff import SbomDiff, diff
from imagefactory.sbom.document import ImageIdentity, ParentImage, sbom_json
from imagefactory.signing.keys import VerificationError
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.platforms import host_platform

Source = Literal["registry", "cache", "engine", "file"]
#: The most bytes an SBOM file may have.
SBOM_LIMIT = 256 * 1024 * 1024
_BASE_NAME = "org.opencontainers.image.base.name"
_VERSION = "org.opencontainers.image.version"


@dataclass(frozen=True)
class FoundSbom:
    """The SBOM of ``reference`` (``repository@digest``, or a file's path), where it came from,
    and why the registry's was not used (``note``)."""

    reference: str
    digest: str | None
    source: Source
    text: str
    note: str | None = None


def image_sbom(catalog: Catalog, image: str, client: RegistryClient | None = None) -> FoundSbom:
    """The SBOM of ``image`` (``REF`` or ``REF@sha256:<hex>``), from the registry, the cache
    or the engine (see the module); through ``client`` (a session open on the build
    registry; None: one opened for this SBOM)."""
    chosen = target(catalog, image)
    repo, digest = chosen.repository, chosen.digest
    note = None
    if chosen.platforms:  # an index has no filesystem: the SBOM of one of its platforms
        platform = host_platform() if host_platform() in chosen.platforms else None
        platform = platform or next(iter(chosen.platforms))
        digest = chosen.platforms[platform]
        note = (
            f"{chosen.reference} is an index: this is the SBOM of its {platform} image "
            f"(each platform has its own: name it, {chosen.image.ref}@<digest>)"
        )
    session = registry_session(catalog, []) if client is None else nullcontext(client)
    with session as using:
        if signing_enabled(catalog):
            text, why = _from_registry(catalog, using, repo, digest)
            if text is not None:
                return FoundSbom(f"{repo}@{digest}", digest, "registry", text, note)
            note = "; ".join(n for n in (note, why) if n)
        cached = sbom_file(catalog, digest)
        if cached.is_file():
            text = read_regular(cached, what="cached SBOM", limit=SBOM_LIMIT).decode("utf-8")
            return FoundSbom(f"{repo}@{digest}", digest, "cache", text, note)
        text = _from_engine(catalog, Engine(using.config_dir), chosen.image, repo, digest)
    write_atomically(cached, text.encode("utf-8"))
    return FoundSbom(f"{repo}@{digest}", digest, "engine", text, note)


def sbom_diff(
    open_catalog: Callable[[], Catalog], before: str, after: str
) -> tuple[FoundSbom, FoundSbom, SbomDiff]:
    """Both SBOMs and what changed from ``before`` to ``after`` (images or files); the catalog
    is opened only for an image."""
    found = []
    for what in (before, after):
        path = Path(what)
        if path.is_file():
            text = read_regular(path, what="SBOM file", limit=SBOM_LIMIT).decode("utf-8", "replace")
            found.append(FoundSbom(what, None, "file", text))
        else:
            found.append(image_sbom(open_catalog(), what))
    return found[0], found[1], diff(found[0].text, found[1].text)


def _from_registry(
    catalog: Catalog, client: RegistryClient, repo: str, digest: str
) -> tuple[str | None, str | None]:
    """(the SBOM attested to ``digest``, None) when its evidence verifies, else (None, why)."""
    trusted = builders(catalog)
    names = identities(list(catalog.project.registries.values()), repo)
    store = EvidenceStore(client, Location(build_registry(catalog.project), repo))
    try:
        verified = verify_digest(
            store, digest, verifying_key(catalog), identities=names, builders=trusted
        )
    except VerificationError as exc:
        return None, f"the registry's evidence was not used: {exc.message}"
    documents = verified.predicates(SBOM)
    if not documents:
        return None, f"the registry holds no SBOM attestation for {digest}"
    return _canonical(documents[-1]), None


def _canonical(document: object) -> str:
    """The bytes ``sbom_json`` writes for ``document``."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _from_engine(
    catalog: Catalog, engine: Engine, image: CatalogImage, repo: str, digest: str
) -> str:
    reference = f"{repo}@{digest}"
    config, _ = engine.image_config(
        reference, hint=f"{reference} is neither in the local engine nor in the registry"
    )
    labels = config.get("Labels") or {}
    parent = None
    base_name, base_digest = labels.get(_BASE_NAME, ""), labels.get(BASE_DIGEST_LABEL, "")
    if base_digest:
        if any(i.spec.name == base_name for i in catalog.images.values()):
            base_name = repository(build_registry(catalog.project), base_name)
        parent = ParentImage(f"{base_name}@{base_digest}", base_digest)
    inputs = content_inputs(catalog)[image.ref]  # the image's, or one platform's, content
    current = {inputs.content_hash, *(inputs.platform_hash(p) for p in image.spec.platforms or [])}
    files = copied_files(catalog, image) if labels.get(CONTENT_LABEL) in current else []
    root = saved_root(engine, reference, work_dir(catalog) / "sbom")
    return sbom_json(
        root,
        ImageIdentity(repo, labels.get(_VERSION) or image.spec.version, digest),
        timestamp=datetime.now(UTC),
        parent=parent,
        files=files,
    )
