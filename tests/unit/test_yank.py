"""Yank and unyank: the alias arithmetic (pure), the gate refusing a yanked version, and the
commands through the CLI against the in-memory registry of test_write_tags (aliases moved back
and forward, state, the audit log written ahead, status, an interrupted yank completed, hostile
or missing arguments refused as user errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import semver

from imagefactory.project import state as state_module
from imagefactory.project.paths import state_file
from imagefactory.project.state import EnvironmentRecord, ImageRecord, State, save_state
from imagefactory.release import gate, promote, push
from imagefactory.release import yank as yank_module
from imagefactory.release.aliases import alias_targets, good_versions
from imagefactory.release.evidence import LocalEvidence
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.models import Environment, Registry

from .helpers import build, lines, run, serve
from .test_gate import CI_VARIABLES, NOTHING_LISTED, in_ci
from .test_write_tags import MemoryRegistry

REF = "app/rag-api"
DEV = "127.0.0.1:5000/bank-ai-lab/dev/app/rag-api"
PREPROD = "127.0.0.1:5000/bank-ai-lab/preprod/app/rag-api"
PROD = "127.0.0.1:5000/bank-ai-lab/prod/app/rag-api"
GOOD = "sha256:" + "a" * 64  # 1.0.0
BAD = "sha256:" + "b" * 64  # 1.0.1
ALIASES = ("1", "1.0", "latest")


def v(*texts: str) -> list[semver.Version]:
    return [semver.Version.parse(t) for t in texts]


# --- the alias arithmetic -----------------------------------------------------------------


def test_a_yanked_release_gives_its_aliases_back_to_the_highest_good_one() -> None:
    targets = alias_targets(v("1.0.0", "1.0.1"), "", {"1.0.1"})
    assert targets == dict.fromkeys(["1.0", "1", "latest"], semver.Version.parse("1.0.0"))


def test_each_line_falls_back_on_its_own_and_a_line_without_a_good_version_has_none() -> None:
    targets = alias_targets(v("1.0.0", "1.1.0", "1.1.1", "2.0.0"), "-cuda", {"1.1.1", "2.0.0"})

    assert {alias: str(t) if t else None for alias, t in targets.items()} == {
        "1.0-cuda": "1.0.0",
        "1.1-cuda": "1.1.0",
        "1-cuda": "1.1.0",
        "2.0-cuda": None,
        "2-cuda": None,
        "latest-cuda": "1.1.0",
    }


def test_prereleases_hold_no_alias_and_without_yanks_every_alias_names_what_a_push_gave_it() -> (
    None
):
    versions = v("1.4.2", "2.0.0-rc.1", "1.4.3", "1.3.9")

    targets = alias_targets(versions, "", set())

    assert {alias: str(t) for alias, t in targets.items() if t} == {
        "1.3": "1.3.9",
        "1.4": "1.4.3",
        "1": "1.4.3",
        "latest": "1.4.3",
    }
    assert set(targets) == {"1.3", "1.4", "1", "latest"}  # no 2.0, 2: only a prerelease there


def test_yanking_every_version_leaves_no_alias_a_good_target() -> None:
    assert alias_targets(v("1.0.0"), "", {"1.0.0"}) == dict.fromkeys(["1.0", "1", "latest"])
    assert good_versions(v("1.0.0", "1.0.1"), {"1.0.0"}) == v("1.0.1")


# --- the gate -----------------------------------------------------------------------------


def test_the_gate_refuses_a_yanked_version_even_tested_and_approved() -> None:
    yanked = state_module.YankRecord(
        version="1.0.1", digest=BAD, reason="CVE-1", by="sec", at="now"
    )
    record = ImageRecord(
        content_hash="sha256:" + "c" * 64,
        inputs={},
        version="1.0.1",
        test_runs={BAD: state_module.TestRecord(digest=BAD, passed=True, at="then")},
        yanked={"1.0.1": yanked},
    )
    evidence = LocalEvidence(State(images={REF: record}), {})
    prod = Environment(name="prod", registries=["prod"], approval=True)

    with pytest.raises(gate.Refused, match="yanked: CVE-1") as refused:
        gate.require(
            evidence,
            gate.Candidate(REF, "1.0.1", BAD, prod),
            approver="jane",
            listed=NOTHING_LISTED,
        )
    assert refused.value.hint is not None and f"unyank {REF} 1.0.1" in refused.value.hint
    gate.require(  # 1.0.0 is not yanked: through
        evidence,
        gate.Candidate(REF, "1.0.0", BAD, prod),
        approver="jane",
        tests_required=True,
        listed=NOTHING_LISTED,
    )


# --- the commands, against the in-memory registry ------------------------------------------


def record_of(root: Path) -> ImageRecord:
    return state_module.load_state(state_file(load_catalog(root))).images[REF]


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> MemoryRegistry:
    """The registries of yank, push and promote, in memory."""
    return serve(monkeypatch, MemoryRegistry(), yank_module, push, promote)


@pytest.fixture
def released(catalog_dir: Path, memory: MemoryRegistry) -> Path:
    """1.0.0 in preprod; 1.0.0 and then 1.0.1 pushed to dev (where the aliases follow it)."""
    held = {
        "dev": EnvironmentRecord(
            version="1.0.1", digest=BAD, tags=["1.0.1", *ALIASES], registries=["dev"], at="t"
        ),
        "preprod": EnvironmentRecord(
            version="1.0.0", digest=GOOD, tags=["1.0.0", *ALIASES], registries=["preprod"], at="t"
        ),
    }
    record = ImageRecord(
        content_hash="sha256:" + "2" * 64,
        inputs={},
        version="1.0.1",
        digest=BAD,
        versions={"1.0.0": "sha256:" + "1" * 64, "1.0.1": "sha256:" + "2" * 64},
        environments=held,
    )
    save_state(state_file(load_catalog(catalog_dir)), State(images={REF: record}))
    memory.held.update({f"{DEV}:1.0.0": GOOD, f"{DEV}:1.0.1": BAD})
    memory.held.update({f"{DEV}:{alias}": BAD for alias in ALIASES})
    memory.held.update({f"{PREPROD}:{tag}": GOOD for tag in ("1.0.0", *ALIASES)})
    return catalog_dir


def aliases_in(memory: MemoryRegistry, repository: str) -> dict[str, str]:
    return {alias: memory.held[f"{repository}:{alias}"] for alias in ALIASES}


def test_yank_moves_the_aliases_back_records_it_ahead_and_status_shows_it(
    released: Path, memory: MemoryRegistry
) -> None:
    result = run(released, "yank", REF, "1.0.1", "--reason", "CVE-2026-1234 in libfoo", "--json")

    assert result.exit_code == 0, result.output
    assert aliases_in(memory, DEV) == dict.fromkeys(ALIASES, GOOD)
    assert aliases_in(memory, PREPROD) == dict.fromkeys(ALIASES, GOOD)
    assert memory.held[f"{DEV}:1.0.1"] == BAD  # the X.Y.Z tag stays: evidence
    document = json.loads(result.stdout)
    moved = {(a["repository"], a["tag"], a["action"]) for a in document["aliases"]}
    assert {(DEV, alias, "move") for alias in ALIASES} <= moved
    assert {(PREPROD, alias, "keep") for alias in ALIASES} <= moved
    assert (document["digest"], document["deployed_in"]) == (BAD, ["dev"])
    intent, done = lines(released)
    assert (intent["phase"], intent["action"], intent["version"]) == ("intent", "yank", "1.0.1")
    assert intent["reason"] == "CVE-2026-1234 in libfoo" and intent["target"] == "*"
    assert (done["phase"], done["id"], document["audit_id"]) == ("done", intent["id"], intent["id"])
    yanked = record_of(released).yanked["1.0.1"]
    assert (yanked.digest, yanked.reason, yanked.audit_id) == (BAD, intent["reason"], intent["id"])

    status = json.loads(run(released, "status", REF, "--json").stdout)
    assert status["images"][REF]["dev"]["yanked"] is True
    assert status["images"][REF]["preprod"]["yanked"] is False
    [shown] = status["yanked"][REF]
    assert (shown["version"], shown["reason"], shown["deployed_in"]) == (
        "1.0.1",
        "CVE-2026-1234 in libfoo",
        ["dev"],
    )
    text = run(released, "status").stdout
    assert "YANKED" in text and "CVE-2026-1234 in libfoo" in text


def record_run(root: Path, digest: str, *, passed: bool, at: str = "later") -> None:
    """A test run of ``digest`` of app/rag-api in state (the latest of it)."""
    record = record_of(root).with_test(state_module.TestRecord(digest=digest, passed=passed, at=at))
    save_state(state_file(load_catalog(root)), State(images={REF: record}))


def test_unyank_moves_the_aliases_forward_again(released: Path, memory: MemoryRegistry) -> None:
    assert run(released, "yank", REF, "1.0.1", "--reason", "suspected").exit_code == 0
    record_run(released, BAD, passed=True)

    result = run(released, "unyank", REF, "1.0.1", "--reason", "false positive")

    assert result.exit_code == 0, result.output
    assert aliases_in(memory, DEV) == dict.fromkeys(ALIASES, BAD)
    assert aliases_in(memory, PREPROD) == dict.fromkeys(ALIASES, GOOD)  # 1.0.1 never got there
    assert record_of(released).yanked == {}
    actions = [(line["action"], line["phase"]) for line in lines(released)]
    assert actions == [
        ("yank", "intent"),
        ("yank", "done"),
        ("unyank", "intent"),
        ("unyank", "done"),
    ]
    assert lines(released)[2]["reason"] == "false positive"
    again = run(released, "unyank", REF, "1.0.1")
    assert again.exit_code == 1 and "1.0.1 is not yanked" in again.output


@pytest.mark.parametrize(
    ("passed", "refusal"), [(None, "has no test record"), (False, "failed its tests")]
)
def test_unyank_never_gives_the_aliases_back_to_a_digest_without_a_passing_test(
    released: Path, memory: MemoryRegistry, passed: bool | None, refusal: str
) -> None:
    """Before: unyank moved dev's aliases back onto a digest whose latest test run failed."""
    assert run(released, "yank", REF, "1.0.1", "--reason", "suspected").exit_code == 0
    if passed is not None:
        record_run(released, BAD, passed=True, at="first")
        record_run(released, BAD, passed=passed, at="then")  # its latest run counts
    before = lines(released)

    result = run(released, "unyank", REF, "1.0.1", "--reason", "false positive")

    assert result.exit_code == 1, result.output
    assert f"{REF} 1.0.1 ({BAD}) {refusal}" in result.output
    assert aliases_in(memory, DEV) == dict.fromkeys(ALIASES, GOOD)
    assert lines(released) == before and "1.0.1" in record_of(released).yanked


