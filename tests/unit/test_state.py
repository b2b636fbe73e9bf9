"""The state file is written whole or not at all, never through a symlink; test runs are
recorded per digest; a build records itself over the state as it is then, not as it was."""

from __future__ import annotations

import errno
import os
from datetime import datetime
from pathlib import Path
from typing import cast

import pytest

from imagefactory.build.run import BuildOptions, BuildRun
from imagefactory.errors import UserError
from imagefactory.evidence.predicates import parse_test_result
from imagefactory.imagetest import session
from imagefactory.imagetest.results import CheckResult, ImageReport
from imagefactory.imagetest.session import record_test
from imagefactory.project import state as state_model
from imagefactory.project.paths import state_file
from imagefactory.project.state import (
    ImageRecord,
    State,
    load_state,
    locked_state,
    save_state,
    with_record,
)
from imagefactory.registry.client import RegistryClient
from imagefactory.spec.loader import load_catalog

from .test_build_scheduling import Recorder
from .test_write_tags import DEV


def record(content_hash: str) -> ImageRecord:
    return ImageRecord(
        content_hash=content_hash, inputs={"spec": "s"}, version="1.0.0", digest="sha256:d"
    )


def test_round_trip_keeps_records_and_extra_fields(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state.json"
    state = with_record(State(), "b", record("hb"))
    state = with_record(state, "a", record("ha").model_copy(update={"ticket": "CHG-1234"}))
    save_state(path, state)
    loaded = load_state(path)
    assert list(loaded.images) == ["a", "b"]
    assert loaded.images["a"].model_extra == {"ticket": "CHG-1234"}
    assert loaded.images["b"].digest == "sha256:d"
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]


