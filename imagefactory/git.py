"""The one git wrapper: every git command imagefactory runs goes through :func:`run`.

Its callers: the GitOps write-back (clone, commit, push, rebase), and the commit a checkout is
at (:func:`head`), which push and promote write to the audit log and the build writes to the
OCI revision labels. Commands run through ``imagefactory.tools.run`` with a commit identity
(the environment's, else imagefactory's) and never wait for a password on a terminal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from imagefactory import tools

TIMEOUT = 120
_IDENTITY = {
    "GIT_AUTHOR_NAME": "imagefactory",
    "GIT_AUTHOR_EMAIL": "imagefactory@localhost",
    "GIT_COMMITTER_NAME": "imagefactory",
    "GIT_COMMITTER_EMAIL": "imagefactory@localhost",
}


@dataclass(frozen=True)
class Commit:
    sha: str
    committed: str  # the committer date, strict ISO 8601 (reproducible, unlike the time now)


def run(
    repo: Path | None,
    *args: str | Path,
    check: bool = True,
    hint: str | None = None,
    separate_stderr: bool = False,
) -> tools.Result:
    """``git -C repo ARGS`` (plain ``git ARGS`` when ``repo`` is None, as for a clone)."""
    env = {name: os.environ.get(name) or value for name, value in _IDENTITY.items()}
    env["GIT_TERMINAL_PROMPT"] = "0"
    where: list[str | Path] = ["-C", repo] if repo is not None else []
    return tools.run(
        ["git", *where, *args],
        env=env,
        timeout=TIMEOUT,
        check=check,
        hint=hint,
        separate_stderr=separate_stderr,
    )


def head(root: Path) -> Commit | None:
    """The commit the checkout at ``root`` is at; None outside a git checkout or before its
    first commit."""
    result = run(
        root,
        "log",
        "-1",
        "--no-show-signature",
        "--format=%H %cI",
        check=False,
        separate_stderr=True,
    )
    parts = result.output.split()
    if result.returncode != 0 or len(parts) != 2:
        return None
    return Commit(*parts)


def revision(root: Path) -> str | None:
    """The sha of :func:`head`, or None."""
    commit = head(root)
    return commit.sha if commit else None
