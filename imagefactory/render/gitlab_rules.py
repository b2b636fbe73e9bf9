"""When a generated GitLab job runs: the repository paths whose change changes an image, and the
rules built from them (see :mod:`imagefactory.render.gitlab_ci`)."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagefactory.project.hashing import playbook_inputs
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.refresh import REFRESH_FILE

IF_TAG = "$CI_COMMIT_TAG"
IF_DEFAULT_BRANCH = "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"
IF_SCHEDULE = '$CI_PIPELINE_SOURCE == "schedule"'
#: First rule of every image job: a scheduled pipeline is the freshness check, not a release
#: (without it, rules:changes is true in a pipeline that has no push, and every job would run).
NOT_ON_SCHEDULE = {"if": IF_SCHEDULE, "when": "never"}
COMPARE_TO = "refs/heads/$CI_DEFAULT_BRANCH"


@dataclass(frozen=True)
class RepoPlace:
    """Where the catalog sits in its repository: ``prefix``, the catalog's folder there ("" at the
    root), and ``templates``, the standard templates' folder there (None when elsewhere)."""

    prefix: str = ""
    templates: str | None = None


def change_paths(catalog: Catalog, where: RepoPlace) -> dict[str, list[str]]:
    """For every image, the repository paths whose change changes it (or may: over-triggering
    is safe).

    The image's folder and its ancestors' folders (image.yaml, copied files, template
    overrides, tests), the playbooks they apply, the standard templates when the repository
    holds them, a CA bundle kept in the repository, the project file and refresh.yaml (its
    records are inputs of the images they name; any image may be named). Each image's own
    paths are found once, then joined along each lineage (a deep chain is not walked again per
    descendant)."""
    own = {ref: _own_paths(catalog, image, where) for ref, image in catalog.images.items()}
    shared: list[str] = []
    if where.templates is not None:
        shared.append(_recursive(posixpath.join(where.templates, "dockerfile")))
    bundle = catalog.project.build.ca_bundle
    if bundle is not None and not Path(bundle).is_absolute():
        shared.append(in_repo(where, posixpath.normpath(bundle)))
    shared.append(in_repo(where, _relative(catalog, catalog.project_file)))
    shared.append(in_repo(where, REFRESH_FILE))
    return {
        ref: list(dict.fromkeys([*(p for m in catalog.lineage(ref) for p in own[m.ref]), *shared]))
        for ref in catalog.images
    }


def _own_paths(catalog: Catalog, image: CatalogImage, where: RepoPlace) -> list[str]:
    """The image's folder and the inputs of the playbooks it applies."""
    found = [
        _recursive(in_repo(where, _relative(catalog, image.folder)))
    ]  # the loader refuses '..'
    for playbook in image.spec.playbooks:  # the same inputs the content hash reads
        for path in playbook_inputs(catalog.root / posixpath.normpath(playbook)):
            found += _file_or_tree(in_repo(where, _relative(catalog, path)))
    return found


def _relative(catalog: Catalog, path: Path) -> str:
    return path.relative_to(catalog.root).as_posix()


def in_repo(where: RepoPlace, path: str) -> str:
    """A catalog path as a repository path."""
    return posixpath.join(where.prefix, path) if where.prefix else path


def _recursive(folder: str) -> str:
    return f"{folder}/**/*"


def _file_or_tree(path: str) -> list[str]:
    """Without looking at the disk: the path itself, and everything under it if a folder."""
    return [path, _recursive(path)]


def _changes(paths: Sequence[str], *, compare: bool) -> dict[str, Any]:
    changes: dict[str, Any] = {"paths": list(paths)}
    if compare:
        changes["compare_to"] = COMPARE_TO
    return changes


def image_rules(paths: Sequence[str]) -> list[dict[str, Any]]:
    """Build and test: every image on tags; what the push changed on the default branch; what
    differs from the default branch on other branches and in merge requests."""
    return [
        NOT_ON_SCHEDULE,
        {"if": IF_TAG},
        {"if": IF_DEFAULT_BRANCH, "changes": _changes(paths, compare=False)},
        {"if": IF_DEFAULT_BRANCH, "when": "never"},
        {"changes": _changes(paths, compare=True)},
    ]


def schedule_rules() -> list[dict[str, Any]]:
    """The freshness check: only in scheduled pipelines."""
    return [{"if": IF_SCHEDULE}]


def release_rules(paths: Sequence[str], *, manual: bool) -> list[dict[str, Any]]:
    """Push and promote: only from tags and the default branch, never from other branches.

    A manual job may fail (stay unplayed) without blocking the pipeline."""
    extra: dict[str, Any] = {"when": "manual", "allow_failure": True} if manual else {}
    return [
        NOT_ON_SCHEDULE,
        {"if": IF_TAG, **extra},
        {"if": IF_DEFAULT_BRANCH, "changes": _changes(paths, compare=False), **extra},
    ]
