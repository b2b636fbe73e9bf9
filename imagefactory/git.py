"""The one git wrapper: every git command imagefactory runs goes through :func:`run`.

Its callers: the GitOps write-back (clone, commit, push, rebase), and the commit a checkout is
at (:func:`head`), which push and promote write to the audit log and the build writes to the
OCI revision labels (``<sha>-dirty`` when the tree differs from it: :func:`dirty`). Commands
run through ``imagefactory.tools.run`` with a commit identity (the environment's, else
imagefactory's) and never wait for a password on a terminal.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
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


def dirty(root: Path, *, ignore: Sequence[Path] = ()) -> bool:
    """Whether the files under ``root`` differ from the commit the checkout is at: a tracked
    file changed (staged or not), deleted, or a file git does not ignore added. Paths in
    ``ignore`` (imagefactory's own work folder, say) do not count; nor do changes outside
    ``root``. Reads without taking git's optional index lock (a read-only checkout is fine)."""
    top = root.resolve()
    inside = [path.resolve() for path in ignore]
    excluded = [
        f":(exclude,literal){path.relative_to(top).as_posix()}"
        for path in inside
        if path.is_relative_to(top) and path != top
    ]
    result = run(
        root,
        "--no-optional-locks",
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=normal",
        "--",
        ".",
        *excluded,
        hint=f"git could not read the state of the checkout at {root}",
        separate_stderr=True,
    )
    return bool(result.output.strip("\0\n"))
