"""imagefactory.parallel: calls at once, bounded, the first failure raised after all finished."""

from __future__ import annotations

import threading
import time

import pytest

from imagefactory.parallel import at_once


def test_every_call_runs_and_the_limit_holds() -> None:
    lock = threading.Lock()
    together = threading.Barrier(2, timeout=10)  # broken unless two calls run at once
    running, most, ran = [0], [0], []

    def call(n: int) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        together.wait()
        with lock:
            running[0] -= 1
            ran.append(n)

    at_once([lambda n=n: call(n) for n in range(6)], limit=2)
    assert sorted(ran) == list(range(6))
    assert most[0] == 2  # two at a time, never three
    at_once([])  # nothing to run: no pool


def test_the_first_failure_is_raised_after_the_others_finished() -> None:
    finished = threading.Event()

    def slow() -> None:
        time.sleep(0.1)
        finished.set()

    def first() -> None:
        raise ValueError("first")

    def second() -> None:
        raise KeyError("second")

    with pytest.raises(ValueError, match="first"):
        at_once([first, slow, second])
    assert finished.is_set()
