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

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess

import gitlab
import gitlab.exceptions
import pytest
import yaml

from imagefactory.errors import UserError
from imagefactory.release.audit import DONE, FAILED, INTENT, append, new_record, phase
from tests.fakes.gitlab_api import FakeGitlab, serve
from tests.unit.conftest import copy_example_catalog
from tests.unit.test_gitops_repo import (
    GIT_ENV,
    OVERLAY,
    commits,
    git,
    make_remote,
    pin,
    show,
    write_settings,
)

from .helpers.example import ExampleBuild, copy_built_example, edit_text, imagefactory
from .helpers.registry import Registry
from .helpers.services import SKOPEO, run
from .test_release import (
    APP,
    APP_SPEC,
    APP_VERSION,
    CLI_TIMEOUT,
    RUNTIME,
    audit_of,
    audit_text,
    copy_catalog,
    ok,
    refused,
    repo_of,
    state_of,
    without_ci,
)

pytestmark = pytest.mark.integration

# One pin in a process of its own: what a gitops update, push or promotion does once gated.
PIN = """
import sys
from pathlib import Path
from imagefactory.errors import UserError
from imagefactory.release.audit import DONE, FAILED, INTENT, append, new_record, phase
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


# --- gitops update through the release gate (the real registry and engine) -------------------


@dataclass(frozen=True)
class Gated:
    """A copy of the built example catalog, its registries in namespaces of this module's own,
    with a GitOps remote laid out before anything was released; app/rag-api tested and pushed
    to dev (as 0.3.0) while gitops.yaml was set aside (so that the pin on push does not
    hide what ``gitops update`` does), and an untested digest put in dev's app repository as 0.2.0."""

    root: Path
    remote: Path
    env: dict[str, str]
    digest: str  # tested, pushed: dev holds it under 0.3.0
    untested: str  # dev holds it under 0.2.0; never tested
    session: str


def _namespaces(root: Path, session: str, name: str, stages: tuple[str, ...]) -> None:
    path = root / "imagefactory.yaml"
    project = yaml.safe_load(path.read_text())
    for stage in stages:
        project["registries"][stage]["namespace"] = f"it-{session}/{name}/{stage}"
    path.write_text(yaml.safe_dump(project, sort_keys=False))


@contextmanager
def _gitops_aside(root: Path) -> Iterator[None]:
    """gitops.yaml away for a while: releases then pin nothing in the GitOps repository."""
    (root / "gitops.yaml").rename(root / "gitops.yaml.aside")
    try:
        yield
    finally:
        (root / "gitops.yaml.aside").rename(root / "gitops.yaml")


def _copy(source: Path, target: Path) -> Path:
    """A copy of a catalog with its state, audit log and git history (copy_catalog), and a
    GitOps remote of its own beside it, laid out as before anything was released (gitops init
    pins what state holds: state is set aside meanwhile)."""
    root = copy_catalog(source, target / "catalog")
    write_settings(root, target / "deployments.git", prod="push")
    state = root / ".imagefactory" / "state.json"
    state.rename(state.with_name("state.aside"))
    try:
        make_remote(root, target)
    finally:
        state.with_name("state.aside").rename(state)
    return root


def _skopeo_copy(auth: Path, source: str, target: str) -> None:
    flags = ["--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false"]
    run([SKOPEO, "copy", *flags, "--authfile", auth, f"docker://{source}", f"docker://{target}"])