def test_a_write_that_dies_leaves_the_previous_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    save_state(path, with_record(State(), "a", record("old")))
    before = path.read_bytes()

    def crash(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", crash)
    # a full disk is the user's to fix (exit 1 with a hint), not an internal error
    with pytest.raises(UserError, match="No space left on device") as caught:
        save_state(path, with_record(State(), "a", record("new")))
    assert caught.value.hint is not None and caught.value.hint.startswith("free space")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


# --- test runs, one per digest ---------------------------------------------------------------

REF = "app/rag-api"
DIGEST_A, DIGEST_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def report_of(digest: str, *results: CheckResult) -> ImageReport:
    return ImageReport(REF, f"registry.example.com/{REF}@{digest}", digest, results)


PASS = CheckResult("files", "/etc/passwd", True)
FAIL = CheckResult("container", "starts", False, 0.0, "the container to start", "exit code 127")


def test_the_attested_run_has_the_time_state_records(catalog_dir: Path) -> None:
    """The test-result attestation signs the instant ``record_test`` wrote into state (the
    readers order the runs by it)."""
    catalog = load_catalog(catalog_dir)
    path = state_file(catalog)
    save_state(path, with_record(State(), REF, record("h").model_copy(update={"digest": DIGEST_A})))
    report = report_of(DIGEST_A, PASS, FAIL)
    at = record_test(catalog, REF, report)
    run = load_state(path).images[REF].test_of(DIGEST_A)
    assert run is not None and datetime.fromisoformat(run.at) == at
    predicate = session.test_predicate(catalog, catalog.images[REF], report, at)
    assert predicate["result"] == "FAILED" and parse_test_result(predicate).at == at


def test_a_test_run_is_recorded_per_digest_and_never_erases_another_digests(
    catalog_dir: Path,
) -> None:
    """Regression: a test of a new digest replaced the one test record of the image, so the pass
    of the digest running in prod was gone (and its promotion refused)."""
    catalog = load_catalog(catalog_dir)
    path = state_file(catalog)
    save_state(path, with_record(State(), REF, record("h").model_copy(update={"digest": DIGEST_A})))
    record_test(catalog, REF, report_of(DIGEST_A, PASS, PASS))
    # the image is rebuilt meanwhile (another command writes its record): B is now the digest
    rebuilt = load_state(path).images[REF].model_copy(update={"digest": DIGEST_B, "size_bytes": 7})
    save_state(path, with_record(load_state(path), REF, rebuilt))
    record_test(catalog, REF, report_of(DIGEST_B, PASS, FAIL))

    after = load_state(path).images[REF]
    assert after.digest == DIGEST_B and after.size_bytes == 7, "the rebuild's record was kept"
    a, b = after.test_of(DIGEST_A), after.test_of(DIGEST_B)
    assert a is not None and a.passed is True and a.checks == 2
    assert b is not None and b.passed is False and b.checks == 2
    # a failed rerun of A withdraws A's pass, and only A's
    record_test(catalog, REF, report_of(DIGEST_A, FAIL))
    after = load_state(path).images[REF]
    assert (after.test_of(DIGEST_A) or a).passed is False
    assert after.test_of(DIGEST_B) == b


def test_a_legacy_pass_of_another_digest_survives_a_new_run(catalog_dir: Path) -> None:
    catalog = load_catalog(catalog_dir)
    path = state_file(catalog)
    legacy = state_model.TestRecord(
        digest=DIGEST_A, passed=True, at="2026-01-01T00:00:00+00:00", checks=3
    )
    old = record("h").model_copy(update={"digest": DIGEST_B, "tests": legacy})
    save_state(path, with_record(State(), REF, old))
    record_test(catalog, REF, report_of(DIGEST_B, PASS))
    after = load_state(path).images[REF]
    assert after.test_of(DIGEST_A) == legacy
    assert after.test_of(DIGEST_B) is not None
    assert "tests" not in path.read_text(), "the legacy field is folded into test_runs"


def test_no_record_is_made_for_an_image_whose_record_is_gone(catalog_dir: Path) -> None:
    catalog = load_catalog(catalog_dir)
    path = state_file(catalog)
    save_state(path, State())
    record_test(catalog, REF, report_of(DIGEST_A, PASS))
    assert load_state(path) == State()


# --- never through a symlink ------------------------------------------------------------------


def test_the_state_is_not_written_below_a_symlinked_folder(tmp_path: Path) -> None:
    """Regression: a committed ``.imagefactory`` symlink (here to another folder of the project)
    was followed by save_state and locked_state: the state and its lock landed there."""
    root = tmp_path / "project"
    (root / "elsewhere").mkdir(parents=True)
    (root / ".imagefactory").symlink_to("elsewhere")
    path = root / ".imagefactory" / "state.json"
    with pytest.raises(UserError, match=r"\.imagefactory is a symlink"):
        save_state(path, State(), root=root)
    with (
        pytest.raises(UserError, match=r"\.imagefactory is a symlink"),
        locked_state(path, root=root),
    ):
        pass
    deeper = root / ".imagefactory" / "sub" / "state.json"
    with pytest.raises(UserError, match="is a symlink"), locked_state(deeper, root=root):
        pass
    assert list((root / "elsewhere").iterdir()) == [], "nothing was written through the link"
    with pytest.raises(UserError, match="is outside"):
        save_state(tmp_path / "state.json", State(), root=root)


def test_a_state_write_under_the_lock_stays_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "project"
    path = root / ".imagefactory" / "state.json"
    with locked_state(path, root=root) as save:
        save(with_record(State(), REF, record("h")))
    assert load_state(path).images[REF].content_hash == "h"
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json", "state.json.lock"]


def test_a_build_keeps_what_another_command_recorded_since_it_started(catalog_dir: Path) -> None:
    """Regression: a build saved the whole state it had read when it started, so a test run
    (or a push) recorded meanwhile by another command was lost."""
    catalog = load_catalog(catalog_dir)
    path = state_file(catalog)
    save_state(path, with_record(State(), REF, record("h").model_copy(update={"digest": DIGEST_A})))
    run = BuildRun(catalog, cast(RegistryClient, None), BuildOptions(), Recorder())
    record_test(catalog, REF, report_of(DIGEST_A, PASS))  # meanwhile, by `imagefactory test`

    image = catalog.images[REF]
    tag = f"{DEV}:content-1"
    run._record(image, run.inputs[REF], tag, DIGEST_B, "sha256:id", size=7, seconds=1.0)

    after = load_state(path).images[REF]
    assert (after.digest, after.size_bytes) == (DIGEST_B, 7)
    kept = after.test_of(DIGEST_A)
    assert kept is not None and kept.passed is True, "the test run recorded meanwhile was lost"
