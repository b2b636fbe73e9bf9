"""``imagefactory yank`` and ``unyank`` for real (issue 14, finding 3), against the registry of
``scripts/services.sh``.

A tiny catalog of its own (dev and preprod in that registry): one image, ``app/tiny``, FROM the 2 MB busybox base of
``import_tiny_base`` pushed to the registry and named as an external parent pinned by digest
(seconds to build, nothing pulled from outside). Versions 1.0.0 and 1.0.1 (another content) are
built and pushed to dev through the CLI (``--force``: untested, recorded in the audit log), so
``1``, ``1.0`` and ``latest`` follow 1.0.1 there; 1.0.0 was tested and promoted to preprod.
Yanking 1.0.1 gives dev's aliases back to 1.0.0's digest (preprod's already name it), leaves
the 1.0.1 tag, is in the audit log and state, shows in ``status``, and refuses the promotion of
1.0.1; unyanking is refused while 1.0.1 has no passing test run, and once it is tested moves
dev's aliases forward again. Neither environment needs an approval: no --approve.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .helpers.example import edit_text, imagefactory
from .helpers.registry import Registry
from .helpers.tiny import CLI_TIMEOUT, TinyCatalog, ok, project, tiny_parent, write_catalog

pytestmark = pytest.mark.integration

IMAGE = "app/tiny"
ALIASES = ("1", "1.0", "latest")
REASON = "CVE-2026-0001 in busybox, INC-4711"


@dataclass(frozen=True)
class TinyRelease(TinyCatalog):
    dev: str  # the dev repository of app/tiny
    preprod: str
    first: str  # the digest of 1.0.0
    second: str  # the digest of 1.0.1

    def aliases(self, repository: str) -> dict[str, str | None]:
        return {alias: self.digest(f"{repository}:{alias}") for alias in ALIASES}


def write(root: Path, registry: Registry, session: str, parent: str) -> None:
    stages = [{"name": stage, "registries": [stage]} for stage in ("dev", "preprod")]
    image = {
        "name": IMAGE,
        "version": "1.0.0",
        "from": parent,  # external: pinned by digest
        "user": "root",
        "env": {"TINY_RELEASE": "first"},
    }
    write_catalog(root, project("it-yank", registry, f"it-{session}/yank", session, stages), image)


def build_and_push(release_root: Path, env: dict[str, str]) -> dict[str, Any]:
    build = imagefactory(release_root, "build", IMAGE, "--json", env=env, timeout=CLI_TIMEOUT)
    ok(build)
    push = imagefactory(
        release_root, "push", IMAGE, "--force", "--json", env=env, timeout=CLI_TIMEOUT
    )
    [entry] = ok(push)["images"]
    assert isinstance(entry, dict)
    return entry


@pytest.fixture(scope="module")
def tiny_release(
    registry: Registry,
    registry_env: dict[str, str],
    docker_config: Path,
    tiny_base: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TinyRelease]:
    root = tmp_path_factory.mktemp("yank") / "catalog"
    env = {**registry_env, "COLUMNS": "250"}  # status's tables on one line each
    with tiny_parent("yank", tiny_base, registry, docker_config) as (session, parent):
        write(root, registry, session, parent)
        first = build_and_push(root, env)
        ok(imagefactory(root, "test", IMAGE, "--json", env=env, timeout=CLI_TIMEOUT))
        ok(imagefactory(root, "promote", IMAGE, "--to", "preprod", "--json", env=env))
        edit_text(root / "images" / IMAGE / "image.yaml", "1.0.0", "1.0.1")
        edit_text(root / "images" / IMAGE / "image.yaml", "first", "second")
        second = build_and_push(root, env)

        assert (first["version"], second["version"]) == ("1.0.0", "1.0.1")
        assert first["digest"] != second["digest"]
        yield TinyRelease(
            root,
            env,
            docker_config / "config.json",
            f"{registry.host}/it-{session}/yank/dev/{IMAGE}",
            f"{registry.host}/it-{session}/yank/preprod/{IMAGE}",
            first["digest"],
            second["digest"],
        )


def test_yank_gives_the_aliases_back_to_the_good_version_and_unyank_moves_them_forward(
    tiny_release: TinyRelease,
) -> None:
    release = tiny_release
    assert release.aliases(release.dev) == dict.fromkeys(ALIASES, release.second)

    document = ok(release.cli("yank", IMAGE, "1.0.1", "--reason", REASON, "--json"))

    # latest, 1 and 1.0 name 1.0.0's digest again; the 1.0.1 tag stays (evidence)
    assert release.aliases(release.dev) == dict.fromkeys(ALIASES, release.first)
    assert release.digest(f"{release.dev}:1.0.1") == release.second
    assert release.digest(f"{release.dev}:1.0.0") == release.first
    assert (document["digest"], document["deployed_in"]) == (release.second, ["dev"])
    planned = {
        (*a["environments"], a["tag"], a["action"], a["version"]) for a in document["aliases"]
    }
    assert planned == {
        (env, alias, action, "1.0.0")
        for env, action in (("dev", "move"), ("preprod", "keep"))
        for alias in ALIASES
    }
    assert release.aliases(release.preprod) == dict.fromkeys(ALIASES, release.first)
    # written ahead in the audit log, with the reason
    intent, done = release.audit()[-2:]
    assert (intent["action"], intent["phase"], intent["version"]) == ("yank", "intent", "1.0.1")
    assert (intent["reason"], intent["digest"]) == (REASON, release.second)
    assert sorted(intent["tags"]) == sorted(ALIASES)
    assert (done["phase"], done["id"]) == ("done", document["audit_id"])
    assert done["id"] == intent["id"]

    status = ok(release.cli("status", IMAGE, "--json"))
    assert status["images"][IMAGE]["dev"]["yanked"] is True
    [yanked] = status["yanked"][IMAGE]
    assert (yanked["version"], yanked["digest"], yanked["reason"]) == (
        "1.0.1",
        release.second,
        REASON,
    )
    assert yanked["deployed_in"] == ["dev"] and status["incomplete"] == []
    text = release.cli("status", IMAGE)
    assert text.returncode == 0 and "YANKED" in text.stdout and REASON in text.stdout

    # its promotion is refused by the gate, and nothing reaches preprod
    refused = release.cli("promote", IMAGE, "--to", "preprod")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "yanked" in refused.stderr and REASON in refused.stderr
    assert release.digest(f"{release.dev}:latest") == release.first
    assert release.digest(f"{release.preprod}:1.0.1") is None
    assert release.aliases(release.preprod) == dict.fromkeys(ALIASES, release.first)

    again = ok(release.cli("yank", IMAGE, "1.0.1", "--reason", "twice", "--json"))
    assert again["audit_id"] is None and again["reason"] == REASON  # nothing to do

    # 1.0.1 was pushed untested (--force): unyank gives its aliases back only once it passed
    untested = release.cli("unyank", IMAGE, "1.0.1", "--reason", "fixed upstream")
    assert untested.returncode == 1, untested.stdout + untested.stderr
    assert f"{IMAGE} 1.0.1 ({release.second}) has no test record" in untested.stderr
    assert release.aliases(release.dev) == dict.fromkeys(ALIASES, release.first)
    ok(release.cli("test", IMAGE, "--json"))  # the checkout's build: 1.0.1's digest

    back = ok(release.cli("unyank", IMAGE, "1.0.1", "--reason", "fixed upstream", "--json"))

    assert release.aliases(release.dev) == dict.fromkeys(ALIASES, release.second)
    assert release.aliases(release.preprod) == dict.fromkeys(ALIASES, release.first)
    last = release.audit()[-1]
    assert (last["action"], last["phase"], last["id"]) == ("unyank", "done", back["audit_id"])
    status = ok(release.cli("status", IMAGE, "--json"))
    assert status["yanked"] == {} and status["images"][IMAGE]["dev"]["yanked"] is False