@pytest.fixture
def in_prod(released: Path, memory: MemoryRegistry, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``released`` with 1.0.0 and then 1.0.1 in prod too (which needs an approval), its
    aliases on 1.0.1; 1.0.1 passed its tests; no CI variable of the machine leaks in."""
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    memory.held.update({f"{PROD}:1.0.0": GOOD, f"{PROD}:1.0.1": BAD})
    memory.held.update({f"{PROD}:{alias}": BAD for alias in ALIASES})
    record_run(released, BAD, passed=True)
    return released


def test_yank_and_unyank_move_prod_aliases_only_approved_and_record_the_approver(
    in_prod: Path, memory: MemoryRegistry
) -> None:
    """Before: anyone with credentials moved prod's aliases, approved by nobody."""
    refused = run(in_prod, "yank", REF, "1.0.1", "--reason", "CVE-9")

    assert refused.exit_code == 1, refused.output
    assert "prod needs an approval for the yank of app/rag-api 1.0.1" in refused.output
    assert "--approve" in refused.output
    assert aliases_in(memory, PROD) == dict.fromkeys(ALIASES, BAD)
    assert lines(in_prod) == [] and record_of(in_prod).yanked == {}

    approved = ("--approve", "--approver", "Ann Approver")
    yanked = run(in_prod, "yank", REF, "1.0.1", "--reason", "CVE-9", *approved, "--json")

    assert yanked.exit_code == 0, yanked.output
    assert json.loads(yanked.stdout)["approver"] == "Ann Approver"
    assert aliases_in(memory, PROD) == dict.fromkeys(ALIASES, GOOD)
    assert [(line["phase"], line["approver"]) for line in lines(in_prod)] == [
        ("intent", "Ann Approver"),
        ("done", "Ann Approver"),
    ]

    refused = run(in_prod, "unyank", REF, "1.0.1")
    assert refused.exit_code == 1 and "prod needs an approval" in refused.output
    assert aliases_in(memory, PROD) == dict.fromkeys(ALIASES, GOOD) and len(lines(in_prod)) == 2

    back = run(in_prod, "unyank", REF, "1.0.1", "--approve", "--approver", "Bea Boss", "--json")

    assert back.exit_code == 0, back.output
    assert aliases_in(memory, PROD) == dict.fromkeys(ALIASES, BAD)
    assert [line["approver"] for line in lines(in_prod)[2:]] == ["Bea Boss", "Bea Boss"]


def test_a_yank_that_moves_no_prod_alias_needs_no_approval(
    in_prod: Path, memory: MemoryRegistry
) -> None:
    memory.held.update({f"{PROD}:{alias}": GOOD for alias in ALIASES})  # prod never had 1.0.1's

    result = run(in_prod, "yank", REF, "1.0.1", "--reason", "CVE-9", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["approver"] is None
    assert aliases_in(memory, DEV) == dict.fromkeys(ALIASES, GOOD)


def test_in_ci_only_the_protected_deployment_job_of_prod_yanks_there(
    in_prod: Path, memory: MemoryRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_ci(monkeypatch, GITLAB_USER_LOGIN="jdoe")  # CI=true alone approves nothing
    refused = run(in_prod, "yank", REF, "1.0.1", "--reason", "CVE-9", "--approve")
    assert refused.exit_code == 1, refused.output
    assert "only a job deploying to the protected environment prod approves" in refused.output
    assert aliases_in(memory, PROD) == dict.fromkeys(ALIASES, BAD)

    in_ci(monkeypatch, CI_ENVIRONMENT_NAME="prod", CI_COMMIT_REF_PROTECTED="true")
    result = run(in_prod, "yank", REF, "1.0.1", "--reason", "CVE-9")

    assert result.exit_code == 0, result.output
    assert aliases_in(memory, PROD) == dict.fromkeys(ALIASES, GOOD)
    assert {line["approver"] for line in lines(in_prod)} == {"jdoe"}


def test_unyank_into_a_four_eyes_environment_passes_the_gate_there(
    in_prod: Path, memory: MemoryRegistry
) -> None:
    """Four eyes: nobody knows here who pushed 1.0.1 (no push record), so nobody approves it."""
    path = in_prod / "imagefactory.yaml"
    text = path.read_text()
    path.write_text(
        text.replace("    approval: true\n", "    approval: true\n    four_eyes: true\n")
    )
    approved = ("--approve", "--approver", "Ann Approver")
    assert run(in_prod, "yank", REF, "1.0.1", "--reason", "CVE-9", *approved).exit_code == 0

    refused = run(in_prod, "unyank", REF, "1.0.1", *approved)

    assert refused.exit_code == 1, refused.output
    assert "is not known here: four eyes cannot be checked for prod" in refused.output
    assert aliases_in(memory, PROD) == dict.fromkeys(ALIASES, GOOD)


def test_a_dry_run_plans_and_writes_nothing(released: Path, memory: MemoryRegistry) -> None:
    result = run(released, "yank", REF, "1.0.1", "--reason", "bad", "--dry-run")

    assert result.exit_code == 0, result.output
    assert f"would move {DEV}:latest → 1.0.0" in result.stdout
    assert aliases_in(memory, DEV) == dict.fromkeys(ALIASES, BAD)
    assert lines(released) == [] and record_of(released).yanked == {}


def test_an_alias_without_a_good_version_in_its_line_is_left_and_reported(
    released: Path, memory: MemoryRegistry
) -> None:
    assert run(released, "yank", REF, "1.0.1", "--reason", "first").exit_code == 0

    result = run(released, "yank", REF, "1.0.0", "--reason", "also bad", "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    left = {f"{repo}:{alias}" for repo in (DEV, PREPROD) for alias in ALIASES}
    assert set(document["aliases_left"]) == left
    assert aliases_in(memory, DEV) == dict.fromkeys(ALIASES, GOOD)  # untouched: no delete
    status = json.loads(run(released, "status", "--json").stdout)
    assert set(status["yanked"][REF][1]["aliases_left"]) == left
    assert status["images"][REF]["preprod"]["yanked"] is True


def test_yanking_again_only_puts_back_an_alias_that_moved_onto_the_yanked_version(
    released: Path, memory: MemoryRegistry
) -> None:
    assert run(released, "yank", REF, "1.0.1", "--reason", "first reason").exit_code == 0
    nothing = json.loads(run(released, "yank", REF, "1.0.1", "--reason", "x", "--json").stdout)
    assert nothing["audit_id"] is None and len(lines(released)) == 2  # nothing to do
    memory.held[f"{DEV}:latest"] = BAD  # someone moved it back

    result = run(released, "yank", REF, "1.0.1", "--reason", "second reason", "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    moved = [(a["tag"], a["action"]) for a in document["aliases"] if a["action"] != "keep"]
    assert moved == [("latest", "move")] and memory.held[f"{DEV}:latest"] == GOOD
    assert lines(released)[-2]["tags"] == ["latest"]
    assert document["reason"] == record_of(released).yanked["1.0.1"].reason == "first reason"


def test_an_interrupted_yank_is_listed_and_completed_by_the_command_status_gives(
    released: Path, memory: MemoryRegistry
) -> None:
    real_tag = memory.tag

    def dying(registry: Registry, repository: str, digest: str, tag: str) -> None:
        if any(what == "tag" for what, _ in memory.calls):
            raise KeyboardInterrupt  # the process is stopped after the first alias moved
        real_tag(registry, repository, digest, tag)

    memory.tag = dying  # type: ignore[method-assign]
    killed = run(released, "yank", REF, "1.0.1", "--reason", "CVE-9")
    memory.tag = real_tag  # type: ignore[method-assign]

    assert killed.exit_code == 130, killed.output
    [intent] = lines(released)
    assert record_of(released).yanked == {}
    [pending] = json.loads(run(released, "status", "--json").stdout)["incomplete"]
    assert pending["audit_id"] == intent["id"]
    assert pending["complete_with"] == f"imagefactory yank {REF} 1.0.1"

    result = run(released, *pending["complete_with"].split()[1:], "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["completed_interrupted"] == [intent["id"]]
    assert aliases_in(memory, DEV) == dict.fromkeys(ALIASES, GOOD)
    assert [(line["phase"], line["id"]) for line in lines(released)] == [
        ("intent", intent["id"]),
        ("done", intent["id"]),
    ]
    assert record_of(released).yanked["1.0.1"].reason == "CVE-9"  # the reason logged ahead


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["1.0.1"], "a yank needs a reason"),
        (["1.0.1", "--reason", "  "], "a yank needs a reason"),
        (["1.0.1", "--reason", "line\nbreak"], "the reason must be one line"),
        (["1.0.1", "--reason", "\x1b[31mred"], "the reason must be one line"),
        (["1.0.1", "--reason", "x" * 501], "at most 500 characters"),
        (["one.two", "--reason", "bad"], "'one.two' is not a version"),
        (["9.9.9", "--reason", "bad"], "has no version 9.9.9"),
    ],
)
def test_missing_or_hostile_arguments_are_user_errors(
    released: Path, memory: MemoryRegistry, args: list[str], message: str
) -> None:
    result = run(released, "yank", REF, *args)

    assert result.exit_code == 1, result.output
    assert message in result.output
    assert lines(released) == [] and record_of(released).yanked == {}


def test_status_counts_the_test_run_of_the_digest_held_not_the_latest_one(
    released: Path,
) -> None:
    """Per-digest test runs: dev holds BAD, which passed; GOOD was tested (and failed) after."""
    path = state_file(load_catalog(released))
    record = record_of(released)
    record = record.with_test(state_module.TestRecord(digest=BAD, passed=True, at="1"))
    record = record.with_test(state_module.TestRecord(digest=GOOD, passed=False, at="2"))
    save_state(path, State(images={REF: record}))

    placements = json.loads(run(released, "status", "--json").stdout)["images"][REF]

    assert (placements["dev"]["tested"], placements["preprod"]["tested"]) == (True, False)


@pytest.fixture
def yanked_ahead(catalog_dir: Path, memory: MemoryRegistry) -> Path:
    """app/rag-api built (0.3.0, as image.yaml says) and tested as GOOD; dev and preprod hold
    0.4.0, BAD, with the aliases of every line on it, yanked: none had a good version to go
    back to."""
    held = EnvironmentRecord(
        version="0.4.0", digest=BAD, tags=["0.4.0"], registries=["dev"], at="t"
    )
    versions = {"0.4.0": "sha256:" + "4" * 64}
    build(catalog_dir, memory, GOOD, tested=True, versions=versions, environments={"dev": held})
    for repository in (DEV, PREPROD):
        memory.held.update({f"{repository}:{t}": BAD for t in ("0.4.0", "0.4", "0", "latest")})
    assert run(catalog_dir, "yank", REF, "0.4.0", "--reason", "CVE-9").exit_code == 0
    return catalog_dir


def test_after_a_yank_a_push_and_a_promotion_of_a_lower_good_version_take_the_aliases(
    yanked_ahead: Path, memory: MemoryRegistry
) -> None:
    result = run(yanked_ahead, "push", REF, "--json")

    assert result.exit_code == 0, result.output
    aliases = {tag: memory.held[f"{DEV}:{tag}"] for tag in ("0.3", "0", "latest")}
    assert aliases == dict.fromkeys(aliases, GOOD)  # 0.4.0 is yanked: 0.3.0 is the highest
    assert memory.held[f"{DEV}:0.4"] == BAD  # no good version of its own line: left
    [pushed] = json.loads(result.stdout)["images"]
    assert pushed["version"] == "0.3.0"
    assert {t["tag"]: t["action"] for t in pushed["tags"]} == {
        "0.3.0": "create",
        "0.3": "create",
        "0": "move",
        "latest": "move",
    }

    promoted = run(yanked_ahead, "promote", REF, "--to", "preprod")

    assert promoted.exit_code == 0, promoted.output
    assert {t: memory.held[f"{PREPROD}:{t}"] for t in ("0.3.0", "0.3", "0", "latest")} == (
        dict.fromkeys(("0.3.0", "0.3", "0", "latest"), GOOD)
    )
    assert memory.held[f"{PREPROD}:0.4"] == BAD
