"""The write-ahead audit log of push and promote, through the CLI, against the in-memory registry
of test_write_tags: an intent before the first tag, done after state; a crash, a kill or a full
disk in between leaves an intent that ``status`` lists and the next run of the same step
completes (its missing tags written, the same audit id: its immutable tags, and the aliases its
version still takes), unless its version was yanked since; a failure while writing tags closes
it as failed. A full disk, a read-only folder and refused credentials are user errors (exit 1).
A push reads state and the gate's evidence under its lock.

Faults are injected where no real one can be made here: the tests run as root, which writes
through any permission bits, so a read-only folder is an OSError(EROFS) raised where the audit
log is opened; a full disk is an OSError(ENOSPC) raised by the state save.
"""

from __future__ import annotations

import errno
import http.server
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from imagefactory.cli.app import app  # the package registers every command on it
from imagefactory.errors import UserError
from imagefactory.project import state as state_module
from imagefactory.project.naming import content_tag
from imagefactory.project.paths import audit_log, state_file
from imagefactory.project.state import (
    EnvironmentRecord,
    State,
    load_state,
)
from imagefactory.registry.http import RegistryHTTP
from imagefactory.release import promote, push
from imagefactory.release import yank as yank_module
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.models import Registry
from tests.fakes.http_server import serving

from .helpers import Killed, build, lines, logged, recorded, run, runner, serve
from .test_write_tags import DEV, DIGEST, OTHER, MemoryRegistry

REF = "app/rag-api"
PROD = "127.0.0.1:5000/bank-ai-lab/prod/app/rag-api"
PREPROD = "127.0.0.1:5000/bank-ai-lab/preprod/app/rag-api"
PUSHED = ["0", "0.3", "0.3.0", "latest"]  # outside git: no git- tag


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> MemoryRegistry:
    """The registries of push, promote and yank, in memory."""
    return serve(monkeypatch, MemoryRegistry(), push, promote, yank_module)


@pytest.fixture
def built(pinned_catalog_dir: Path, memory: MemoryRegistry) -> Path:
    """The example catalog with app/rag-api built and tested (in state and in the build
    repository)."""
    build(pinned_catalog_dir, memory, DIGEST, tested=True)
    return pinned_catalog_dir


@pytest.fixture
def in_preprod(built: Path, memory: MemoryRegistry) -> Path:
    """app/rag-api tested and promoted up to preprod: next, prod."""
    held = {
        env: EnvironmentRecord(
            version="0.3.0", digest=DIGEST, tags=PUSHED, registries=[env], at="then"
        )
        for env in ("dev", "preprod")
    }
    recorded(built, environments=held)
    memory.held.update({f"{PREPROD}:{tag}": DIGEST for tag in PUSHED})
    return built


def held_in(root: Path, env: str) -> EnvironmentRecord | None:
    record = load_state(state_file(load_catalog(root))).images[REF]
    return record.environments.get(env)


