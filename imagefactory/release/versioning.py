"""Versions and tags for pushed images: which version a push gets, which tags it writes.

Pure functions, no I/O: the push code lists the registry and reads the state, these decide.

**Versions** are semantic versions (``semver.Version``):

* A version number is never reused for different content. :func:`choose_version` gives the
  version written in image.yaml when it is free, the version already given to the very same
  content when there is one, and otherwise the next free patch of the written version's line.
* *Build metadata* (``1.4.2+build.7``) is not part of a version's identity (SemVer §10: it
  does not count for precedence) and cannot appear in a registry tag (``+`` is not allowed
  there). It is ignored when versions are compared and dropped from every version this module
  returns and every tag it plans.
* *Prereleases* (``2.0.0-rc.1``) are versions like any other for uniqueness, but they never
  move an alias (``2.0``, ``2``, ``latest``) and never block one: aliases only ever name
  releases. When a prerelease written in image.yaml is already taken, the next *prerelease*
  of the same ``MAJOR.MINOR.PATCH`` is chosen (``2.0.0-rc.1`` → ``2.0.0-rc.2``), never a
  release: a push does not turn a release candidate into a release on its own.

**Tags.** Variants of one image share its repository and differ by a suffix
(:func:`variant_suffix`): ``1.4.2`` for a plain image, ``1.4.2-cuda`` for its CUDA variant.
A push writes immutable tags (``1.4.2<suffix>``, ``git-<sha8><suffix>``) and moves the aliases
``1.4<suffix>``, ``1<suffix>`` and ``latest`` / ``latest<suffix>`` only when the pushed version
is the highest release of the alias's line (:func:`plan_tags`): a backport such as 1.4.3 after
2.0.0 moves ``1.4`` and ``1`` but neither ``2`` nor ``latest``.

**Reading tags back** (:func:`parse_version_tag`). A tag such as ``1.4.2-cuda`` is ambiguous on
its own: version 1.4.2 of the ``-cuda`` variant, or prerelease ``1.4.2-cuda`` of the plain image.
The rule is *longest suffix wins*: a tag belongs to the longest of the suffixes in play that it
ends with. The caller passes the suffixes of the other concrete images that share the
repository (the image's other variants) as ``other_suffixes``; a tag that ends with a longer one
of those is not read as a version for ``suffix``. In one catalog the question rarely arises —
an image with variants has no plain image, and all its variants have as many suffix parts —
but an image that gained or lost variants keeps its old tags in the same repository.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import semver

#: What a registry accepts as a tag (the OCI distribution spec's reference grammar).
TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_GIT_SHA = re.compile(r"[0-9a-fA-F]{8,64}")

REASON_AS_WRITTEN = "as written in image.yaml"
REASON_UNCHANGED = "unchanged content: same version"


@dataclass(frozen=True)
class VersionChoice:
    """The version a push gives an image, and why (for humans: logs, plans, the CLI)."""

    version: semver.Version
    reason: str


@dataclass(frozen=True)
class TagPlan:
    """The tags one push writes: ``immutable`` tags name this content forever; ``aliases``
    are moved to it (the other aliases of its lines stay where they are)."""

    immutable: tuple[str, ...]
    aliases: tuple[str, ...]


def _parse(text: str) -> semver.Version | None:
    """``text`` as a version without build metadata; None when it is not a full semver."""
    try:
        return semver.Version.parse(text).replace(build=None)
    except (ValueError, TypeError):
        return None


def _versions(texts: Iterable[str]) -> set[semver.Version]:
    return {v for v in map(_parse, texts) if v is not None}


def choose_version(
    spec_version: str,
    content_hash: str,
    assigned: Mapping[str, str],
    taken: Iterable[str],
) -> VersionChoice:
    """The version a push of ``content_hash`` gets.

    ``spec_version`` is the version in image.yaml. ``assigned`` maps each version already given
    to this image (this variant) to the content hash it was given for — from the state file.
    ``taken`` lists the versions that exist in the registry for this image (this variant); a
    taken version that ``assigned`` does not know (a lost state file, another pipeline) is
    taken by other content. Strings that are not full semantic versions are ignored in both.

    1. Some assigned version already names this content: reuse the highest such version.
    2. Else the spec version is neither assigned nor taken: the spec version.
    3. Else the spec version was used for other content and not bumped: the patch after the
       highest version of the spec version's ``MAJOR.MINOR`` line among assigned, taken and the
       spec version (``1.4.2`` with ``1.4.3-rc.1`` taken gives ``1.4.4``: a patch number that
       a prerelease already announced is left to it). A prerelease spec version gets the next
       prerelease of its ``MAJOR.MINOR.PATCH`` instead (``2.0.0-rc.1`` → ``2.0.0-rc.2``).

    Raises ValueError when ``spec_version`` is not a semantic version.
    """
    spec = _parse(spec_version)
    if spec is None:
        raise ValueError(f"'{spec_version}' is not a semantic version (MAJOR.MINOR.PATCH)")
    same_content = _versions(v for v, h in assigned.items() if h == content_hash)
    if same_content:
        return VersionChoice(max(same_content), REASON_UNCHANGED)
    given = _versions(assigned)
    used = given | _versions(taken)
    if spec not in used:
        return VersionChoice(spec, REASON_AS_WRITTEN)
    since = (
        f"content changed since {spec}"
        if spec in given
        else f"{spec} is already in the registry for other content"
    )
    if spec.prerelease is not None:
        core = [v for v in used | {spec} if v.finalize_version() == spec.finalize_version()]
        candidate = max(v for v in core if v.prerelease is not None).bump_prerelease()
        while candidate in used:  # bump_prerelease always grows; this is a safety net
            candidate = candidate.bump_prerelease()
        return VersionChoice(candidate, f"{since} and the version was not bumped: next prerelease")
    line = [v for v in used | {spec} if (v.major, v.minor) == (spec.major, spec.minor)]
    return VersionChoice(
        max(line).bump_patch(), f"{since} and the version was not bumped: next patch"
    )


def parse_version_tag(
    tag: str, suffix: str, other_suffixes: Iterable[str] = ()
) -> semver.Version | None:
    """The version ``tag`` carries for the image whose tags end with ``suffix``; else None.

    Only full ``MAJOR.MINOR.PATCH[-prerelease]`` tags count: ``1.4.2-cuda`` gives 1.4.2 for
    suffix ``-cuda``; ``1.4-cuda``, ``latest-cuda`` and ``git-…-cuda`` give None. A tag that
    ends with a longer suffix from ``other_suffixes`` belongs to that image, not to this one
    (longest suffix wins): with suffix ``""`` and ``other_suffixes=["-cuda"]``, ``1.4.2-cuda``
    gives None instead of the prerelease ``1.4.2-cuda``. Pass the suffixes of every other
    image stored in the same repository.
    """
    if not tag.endswith(suffix):
        return None
    if any(
        len(other) > len(suffix) and tag.endswith(other)
        for other in other_suffixes
        if other != suffix
    ):
        return None
    text = tag[: len(tag) - len(suffix)]
    if "+" in text:
        return None
    version = _parse(text)
    if version is None or str(version) != text:
        return None
    return version


def tag_versions(
    tags: Iterable[str], suffix: str, other_suffixes: Iterable[str] = ()
) -> list[semver.Version]:
    """The versions among a repository's ``tags`` for ``suffix``, unique and sorted."""
    others = list(other_suffixes)
    found = {parse_version_tag(tag, suffix, others) for tag in tags}
    return sorted(v for v in found if v is not None)


