"""What a build writes beside each digest it publishes (docs/supply-chain.md, "SBOM").

Every image built now gets its SBOM (:mod:`imagefactory.build.image_sbom`: ``docker image save``
of the local image, its layers read without running it), kept under the work folder
(:func:`imagefactory.project.paths.sbom_file`) for ``imagefactory sbom``. When the project signs
(``signing:``), the digest in the build repository is then signed and two attestations are
appended to its ``.att``: the SLSA provenance of the build (:mod:`imagefactory.build.facts`) and
the SBOM (the CycloneDX document as predicate, as ``cosign attest --type cyclonedx``).

A digest the run found in the registry (under the content tag, or a content tag that already
held another build's digest) is not described again: its provenance is the build that made it.
It is signed only when its evidence there verifies (``evidence.verify.verify_digest``) with a
provenance signed by the key, i.e. a signed imagefactory build made it: whoever can push to the
build registry can put any digest under a content tag, and the key never signs that. Otherwise
it is left unsigned, with a warning (:data:`NOT_SIGNED`).

An image reused from the builder's own engine (found by its content-hash label, pushed by this
run, and what the content tag now names) is a cache hit, as trustworthy as BuildKit's cache on
that runner: its bytes never left the engine that built them. Pushed into a repository that
holds no verifying evidence of it (a new registry namespace, a registry added, while runners
keep their engine), it is described like a build (:meth:`BuildEvidence.reused_local`), with the
facts recovered from where they are kept: the catalog (whose content is the image's: the
content-hash label says so) for the spec, the pip requirements and the copied files; the run
for the commit, builder and invocation, as for any cache hit; the image's
``base.digest`` label for the parent, which must be the digest this run pins (else it is left
unsigned: its provenance would name a parent this run does not have); the image's own label
for the Debian Release files a bootstrapped base installed from (:func:`bootstrap.releases_label`;
none for an image built before the label existed: never taken from a cache that may have been
bootstrapped again). Its provenance says it was a reuse: ``internalParameters`` name the local
image (``reused_local_image``) and the revision label it was built with (``reused_revision``).
Where the repository's evidence verifies with a provenance already, it is only signed (nothing
is written twice).

A missing key where ``signing.required`` is refused when the run is set up, before anything is
built (:func:`imagefactory.evidence.keys.signing_key`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cached_property

from imagefactory.atomic import write_atomically
from imagefactory.build.bootstrap import labelled_releases, release_hashes, rootfs_path
from imagefactory.build.docker import Engine
from imagefactory.build.facts import RunFacts, build_facts
from imagefactory.build.image_sbom import copied_files, saved_root
from imagefactory.evidence.keys import builders, signing_key, verifying_key
from imagefactory.evidence.predicates import PROVENANCE, SBOM
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.evidence.verify import identities, verify_digest
from imagefactory.project.hashing import refresh_input
from imagefactory.project.naming import BASE_DIGEST_LABEL, REVISION_LABEL
from imagefactory.project.paths import sbom_file, work_dir
from imagefactory.registry.client import RegistryClient
from imagefactory.render.dockerfile import ParentPin
from imagefactory.sbom.rootfs import RootFiles
from imagefactory.signing.keys import VerificationError
from imagefactory.signing.provenance import Dependency, predicate
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.models import Registry
from imagefactory.spec.parents import BootstrapParent
from imagefactory.spec.platforms import PLATFORMS

#: Why a digest the run did not build is left unsigned.
NOT_SIGNED = "not signed: the registry's digest has no signed provenance"


class BuildEvidence:
    """The evidence of one build run, into ``registry`` (the build registry) through ``client``."""

    def __init__(
        self,
        catalog: Catalog,
        client: RegistryClient,
        registry: Registry,
        revision_labels: dict[str, str],
    ) -> None:
        self.key = signing_key(catalog)  # a required, missing key: refused before any build
        self.catalog = catalog
        self.client = client
        self.registry = registry
        self.revision = revision_labels.get(REVISION_LABEL)

    @cached_property
    def run_facts(self) -> RunFacts:
        """The facts every image of the run shares (git and CI: read once, when first needed)."""
        return RunFacts.of(self.catalog.root, self.revision)

    def built(
        self,
        engine: Engine,
        image: CatalogImage,
        tag: str,
        digest: str,
        parent: ParentPin | None,
        started: float,
        platform: str | None = None,
    ) -> None:
        """The evidence of ``image`` (as built), built now as the local ``tag`` and published
        as ``digest`` in ``tag``'s repository on ``parent`` (None: a bootstrapped base), its
        build begun at ``started`` (``time.monotonic()``); ``platform``: the platform it was
        built for, of an image built per platform."""
        releases = self._bootstrap_releases(image, platform)
        self._describe(engine, image, tag, digest, parent, started, releases)

    def reused_local(
        self,
        engine: Engine,
        image: CatalogImage,
        tag: str,
        digest: str,
        image_id: str,
        parent: ParentPin | None,
        started: float,
    ) -> str | None:
        """The evidence of the local image ``image_id`` (``image``'s content), reused now as the
        local ``tag`` and pushed as ``digest`` on ``parent``: signed if the repository's
        evidence verifies with a provenance, else described like a build (see the module). Why
        it is not signed, or None."""
        if self.key is None or self.reused(tag, digest) is None:
            return None
        config, _ = engine.image_config(image_id, hint="the local image was reused by this run")
        labels = config.get("Labels") or {}
        built_on = labels.get(BASE_DIGEST_LABEL) or None
        pinned = parent.digest if parent is not None else None
        if built_on != pinned:
            return (
                f"{NOT_SIGNED}: the local image was built on {built_on or 'no parent'}, "
                f"this run's parent is {pinned or 'none'}"
            )
        internal = [("reused_local_image", image_id)]
        if labels.get(REVISION_LABEL):
            internal.append(("reused_revision", labels[REVISION_LABEL]))
        releases = labelled_releases(labels) if isinstance(image.parent, BootstrapParent) else []
        self._describe(engine, image, tag, digest, parent, started, releases, internal)
        return None

    def _describe(
        self,
        engine: Engine,
        image: CatalogImage,
        tag: str,
        digest: str,
        parent: ParentPin | None,
        started: float,
        bootstrap_releases: Sequence[tuple[str, str]],
        internal: Sequence[tuple[str, str]] = (),
    ) -> None:
        """The SBOM of the local ``tag`` (kept in the work folder) and, when the project signs,
        ``digest``'s signature, provenance and SBOM in ``tag``'s repository."""
        # cyclonedx loads here, when an SBOM is written: a no-op build never needs it
        from imagefactory.sbom.document import ImageIdentity, ParentImage, sbom_json

        repository = tag.rpartition(":")[0]
        root = saved_root(engine, tag, work_dir(self.catalog) / "sbom")
        finished_on = datetime.now(UTC)
        started_on = finished_on - timedelta(seconds=time.monotonic() - started)
        pinned = parent.digest if parent is not None else None
        text = sbom_json(
            root,
            ImageIdentity(repository, image.spec.version, digest),
            timestamp=finished_on,
            parent=ParentImage(parent.reference, pinned) if parent and pinned else None,
            files=copied_files(self.catalog, image),
        )
        write_atomically(sbom_file(self.catalog, digest), text.encode("utf-8"))
        if self.key is None:
            return
        facts = build_facts(
            self.catalog,
            image,
            self.run_facts,
            parent=parent,
            root=root,
            started_on=started_on,
            finished_on=finished_on,
            bootstrap_releases=bootstrap_releases,
            internal=internal,
        )
        store = self._store(repository)
        store.sign(digest, self.key)
        store.attest(digest, PROVENANCE, predicate(facts), self.key)
        store.attest(digest, SBOM, json.loads(text), self.key)

    def reused(self, tag: str, digest: str) -> str | None:
        """Sign ``digest`` in ``tag``'s repository, built before (when the project signs), if
        its evidence there verifies with a provenance signed by the key; else why it is not
        signed (:data:`NOT_SIGNED`). None when signed, or when the project does not sign."""
        if self.key is None:
            return None
        repository = tag.rpartition(":")[0]
        store = self._store(repository)
        try:
            verified = verify_digest(
                store,
                digest,
                verifying_key(self.catalog),
                identities=identities(list(self.catalog.project.registries.values()), repository),
                builders=builders(self.catalog),
            )
        except VerificationError as exc:
            return f"{NOT_SIGNED} ({exc.message})"
        if not verified.predicates(PROVENANCE):
            return NOT_SIGNED
        store.sign(digest, self.key)
        return None

    def index(
        self,
        image: CatalogImage,
        tag: str,
        digest: str,
        platforms: Mapping[str, str],
        parent: ParentPin | None,
        started: float,
        unsigned: Sequence[str],
    ) -> str | None:
        """The evidence of the OCI index ``digest`` this run assembled under ``tag`` from
        ``platforms`` (platform → digest) of ``image`` on ``parent`` (the parent's index, or
        its one image), when the project signs: signed, with a provenance that names each
        platform's image as a dependency (``platform:<name>``) and the parent (the chain walk
        of ``verify`` goes down indexes as it goes down images) — if every platform's digest
        is signed: ``unsigned`` says why those that are not are not. Why the index is not
        signed, or None."""
        if self.key is None:
            return None
        if unsigned:
            return f"not signed: a platform's image is not ({unsigned[0]})"
        repository = tag.rpartition(":")[0]
        finished_on = datetime.now(UTC)
        facts = build_facts(
            self.catalog,
            image,
            self.run_facts,
            parent=parent,
            root=RootFiles(),  # an index has no filesystem: its platforms' provenances do
            started_on=finished_on - timedelta(seconds=time.monotonic() - started),
            finished_on=finished_on,
            internal=[("platforms", ",".join(platforms))],
        )
        images = []
        for name, platform_digest in platforms.items():
            algorithm, _, value = platform_digest.partition(":")
            uri = f"pkg:docker/{repository}@{platform_digest}"
            images.append(Dependency(f"platform:{name}", uri, ((algorithm, value),)))
        store = self._store(repository)
        store.sign(digest, self.key)
        provenance = predicate(replace(facts, dependencies=(*facts.dependencies, *images)))
        store.attest(digest, PROVENANCE, provenance, self.key)
        return None

    def _bootstrap_releases(
        self, image: CatalogImage, platform: str | None = None
    ) -> list[tuple[str, str]]:
        """The Release files' hashes of the bootstrap ``image`` was built from (for
        ``platform``); none for an image with another parent."""
        if not isinstance(image.parent, BootstrapParent):
            return []
        cache = work_dir(self.catalog) / "cache"
        build = self.catalog.project.build
        refresh = refresh_input(self.catalog, image.ref)
        architecture = PLATFORMS[platform].debian if platform is not None else ""
        recipe = image.parent.bootstrap
        return release_hashes(rootfs_path(recipe, build, cache, refresh, architecture))

    def _store(self, repository: str) -> EvidenceStore:
        return EvidenceStore(self.client, Location(self.registry, repository))
