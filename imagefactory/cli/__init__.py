"""The ``imagefactory`` command line: typer apps, one module per command group, each imported
when one of its commands runs (imagefactory.cli.app.COMMANDS)."""

from __future__ import annotations

import signal
from types import FrameType

from imagefactory.cli.app import app


def main() -> None:
    # CI cancellation, `docker stop` and evictions send SIGTERM: unwind like Ctrl-C so cleanup
    # (temporary credentials, secret files, test containers) runs in the finally blocks.
    signal.signal(signal.SIGTERM, _interrupt)
    app(prog_name="imagefactory")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
