"""Headless Chromium (Debian's ``chromium``) loading a file from disk, as root in CI
(``--no-sandbox``), every run bounded by a timeout.

What left a page is read from Chromium's NetLog (``--log-net-log``): every URL request it
started on behalf of a page loaded from ``file://`` (its network isolation key names the page's
``file://`` site). The browser's own background requests (component updates, time, account
checks) carry another key and are not the page's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from .services import run

TIMEOUT = 60
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run")


def chromium() -> str:
    found = shutil.which("chromium")
    assert found, "chromium is not installed: run scripts/setup.sh (Debian package chromium)"
    return found


def dump_dom(page: Path, net_log: Path) -> str:
    """The DOM of ``page`` once loaded, serialised; its network activity logged to ``net_log``."""
    argv = [chromium(), *_FLAGS, f"--log-net-log={net_log}", "--dump-dom", page.as_uri()]
    return run(argv, timeout=TIMEOUT).stdout


def screenshot(page: Path, png: Path, *, width: int = 1280, height: int = 1600) -> None:
    argv = [chromium(), *_FLAGS, f"--window-size={width},{height}", f"--screenshot={png}"]
    run([*argv, page.as_uri()], timeout=TIMEOUT)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"no PNG at {png}"


def page_requests(net_log: Path) -> list[str]:
    """The URL of every request the log shows a ``file://`` page starting."""
    log: dict[str, Any] = json.loads(net_log.read_text())
    types = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    found = []
    for event in log["events"]:
        params = event.get("params") or {}
        if types.get(event["type"]) != "URL_REQUEST_START_JOB" or "url" not in params:
            continue
        if str(params.get("network_isolation_key", "")).startswith("file://"):
            found.append(str(params["url"]))
    return found
