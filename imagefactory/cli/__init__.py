"""The ``imagefactory`` command line: typer apps, one module per command group, each imported
when one of its commands runs (imagefactory.cli.app.COMMANDS)."""

from __future__ import annotations

import os
import signal
from types import FrameType

from imagefactory.cli.app import app

#: The variable a completion script sets when it asks imagefactory for completions (typer's
#: convention, from the program's name; ``imagefactory completion`` prints the scripts).
COMPLETE_VAR = "_IMAGEFACTORY_COMPLETE"


def main() -> None:
    # CI cancellation, `docker stop` and evictions send SIGTERM: unwind like Ctrl-C so cleanup
    # (temporary credentials, secret files, test containers) runs in the finally blocks.
    signal.signal(signal.SIGTERM, _interrupt)
    if COMPLETE_VAR in os.environ:  # a Tab press in a shell that loaded the completion script
        from imagefactory.cli.completion import register_shells

        register_shells()
    app(prog_name="imagefactory")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
