"""The state file is written whole or not at all."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from imagefactory.errors import UserError
from imagefactory.project.state import ImageRecord, State, load_state, save_state, with_record


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
