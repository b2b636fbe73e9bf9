"""The image copy's bounded tries, without a registry: a registry gone or failing (no answer,
429, 5xx) is asked again, at most three times in all; any other refusal at once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from imagefactory.registry import copy
from imagefactory.registry.http import RegistryRequestError


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copy, "BACKOFF_S", 0.0)


def failing(*statuses: int | str) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= len(statuses):
            raise RegistryRequestError("PUT", "https://b/v2/x", statuses[len(calls) - 1], "down")
        return "done"

    return calls, call


@pytest.mark.parametrize("status", ["no answer:", 503, 429])
def test_a_registry_gone_or_failing_is_asked_again(status: int | str) -> None:
    calls, call = failing(status, status)
    assert copy.retried(call) == "done" and len(calls) == 3


def test_three_tries_then_the_error_says_so() -> None:
    calls, call = failing("no answer:", "no answer:", "no answer:")
    with pytest.raises(RegistryRequestError, match=r"\(after 3 attempts\)"):
        copy.retried(call)
    assert len(calls) == 3


@pytest.mark.parametrize("status", [404, 400, "wrong digest", "too large"])
def test_a_refusal_is_not_asked_again(status: int | str) -> None:
    calls, call = failing(status)
    with pytest.raises(RegistryRequestError):
        copy.retried(call)
    assert len(calls) == 1


def test_a_read_the_http_client_asked_again_is_not_asked_once_more() -> None:
    """The HTTP client asks a failing read again itself (``http.RETRY_PAUSES``): the copy's
    own tries would multiply those."""
    calls: list[int] = []

    def read() -> str:
        calls.append(1)
        raise RegistryRequestError("HEAD", "https://b/v2/x/blobs/sha256:0", 503, "down")

    with pytest.raises(RegistryRequestError, match="503"):
        copy.retried(read)
    assert len(calls) == 1
