"""The aliases of an image (``X.Y``, ``X``, ``latest``, with its variant suffix) given the
versions that are yanked: what each should name in every repository of every environment, and
moving them there.

An alias names the highest good release of its line among the version tags its repository
holds (the rule of ``versioning.plan_tags``, with yanked versions taken out). An alias whose
line has no good version left is ``left`` where it is: a registry of the distribution API can
delete only a manifest, with every tag on it, and the yanked ``X.Y.Z`` tag stays as evidence.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import semver

from imagefactory.errors import UserError
from imagefactory.project.naming import repository, variant_suffix
from imagefactory.registry.client import RegistryClient
from imagefactory.release.environments import registries_of, sibling_suffixes
from imagefactory.release.record import NOTHING_WRITTEN
from imagefactory.release.tags import TagChange, action_for, verify_tags
from imagefactory.release.versioning import plan_tags, tag_versions
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.models import Registry

LEFT = "left"  # an alias whose line has no good version: it stays where it is


@dataclass(frozen=True)
class AliasChange:
    """What one alias in one repository needs: ``action`` is create, move or keep (it then
    names ``version``, whose digest is ``digest``), or ``left`` (its line has no good version
    left: it keeps naming ``previous``)."""

    registry: str
    repository: str
    tag: str
    action: str  # create | move | keep | left
    previous: str | None  # the digest it names now
    version: str | None  # the good version it names once written; None when left
    digest: str | None
    environments: tuple[str, ...]  # the environments that hold this repository

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


def good_versions(
    versions: Iterable[semver.Version], yanked: Collection[str]
) -> list[semver.Version]:
    """``versions`` without the yanked ones (named as versions are written: ``1.0.1``)."""
    return sorted(v for v in versions if str(v) not in yanked)


def alias_targets(
    versions: Iterable[semver.Version], suffix: str, yanked: Collection[str]
) -> dict[str, semver.Version | None]:
    """Each alias of the lines of ``versions`` (a repository's versions for ``suffix``) → the
    highest good release of its line, which it should name; None when its line has none.

    The aliases are those a push plans (``versioning.plan_tags``): ``X.Y<suffix>``,
    ``X<suffix>`` and ``latest[<suffix>]``; prereleases never hold one.
    """
    versions = list(versions)
    good = good_versions(versions, yanked)
    lines: dict[str, semver.Version | None] = {
        alias: None for v in versions for alias in plan_tags(v, suffix, (), None).aliases
    }
    for version in good:
        for alias in plan_tags(version, suffix, good, None).aliases:
            lines[alias] = version
    return lines


@dataclass(frozen=True)
class Repository:
    """One repository of the image in one registry, and the environments it serves."""

    name: str  # the registry's name in imagefactory.yaml
    registry: Registry
    repository: str
    environments: tuple[str, ...]
    tags: frozenset[str]


def repositories(catalog: Catalog, client: RegistryClient, image: CatalogImage) -> list[Repository]:
    """Every repository of the image in the environments' registries, with its tags (one
    repository serving several environments is read once)."""
    served: dict[tuple[str, str], list[str]] = {}
    for env in catalog.project.environments:
        for name, registry in registries_of(catalog, env):
            served.setdefault((name, repository(registry, image.spec.name)), []).append(env.name)
    return [
        Repository(
            name,
            catalog.project.registries[name],
            repo,
            tuple(envs),
            frozenset(client.tags(catalog.project.registries[name], repo)),
        )
        for (name, repo), envs in served.items()
    ]


def versions_in(catalog: Catalog, image: CatalogImage, place: Repository) -> list[semver.Version]:
    suffix = variant_suffix(image.spec.variant)
    return tag_versions(place.tags, suffix, sibling_suffixes(catalog, image))


def plan(
    catalog: Catalog,
    client: RegistryClient,
    image: CatalogImage,
    places: list[Repository],
    yanked: Collection[str],
) -> list[AliasChange]:
    """What every alias of every repository needs, given the yanked versions."""
    suffix = variant_suffix(image.spec.variant)
    changes = []
    for place in places:
        targets = alias_targets(versions_in(catalog, image, place), suffix, yanked)
        named = {v for v in targets.values() if v is not None}
        digests = {v: _held(client, place, f"{v}{suffix}") for v in named}
        for alias, version in sorted(targets.items()):
            reference = f"{place.repository}:{alias}"
            previous = client.digest(place.registry, reference) if alias in place.tags else None
            if version is None and previous is None:
                continue  # no good version in its line, and no alias to leave
            digest = None if version is None else digests[version]
            action = LEFT if digest is None else action_for(previous, digest)
            shown = None if version is None else str(version)
            changes.append(
                AliasChange(
                    place.name,
                    place.repository,
                    alias,
                    action,
                    previous,
                    shown,
                    digest,
                    place.environments,
                )
            )
    return changes


def _held(client: RegistryClient, place: Repository, tag: str) -> str:
    """The digest ``tag`` names in ``place``, which listed it."""
    digest = client.digest(place.registry, f"{place.repository}:{tag}")
    if digest is None:
        raise UserError(
            f"{place.repository}:{tag} is gone from {place.name} while its aliases were planned",
            hint=f"{NOTHING_WRITTEN}; run it again",
        )
    return digest


def write(catalog: Catalog, client: RegistryClient, moved: list[AliasChange]) -> None:
    """Put each moved alias on the manifest of its version (already in that repository), then
    check that every one names it."""
    for change in moved:
        assert change.digest is not None  # only a left alias has none, and it is not moved
        registry = catalog.project.registries[change.registry]
        client.tag(registry, change.repository, change.digest, change.tag)
    for digest in sorted({c.digest for c in moved if c.digest is not None}):
        written = [
            TagChange(c.registry, c.repository, c.tag, c.action, c.previous)
            for c in moved
            if c.digest == digest
        ]
        verify_tags(client, catalog, written, digest)
