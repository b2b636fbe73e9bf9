"""Whether this run is a GitLab CI job: what the runner's predefined variables say."""

from __future__ import annotations

import os


def in_gitlab_ci() -> bool:
    return os.environ.get("CI") == "true" and bool(os.environ.get("GITLAB_CI"))
