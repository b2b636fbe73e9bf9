"""Content tags are write-once: a build never moves ``content-<hash>`` to another digest.

A build pushes its image under a staging tag of its own (``staging-<hash>-<nonce>``, in the
same repository: the layers and the manifest land, the digest is known), then gives that digest
the content tag only if the tag does not exist yet, and reads the tag back
(:meth:`RegistryClient.tag_once`). What the content tag holds afterwards is authoritative: the
build's own digest, or one an earlier build of the same content (``--no-cache``, another clone,
another runner) put there. A build that made another digest is not reproducible; it is reported
with both digests, and the registry's image is the one recorded and built on.

The staging tag is new for every build: a registry whose tags are all immutable (ECR's
``IMMUTABLE``, as ``terraform/`` sets it) takes it too, and two builds on one engine never push
each other's image. A cleanup policy may expire ``staging-*`` tags (an image that also holds a
``content-*`` tag is kept by that rule first).

The registry API has no conditional write: two runners that both find the content tag absent in
the same moment can both write it (a registry with immutable tags refuses the second write, and
the second runner reads the first one's digest back). Pushing to the staging tag first leaves
one request between the check and the write, and the read-back means each runner records what
the registry holds then.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from imagefactory.build.docker import Engine
from imagefactory.project.naming import CONTENT_TAG_PREFIX
from imagefactory.registry.client import RegistryClient
from imagefactory.registry.index import assemble_index
from imagefactory.spec.models import Registry

STAGING_TAG_PREFIX = "staging-"


@dataclass(frozen=True)
class Published:
    """``digest``: what the content tag holds (recorded, built on); ``built``: what this build
    pushed."""

    digest: str
    built: str

    @property
    def reproducible(self) -> bool:
        return self.digest == self.built

    @property
    def detail(self) -> str:
        if self.reproducible:
            return "built and pushed"
        return (
            f"not reproducible: registry has {self.digest}, this build made {self.built}; "
            "kept the registry's"
        )


def staging_tag(content_tag: str, nonce: str) -> str:
    """``content-<hash>`` → ``staging-<hash>-<nonce>``: where one build of that content is
    pushed first."""
    return f"{STAGING_TAG_PREFIX}{content_tag.removeprefix(CONTENT_TAG_PREFIX)}-{nonce}"


def publish(
    engine: Engine, client: RegistryClient, registry: Registry, source: str, tag: str
) -> Published:
    """Push the local image ``source`` and give it the content ``tag`` (``HOST/REPO:content-…``)
    unless that tag holds an image already (see the module)."""
    repository, _, name = tag.rpartition(":")
    staging = f"{repository}:{staging_tag(name, uuid.uuid4().hex[:12])}"
    engine.tag(source, staging)
    try:
        built = engine.push(staging)
    finally:
        engine.remove_image(staging)  # the local name only: the image keeps its other tags
    return Published(client.tag_once(registry, repository, built, name), built)


def publish_index(
    client: RegistryClient, registry: Registry, tag: str, platforms: Mapping[str, str]
) -> Published:
    """Put the OCI index of ``platforms`` (platform → the digest its build published in
    ``tag``'s repository) under a staging tag, then give it the content ``tag`` the way
    :func:`publish` does: write-once, read back."""
    repository, _, name = tag.rpartition(":")
    staging = staging_tag(name, uuid.uuid4().hex[:12])
    built = assemble_index(ManifestsOn(client, registry), repository, staging, platforms)
    return Published(client.tag_once(registry, repository, built, name), built)


@dataclass(frozen=True)
class ManifestsOn:
    """``client`` on ``registry``: the manifest store an index is assembled in."""

    client: RegistryClient
    registry: Registry

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str] | None:
        return self.client.manifest(self.registry, repository, reference)

    def put_manifest(self, repository: str, tag: str, body: bytes, media_type: str) -> str:
        return self.client.put_manifest(self.registry, repository, tag, body, media_type)
