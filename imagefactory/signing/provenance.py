"""The SLSA provenance v1 predicate of one imagefactory build (``https://slsa.dev/provenance/v1``).

Fields as slsa-framework/slsa docs/spec/v1.1/schema/provenance.cue; their meaning for an
imagefactory build (the build type ``BUILD_TYPE``) is documented in docs/provenance.md. The
build (``build``) fills ``BuildFacts`` once an image is built and pushed; ``dsse.attest`` signs
the predicate into the digest's ``.att``; ``imagefactory verify`` reads ``builder.id`` against an
allow-list and follows the parent's digest down to the bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
#: What an imagefactory image build is (docs/provenance.md): an identifier, not a download.
BUILD_TYPE = "urn:imagefactory:buildtype:docker:v1"


@dataclass(frozen=True)
class Dependency:
    """One more resolved input (a Debian mirror's Release file, a pip lock file): a name, where
    it came from and its digests (algorithm → hex, e.g. ``(("sha256", "…"),)``)."""

    name: str
    uri: str
    digest: tuple[tuple[str, str], ...]

    def descriptor(self) -> dict[str, Any]:
        return {"name": self.name, "uri": self.uri, "digest": dict(self.digest)}


@dataclass(frozen=True)
class BuildFacts:
    """What one build of one image was made from, and by whom."""

    catalog_uri: str  # the catalog repository (its clone URL)
    catalog_ref: str  # the branch or tag built
    catalog_path: str  # the image spec's file, relative to the catalog root
    catalog_commit: str  # the commit built (hex)
    spec: str  # the image's ref, e.g. app/rag-api
    variant: str | None  # e.g. cuda; None for an image without variants
    parent_repository: str | None  # registry/path of the parent; None for a bootstrapped base
    parent_digest: str | None  # sha256:<hex> of the parent built on
    builder_id: str  # who built it: the CI runner (its URL)
    invocation_id: str  # the CI job's URL
    started_on: datetime
    finished_on: datetime
    internal: tuple[tuple[str, str], ...] = ()  # docker version, executor, … (for the record)
    dependencies: tuple[Dependency, ...] = ()


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("provenance timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def predicate(facts: BuildFacts) -> dict[str, Any]:
    """The provenance predicate (a JSON-ready map) of the build ``facts`` describe."""
    if (facts.parent_repository is None) != (facts.parent_digest is None):
        raise ValueError("a parent needs both its repository and its digest")
    resolved: list[dict[str, Any]] = [
        {
            "name": "catalog",
            "uri": f"git+{facts.catalog_uri}@{facts.catalog_ref}",
            "digest": {"gitCommit": facts.catalog_commit},
        }
    ]
    if facts.parent_repository is not None and facts.parent_digest is not None:
        algorithm, _, hex_part = facts.parent_digest.partition(":")
        resolved.append(
            {
                "name": "parent",
                "uri": f"pkg:docker/{facts.parent_repository}@{facts.parent_digest}",
                "digest": {algorithm: hex_part},
            }
        )
    resolved += [dependency.descriptor() for dependency in facts.dependencies]
    external: dict[str, Any] = {
        "catalog": {"uri": facts.catalog_uri, "ref": facts.catalog_ref, "path": facts.catalog_path},
        "spec": facts.spec,
    }
    if facts.variant is not None:
        external["variant"] = facts.variant
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "internalParameters": dict(facts.internal),
            "resolvedDependencies": resolved,
        },
        "runDetails": {
            "builder": {"id": facts.builder_id},
            "metadata": {
                "invocationId": facts.invocation_id,
                "startedOn": _timestamp(facts.started_on),
                "finishedOn": _timestamp(facts.finished_on),
            },
        },
    }


def parent_of(provenance: Any) -> str | None:
    """The parent digest a provenance predicate names (its ``parent`` dependency), for the walk
    down the chain; None for a bootstrapped base."""
    try:
        dependencies = provenance["buildDefinition"]["resolvedDependencies"]
        for dependency in dependencies:
            if dependency.get("name") == "parent":
                algorithm, value = next(iter(dependency["digest"].items()))
                return f"{algorithm}:{value}"
    except (KeyError, TypeError, AttributeError, StopIteration):
        raise ValueError("not an imagefactory provenance predicate") from None
    return None
