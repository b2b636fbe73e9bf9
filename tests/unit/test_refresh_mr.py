"""The refresh merge request against a faithful HTTP fake of GitLab's API: refresh.yaml
committed through the API to imagefactory/refresh on top of the default branch, one merge
request opened then updated, nothing when the default branch holds the records; where GitLab is
comes from the job's predefined variables, checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from imagefactory.errors import UserError
from imagefactory.freshness.outdated import OutdatedReport
from imagefactory.freshness.refresh import RefreshPlan, Update
from imagefactory.gitops import refresh_mr
from imagefactory.gitops.mr import project
from imagefactory.spec.refresh import refresh_text
from tests.fakes.gitlab_api import FakeGitlab, serve

from .helpers import run

TOKEN = "glpat-refresh-test"
FILE = "catalog/refresh.yaml"
LIBC = Update("base/debian12", "libc6", "2.36-9+deb12u9", "2.36-9+deb12u10",
              "bookworm-security", True, ("app/rag-api", "base/debian12"))  # fmt: skip


def _plan(*updates: Update, changed: bool = True) -> RefreshPlan:
    records = {u.image: {u.package: u.version} for u in updates}
    return RefreshPlan(updates, (), records, changed, OutdatedReport((), ()))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitlab]:
    with serve(FakeGitlab(token=TOKEN, project_path="bank/images")) as started:
        started.repository = {"main": {"catalog/imagefactory.yaml": "project: x\n"}}
        started.branches = lambda: set(started.repository)
        monkeypatch.setenv("CI_SERVER_URL", started.url)
        monkeypatch.setenv("CI_PROJECT_PATH", "bank/images")
        monkeypatch.setenv("CI_DEFAULT_BRANCH", "main")
        monkeypatch.setenv("IMAGEFACTORY_GITLAB_TOKEN", TOKEN)
        yield started


def _propose(plan: RefreshPlan) -> refresh_mr.Proposal:
    target = refresh_mr.gitlab_target()
    return refresh_mr.propose(target, project(target.settings), FILE, plan)


def test_records_are_committed_on_the_default_branch_and_one_merge_request_opened(
    fake: FakeGitlab,
) -> None:
    first = _propose(_plan(LIBC))
    assert first.merge_request is not None and first.merge_request.action == "created"
    text = refresh_text({"base/debian12": {"libc6": "2.36-9+deb12u10"}})
    assert fake.repository[refresh_mr.BRANCH] == {**fake.repository["main"], FILE: text}
    [commit] = fake.calls("POST")[:1]
    assert commit.body["start_branch"] == "main" and commit.body["force"] is True
    assert commit.body["actions"] == [{"action": "create", "file_path": FILE, "content": text}]
    [mr] = fake.merge_requests
    assert (mr["source_branch"], mr["target_branch"]) == (refresh_mr.BRANCH, "main")
    assert "1 Debian update(s), 1 security, in 1 image(s)" in mr["title"]
    assert "| base/debian12 | libc6 | 2.36-9+deb12u9 | 2.36-9+deb12u10 | yes |" in mr["description"]

    again = _propose(_plan(LIBC))  # the branch holds it: no second commit, the MR updated
    assert again.commit is None and again.merge_request is not None
    assert again.merge_request.action == "updated" and len(fake.commits) == 1
    assert len(fake.merge_requests) == 1

    newer = Update("base/debian12", "libc6", "2.36-9+deb12u9", "2.36-9+deb12u11",
                   "bookworm-security", True, ("base/debian12",))  # fmt: skip
    third = _propose(_plan(newer))  # newer records: the branch reset to main + one commit
    assert third.commit is not None and len(fake.commits) == 2
    assert "2.36-9+deb12u11" in fake.repository[refresh_mr.BRANCH][FILE]
    assert all(r.headers.get("PRIVATE-TOKEN") == TOKEN for r in fake.requests)


def test_nothing_is_proposed_when_the_default_branch_holds_the_records(fake: FakeGitlab) -> None:
    fake.repository["main"][FILE] = refresh_text(_plan(LIBC).refreshed)
    assert _propose(_plan(LIBC)) == refresh_mr.Proposal(FILE, None, None)
    assert _propose(_plan(changed=False)).merge_request is None  # no update found at all
    assert not fake.commits and not fake.merge_requests


def test_an_update_of_a_file_the_default_branch_has(fake: FakeGitlab) -> None:
    fake.repository["main"][FILE] = refresh_text({})
    _propose(_plan(LIBC))
    assert fake.calls("POST")[0].body["actions"][0]["action"] == "update"


def test_gitlab_comes_from_the_predefined_variables(
    fake: FakeGitlab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI_DEFAULT_BRANCH")
    with pytest.raises(UserError, match="not set: CI_DEFAULT_BRANCH"):
        refresh_mr.gitlab_target()
    monkeypatch.setenv("CI_DEFAULT_BRANCH", "main")
    monkeypatch.setenv("CI_SERVER_URL", "http://gitlab.example.com")  # plain HTTP off loopback
    with pytest.raises(UserError, match="CI_SERVER_URL or CI_PROJECT_PATH is not usable"):
        refresh_mr.gitlab_target()
    monkeypatch.setenv("CI_SERVER_URL", fake.url)
    monkeypatch.setenv("IMAGEFACTORY_GITLAB_TOKEN", "wrong")
    target = refresh_mr.gitlab_target()
    with pytest.raises(UserError, match="GitLab refused the token in \\$IMAGEFACTORY_GITLAB_TOKEN"):
        project(target.settings)


def test_merge_request_needs_refresh(catalog_dir: Path) -> None:
    result = run(catalog_dir, "build", "--all", "--merge-request")
    assert result.exit_code == 2 and "use it with --refresh" in result.output
