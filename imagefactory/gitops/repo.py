"""Write-back to the GitOps repository with git: a fresh clone per change, one commit, a push;
on a rejected push (someone pushed first): fetch, rebase, retry — bounded, then a clear error.

Every git command goes through ``imagefactory.tools.run``. The clone lives in a temporary
folder, so a failure never leaves a half-edited working copy behind.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from imagefactory import tools
from imagefactory.errors import ToolError, UserError

GIT_TIMEOUT = 120
_IDENTITY = {
    "GIT_AUTHOR_NAME": "imagefactory",
    "GIT_AUTHOR_EMAIL": "imagefactory@localhost",
    "GIT_COMMITTER_NAME": "imagefactory",
    "GIT_COMMITTER_EMAIL": "imagefactory@localhost",
}


def git(workdir: Path, *args: str, check: bool = True, hint: str | None = None) -> tools.Result:
    env = {k: os.environ.get(k) or v for k, v in _IDENTITY.items()}
    env["GIT_TERMINAL_PROMPT"] = "0"  # never wait for a password on a terminal
    return tools.run(
        ["git", "-C", workdir, *args], env=env, timeout=GIT_TIMEOUT, check=check, hint=hint
    )


@contextmanager
def clone(url: str, branch: str) -> Iterator[Path]:
    """A fresh clone of ``branch`` in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="imagefactory-gitops-") as temp:
        workdir = Path(temp) / "repo"
        result = tools.run(
            ["git", "clone", "--quiet", "--branch", branch, "--single-branch", url, workdir],
            env={"GIT_TERMINAL_PROMPT": "0"},
            timeout=GIT_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise UserError(
                f"cannot clone branch '{branch}' of the GitOps repository {url}",
                hint=(result.output.strip().splitlines() or ["git clone failed"])[-1]
                + " (check repo_url and branch in gitops.yaml, and the network)",
            )
        yield workdir


def head(workdir: Path) -> str:
    return git(workdir, "rev-parse", "HEAD").output.strip()


def commit_and_push(
    workdir: Path,
    branch: str,
    apply: Callable[[Path], bool],
    message: Callable[[], str],
    *,
    attempts: int,
) -> str | None:
    """Apply the change, commit it and push it to ``branch``; None when nothing changed.

    ``apply(workdir)`` edits the files and says whether anything changed. When the push is
    rejected because the remote moved on, the commit is rebased onto the remote branch (or, on a
    conflict, the change is applied again to it) and pushed again, up to ``attempts`` times.
    """
    if not _commit(workdir, apply, message):
        return None
    for attempt in range(1, attempts + 1):
        pushed = git(workdir, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", check=False)
        if pushed.returncode == 0:
            return head(workdir)
        if not _rejected(pushed.output):
            raise UserError(
                f"cannot push to the GitOps repository (branch {branch})",
                hint=(pushed.output.strip().splitlines() or ["git push failed"])[-1],
            )
        if attempt == attempts:
            break
        time.sleep(random.uniform(0.05, 0.2) * min(attempt, 5))  # spread the retries apart
        git(workdir, "fetch", "--quiet", "origin", branch)
        rebased = git(workdir, "rebase", "--quiet", f"origin/{branch}", check=False)
        if rebased.returncode != 0:
            git(workdir, "rebase", "--abort", check=False)
            git(workdir, "reset", "--quiet", "--hard", f"origin/{branch}")
            if not _commit(workdir, apply, message):
                return None  # someone else already made the same change
        elif (
            git(workdir, "rev-parse", "HEAD").output
            == git(workdir, "rev-parse", f"origin/{branch}").output
        ):
            return None  # the rebase dropped our commit: the remote already has the change
    raise UserError(
        f"the push to branch {branch} was rejected {attempts} times: others keep pushing first",
        hint="run the command again; raise attempts in gitops.yaml if this repeats",
    )


def force_push_branch(workdir: Path, branch: str) -> None:
    try:
        git(workdir, "push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch}")
    except ToolError as exc:
        raise UserError(
            f"cannot push branch {branch} to the GitOps repository",
            hint=(exc.output_tail.splitlines() or ["git push failed"])[-1],
        ) from exc


def _commit(workdir: Path, apply: Callable[[Path], bool], message: Callable[[], str]) -> bool:
    if not apply(workdir):
        return False
    git(workdir, "add", "--all")
    if git(workdir, "diff", "--cached", "--quiet", check=False).returncode == 0:
        return False
    git(workdir, "commit", "--quiet", "--no-verify", "-m", message())
    return True


def _rejected(output: str) -> bool:
    text = output.lower()
    return any(
        marker in text
        for marker in (
            "[rejected]",
            "non-fast-forward",
            "fetch first",
            "failed to update ref",
            "cannot lock ref",
            "remote rejected",
        )
    )
