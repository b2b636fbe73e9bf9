"""The root command, its global options, and the ONE place errors become messages and exit codes."""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from imagefactory import __version__
from imagefactory.cli.output import Output
from imagefactory.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, ImageFactoryError, SpecError


@dataclass
class Session:
    """What the global options chose, shared by every command through ``ctx.obj``."""

    project: Path | None = None
    verbose: bool = False
    output: Output = field(default_factory=Output)


class _HandledGroup(TyperGroup):
    """Turns every exception a command raises into a message and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (TyperException, typer.Exit, typer.Abort):
            raise  # usage errors (exit 2) and deliberate exits: click reports those itself
        except ImageFactoryError as exc:
            session = ctx.obj if isinstance(ctx.obj, Session) else Session()
            _report(session, exc)
            raise typer.Exit(exc.exit_code) from exc
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            session = ctx.obj if isinstance(ctx.obj, Session) else Session()
            internal = ImageFactoryError(
                f"internal error: {type(exc).__name__}: {exc}",
                hint="this is a bug in imagefactory; rerun with -v and report the traceback",
            )
            if session.output.json:  # the document for machines, and the line for the job log
                session.output.error(internal.message, internal.hint)
            _report(session, internal, exc)
            raise typer.Exit(EXIT_INTERNAL) from exc


def _report(session: Session, exc: ImageFactoryError, cause: BaseException | None = None) -> None:
    """The error as one JSON document on stdout with --json, else as text on stderr; with -v,
    the traceback of ``cause`` (an internal error) or of ``exc`` on stderr."""
    if session.output.json:
        issues = exc.issues if isinstance(exc, SpecError) else []
        session.output.data(
            {
                "ok": False,
                "error": exc.message,
                "hint": exc.hint,
                "issues": [
                    {
                        "file": str(i.file),
                        "line": i.line,
                        "key": i.key_path,
                        "message": i.message,
                        "hint": i.hint,
                    }
                    for i in issues
                ],
            }
        )
    else:
        session.output.error(exc.message, exc.hint)
    if session.verbose:
        traceback.print_exception(cause or exc, file=sys.stderr)


def _print_version(value: bool) -> None:
    if value:
        print(f"imagefactory {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=_HandledGroup,
    name="imagefactory",
    help="Turn a catalog of layered image specs into tested, versioned, promoted images.\n\n"
    "Exit codes: 0 ok, 1 user or spec error, 2 usage error, 3 internal error or failed "
    "external tool, 130 interrupted.",
    epilog="Examples:\n\n  imagefactory validate\n\n  imagefactory plan --json\n\n"
    "  imagefactory -C path/to/catalog graph --format mermaid",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    project: Annotated[
        Path | None,
        typer.Option(
            "--project",
            "-C",
            help="Catalog repository (default: the nearest folder holding "
            "imagefactory.yaml, from the current one up).",
            file_okay=False,
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show details and tracebacks.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    ctx.obj = Session(project=project, verbose=verbose)
