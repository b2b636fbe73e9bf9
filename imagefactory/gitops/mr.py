"""Merge-request mode: the change goes to a deterministic branch ``imagefactory/<env>/<app>``
and one merge request per branch is opened — or the one already open is updated. Never a
duplicate (GitLab answers 409 to a second one; then the open one is updated), never an empty MR
(no branch push and no MR when the target branch already pins the digest)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import gitlab
import gitlab.exceptions
from gitlab.v4.objects import Project

from imagefactory import tools
from imagefactory.errors import UserError
from imagefactory.spec.gitops import GitlabSettings


@dataclass(frozen=True)
class MergeRequest:
    iid: int
    url: str
    action: str  # created | updated


def branch_name(env: str, app: str) -> str:
    return f"imagefactory/{env}/{app}"


def client(settings: GitlabSettings) -> gitlab.Gitlab:
    token = os.environ.get(settings.token_env)
    if not token:
        raise UserError(
            f"merge-request mode needs a GitLab token in ${settings.token_env}",
            hint="set it to a project access token with the api scope",
        )
    tools.redact(token)
    return gitlab.Gitlab(
        settings.url, private_token=token, timeout=30, retry_transient_errors=False
    )


@contextmanager
def gitlab_errors(settings: GitlabSettings) -> Iterator[None]:
    try:
        yield
    except gitlab.exceptions.GitlabAuthenticationError as exc:
        raise UserError(
            f"GitLab refused the token in ${settings.token_env} ({exc.response_code})",
            hint="check the token and that it has the api scope on " + settings.project,
        ) from exc
    except gitlab.exceptions.GitlabError as exc:
        raise UserError(
            f"GitLab request failed ({exc.response_code}): {exc.error_message}",
            hint=f"check the GitLab URL ({settings.url}) and project ({settings.project})",
        ) from exc
    except OSError as exc:  # requests' ConnectionError is an OSError
        raise UserError(f"cannot reach GitLab at {settings.url}: {exc}") from exc


def project(settings: GitlabSettings) -> Project:
    """The GitLab project; checks the token and the project before anything is pushed."""
    with gitlab_errors(settings):
        return client(settings).projects.get(settings.project)


def open_or_update(
    settings: GitlabSettings,
    gitlab_project: Project,
    *,
    source_branch: str,
    target_branch: str,
    title: str,
    description: str,
) -> MergeRequest:
    """The open MR for ``source_branch``, updated, or a new one — never a second one."""
    with gitlab_errors(settings):
        mrs = gitlab_project.mergerequests
        existing = mrs.list(
            state="opened", source_branch=source_branch, target_branch=target_branch, get_all=False
        )
        if not existing:
            try:
                created = mrs.create(
                    {
                        "source_branch": source_branch,
                        "target_branch": target_branch,
                        "title": title,
                        "description": description,
                        "remove_source_branch": True,
                    }
                )
                return MergeRequest(created.iid, created.web_url, "created")
            except gitlab.exceptions.GitlabCreateError as exc:
                if exc.response_code != 409:
                    raise
                # a concurrent run opened it just now: update that one
                existing = mrs.list(
                    state="opened",
                    source_branch=source_branch,
                    target_branch=target_branch,
                    get_all=False,
                )
                if not existing:
                    raise
        mr = mrs.get(existing[0].iid)
        mr.title = title
        mr.description = description
        mr.save()
        return MergeRequest(mr.iid, mr.web_url, "updated")
