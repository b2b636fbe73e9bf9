"""Whether this run is a GitLab CI job, and what the runner's predefined variables say of it."""

from __future__ import annotations

import os


def in_gitlab_ci() -> bool:
    return os.environ.get("CI") == "true" and bool(os.environ.get("GITLAB_CI"))


def login() -> str | None:
    """The GitLab user the job runs for (who started it, or ran its manual job)."""
    return os.environ.get("GITLAB_USER_LOGIN") or None


def image_environment(environment: str, image_slug: str) -> str:
    """The GitLab environment of one image's deployments into ``environment``
    (``prod/app_rag-api``): the generated pipeline gives every image its own, so "prevent
    outdated deployment jobs" and resource groups compare one image's pipelines only."""
    return f"{environment}/{image_slug}"


def deployment_approver(environment: str, image_slug: str | None = None) -> str | None:
    """Who approved this job's deployment into ``environment``: ``GITLAB_USER_LOGIN`` of a job
    whose ``environment: name:`` (``CI_ENVIRONMENT_NAME``) is ``environment`` or, for the image
    of ``image_slug``, that image's own (:func:`image_environment`), on a protected ref
    (``CI_COMMIT_REF_PROTECTED``): the job GitLab's protected environments and deployment
    approvals guard; None for any other job (another image's environment included)."""
    names = {environment}
    if image_slug is not None:
        names.add(image_environment(environment, image_slug))
    if os.environ.get("CI_ENVIRONMENT_NAME") not in names:
        return None
    if os.environ.get("CI_COMMIT_REF_PROTECTED") != "true":
        return None
    return login()