@pytest.fixture(scope="module")
def gated(
    example_build: ExampleBuild, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Gated:
    where = tmp_path_factory.mktemp("gated")
    root = copy_built_example(example_build, where / "catalog")
    _namespaces(root, example_build.session, "gitops", ("dev", "preprod", "prod"))
    # Unsigned: the gate reads state here (test_supply_chain has the signed release path); the
    # digest copied in below would be refused as unsigned before its missing test was named.
    path = root / "imagefactory.yaml"
    project = yaml.safe_load(path.read_text())
    project.pop("signing")
    path.write_text(yaml.safe_dump(project, sort_keys=False))
    write_settings(root, where / "deployments.git", prod="push")
    remote = make_remote(root, where)
    env = {**without_ci(example_build.env), **{k: v for k, v in GIT_ENV.items() if "GIT" in k}}
    env["USER"] = "gitops-tester"
    with _gitops_aside(root):
        ok(imagefactory(root, "test", APP, "--json", env=env, timeout=CLI_TIMEOUT))
        ok(imagefactory(root, "push", APP, "--json", env=env, timeout=CLI_TIMEOUT))
    digest = state_of(root)[APP]["environments"]["dev"]["digest"]
    auth = where / "auth.json"
    token = base64.b64encode(f"{registry.user}:{registry.password}".encode()).decode()
    auth.touch(mode=0o600)
    auth.write_text(json.dumps({"auths": {registry.host: {"auth": token}}}))
    _skopeo_copy(auth, example_build.reference(RUNTIME), f"{repo_of(root, 'dev')}:0.2.0")
    untested = example_build.records[RUNTIME]["digest"]
    assert untested != digest
    return Gated(root, remote, env, digest, untested, example_build.session)


def _update(gated: Gated, root: Path, env: str, digest: str, *extra: str) -> CompletedProcess[str]:
    return imagefactory(
        root, "gitops", "update", "--env", env, f"{APP}@{digest}", *extra, env=gated.env
    )


def _unchanged(root: Path, remote: Path) -> tuple[list[str], str]:
    return commits(remote), audit_text(root)


def test_gitops_update_refuses_an_untested_digest_and_writes_nothing(gated: Gated) -> None:
    before = _unchanged(gated.root, gated.remote)
    stderr = refused(_update(gated, gated.root, "dev", gated.untested), 1)
    assert f"app/rag-api 0.2.0 ({gated.untested}) has no test record" in stderr
    assert f"run: imagefactory test {APP}" in stderr
    assert _unchanged(gated.root, gated.remote) == before  # no commit, no audit record


def test_gitops_update_refuses_the_all_zero_digest(gated: Gated) -> None:
    before = _unchanged(gated.root, gated.remote)
    stderr = refused(_update(gated, gated.root, "dev", "sha256:" + "0" * 64), 1)
    assert "is the all-zero placeholder, not the digest of an image" in stderr
    assert _unchanged(gated.root, gated.remote) == before


@pytest.mark.parametrize("env", ["dev", "preprod"])
def test_gitops_update_refuses_a_digest_the_environment_does_not_hold(
    gated: Gated, env: str
) -> None:
    """preprod: the tested digest, never promoted there; dev: a digest nobody pushed."""
    digest = gated.digest if env == "preprod" else "sha256:" + "ab" * 32
    before = _unchanged(gated.root, gated.remote)
    stderr = refused(_update(gated, gated.root, env, digest), 1)
    assert f"{env}'s registry ({env}) does not hold {repo_of(gated.root, env)}@{digest}" in stderr
    assert _unchanged(gated.root, gated.remote) == before


def test_gitops_update_pins_a_tested_digest_under_the_registrys_version_and_audits_it(
    gated: Gated,
) -> None:
    """image.yaml now says 0.9.0; the registry's tag naming the digest says 0.3.0. Two pins of
    the image into dev were interrupted before (their intents are open): the one of this digest
    is completed by this pin, the one of another digest is closed as superseded."""
    log = gated.root / ".imagefactory" / "audit.jsonl"
    interrupted = {
        digest: new_record(
            action="pin", image=APP, version="0.3.0", digest=digest, source="dev", target="dev",
            tags=["0.3.0"], git_revision=None, approver=None, registries=["dev"],
        )
        for digest in (gated.digest, gated.untested)
    }  # fmt: skip
    for intent in interrupted.values():
        append(log, intent)
    edit_text(gated.root / APP_SPEC, f"version: {APP_VERSION}", "version: 0.9.0")
    try:
        document = ok(_update(gated, gated.root, "dev", gated.digest, "--json"))
    finally:
        edit_text(gated.root / APP_SPEC, "version: 0.9.0", f"version: {APP_VERSION}")
    assert (document["version"], document["tag"], document["action"]) == (
        "0.3.0",
        "0.3.0",
        "pushed",
    )
    assert document["approver"] is None  # dev needs no approval
    assert f"digest: {gated.digest}" in show(gated.remote, OVERLAY.format(env="dev"))
    message = git("--git-dir", gated.remote, "log", "-1", "--format=%B", "main").splitlines()
    assert message[0] == f"dev: pin {APP} 0.3.0 {gated.digest[:19]} [skip ci]"
    assert f"audit: {document['audit_id']}" in message
    lines = [line for line in audit_of(gated.root) if line["id"] == document["audit_id"]]
    assert [phase(line) for line in lines] == [INTENT, DONE]
    for line in lines:
        assert (line["action"], line["image"], line["version"], line["digest"]) == (
            "pin", APP, "0.3.0", gated.digest,
        )  # fmt: skip
        assert (line["target"], line["tags"], line["registries"]) == ("dev", ["0.3.0"], ["dev"])
    closed = {
        d: [line for line in audit_of(gated.root) if line["id"] == i.id][1:]
        for d, i in interrupted.items()
    }
    assert [phase(line) for line in closed[gated.digest]] == [DONE]
    assert [(phase(line), line["error"]) for line in closed[gated.untested]] == [
        (FAILED, f"superseded by the pin {document['audit_id']}")
    ]
    again = ok(_update(gated, gated.root, "dev", gated.digest, "--json"))
    assert again["action"] == "unchanged"


def test_a_pin_into_prod_needs_its_approval(gated: Gated, tmp_path: Path) -> None:
    root = _copy(gated.root, tmp_path)
    _namespaces(root, gated.session, "gitops-approval", ("preprod", "prod"))
    remote = tmp_path / "deployments.git"
    with _gitops_aside(root):
        ok(imagefactory(root, "promote", APP, "--to", "preprod", "--json", env=gated.env))
        promoted = imagefactory(
            root, "promote", APP, "--to", "prod", "--approve", "--approver", "Pat Promoter",
            "--json", env=gated.env,
        )  # fmt: skip
        ok(promoted)
    before = _unchanged(root, remote)
    stderr = refused(_update(gated, root, "prod", gated.digest), 1)
    assert f"prod needs an approval for app/rag-api 0.3.0 ({gated.digest})" in stderr
    assert _unchanged(root, remote) == before
    document = ok(
        _update(
            gated, root, "prod", gated.digest, "--approve", "--approver", "Ann Approver", "--json"
        )
    )
    assert (document["action"], document["approver"]) == ("pushed", "Ann Approver")
    [done] = [
        line
        for line in audit_of(root)
        if line["id"] == document["audit_id"] and phase(line) == DONE
    ]
    assert (done["action"], done["target"], done["approver"]) == ("pin", "prod", "Ann Approver")
    assert f"digest: {gated.digest}" in show(remote, OVERLAY.format(env="prod"))


def test_drift_check_passes_for_an_image_never_deployed_there(gated: Gated) -> None:
    """Nothing was promoted to preprod: state has no record there and its overlay pins no
    digest. That is not drift."""
    proc = imagefactory(
        gated.root, "gitops", "diff", "--env", "preprod", "--check", "--json", env=gated.env
    )
    document = ok(proc)
    assert [(i["image"], i["status"], i["drift"]) for i in document["images"]] == [
        (APP, "not-deployed", False),
        (f"{APP}-distroless", "not-deployed", False),  # the example's shell-less app
    ]


def test_a_push_pins_its_digest_in_the_dev_overlay(gated: Gated, tmp_path: Path) -> None:
    root = _copy(gated.root, tmp_path)
    _namespaces(root, gated.session, "gitops-push", ("dev",))
    [entry] = ok(imagefactory(root, "push", APP, "--json", env=gated.env))["images"]
    overlay = show(tmp_path / "deployments.git", OVERLAY.format(env="dev"))
    assert f"digest: {gated.digest}" in overlay
    message = git("--git-dir", tmp_path / "deployments.git", "log", "-1", "--format=%B", "main")
    assert f"audit: {entry['audit_id']}" in message.splitlines()


# --- users by name -----------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["app", "app:app"])
def test_gitops_init_resolves_a_user_name_to_its_uid(tmp_path: Path, user: str) -> None:
    """``app`` is created with uid 10001 by base/debian12, two catalog parents up."""
    root = copy_example_catalog(tmp_path)
    edit_text(root / APP_SPEC, "user: app\n", f'user: "{user}"\n')
    write_settings(root, tmp_path / "deployments.git")
    proc = imagefactory(root, "gitops", "init", str(tmp_path / "out"), "--json", env=GIT_ENV)
    ok(proc)
    deployment = yaml.safe_load((tmp_path / "out/apps/rag-api/base/deployment.yaml").read_text())
    context = deployment["spec"]["template"]["spec"]["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["runAsNonRoot"]) == (
        10001, 10001, True,
    )  # fmt: skip
