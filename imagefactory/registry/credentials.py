"""Registry credentials for one run: a private, temporary DOCKER_CONFIG, deleted afterwards.

Usernames and passwords come from the environment variables the project file names for each
registry. They are written only into that temporary config (mode 0600, never on a command
line, in the run's private folder: ``imagefactory.scratch``), registered with ``tools.redact``
so no message shows them, and never stored in state or logs; the variables are declared secret
(``tools.secret_names``), so no child process inherits them. Without those variables the
user's own Docker config is used as it is.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from imagefactory import scratch, tools
from imagefactory.ci_env import in_gitlab_ci
from imagefactory.errors import UserError
from imagefactory.spec.models import Registry


def login_entry(registry: Registry) -> tuple[str, str] | None:
    """(username, password) from the registry's variables, None when it names none."""
    if registry.username_env is None and registry.password_env is None:
        return None
    names = [n for n in (registry.username_env, registry.password_env) if n]
    tools.secret_names(*names)
    missing = [n for n in names if not os.environ.get(n)]
    if missing or len(names) != 2:
        hint = (
            "GitLab passes protected CI/CD variables only to jobs on protected branches and "
            "tags: protect this ref, or unprotect the variables"
            if in_gitlab_ci()
            else "export both variables (in CI: masked CI/CD variables), or remove them from "
            "imagefactory.yaml to use your own docker login"
        )
        raise UserError(
            f"registry {registry.url} needs credentials from {' and '.join(names)}, "
            f"but {', '.join(missing) or 'a username or password variable'} is not set",
            hint=hint,
        )
    assert registry.username_env and registry.password_env
    return os.environ[registry.username_env], os.environ[registry.password_env]


@contextmanager
def docker_config(registries: Iterable[Registry]) -> Iterator[Path | None]:
    """A temporary DOCKER_CONFIG logged in to ``registries``; None when none names credentials."""
    auths = {}
    for registry in registries:
        entry = login_entry(registry)
        if entry is not None:
            user, password = entry
            tools.redact(password)
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            tools.redact(token)
            auths[registry.url] = {"auth": token}
    if not auths:
        yield None
        return
    with scratch.private_folder("docker-") as folder:
        config = folder / "config.json"
        config.touch(mode=0o600)
        config.write_text(json.dumps({"auths": auths}), encoding="utf-8")
        yield folder
