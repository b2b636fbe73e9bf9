"""Write-back to a real git remote on disk (``git init --bare``): push mode, no-op updates,
rejected pushes (fetch, rebase, retry — bounded), drift, and bad input leaving nothing changed.

The helpers here (``make_remote``, ``git``, ``write_settings``) are shared with
tests/integration/test_gitops.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import imagefactory.cli  # noqa: F401  (registers the commands)
from imagefactory import git as git_wrapper
from imagefactory.cli import app
from imagefactory.errors import UserError
from imagefactory.gitops import repo
from imagefactory.gitops.pin import PinResult, pin_digest, pin_if_deployed
from imagefactory.spec.loader import load_catalog

from .conftest import REPO, without_shell_less

DIGEST = "sha256:" + "1" * 64
OTHER = "sha256:" + "2" * 64
OVERLAY = "apps/rag-api/overlays/{env}/kustomization.yaml"
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@localhost",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@localhost",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}
runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})


def git(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        ["git", *map(str, args)], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def cli(*args: str | Path) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def write_settings(
    root: Path,
    remote: Path | str,
    *,
    gitlab_url: str = "http://127.0.0.1:9",
    prod: str = "merge_request",
) -> None:
    text = (REPO / "gitops.yaml").read_text()
    text = text.replace(
        "repo_url: .host/gitops.git",
        f"repo_url: {remote}",
    )
    text = text.replace("url: https://gitlab.example-bank.internal", f"url: {gitlab_url}")
    text = text.replace("mode: merge_request", f"mode: {prod}")
    (root / "gitops.yaml").write_text(text)


def make_remote(root: Path, where: Path) -> Path:
    """A bare remote holding the layout ``gitops init`` writes for the catalog at ``root``."""
    remote = where / "deployments.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", remote)
    seed = where / "seed"
    git("init", "--quiet", "--initial-branch=main", seed)
    result = cli("-C", root, "gitops", "init", seed)
    assert result.exit_code == 0, result.output
    git("add", "--all", cwd=seed)
    git("commit", "--quiet", "-m", "layout", cwd=seed)
    git("push", "--quiet", str(remote), "HEAD:refs/heads/main", cwd=seed)
    shutil.rmtree(seed)
    return remote


def pin(
    root: Path,
    env: str,
    digest: str,
    *,
    ref: str = "app/rag-api",
    version: str = "0.3.0",
    audit_id: str | None = "a-1",
) -> PinResult:
    """The pin ``gitops update`` makes once the release gate let it through (the gate and the
    registry are tests/unit/test_deploy.py's and tests/integration/test_gitops.py's)."""
    return pin_digest(load_catalog(root), ref, env, digest, version=version, audit_id=audit_id)


def show(remote: Path, path: str, rev: str = "main") -> str:
    return git("--git-dir", remote, "show", f"{rev}:{path}")


def commits(remote: Path, rev: str = "main") -> list[str]:
    return git("--git-dir", remote, "rev-list", rev).split()


@pytest.fixture
def setup(catalog_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    without_shell_less(catalog_dir)  # one application: one row to check
    write_settings(catalog_dir, tmp_path / "deployments.git")
    return catalog_dir, make_remote(catalog_dir, tmp_path)


def test_update_pins_only_that_overlay_and_pushes_one_commit(setup: tuple[Path, Path]) -> None:
    root, remote = setup
    before = show(remote, OVERLAY.format(env="dev"))
    result = pin(root, "dev", DIGEST, version="0.2.9", audit_id="a-123")
    assert result.action == "pushed" and result.previous is None
    after = show(remote, OVERLAY.format(env="dev"))
    changed = [
        (b, a) for b, a in zip(before.splitlines(), after.splitlines(), strict=True) if b != a
    ]
    assert changed == [
        ('      app.kubernetes.io/version: "0.3.0"', '      app.kubernetes.io/version: "0.2.9"'),
        (
            '    newTag: "0.3.0"  # not promoted here yet: the first pin replaces this tag',
            f"    digest: {DIGEST}",  # the comment went with the tag
        ),
    ]
    assert len(commits(remote)) == 2
    files = git("--git-dir", remote, "show", "--name-only", "--format=", "main").split()
    assert files == [OVERLAY.format(env="dev")]
    message = git("--git-dir", remote, "log", "-1", "--format=%B", "main")
    # the version the caller read from the registry, not image.yaml's 0.3.0
    assert message.splitlines()[0] == f"dev: pin app/rag-api 0.2.9 {DIGEST[:19]} [skip ci]"
    for line in (
        "image: app/rag-api",
        "version: 0.2.9",
        f"digest: {DIGEST}",
        "from: (none)",
        f"to: {DIGEST}",
        "audit: a-123",
    ):
        assert line in message.splitlines()


def test_nothing_is_committed_when_the_pin_is_already_there(setup: tuple[Path, Path]) -> None:
    root, remote = setup
    assert pin(root, "dev", DIGEST).action == "pushed"
    head = commits(remote)
    assert pin(root, "dev", DIGEST).action == "unchanged"
    assert commits(remote) == head
    assert pin(root, "dev", OTHER).previous == DIGEST
    assert "from: " + DIGEST in git("--git-dir", remote, "log", "-1", "--format=%B", "main")


def test_skip_ci_can_be_turned_off(setup: tuple[Path, Path]) -> None:
    root, remote = setup
    path = root / "gitops.yaml"
    path.write_text(path.read_text().replace("skip_ci: true", "skip_ci: false"))
    assert pin(root, "dev", DIGEST).commit is not None
    assert "[skip ci]" not in git("--git-dir", remote, "log", "-1", "--format=%B", "main")


@dataclass(frozen=True)
class Edited:
    """What a test's change to a working copy did: it always changes something."""

    message: str | None = "mine"