def plan_tags(
    version: semver.Version,
    suffix: str,
    existing_versions: Iterable[semver.Version],
    git_sha: str | None,
) -> TagPlan:
    """The tags a push of ``version`` writes, given the versions that image already has.

    Immutable: ``X.Y.Z[-pre]<suffix>`` and, with ``git_sha``, ``git-<sha[:8]><suffix>``.
    Aliases: ``X.Y<suffix>``, ``X<suffix>`` and ``latest`` (suffix ``""``) or
    ``latest<suffix>``; each moves only when ``version`` is a release at least as high as
    every release of its line among ``existing_versions`` (the versions of this image with
    this suffix): ``X.Y.*`` for ``X.Y``, ``X.*.*`` for ``X``, everything for ``latest``.
    Prereleases never move an alias, and existing prereleases never hold one back. Build
    metadata is dropped. Raises ValueError for a git sha that is not 8-64 hex digits or a tag
    a registry would refuse.
    """
    version = version.replace(build=None)
    immutable = [f"{version}{suffix}"]
    if git_sha is not None:
        if not _GIT_SHA.fullmatch(git_sha):
            raise ValueError(f"'{git_sha}' is not a git commit sha (8 to 64 hex digits)")
        immutable.append(f"git-{git_sha[:8].lower()}{suffix}")
    alias_lines = [
        (f"{version.major}.{version.minor}{suffix}", (version.major, version.minor)),
        (f"{version.major}{suffix}", (version.major,)),
        ("latest" + suffix, ()),
    ]
    releases = {v.replace(build=None) for v in existing_versions if v.prerelease is None}
    for tag in [*immutable, *(alias for alias, _ in alias_lines)]:
        if not TAG_PATTERN.fullmatch(tag):
            raise ValueError(
                f"'{tag}' is not a valid registry tag (at most 128 of A-Z a-z 0-9 _ . -)"
            )
    aliases = tuple(
        alias
        for alias, line in alias_lines
        if version.prerelease is None
        and not any(v.to_tuple()[: len(line)] == line and v > version for v in releases)
    )
    return TagPlan(tuple(immutable), aliases)
