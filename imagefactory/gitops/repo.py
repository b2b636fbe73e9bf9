"""Write-back to the GitOps repository with git: a fresh clone per change, one commit, a push;
on a rejected push (someone pushed first): fetch, rebase, retry — bounded, then a clear error.

Every git command goes through ``imagefactory.git.run``. The clone lives in a temporary
folder, so a failure never leaves a half-edited working copy behind.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from imagefactory import git, tools
from imagefactory.errors import ToolError, UserError
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.gitops import GitopsSettings, load_settings


def settings_for_run(catalog: Catalog) -> GitopsSettings:
    """gitops.yaml for a command that clones and pushes: the variable of its GitLab token is
    declared secret first, so that no child process (git among them) inherits the token."""
    settings = load_settings(catalog)
    if settings.gitlab is not None:
        tools.secret_names(settings.gitlab.token_env)
    return settings


@contextmanager
def clone(url: str, branch: str) -> Iterator[Path]:
    """A fresh clone of ``branch`` in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="imagefactory-gitops-") as temp:
        workdir = Path(temp) / "repo"
        result = git.run(
            None,
            "clone",
            "--quiet",
            "--branch",
            branch,
            "--single-branch",
            url,
            workdir,
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
    return git.run(workdir, "rev-parse", "HEAD").output.strip()


class Edit(Protocol):
    """What applying a change to a working copy did."""

    @property
    def message(self) -> str | None:
        """The commit message; None when the working copy already had the change."""
        ...


EditT = TypeVar("EditT", bound=Edit)


@dataclass(frozen=True)
class Pushed(Generic[EditT]):
    commit: str | None  # the pushed commit; None when nothing had to change
    edit: EditT  # the change as last applied (applied again after a conflicting rebase)


def commit_and_push(
    workdir: Path, branch: str, apply: Callable[[Path], EditT], *, attempts: int
) -> Pushed[EditT]:
    """Apply the change, commit it and push it to ``branch``.

    ``apply(workdir)`` edits the files and says what it did. When the push is rejected because
    the remote moved on, the commit is rebased onto the remote branch (or, on a conflict, the
    change is applied again to it) and pushed again, up to ``attempts`` times.
    """
    edit = apply(workdir)
    if not _commit(workdir, edit):
        return Pushed(None, edit)
    for attempt in range(1, attempts + 1):
        pushed = git.run(
            workdir, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", check=False
        )
        if pushed.returncode == 0:
            return Pushed(head(workdir), edit)
        if not _rejected(pushed.output):
            raise UserError(
                f"cannot push to the GitOps repository (branch {branch})",
                hint=(pushed.output.strip().splitlines() or ["git push failed"])[-1],
            )
        if attempt == attempts:
            break
        time.sleep(random.uniform(0.05, 0.2) * min(attempt, 5))  # spread the retries apart
        git.run(workdir, "fetch", "--quiet", "origin", branch)
        rebased = git.run(workdir, "rebase", "--quiet", f"origin/{branch}", check=False)
        if rebased.returncode != 0:
            git.run(workdir, "rebase", "--abort", check=False)
            git.run(workdir, "reset", "--quiet", "--hard", f"origin/{branch}")
            edit = apply(workdir)
            if not _commit(workdir, edit):
                return Pushed(None, edit)  # someone else already made the same change
        elif (
            git.run(workdir, "rev-parse", "HEAD").output
            == git.run(workdir, "rev-parse", f"origin/{branch}").output
        ):
            return Pushed(None, edit)  # the rebase dropped our commit: the remote has the change
    raise UserError(
        f"the push to branch {branch} was rejected {attempts} times: others keep pushing first",
        hint="run the command again; raise attempts in gitops.yaml if this repeats",
    )


def force_push_branch(workdir: Path, branch: str) -> None:
    try:
        git.run(workdir, "push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch}")
    except ToolError as exc:
        raise UserError(
            f"cannot push branch {branch} to the GitOps repository",
            hint=(exc.output_tail.splitlines() or ["git push failed"])[-1],
        ) from exc


def _commit(workdir: Path, edit: Edit) -> bool:
    if edit.message is None:
        return False
    git.run(workdir, "add", "--all")
    if git.run(workdir, "diff", "--cached", "--quiet", check=False).returncode == 0:
        return False
    git.run(workdir, "commit", "--quiet", "--no-verify", "-m", edit.message)
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
