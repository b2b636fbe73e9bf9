"""The one git wrapper (``imagefactory.git``) against real repositories made with ``git init``:
the commit a checkout is at (none outside git or before the first commit), the identity and
the no-prompt environment every command gets, and failures as the project's tool error."""

from __future__ import annotations

import datetime
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from imagefactory import git
from imagefactory.errors import ToolError

IDENTITY = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No user configuration, no identity from the environment, no repository above tmp_path."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in IDENTITY:
        monkeypatch.delenv(name, raising=False)


def plain_git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def new_repository(path: Path) -> Path:
    path.mkdir()
    git.run(path, "init", "--quiet", "--initial-branch=main")
    return path


def commit(repo: Path, name: str = "a.txt") -> None:
    (repo / name).write_text(name)
    git.run(repo, "add", name)
    git.run(repo, "commit", "--quiet", "--no-verify", "-m", f"add {name}")


def test_head_is_the_commit_and_its_committer_date(tmp_path: Path) -> None:
    repo = new_repository(tmp_path / "repo")
    commit(repo)
    commit(repo, "b.txt")

    head = git.head(repo)

    assert head is not None
    assert head.sha == plain_git(repo, "rev-parse", "HEAD")
    assert head.committed == plain_git(repo, "log", "-1", "--format=%cI")
    assert datetime.datetime.fromisoformat(head.committed).tzinfo is not None
    assert git.revision(repo) == head.sha


def test_head_reads_from_a_folder_inside_the_checkout(tmp_path: Path) -> None:
    repo = new_repository(tmp_path / "repo")
    commit(repo)
    (repo / "catalog").mkdir()
    assert git.revision(repo / "catalog") == plain_git(repo, "rev-parse", "HEAD")


def test_no_commit_outside_git_or_before_the_first_commit(tmp_path: Path) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    assert git.head(outside) is None
    assert git.revision(outside) is None
    empty = new_repository(tmp_path / "empty")
    assert git.head(empty) is None


def test_commits_carry_imagefactorys_identity_unless_the_environment_has_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = new_repository(tmp_path / "repo")
    commit(repo)
    assert plain_git(repo, "log", "-1", "--format=%an <%ae> / %cn <%ce>") == (
        "imagefactory <imagefactory@localhost> / imagefactory <imagefactory@localhost>"
    )
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Ada")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "ci@example.org")
    commit(repo, "b.txt")
    assert plain_git(repo, "log", "-1", "--format=%an <%ae> / %cn <%ce>") == (
        "Ada <imagefactory@localhost> / imagefactory <ci@example.org>"
    )


def test_git_never_prompts_for_a_password(tmp_path: Path) -> None:
    repo = new_repository(tmp_path / "repo")
    shown = git.run(repo, "-c", "alias.environment=!env", "environment").output.splitlines()
    assert "GIT_TERMINAL_PROMPT=0" in shown


def test_without_a_repository_git_runs_where_it_is_told(tmp_path: Path) -> None:
    origin = new_repository(tmp_path / "origin")
    commit(origin)
    git.run(None, "clone", "--quiet", origin, tmp_path / "clone")
    assert git.revision(tmp_path / "clone") == git.revision(origin)


def test_a_failure_is_a_tool_error_unless_it_is_asked_for(tmp_path: Path) -> None:
    repo = new_repository(tmp_path / "repo")
    with pytest.raises(ToolError) as caught:
        git.run(repo, "rev-parse", "--verify", "no-such-branch", hint="name a branch")
    assert caught.value.returncode != 0
    assert caught.value.hint == "name a branch"
    result = git.run(repo, "rev-parse", "--verify", "no-such-branch", check=False)
    assert result.returncode != 0


# --------------------------------------------------------------------------- a dirty tree


def test_a_clean_checkout_is_not_dirty(tmp_path: Path) -> None:
    repo = new_repository(tmp_path / "repo")
    commit(repo)
    (repo / ".git" / "info" / "exclude").write_text("ignored.txt\n")
    (repo / "ignored.txt").write_text("git ignores it")
    assert git.dirty(repo) is False


@pytest.mark.parametrize(
    "change",
    [
        lambda repo: (repo / "a.txt").write_text("changed"),
        lambda repo: (repo / "a.txt").unlink(),
        lambda repo: (repo / "new.txt").write_text("not added yet"),
        lambda repo: (repo / "new.txt").write_text("added") or git.run(repo, "add", "new.txt"),
    ],
    ids=["changed", "deleted", "untracked", "staged"],
)
def test_a_change_under_the_root_makes_it_dirty(
    tmp_path: Path, change: Callable[[Path], object]
) -> None:
    repo = new_repository(tmp_path / "repo")
    commit(repo)
    change(repo)
    assert git.dirty(repo) is True


def test_only_the_root_counts_and_ignored_folders_do_not(tmp_path: Path) -> None:
    """A catalog in a folder of a larger repository: a change elsewhere is not its change, nor
    is what imagefactory writes into its own work folder (a name with glob characters too)."""
    repo = new_repository(tmp_path / "repo")
    catalog = repo / "catalog"
    catalog.mkdir()
    commit(repo, "catalog/image.yaml")
    (repo / "elsewhere.txt").write_text("another team's file")
    work = catalog / ".imagefactory [*]"
    work.mkdir()
    (work / "state.json").write_text("{}")
    assert git.dirty(catalog, ignore=[work]) is False
    assert git.dirty(catalog) is True
    assert git.dirty(repo, ignore=[work]) is True
    (catalog / "image.yaml").write_text("edited")
    assert git.dirty(catalog, ignore=[work]) is True
