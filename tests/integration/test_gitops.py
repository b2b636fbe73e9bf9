"""GitOps end to end.

The write-back (no Docker, no registry: git and a free port on 127.0.0.1): 10 concurrent pins
against one bare git remote on disk, and merge-request mode against a local fake of GitLab's
REST API. The pins are the ones ``gitops update``, push and promote make once the release gate
let a digest through (``gitops.pin.pin_digest``).

``gitops update`` through the release gate, against the real registry and engine: the example
catalog, tested and pushed to dev; an untested digest, the all-zero digest and a digest the
environment does not hold are refused with nothing written; a tested one is pinned under the
version its registry tag names, with an audit record. Also: drift for an image never deployed
to an environment, and users by name in the Deployment's securityContext."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gitlab
import gitlab.exceptions
import pytest

from imagefactory.errors import UserError
from tests.fakes.gitlab_api import FakeGitlab, serve
from tests.unit.conftest import copy_example_catalog
from tests.unit.test_gitops_repo import (
    GIT_ENV,
    commits,
    git,
    make_remote,
    pin,
    show,
    write_settings,
)

pytestmark = pytest.mark.integration

# One pin in a process of its own: what a gitops update, push or promotion does once gated.
PIN = """
import sys
from pathlib import Path
from imagefactory.errors import UserError
from imagefactory.gitops.pin import pin_digest
from imagefactory.spec.loader import load_catalog
root, ref, digest = sys.argv[1:]
try:
    pin_digest(load_catalog(Path(root)), ref, "preprod", digest, version="1.0.0", audit_id="a-1")
except UserError as exc:
    sys.exit(f"{exc.message} ({exc.hint})")
