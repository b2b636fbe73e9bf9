"""The audit log stays valid JSON lines under concurrent writers and on a full disk; records
carry CI context; old lines (no phase) read as done records."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
from pathlib import Path

import pytest

from imagefactory.errors import UserError
from imagefactory.release import audit

# What a record held before the write-ahead log (no phase, registries, content hash, error).
OLD_FIELDS = {f.name for f in dataclasses.fields(audit.AuditRecord)} - {
    "phase",
    "registries",
    "content_hash",
    "error",
}


def record(image: str, **overrides: object) -> audit.AuditRecord:
    fields: dict[str, object] = {
        "action": "promote",
        "image": image,
        "version": "1.0.0",
        "digest": "sha256:" + "a" * 64,
        "source": "dev",
        "target": "preprod",
        "tags": ["1.0.0"],
        "git_revision": "abc",
        "approver": None,
    }
    fields.update(overrides)
    return audit.new_record(**fields)  # type: ignore[arg-type]


def write_many(path: str, worker: int) -> None:
    for index in range(50):
        audit.append(Path(path), record(f"img{worker}-{index}", tags=["x" * 3000]))


def test_concurrent_appends_never_tear_a_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    processes = [multiprocessing.Process(target=write_many, args=(str(path), w)) for w in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    lines = path.read_text().splitlines()
    assert len(lines) == 200
    assert {json.loads(line)["image"] for line in lines} == {
        f"img{w}-{i}" for w in range(4) for i in range(50)
    }
    assert len({json.loads(line)["id"] for line in lines}) == 200


def test_records_say_who_and_which_ci_job(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GITLAB_USER_LOGIN", "jdoe")
    monkeypatch.setenv("CI_PIPELINE_URL", "https://gitlab.example/p/-/pipelines/7")
    monkeypatch.setenv("CI_JOB_URL", "https://gitlab.example/p/-/jobs/70")
    path = tmp_path / "audit.jsonl"
    audit.append(path, record("app", approver="jdoe", forced=True))
    [entry] = audit.read(path)
    assert entry["who"] == "jdoe" and entry["approver"] == "jdoe" and entry["forced"] is True
    assert entry["ci_pipeline_url"].endswith("/7") and entry["ci_job_url"].endswith("/70")
    assert entry["source"] == "dev" and entry["target"] == "preprod"


def test_lines_without_a_phase_are_done_records(tmp_path: Path) -> None:
    """Logs written before the write-ahead records: every line there is a done push/promotion."""
    path = tmp_path / "audit.jsonl"
    old = {k: v for k, v in dataclasses.asdict(record("old")).items() if k in OLD_FIELDS}
    path.write_text(json.dumps(old) + "\n")
    pending, closed, failed = record("pending"), record("closed"), record("failed")
    for entry in (pending, closed, audit.follow_up(closed, audit.DONE), failed):
        audit.append(path, entry)
    audit.append(path, audit.follow_up(failed, audit.FAILED, "registry down"))

    assert [line["image"] for line in audit.completed(path)] == ["old", "closed"]
    assert audit.interrupted(path) == [pending]
    assert [audit.phase(line) for line in audit.read(path)] == [
        "done", "intent", "intent", "done", "intent", "failed"
    ]  # fmt: skip


def test_a_short_write_leaves_no_half_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk that fills in the middle of a line: the part written is cut back off."""
    path = tmp_path / "audit.jsonl"
    audit.append(path, record("first"))
    before = path.read_bytes()
    real_write = os.write

    def half(descriptor: int, data: bytes) -> int:
        return real_write(descriptor, data[: len(data) // 2])

    monkeypatch.setattr(os, "write", half)
    with pytest.raises(OSError, match="No space left on device"):
        audit.append(path, record("second"))
    monkeypatch.undo()

    assert path.read_bytes() == before
    audit.append(path, record("third"))
    assert [line["image"] for line in audit.read(path)] == ["first", "third"]


def test_only_a_regular_file_is_appended_to_or_read(tmp_path: Path) -> None:
    """A FIFO there neither blocks the append nor the read; a symlink is not written through."""
    fifo, target, link = tmp_path / "fifo.jsonl", tmp_path / "elsewhere", tmp_path / "link.jsonl"
    os.mkfifo(fifo)
    target.write_text("")
    link.symlink_to(target)
    for path in (fifo, link):
        with pytest.raises(OSError):
            audit.append(path, record("app"))
    assert target.read_text() == ""
    with pytest.raises(UserError, match="is not a regular file"):
        audit.read(fifo)
