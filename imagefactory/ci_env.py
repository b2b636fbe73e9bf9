"""Whether this run is a GitLab CI job, and what the runner's predefined variables say of it."""

from __future__ import annotations

import os


def in_gitlab_ci() -> bool:
    return os.environ.get("CI") == "true" and bool(os.environ.get("GITLAB_CI"))


def login() -> str | None:
    """The GitLab user the job runs for (who started it, or ran its manual job)."""
    return os.environ.get("GITLAB_USER_LOGIN") or None


def deployment_approver(environment: str) -> str | None:
    """Who approved this job's deployment into ``environment``: ``GITLAB_USER_LOGIN`` of a job
    whose ``environment: name:`` is ``environment`` (``CI_ENVIRONMENT_NAME``) on a protected
    ref (``CI_COMMIT_REF_PROTECTED``), the job GitLab's protected environments and deployment
    approvals guard; None for any other job."""
    if os.environ.get("CI_ENVIRONMENT_NAME") != environment:
        return None
    if os.environ.get("CI_COMMIT_REF_PROTECTED") != "true":
        return None
    return login()
