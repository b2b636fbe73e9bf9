"""The ``imagefactory`` command line: typer apps, one module per command group."""

from __future__ import annotations

import signal
from types import FrameType

from imagefactory.cli import build as _build  # noqa: F401  (registers its commands)
from imagefactory.cli import catalog as _catalog  # noqa: F401
from imagefactory.cli import ci as _ci  # noqa: F401
from imagefactory.cli import evidence as _evidence  # noqa: F401
from imagefactory.cli import freshness as _freshness  # noqa: F401
from imagefactory.cli import gc as _gc  # noqa: F401
from imagefactory.cli import gitops as _gitops  # noqa: F401
from imagefactory.cli import image as _image  # noqa: F401
from imagefactory.cli import lock as _lock  # noqa: F401
from imagefactory.cli import release as _release  # noqa: F401
from imagefactory.cli import revoke as _revoke  # noqa: F401
from imagefactory.cli import sbom as _sbom  # noqa: F401
from imagefactory.cli import scan as _scan  # noqa: F401
from imagefactory.cli import size as _size  # noqa: F401
from imagefactory.cli import verify as _verify  # noqa: F401
from imagefactory.cli import version as _version  # noqa: F401
from imagefactory.cli import yank as _yank  # noqa: F401
from imagefactory.cli.app import app


def main() -> None:
    # CI cancellation, `docker stop` and evictions send SIGTERM: unwind like Ctrl-C so cleanup
    # (temporary credentials, secret files, test containers) runs in the finally blocks.
    signal.signal(signal.SIGTERM, _interrupt)
    app(prog_name="imagefactory")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
