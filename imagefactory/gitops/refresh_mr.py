"""``imagefactory build --refresh --merge-request``: refresh.yaml proposed to the catalog's
default branch, for review, once the refreshed images built.

A scheduled pipeline runs it (docs/gitlab-ci.md): it records the mirror's newer Debian versions,
builds exactly the images they rebuild (which the merge request's own pipeline then finds in
the build registry by their content tags, and tests), and commits the file through GitLab's
API to the branch ``imagefactory/refresh`` — one commit on top of the default branch, the branch
reset each time — and opens the one merge request from it, or updates the one open. Merged, the
default branch's pipeline pushes them, with a new patch version. Nothing is proposed when the
default branch holds the same refresh.yaml already.

The commit goes through the API (``POST /projects/:id/repository/commits``), not ``git push``:
the one credential is the API token, never in an argv, a remote URL or a child's environment.
Where GitLab is comes from the job's predefined variables (``CI_SERVER_URL``,
``CI_PROJECT_PATH``, ``CI_DEFAULT_BRANCH``), the token from ``IMAGEFACTORY_GITLAB_TOKEN`` (a
project access token with the api scope, masked and protected).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import gitlab.exceptions
from gitlab.v4.objects import Project
from pydantic import ValidationError

from imagefactory import git, tools
from imagefactory.build.catalog import BuildRequest
from imagefactory.build.schedule import BuildReporter
from imagefactory.errors import UserError
from imagefactory.freshness.refresh import RefreshPlan, RefreshResult, refresh_build
from imagefactory.gitops.mr import MergeRequest, gitlab_errors, open_or_update, project
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.gitops import GitlabSettings
from imagefactory.spec.refresh import REFRESH_FILE, refresh_text

BRANCH = "imagefactory/refresh"
TOKEN_ENV = "IMAGEFACTORY_GITLAB_TOKEN"
_WHERE = ("CI_SERVER_URL", "CI_PROJECT_PATH", "CI_DEFAULT_BRANCH")


@dataclass(frozen=True)
class Proposal:
    file: str  # refresh.yaml's path in the repository
    commit: str | None  # the commit on BRANCH; None: the branch had the file already
    merge_request: MergeRequest | None  # None: the default branch holds the file already


@dataclass(frozen=True)
class Target:
    settings: GitlabSettings
    branch: str  # the default branch


def refresh_and_propose(
    catalog: Catalog, request: BuildRequest, reporter: BuildReporter
) -> tuple[RefreshResult, Proposal]:
    """``build --refresh`` (:func:`imagefactory.freshness.refresh.refresh_build`), then its
    refresh.yaml proposed; GitLab, the token and the repository are checked before the build."""
    target = gitlab_target()
    gitlab_project = project(target.settings)
    file = repository_path(catalog.root)
    result = refresh_build(catalog, request, reporter)
    return result, propose(target, gitlab_project, file, result.plan)


def gitlab_target() -> Target:
    """The catalog's GitLab project and default branch, from the job's predefined variables."""
    missing = [name for name in _WHERE if not os.environ.get(name)]
    if missing:
        raise UserError(
            f"--merge-request needs GitLab's predefined variables; not set: {', '.join(missing)}",
            hint="run it in a GitLab CI job, or set them by hand (docs/gitlab-ci.md, Refresh)",
        )
    tools.secret_names(TOKEN_ENV)  # no child process inherits the token
    try:
        settings = GitlabSettings(
            url=os.environ["CI_SERVER_URL"],
            project=os.environ["CI_PROJECT_PATH"],
            token_env=TOKEN_ENV,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UserError(
            f"CI_SERVER_URL or CI_PROJECT_PATH is not usable: {problems}",
            hint="an https:// URL without user-info (http:// only on loopback)",
        ) from exc
    return Target(settings, os.environ["CI_DEFAULT_BRANCH"])


def propose(target: Target, gitlab_project: Project, file: str, plan: RefreshPlan) -> Proposal:
    """Commit refresh.yaml with ``plan``'s records to BRANCH and open or update its merge
    request; nothing when the records did not change or the default branch holds them."""
    text = refresh_text(plan.refreshed)
    held = _read(target, gitlab_project, file, target.branch)
    if not plan.changed or held == text:
        return Proposal(file, None, None)
    commit = None
    if _read(target, gitlab_project, file, BRANCH) != text:
        with gitlab_errors(target.settings):
            created = gitlab_project.commits.create(
                {
                    "branch": BRANCH,
                    "start_branch": target.branch,
                    "force": True,  # the branch is ours: one commit on the default branch
                    "commit_message": _title(plan),
                    "actions": [
                        {
                            "action": "create" if held is None else "update",
                            "file_path": file,
                            "content": text,
                        }
                    ],
                }
            )
        commit = str(created.id)
    merge_request = open_or_update(
        target.settings,
        gitlab_project,
        source_branch=BRANCH,
        target_branch=target.branch,
        title=_title(plan),
        description=_description(plan),
    )
    return Proposal(file, commit, merge_request)


def repository_path(root: Path) -> str:
    """refresh.yaml's path in the git repository that holds the catalog at ``root``."""
    found = git.run(root, "rev-parse", "--show-prefix", check=False)
    if found.returncode != 0:
        raise UserError(
            f"{root} is not in a git repository: --merge-request proposes a commit to it",
            hint="run it in a clone of the catalog repository",
        )
    return found.output.strip() + REFRESH_FILE


def _read(target: Target, gitlab_project: Project, file: str, ref: str) -> str | None:
    """The file at ``ref``; None when the branch or the file is not there."""
    with gitlab_errors(target.settings):
        try:
            raw = gitlab_project.files.raw(file_path=file, ref=ref)
        except gitlab.exceptions.GitlabGetError as exc:
            if exc.response_code == 404:
                return None
            raise
    return bytes(raw).decode() if isinstance(raw, bytes | bytearray) else str(raw)


def _title(plan: RefreshPlan) -> str:
    security = sum(1 for u in plan.updates if u.security)
    images = len({u.image for u in plan.updates})
    return (
        f"imagefactory refresh: {len(plan.updates)} Debian update(s), {security} security, "
        f"in {images} image(s)"
    )


def _description(plan: RefreshPlan) -> str:
    lines = [
        "Written by `imagefactory build --refresh --merge-request`. Each image below and its",
        "descendants rebuild with these versions or later; the pipeline of this merge request",
        "tests them, and the default branch's pushes them once merged.",
        "",
        "| image | package | installed | refreshed to | security | seen in |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {u.image} | {u.package} | {u.installed} | {u.version} | "
        f"{'yes' if u.security else 'no'} | {', '.join(u.seen_in)} |"
        for u in plan.updates
    ]
    return "\n".join(lines)