def test_a_rejected_push_is_rebased_and_retried(setup: tuple[Path, Path], tmp_path: Path) -> None:
    _, remote = setup
    where = tmp_path / "others"
    where.mkdir()
    calls = []

    def apply(workdir: Path) -> Edited:
        calls.append(workdir)
        if len(calls) == 1:  # someone pushes after our clone, before our push
            push_from_elsewhere(remote, where, "apps/rag-api/overlays/prod/resources.yaml", "# x\n")
        (workdir / "apps/mine.txt").write_text("mine\n")
        return Edited()

    with repo.clone(str(remote), "main") as workdir:
        pushed = repo.commit_and_push(workdir, "main", apply, attempts=3).commit
    assert pushed == commits(remote)[0]
    assert len(calls) == 1  # rebased, not re-applied
    assert show(remote, "apps/mine.txt") == "mine\n"
    assert show(remote, "apps/rag-api/overlays/prod/resources.yaml") == "# x\n"
    assert git("--git-dir", remote, "log", "--merges", "--oneline", "main") == ""


def test_a_conflicting_rebase_applies_the_change_again(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    """Applied again to the remote's newer state, whose reading (the previous pin, for the
    commit message and the result) is the one reported."""
    _, remote = setup
    where = tmp_path / "others"
    where.mkdir()
    target = "apps/shared.txt"
    calls = []

    def apply(workdir: Path) -> Edited:
        calls.append(1)
        if len(calls) == 1:
            push_from_elsewhere(remote, where, target, "theirs\n")
        path = workdir / target
        old = path.read_text() if path.exists() else ""
        path.write_text(old + "mine\n")
        return Edited(f"mine after {old!r}")

    with repo.clone(str(remote), "main") as workdir:
        pushed = repo.commit_and_push(workdir, "main", apply, attempts=3)
        assert pushed.commit
    assert len(calls) == 2
    assert show(remote, target) == "theirs\nmine\n"
    assert pushed.edit == Edited("mine after 'theirs\\n'")
    assert git("--git-dir", remote, "log", "-1", "--format=%s", "main").strip() == (
        "mine after 'theirs\\n'"
    )


def test_no_commit_when_the_change_changes_nothing(setup: tuple[Path, Path]) -> None:
    _, remote = setup
    head = commits(remote)
    with repo.clone(str(remote), "main") as workdir:
        unchanged = repo.commit_and_push(workdir, "main", lambda _: Edited(None), attempts=3)
        touched = repo.commit_and_push(workdir, "main", lambda _: Edited("no diff"), attempts=3)
    assert (unchanged.commit, touched.commit) == (None, None)
    assert commits(remote) == head


def push_from_elsewhere(remote: Path, where: Path, path: str, text: str) -> None:
    other = where / f"other-{len(list(where.iterdir()))}"
    git("clone", "--quiet", remote, other)
    (other / path).write_text(text)
    git("add", path, cwd=other)
    git("commit", "--quiet", "-m", "someone else", cwd=other)
    git("push", "--quiet", "origin", "HEAD:main", cwd=other)


def test_retries_are_bounded(setup: tuple[Path, Path], tmp_path: Path) -> None:
    _, remote = setup
    where = tmp_path / "others"
    where.mkdir()

    def apply(workdir: Path) -> Edited:
        (workdir / "apps/mine.txt").write_text("mine\n")
        return Edited()

    with repo.clone(str(remote), "main") as workdir:
        real_git = git_wrapper.run

        def racing_git(w: Path, *args: str, **kw: object) -> object:
            if args[:1] == ("push",):  # someone always pushes first
                push_from_elsewhere(remote, where, f"apps/n{len(list(where.iterdir()))}", "x\n")
            return real_git(w, *args, **kw)  # type: ignore[arg-type]

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(git_wrapper, "run", racing_git)
            with pytest.raises(UserError, match="rejected 3 times"):
                repo.commit_and_push(workdir, "main", apply, attempts=3)
    assert "apps/mine.txt" not in git("--git-dir", remote, "ls-tree", "-r", "--name-only", "main")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "qa", f"app/rag-api@{DIGEST}"], "no environment 'qa'"),
        (["--env", "dev", f"runtime/llm:cpu@{DIGEST}"], "runtime/llm:cpu is not an application"),
        (["--env", "dev", f"app/nope@{DIGEST}"], "no image 'app/nope' in the catalog"),
        (["--env", "dev", "app/rag-api@sha256:1234"], "is not an image digest"),
        (["--env", "dev", f"app/rag-api@sha256:{'0' * 64}"], "is the all-zero placeholder"),
        (["--env", "dev", "--approver", "ann", f"app/rag-api@{DIGEST}"], "goes with --approve"),
        (["--env", "dev", "app/rag-api"], "is not IMAGE@sha256"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    setup: tuple[Path, Path], args: list[str], message: str
) -> None:
    root, remote = setup
    head = commits(remote)
    result = cli("-C", root, "gitops", "update", *args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert commits(remote) == head
    assert git("--git-dir", remote, "branch", "--list").split() == ["*", "main"]


def test_an_unreachable_remote_is_a_clear_error(
    catalog_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    write_settings(catalog_dir, tmp_path / "missing.git")
    with pytest.raises(UserError, match="cannot clone branch 'main' of the GitOps repository"):
        pin(catalog_dir, "dev", DIGEST)
    assert list(temp.iterdir()) == []  # the clone folder is gone


def _state(root: Path, env: str, digest: str) -> None:
    path = root / ".imagefactory/state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "content_hash": "sha256:" + "0" * 64,
        "inputs": {},
        "version": "0.3.0",
        "environments": {
            env: {
                "version": "0.3.0",
                "digest": digest,
                "tags": ["0.3.0"],
                "registries": [env],
                "at": "2026-01-01T00:00:00Z",
                "audit_id": "a-9",
            }
        },
    }
    path.write_text(json.dumps({"schema": 1, "images": {"app/rag-api": record}}))


def test_diff_reports_drift_between_gitops_and_state(setup: tuple[Path, Path]) -> None:
    root, _ = setup

    def check(*extra: str) -> Result:
        return cli("-C", root, "gitops", "diff", "--env", "dev", "--check", *extra)

    never = {"image": "app/rag-api", "pinned": None, "state": None}
    result = check("--json")
    assert result.exit_code == 0, result.output  # never deployed: not drift
    assert json.loads(result.stdout)["images"] == [
        {**never, "status": "not-deployed", "drift": False}
    ]
    _state(root, "dev", DIGEST)
    assert check().exit_code == 1  # state holds it, the overlay pins no digest: drift
    result = cli("-C", root, "gitops", "diff", "--env", "dev", "--json")
    assert json.loads(result.stdout)["images"] == [
        {**never, "state": DIGEST, "status": "unpinned", "drift": True}
    ]
    pin(root, "dev", DIGEST)
    result = check("--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["images"][0]["status"] == "in-sync"
    _state(root, "dev", OTHER)
    result = check()
    assert result.exit_code == 1 and "drift" in result.stdout
    assert (
        "1 image(s) in dev pin no digest or another digest than state says dev holds"
        in result.stderr
    )
    (root / ".imagefactory/state.json").unlink()  # a checkout without this state: not drift
    result = check("--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["images"][0]["status"] == "not-in-state"


def test_init_keeps_existing_overlays_unless_forced(catalog_dir: Path, tmp_path: Path) -> None:
    write_settings(catalog_dir, tmp_path / "r.git")
    out = tmp_path / "out"
    assert cli("-C", catalog_dir, "gitops", "init", out).exit_code == 0
    overlay = out / OVERLAY.format(env="prod")
    overlay.write_text(overlay.read_text() + "# mine\n")
    result = cli("-C", catalog_dir, "gitops", "init", out, "--json")
    assert OVERLAY.format(env="prod") in json.loads(result.stdout)["kept"]
    assert overlay.read_text().endswith("# mine\n")
    assert cli("-C", catalog_dir, "gitops", "init", out, "--force").exit_code == 0
    assert not overlay.read_text().endswith("# mine\n")
    assert load_catalog(catalog_dir).project.project == "bank-ai-lab"


def test_the_release_hook_pins_applications_and_skips_the_rest(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    root, remote = setup
    catalog = load_catalog(root)
    assert (
        pin_if_deployed(catalog, "runtime/llm:cpu", "dev", DIGEST, version="1.0.0", audit_id=None)
        is None
    )
    result = pin_if_deployed(
        catalog, "app/rag-api", "preprod", DIGEST, version="0.3.0", audit_id="a-7"
    )
    assert result is not None and result.action == "pushed"
    assert "audit: a-7" in git("--git-dir", remote, "log", "-1", "--format=%B", "main")
    (root / "gitops.yaml").unlink()
    assert (
        pin_if_deployed(
            load_catalog(root), "app/rag-api", "preprod", OTHER, version="0.3.0", audit_id=None
        )
        is None
    )


def test_diff_reads_a_local_checkout(setup: tuple[Path, Path], tmp_path: Path) -> None:
    root, remote = setup
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", remote, checkout)
    result = cli("-C", root, "gitops", "diff", "--env", "prod", "--repo-dir", checkout, "--json")
    assert json.loads(result.stdout)["images"][0]["status"] == "not-deployed"
    assert cli("-C", root, "gitops", "diff", "--env", "qa").exit_code == 1


@pytest.mark.parametrize(
    "entry",
    [
        "images: []\n",  # the entry removed
        "images:\n- name: rag-api\n  newName: x.example/rag-api\n  newTag: latest\n",
    ],
)
def test_an_overlay_without_the_digest_state_holds_is_drift(
    setup: tuple[Path, Path], tmp_path: Path, entry: str
) -> None:
    """Once pinned, an overlay whose entry is removed, or pins a tag, is drift (unpinned)."""
    root, remote = setup
    _state(root, "dev", DIGEST)
    pin(root, "dev", DIGEST)
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", remote, checkout)
    (checkout / OVERLAY.format(env="dev")).write_text(entry)
    args = ("-C", root, "gitops", "diff", "--env", "dev", "--repo-dir", checkout)
    assert cli(*args, "--check").exit_code == 1
    result = cli(*args, "--json")
    [row] = json.loads(result.stdout)["images"]
    assert (row["pinned"], row["state"], row["status"], row["drift"]) == (
        None,
        DIGEST,
        "unpinned",
        True,
    )


def test_an_overlay_that_is_not_utf8_is_a_clear_error(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    root, remote = setup
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", remote, checkout)
    (checkout / OVERLAY.format(env="dev")).write_bytes(b"images: [\xff]\n")
    result = cli("-C", root, "gitops", "diff", "--env", "dev", "--repo-dir", checkout)
    assert result.exit_code == 1
    assert f"{OVERLAY.format(env='dev')} is not UTF-8 text (byte 9)" in result.stderr