"""
TOKEN = "fake-gitlab-token-0123456789"
DIGEST = "sha256:" + "d" * 64
OTHER = "sha256:" + "e" * 64


def _digest(n: int) -> str:
    return "sha256:" + f"{n + 1:02d}" * 32  # never the all-zero placeholder


def test_ten_concurrent_promotions_to_one_environment_lose_nothing(tmp_path: Path) -> None:
    (tmp_path / "catalog").mkdir()
    root = copy_example_catalog(tmp_path / "catalog")
    for n in range(10):
        folder = root / f"images/app/svc-{n}"
        folder.mkdir(parents=True)
        (folder / "image.yaml").write_text(
            f"name: app/svc-{n}\nversion: 1.{n}.0\nfrom: runtime/llm:cpu\nuser: app\n"
            f"ports: [{9000 + n}]\n"
        )
    write_settings(root, tmp_path / "deployments.git")
    remote = make_remote(root, tmp_path)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PIN, root, f"app/svc-{n}", _digest(n)],
            env=GIT_ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in range(10)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    assert [p.returncode for p in processes] == [0] * 10, outputs
    for n in range(10):
        overlay = show(remote, f"apps/svc-{n}/overlays/preprod/kustomization.yaml")
        assert f"digest: {_digest(n)}" in overlay, f"svc-{n} lost its pin"
    assert len(commits(remote)) == 1 + 10  # the layout, then one commit per promotion
    assert git("--git-dir", remote, "log", "--merges", "--oneline", "main") == ""
    parents = git("--git-dir", remote, "log", "--format=%P", "main").split("\n")
    assert all(len(p.split()) <= 1 for p in parents)  # linear: no commit has two parents


def _mr_setup(tmp_path: Path, fake: FakeGitlab) -> tuple[Path, Path]:
    root = copy_example_catalog(tmp_path)
    remote_path = tmp_path / "deployments.git"
    write_settings(root, remote_path, gitlab_url=fake.url)
    remote = make_remote(root, tmp_path)
    fake.branches = lambda: set(
        git("--git-dir", remote, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()
    )
    return root, remote


def test_merge_request_mode_opens_then_updates_one_mr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
    with serve(FakeGitlab(token=TOKEN, project_path="platform/deployments")) as fake:
        root, remote = _mr_setup(tmp_path, fake)
        main_before = commits(remote)
        result = pin(root, "prod", DIGEST)
        assert result.merge_request is not None and result.merge_request.action == "created"
        assert result.merge_request.iid == 1
        branch = "imagefactory/prod/rag-api"
        assert f"digest: {DIGEST}" in show(
            remote, "apps/rag-api/overlays/prod/kustomization.yaml", branch
        )
        assert commits(remote) == main_before  # prod's branch is untouched until the MR merges
        [post] = fake.calls("POST")
        assert post.path == "/api/v4/projects/42/merge_requests"
        assert post.body["source_branch"] == branch
        assert post.body["target_branch"] == "main"
        assert post.body["title"].startswith(f"prod: pin app/rag-api 0.3.0 {DIGEST[:19]}")
        assert f"to: {DIGEST}" in post.body["description"]
        assert all(r.headers.get("PRIVATE-TOKEN") == TOKEN for r in fake.requests)
        assert (
            fake.requests[0].path == "/api/v4/projects/platform%2Fdeployments"
            or fake.requests[0].path == "/api/v4/projects/platform/deployments"
        )

        result = pin(root, "prod", OTHER)
        assert result.merge_request is not None and result.merge_request.action == "updated"
        assert len(fake.calls("POST")) == 1  # never a duplicate
        [put] = fake.calls("PUT")
        assert put.path == "/api/v4/projects/42/merge_requests/1"
        assert OTHER[:19] in put.body["title"]
        assert f"digest: {OTHER}" in show(
            remote, "apps/rag-api/overlays/prod/kustomization.yaml", branch
        )
        assert len(fake.merge_requests) == 1


def test_the_same_pin_again_pushes_nothing_new_and_keeps_one_mr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
    with serve(FakeGitlab(token=TOKEN, project_path="platform/deployments")) as fake:
        root, remote = _mr_setup(tmp_path, fake)
        branch = "imagefactory/prod/rag-api"
        pin(root, "prod", DIGEST)
        first = commits(remote, branch)
        result = pin(root, "prod", DIGEST)
        assert result.merge_request is not None and result.merge_request.action == "updated"
        assert commits(remote, branch) == first  # the branch already held this change
        assert len(fake.merge_requests) == 1 and len(fake.calls("POST")) == 1


def test_a_409_from_a_concurrent_run_updates_the_mr_it_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs both see no open MR; GitLab answers the second create with 409; that run then
    updates the MR the first one opened instead of failing or opening another."""
    from gitlab.v4.objects import ProjectMergeRequestManager

    monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
    with serve(FakeGitlab(token=TOKEN, project_path="platform/deployments")) as fake:
        root, _ = _mr_setup(tmp_path, fake)
        fake.merge_requests.append(
            {
                "id": 1001,
                "iid": 1,
                "project_id": 42,
                "state": "opened",
                "title": "other run",
                "description": "",
                "source_branch": "imagefactory/prod/rag-api",
                "target_branch": "main",
                "web_url": f"{fake.url}/mr/1",
            }
        )
        real_list = ProjectMergeRequestManager.list
        seen: list[int] = []

        def racing_list(self: ProjectMergeRequestManager, **kwargs: object) -> object:
            seen.append(1)
            return [] if len(seen) == 1 else real_list(self, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(ProjectMergeRequestManager, "list", racing_list)
        result = pin(root, "prod", DIGEST)
        assert result.merge_request is not None and result.merge_request.action == "updated"
        assert result.merge_request.iid == 1
        assert len(fake.calls("POST")) == 1  # the create that got 409
        assert len(fake.merge_requests) == 1
        assert fake.merge_requests[0]["title"].startswith("prod: pin app/rag-api")


def test_no_merge_request_when_the_target_already_pins_the_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
    with serve(FakeGitlab(token=TOKEN, project_path="platform/deployments")) as fake:
        root, remote = _mr_setup(tmp_path, fake)
        path = root / "gitops.yaml"
        text = path.read_text()
        path.write_text(text.replace("mode: merge_request", "mode: push"))
        assert pin(root, "prod", DIGEST).action == "pushed"
        path.write_text(text)  # prod back to merge-request mode
        assert pin(root, "prod", DIGEST).action == "unchanged"
        assert fake.merge_requests == [] and fake.calls("POST") == []
        assert "imagefactory/prod/rag-api" not in git("--git-dir", remote, "branch", "--list")


def test_a_wrong_token_is_a_clear_error_and_pushes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", "fake-wrong-token")
    with serve(FakeGitlab(token=TOKEN, project_path="platform/deployments")) as fake:
        root, remote = _mr_setup(tmp_path, fake)
        with pytest.raises(UserError) as refused:
            pin(root, "prod", DIGEST)
        assert "GitLab refused the token in $GITLAB_TOKEN (401)" in str(refused.value)
        assert "fake-wrong-token" not in str(refused.value)
        assert git("--git-dir", remote, "branch", "--list").split() == ["*", "main"]
        monkeypatch.delenv("GITLAB_TOKEN")
        with pytest.raises(UserError, match=r"needs a GitLab token in \$GITLAB_TOKEN"):
            pin(root, "prod", DIGEST)
        assert fake.merge_requests == []


def test_the_fake_answers_like_gitlab(tmp_path: Path) -> None:
    """What python-gitlab meets: 401 without the token, 400 without required fields, 409 for a
    second open MR from the same source branch."""
    with serve(
        FakeGitlab(token=TOKEN, project_path="group/proj", branches=lambda: {"main", "f"})
    ) as fake:
        with pytest.raises(gitlab.exceptions.GitlabAuthenticationError) as denied:
            gitlab.Gitlab(fake.url, private_token="nope").projects.get("group/proj")
        assert denied.value.response_code == 401
        project = gitlab.Gitlab(fake.url, private_token=TOKEN).projects.get("group/proj")
        with pytest.raises(gitlab.exceptions.GitlabCreateError) as missing:
            project.mergerequests.create(
                {"source_branch": "f", "target_branch": "main", "title": ""}
            )
        assert missing.value.response_code == 400
        project.mergerequests.create({"source_branch": "f", "target_branch": "main", "title": "t"})
        with pytest.raises(gitlab.exceptions.GitlabCreateError) as duplicate:
            project.mergerequests.create(
                {"source_branch": "f", "target_branch": "main", "title": "t"}
            )
        assert duplicate.value.response_code == 409
        assert "Another open merge request already exists" in str(duplicate.value)
