"""Release governance for real (issue 14, findings 3, 6 and the push side of 8): the release gate
in ``push`` and ``promote``, approvals in and outside GitLab CI, four eyes, and git- tags that
name the commit that built the digest. Against the registry of ``scripts/services.sh``.

Each test has a tiny catalog of its own (a git repository; dev and prod in that registry, in
namespaces of the test's own; prod needs an approval with four eyes): one image, ``app/tiny``,
FROM the 2 MB busybox base of ``import_tiny_base`` pushed to the registry once per module and
named as an external parent pinned by digest. It builds in seconds, nothing is pulled from
outside. The catalog's git identity is the pusher's (``Pat Pusher``); no global git config
reaches the CLI, and no CI variable unless a test sets it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .helpers.example import (
    edit_text,
    git_commit,
)
from .helpers.registry import Registry
from .helpers.services import SKOPEO, run
from .helpers.tiny import TinyCatalog, ok, project, tiny_parent, write_catalog

pytestmark = pytest.mark.integration

IMAGE = "app/tiny"
VERSION = "1.0.0"
RELEASE_TAGS = {VERSION, "1.0", "1", "latest"}
PUSHER = "Pat Pusher <pat@example.invalid>"
REVIEWER = "Rita Reviewer <rita@example.invalid>"
ACCOUNT = "governance-account"
CI_LOGIN = "jdoe-ci"
JOB_URL = "https://gitlab.example.invalid/platform/catalog/-/jobs/4711"
SLEEP = '#!/bin/sh\nexec /bin/busybox sleep "$@"\n'  # the test container idles with sleep


@dataclass(frozen=True)
class Parent:
    """The tiny base in the registry, and what the tests need to reach it."""

    session: str
    reference: str  # REGISTRY/PATH@sha256:…, an external parent pinned by digest
    registry: Registry
    env: dict[str, str]  # the CLI's environment: credentials, no CI, no global git identity
    authfile: Path


@dataclass(frozen=True)
class Tiny(TinyCatalog):
    """A built tiny catalog; ``built_at`` is the commit its build ran on."""

    dev: str  # the dev repository of app/tiny
    prod: str
    built_at: str

    def tags(self, repository: str) -> set[str]:
        proc = run(
            [SKOPEO, "list-tags", "--tls-verify=false", "--authfile", str(self.authfile),
             f"docker://{repository}"],
            timeout=60, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            assert "name unknown" in proc.stderr.lower() or "404" in proc.stderr, proc.stderr
            return set()
        return set(json.loads(proc.stdout).get("Tags") or [])

    def done(self) -> list[dict[str, Any]]:
        return [line for line in self.audit() if line.get("phase") == "done"]

    def test_and_push(self) -> dict[str, Any]:
        ok(self.cli("test", IMAGE, "--json"))
        [entry] = ok(self.cli("push", IMAGE, "--json"))["images"]
        assert isinstance(entry, dict)
        return entry


def refused(proc: subprocess.CompletedProcess[str]) -> str:
    """stderr of a command that must have been refused as a user error, without a traceback."""
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr}"
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc.stderr


def git(root: Path, *args: str) -> str:
    return run(["git", "-C", str(root), *args], timeout=30).stdout.strip()


@pytest.fixture(scope="module")
def parent(
    registry: Registry,
    registry_env: dict[str, str],
    docker_config: Path,
    tiny_base: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Parent]:
    no_global = tmp_path_factory.mktemp("git-config") / "gitconfig"
    no_global.write_text("")
    env = {
        k: v
        for k, v in registry_env.items()
        if k not in ("CI", "GITLAB_CI", "GITLAB_USER_LOGIN") and not k.startswith("CI_")
    }
    env.update(GIT_CONFIG_GLOBAL=str(no_global), GIT_CONFIG_NOSYSTEM="1", USER=ACCOUNT)
    with tiny_parent("governance", tiny_base, registry, docker_config) as (session, reference):
        yield Parent(session, reference, registry, env, docker_config / "config.json")


@pytest.fixture
def tiny(parent: Parent, tmp_path: Path, request: pytest.FixtureRequest) -> Tiny:
    """A tiny catalog of this test's own (its content too: a build never reuses another test's
    image, with that test's revision label), committed and built; the pusher's identity."""
    root = tmp_path / "catalog"
    name = request.node.name[5:45].replace("_", "-").strip("-")
    namespace = f"it-{parent.session}/{name}"
    environments = [
        {"name": "dev", "registries": ["dev"]},
        {"name": "prod", "registries": ["prod"], "approval": True, "four_eyes": True},
    ]
    settings = project("it-governance", parent.registry, namespace, parent.session, environments)
    image = {
        "name": IMAGE,
        "version": VERSION,
        "from": parent.reference,
        "user": "65534",
        "env": {"TINY_MARKER": "first", "TINY_TEST": name},  # content of this test's own
        "files": [{"src": "bin/sleep", "dest": "/bin/sleep", "mode": "0755"}],
        "cmd": ["sleep", "3600"],
        "tests": {"commands": [{"name": "busybox answers", "run": ["echo", "hello"]}]},
    }
    folder = write_catalog(root, settings, image)
    (folder / "bin").mkdir()
    (folder / "bin" / "sleep").write_text(SLEEP)
    (root / ".gitignore").write_text("/.imagefactory/\n")
    git_commit(root, "tiny catalog")
    git(root, "config", "user.name", PUSHER.partition(" <")[0])
    git(root, "config", "user.email", PUSHER.partition(" <")[2].rstrip(">"))
    built = Tiny(
        root,
        parent.env,
        parent.authfile,
        f"{parent.registry.host}/{namespace}/dev/{IMAGE}",
        f"{parent.registry.host}/{namespace}/prod/{IMAGE}",
        git(root, "rev-parse", "HEAD"),
    )
    ok(built.cli("build", IMAGE, "--json"))
    return built


def in_ci(tiny: Tiny, **variables: str) -> dict[str, str]:
    """The CLI's environment as a GitLab job's: CI=true GITLAB_CI=true and ``variables``."""
    return {
        **tiny.env,
        "CI": "true",
        "GITLAB_CI": "true",
        "GITLAB_USER_LOGIN": CI_LOGIN,
        "CI_JOB_URL": JOB_URL,
        **variables,
    }


# --- (a) push through the gate --------------------------------------------------------------


def test_an_untested_digest_is_not_pushed_and_force_is_audited(tiny: Tiny) -> None:
    """Before: push gave the untested digest 1.0.0 and moved latest, 1 and 1.0 onto it."""
    digest = json.loads((tiny.root / ".imagefactory" / "state.json").read_text())["images"][IMAGE][
        "digest"
    ]

    stderr = refused(tiny.cli("push", IMAGE))

    assert f"{IMAGE} {VERSION} ({digest}) has no test record" in stderr
    assert f"imagefactory test {IMAGE}" in stderr
    assert not tiny.tags(tiny.dev) & RELEASE_TAGS  # the build's content tag only
    assert not any(tag.startswith("git-") for tag in tiny.tags(tiny.dev))
    assert tiny.audit() == []

    [entry] = ok(tiny.cli("push", IMAGE, "--force", "--json"))["images"]

    assert (entry["version"], entry["digest"]) == (VERSION, digest)
    assert {tag: tiny.digest(f"{tiny.dev}:{tag}") for tag in RELEASE_TAGS} == dict.fromkeys(
        RELEASE_TAGS, digest
    )
    [done] = tiny.done()
    assert (done["action"], done["id"]) == ("push", entry["audit_id"])
    assert (done["forced"], done["overrides"]) == (True, ["untested"])
    assert done["identity"] == PUSHER


def test_a_tested_digest_is_pushed_without_force(tiny: Tiny) -> None:
    entry = tiny.test_and_push()

    assert {t["tag"] for t in entry["tags"]} >= RELEASE_TAGS
    [done] = tiny.done()
    assert (done["forced"], done["overrides"], done["identity"]) == (False, [], PUSHER)


# --- (b) approvals in GitLab CI -------------------------------------------------------------


def test_in_ci_only_the_protected_deployment_job_of_the_target_approves(tiny: Tiny) -> None:
    """Before: with CI=true GITLAB_CI=true a promotion into an approval environment needed
    no approval at all."""
    tiny.test_and_push()
    before = tiny.audit()

    for variables, extra in (
        ({}, ()),  # CI=true GITLAB_CI=true alone
        ({}, ("--approve",)),  # --approve counts for nothing in CI
        ({"CI_ENVIRONMENT_NAME": "dev", "CI_COMMIT_REF_PROTECTED": "true"}, ()),
        ({"CI_ENVIRONMENT_NAME": "prod", "CI_COMMIT_REF_PROTECTED": "false"}, ()),
    ):
        proc = tiny.cli("promote", IMAGE, "--to", "prod", *extra, env=in_ci(tiny, **variables))
        stderr = refused(proc)
        assert "prod needs an approval" in stderr, variables
        for variable in ("CI_ENVIRONMENT_NAME=prod", "CI_COMMIT_REF_PROTECTED=true"):
            assert variable in stderr
    assert tiny.tags(tiny.prod) == set()
    assert tiny.audit() == before

    job = in_ci(tiny, CI_ENVIRONMENT_NAME="prod", CI_COMMIT_REF_PROTECTED="true")
    document = ok(tiny.cli("promote", IMAGE, "--to", "prod", "--json", env=job))

    done = tiny.done()[-1]
    assert (done["action"], done["target"], done["id"]) == ("promote", "prod", document["audit_id"])
    assert (done["approver"], done["identity"], done["who"]) == (CI_LOGIN,) * 3
    assert done["ci_job_url"] == JOB_URL
    assert tiny.tags(tiny.prod) >= RELEASE_TAGS


# --- (c) four eyes, outside CI --------------------------------------------------------------


def test_four_eyes_refuses_the_pusher_and_accepts_another_approver(tiny: Tiny) -> None:
    """Before: ``--approve`` approved as whoever ran it, the pusher included, and recorded only
    the account."""
    entry = tiny.test_and_push()
    before = tiny.audit()

    stderr = refused(tiny.cli("promote", IMAGE, "--to", "prod"))
    assert "prod needs an approval" in stderr and "--approve" in stderr

    stderr = refused(tiny.cli("promote", IMAGE, "--to", "prod", "--approve"))
    assert f"{PUSHER} pushed {IMAGE} {VERSION}" in stderr and "four eyes" in stderr
    assert tiny.tags(tiny.prod) == set()
    assert tiny.audit() == before

    document = ok(
        tiny.cli("promote", IMAGE, "--to", "prod", "--approve", "--approver", REVIEWER, "--json")
    )

    assert document["digest"] == entry["digest"]
    done = tiny.done()[-1]
    assert (done["action"], done["approver"], done["identity"]) == ("promote", REVIEWER, PUSHER)
    assert done["who"] == ACCOUNT
    assert tiny.digest(f"{tiny.prod}:{VERSION}") == entry["digest"]


# --- (d) honest git- tags -------------------------------------------------------------------


def test_the_git_tag_names_the_commit_that_built_the_digest(tiny: Tiny) -> None:
    """Before: push tagged the digest git-<HEAD>, the commit the checkout had moved on to."""
    (tiny.root / "NOTES.md").write_text("release notes, no image content\n")
    moved_to = git_commit(tiny.root, "notes")
    assert moved_to != tiny.built_at

    entry = tiny.test_and_push()

    tags = {t["tag"] for t in entry["tags"]}
    assert f"git-{tiny.built_at[:8]}" in tags
    assert f"git-{moved_to[:8]}" not in tags
    assert tiny.digest(f"{tiny.dev}:git-{tiny.built_at[:8]}") == entry["digest"]
    assert f"git-{moved_to[:8]}" not in tiny.tags(tiny.dev)
    assert tiny.done()[-1]["git_revision"] == moved_to  # where the push ran


def test_a_dirty_build_gets_no_git_tag_and_ci_refuses_to_push_it(tiny: Tiny) -> None:
    """Before: a build from an uncommitted tree was labelled with HEAD, pushed in CI, and its
    digest tagged git-<HEAD> (the tag of another build)."""
    spec = tiny.root / "images" / IMAGE / "image.yaml"
    edit_text(spec, "TINY_MARKER: first", "TINY_MARKER: uncommitted")
    ok(tiny.cli("build", IMAGE, "--json"))
    ok(tiny.cli("test", IMAGE, "--json"))

    stderr = refused(tiny.cli("push", IMAGE, env=in_ci(tiny)))
    assert "has uncommitted changes" in stderr
    git_commit(tiny.root, "the change, committed after its build")
    stderr = refused(tiny.cli("push", IMAGE, env=in_ci(tiny)))
    assert "was built from an uncommitted tree" in stderr
    assert f"{tiny.built_at}-dirty" in stderr
    assert not tiny.tags(tiny.dev) & RELEASE_TAGS
    assert tiny.audit() == []

    [entry] = ok(tiny.cli("push", IMAGE, "--json"))["images"]  # outside CI: no git- tag

    assert {t["tag"] for t in entry["tags"]} == RELEASE_TAGS
    assert not any(tag.startswith("git-") for tag in tiny.tags(tiny.dev))