def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(path: Path, state: State, **_: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(state_module, "save_state", no_space)


def writes(memory: MemoryRegistry) -> list[tuple[str, str]]:
    return [(what, ref) for what, ref in memory.calls if what in ("copy", "tag")]


def killed(root: Path, memory: MemoryRegistry, *args: str, after: int) -> None:
    """``imagefactory ARGS`` (a push, a promotion), its process dying after ``after`` writes
    (a tag put, an image copied)."""
    real_tag, real_copy = memory.tag, memory.copy

    def dying_tag(registry: Registry, repository: str, digest: str, tag: str) -> None:
        if len(writes(memory)) == after:
            raise Killed
        real_tag(registry, repository, digest, tag)

    def dying_copy(source: Registry, source_ref: str, target: Registry, target_ref: str) -> None:
        if len(writes(memory)) == after:
            raise Killed
        real_copy(source, source_ref, target, target_ref)

    memory.tag, memory.copy = dying_tag, dying_copy  # type: ignore[method-assign]
    with pytest.raises(Killed):
        runner.invoke(app, ["-C", str(root), *args], catch_exceptions=False)
    memory.tag, memory.copy = real_tag, real_copy  # type: ignore[method-assign]


def push_killed(root: Path, memory: MemoryRegistry, *, after: int) -> None:
    """A push whose process dies after ``after`` tag writes."""
    killed(root, memory, "push", REF, after=after)


def test_a_push_logs_its_intent_before_the_first_tag_and_done_after_state(
    built: Path, memory: MemoryRegistry
) -> None:
    seen: list[tuple[list[dict[str, Any]], EnvironmentRecord | None]] = []
    real_tag = memory.tag

    def first_write_sees(registry: Registry, repository: str, digest: str, tag: str) -> None:
        if not seen:
            seen.append((lines(built), held_in(built, "dev")))
        real_tag(registry, repository, digest, tag)

    memory.tag = first_write_sees  # type: ignore[method-assign]

    result = run(built, "push", REF, "--json")

    assert result.exit_code == 0, result.output
    [(before, state_before)] = seen
    [intent] = before  # logged ahead of the first tag, state not yet written
    assert state_before is None
    assert (intent["phase"], intent["action"], intent["target"]) == ("intent", "push", "dev")
    assert (intent["image"], intent["version"], intent["digest"]) == (REF, "0.3.0", DIGEST)
    assert (intent["tags"], intent["registries"]) == (PUSHED, ["dev"])
    first, done = lines(built)
    assert first == intent
    assert (done["phase"], done["id"]) == ("done", intent["id"])
    held = held_in(built, "dev")
    assert held is not None and held.audit_id == intent["id"]
    assert json.loads(result.stdout)["images"][0]["audit_id"] == intent["id"]
    assert json.loads(run(built, "status", "--json").stdout)["incomplete"] == []


def test_a_pin_left_open_is_not_taken_for_the_push_into_its_environment(
    built: Path, memory: MemoryRegistry
) -> None:
    """A ``gitops update`` into dev that crashed leaves its pin intent open: the next push into
    dev is a push of its own (it once "completed" the pin instead, and pushed nothing)."""
    pin = logged(load_catalog(built), "pin", OTHER, source="dev", target="dev", version="0.2.0")

    result = run(built, "push", REF)

    assert result.exit_code == 0, result.output
    assert {t: memory.held.get(f"{DEV}:{t}") for t in PUSHED} == dict.fromkeys(PUSHED, DIGEST)
    pushed = [(line["action"], line["phase"]) for line in lines(built) if line["id"] != pin.id]
    assert pushed == [("push", "intent"), ("push", "done")]
    held = held_in(built, "dev")
    assert held is not None and held.digest == DIGEST
    [pending] = json.loads(run(built, "status", "--json").stdout)["incomplete"]
    assert (pending["audit_id"], pending["complete_with"]) == (
        pin.id,
        f"imagefactory gitops update --env dev {REF}@{OTHER}",
    )


def test_a_full_disk_after_prod_tags_is_a_user_error_and_the_next_promotion_completes_it(
    in_preprod: Path, memory: MemoryRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case: promote wrote the prod tags, then state could not be saved."""
    with monkeypatch.context() as patch:
        full_disk(patch)
        result = run(in_preprod, "promote", REF, "--to", "prod", "--approve")

    assert result.exit_code == 1, result.output
    assert "No space left on device" in result.stderr and "internal error" not in result.stderr
    assert "free space" in result.stderr
    assert f"imagefactory promote {REF} --to prod" in result.stderr  # how to complete it
    assert {t: memory.held.get(f"{PROD}:{t}") for t in PUSHED} == dict.fromkeys(PUSHED, DIGEST)
    [intent] = [line for line in lines(in_preprod) if line["target"] == "prod"]
    assert intent["phase"] == "intent" and held_in(in_preprod, "prod") is None

    document = json.loads(run(in_preprod, "status", "--json").stdout)
    [pending] = document["incomplete"]
    assert pending == {
        "image": REF,
        "env": "prod",
        "action": "promote",
        "version": "0.3.0",
        "digest": DIGEST,
        "tags": PUSHED,
        "audit_id": intent["id"],
        "at": intent["at"],
        "who": intent["who"],
        "complete_with": f"imagefactory promote {REF} --to prod",
    }
    table = run(in_preprod, "status").stdout
    assert "incomplete" in table and intent["id"] in table

    memory.calls.clear()
    result = run(in_preprod, "promote", REF, "--to", "prod", "--approve", "--json")

    assert result.exit_code == 0, result.output
    assert writes(memory) == []  # every tag was verified there, none written again
    assert json.loads(result.stdout)["audit_id"] == intent["id"]
    done = lines(in_preprod)[-1]
    assert (done["phase"], done["id"], done["approver"]) == (
        "done",
        intent["id"],
        intent["approver"],
    )
    held = held_in(in_preprod, "prod")
    assert held is not None and (held.audit_id, held.digest) == (intent["id"], DIGEST)
    assert json.loads(run(in_preprod, "status", "--json").stdout)["incomplete"] == []


def test_a_push_killed_between_two_tags_is_completed_by_the_next_push(
    built: Path, memory: MemoryRegistry
) -> None:
    push_killed(built, memory, after=2)

    [intent] = lines(built)
    assert intent["phase"] == "intent" and held_in(built, "dev") is None
    [pending] = json.loads(run(built, "status", "--json").stdout)["incomplete"]
    assert (pending["audit_id"], pending["env"], pending["action"]) == (intent["id"], "dev", "push")
    written = {ref for _, ref in writes(memory)}
    assert len(written) == 2

    memory.calls.clear()
    result = run(built, "push", REF, "--json")

    assert result.exit_code == 0, result.output
    missing = {f"{DEV}:{t}" for t in PUSHED} - written
    assert {ref for _, ref in writes(memory)} == missing  # only what was missing
    assert {t: memory.held[f"{DEV}:{t}"] for t in PUSHED} == dict.fromkeys(PUSHED, DIGEST)
    assert [(line["phase"], line["id"]) for line in lines(built)] == [
        ("intent", intent["id"]),
        ("done", intent["id"]),
    ]
    [entry] = json.loads(result.stdout)["images"]
    assert entry["audit_id"] == intent["id"] and "interrupted" in entry["reason"]
    record = load_state(state_file(load_catalog(built))).images[REF]
    assert record.versions == {"0.3.0": intent["content_hash"]}


def test_a_failure_while_writing_tags_closes_the_intent_as_failed(
    built: Path, memory: MemoryRegistry
) -> None:
    memory.intruder = (f"{DEV}:0.3.0", OTHER)  # another push takes 0.3.0 meanwhile

    result = run(built, "push", REF)

    assert result.exit_code == 1, result.output
    assert "was written by someone else meanwhile" in result.stderr
    intent, failed = lines(built)
    assert (intent["phase"], failed["phase"], failed["id"]) == ("intent", "failed", intent["id"])
    assert "someone else" in failed["error"]
    assert json.loads(run(built, "status", "--json").stdout)["incomplete"] == []


def test_an_intent_that_can_no_longer_be_completed_is_closed_as_failed(
    built: Path, memory: MemoryRegistry
) -> None:
    push_killed(built, memory, after=0)
    memory.held[f"{DEV}:0.3.0"] = OTHER  # meanwhile someone put other content there

    result = run(built, "push", REF)

    assert result.exit_code == 1, result.output
    assert "cannot be completed" in result.stderr and OTHER in result.stderr
    assert [line["phase"] for line in lines(built)] == ["intent", "failed"]
    assert memory.held[f"{DEV}:0.3.0"] == OTHER


def test_a_read_only_state_folder_is_a_user_error_before_any_tag(
    built: Path, memory: MemoryRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = audit_log(load_catalog(built))
    real_open = os.open

    def read_only(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        if Path(path) == log:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(os, "open", read_only)
    result = run(built, "push", REF)

    assert result.exit_code == 1, result.output
    assert "Read-only file system" in result.stderr and "internal error" not in result.stderr
    assert "writable" in result.stderr and "nothing was written" in result.stderr
    assert writes(memory) == []
    assert held_in(built, "dev") is None


def test_a_full_disk_on_push_is_a_user_error(
    built: Path, memory: MemoryRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    full_disk(monkeypatch)

    result = run(built, "push", REF, "--json")

    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is False and "No space left on device" in document["error"]
    assert "imagefactory status lists it" in document["hint"]


class _Refusing(http.server.BaseHTTPRequestHandler):
    """A registry that wants Basic credentials and refuses every one it is sent."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="r"')
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_refused_credentials_are_a_user_error_that_names_their_variables() -> None:
    with serving(_Refusing) as address:
        registry = Registry(
            url=address, tls_verify=False, username_env="REG_USER", password_env="REG_PASSWORD"
        )
        with pytest.raises(UserError) as caught:
            RegistryHTTP(registry, "dXNlcjp3cm9uZw==").tags("team/app")

    assert caught.value.exit_code == 1
    assert "401" in caught.value.message
    assert "check REG_USER/REG_PASSWORD" in (caught.value.hint or "")


def test_an_interrupted_promotion_of_a_version_yanked_since_is_refused_and_closed(
    in_preprod: Path, memory: MemoryRegistry
) -> None:
    """Completing an open promotion goes through the gate's yank: a version yanked since the
    intent was logged is never shipped by its completion (it once reached prod, with latest)."""
    memory.held.update({f"{DEV}:{tag}": DIGEST for tag in PUSHED})
    killed(in_preprod, memory, "promote", REF, "--to", "prod", "--approve", after=0)
    [intent] = [line for line in lines(in_preprod) if line["target"] == "prod"]
    yanked = run(in_preprod, "yank", REF, "0.3.0", "--reason", "CVE-2026-1234")
    assert yanked.exit_code == 0, yanked.output

    dry = run(in_preprod, "promote", REF, "--to", "prod", "--dry-run")

    assert dry.exit_code == 1, dry.output
    assert "was yanked since: CVE-2026-1234" in dry.stderr
    [pending] = json.loads(run(in_preprod, "status", "--json").stdout)["incomplete"]
    assert pending["audit_id"] == intent["id"]  # a dry run closes nothing

    memory.calls.clear()
    result = run(in_preprod, "promote", REF, "--to", "prod")

    assert result.exit_code == 1, result.output
    assert "internal error" not in result.stderr
    assert f"the interrupted promote {intent['id']}" in result.stderr
    assert "was yanked since: CVE-2026-1234" in result.stderr
    assert f"imagefactory unyank {REF} 0.3.0" in result.stderr
    assert writes(memory) == []
    assert not any(ref.startswith(PROD) for ref in memory.held)
    assert held_in(in_preprod, "prod") is None
    failed = lines(in_preprod)[-1]
    assert (failed["phase"], failed["id"]) == ("failed", intent["id"])
    assert "yanked since" in failed["error"]
    assert json.loads(run(in_preprod, "status", "--json").stdout)["incomplete"] == []
    again = run(in_preprod, "promote", REF, "--to", "prod", "--approve")
    assert again.exit_code == 1 and "is yanked: CVE-2026-1234" in again.stderr  # the gate's own


def test_a_resumed_push_leaves_the_aliases_of_a_newer_version_where_they_are(
    built: Path, memory: MemoryRegistry
) -> None:
    """An interrupted push of 0.3.0 is completed after 0.4.0 reached dev: 0.3.0 and 0.3 are
    written, but 0, and latest stay on 0.4.0 (the completion once moved them back)."""
    push_killed(built, memory, after=0)
    [intent] = lines(built)
    assert intent["tags"] == PUSHED
    newer = {f"{DEV}:{tag}": OTHER for tag in ("0.4.0", "0.4", "0", "latest")}
    memory.held.update(newer)

    result = run(built, "push", REF, "--json")

    assert result.exit_code == 0, result.output
    assert {ref: memory.held[ref] for ref in newer} == newer
    assert {t: memory.held[f"{DEV}:{t}"] for t in ("0.3", "0.3.0")} == dict.fromkeys(
        ("0.3", "0.3.0"), DIGEST
    )
    [entry] = json.loads(result.stdout)["images"]
    assert entry["audit_id"] == intent["id"]
    assert sorted(t["tag"] for t in entry["tags"]) == ["0.3", "0.3.0"]
    done = lines(built)[-1]
    assert (done["phase"], done["id"], done["tags"]) == ("done", intent["id"], ["0.3", "0.3.0"])
    held = held_in(built, "dev")
    assert held is not None and held.tags == ["0.3", "0.3.0"]  # what it holds, not all it meant


def test_a_push_reads_the_gates_evidence_under_its_lock(
    built: Path, memory: MemoryRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A yank of 0.3.0 that finishes while the push waits for its lock: the push sees it (it
    once read state and evidence before the lock, and shipped the yanked version)."""
    record = load_state(state_file(load_catalog(built))).images[REF]
    recorded(built, versions={"0.3.0": record.content_hash})
    memory.held[f"{DEV}:{content_tag(record.content_hash)}"] = DIGEST  # how yank finds 0.3.0
    real = push.one_at_a_time
    yanks = []

    @contextmanager
    def after_a_yank(*args: Any) -> Iterator[None]:
        yanks.append(run(built, "yank", REF, "0.3.0", "--reason", "CVE-2026-1234"))
        with real(*args):
            yield

    monkeypatch.setattr(push, "one_at_a_time", after_a_yank)
    result = run(built, "push", REF)

    [yanked] = yanks
    assert yanked.exit_code == 0, yanked.output
    assert result.exit_code == 1, result.output
    assert f"{REF} 0.3.0 ({DIGEST}) is yanked: CVE-2026-1234" in result.stderr
    assert not any(memory.held.get(f"{DEV}:{tag}") for tag in PUSHED)
    assert held_in(built, "dev") is None


def test_an_open_pin_into_an_environment_that_needs_approval_completes_with_approve(
    built: Path, memory: MemoryRegistry
) -> None:
    """``gitops update`` into prod is refused without --approve: the command status gives to
    complete an open pin there has it (one into dev has not)."""
    catalog = load_catalog(built)
    prod = logged(catalog, "pin", DIGEST, source="prod", target="prod", approver="Ann Approver")
    dev = logged(catalog, "pin", OTHER, source="dev", target="dev")

    document = json.loads(run(built, "status", "--json").stdout)

    assert {i["audit_id"]: i["complete_with"] for i in document["incomplete"]} == {
        prod.id: f"imagefactory gitops update --env prod {REF}@{DIGEST} --approve",
        dev.id: f"imagefactory gitops update --env dev {REF}@{OTHER}",
    }
