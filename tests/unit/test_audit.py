"""The audit log stays valid JSON lines under concurrent writers; records carry CI context."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from imagefactory.release import audit


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
