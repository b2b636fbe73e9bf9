"""The root command, its global options, and the ONE place errors become messages and exit codes."""

from __future__ import annotations

import importlib
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException
from typer.main import get_command_from_info, get_command_name, get_group_from_info

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


#: Each top-level command and the module of imagefactory.cli that declares it, in the order the
#: root's help lists them. A command imports its own module when it runs (a help that lists the
#: commands imports them all), not the whole CLI: tests/unit/test_startup.py checks this table
#: against what the modules declare.
COMMANDS = {
    "init": "starter",
    "validate": "catalog",
    "plan": "catalog",
    "graph": "catalog",
    "render": "build",
    "build": "build",
    "test": "image",
    "push": "release",
    "promote": "release",
    "status": "release",
    "report": "report",
    "verify": "verify",
    "keygen": "verify",
    "evidence": "evidence",
    "export": "transfer",
    "import": "transfer",
    "sbom": "sbom",
    "size": "size",
    "gate": "scan",
    "outdated": "freshness",
    "lock": "lock",
    "revoke": "revoke",
    "yank": "yank",
    "unyank": "yank",
    "gc": "gc",
    "ci": "ci",
    "gitops": "gitops",
    "version": "version",
    "completion": "completion",
}


class _RootGroup(_HandledGroup):
    """The root: declares its commands from :data:`COMMANDS`, loading each one's module when
    it is asked for (typer builds the group from what is registered when the CLI starts)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            importlib.import_module(f"imagefactory.cli.{COMMANDS[cmd_name]}")
            self._declare(cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in COMMANDS:  # a typo: every name, for the suggestion
            for name in COMMANDS:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)

    def _declare(self, name: str) -> None:
        """Adds the command ``name`` that its module has just registered on the root app."""
        for info in app.registered_commands:
            if info.callback and (info.name or get_command_name(info.callback.__name__)) == name:
                command = get_command_from_info(
                    info, pretty_exceptions_short=False, rich_markup_mode=None
                )
                self.add_command(command, name)
        for group in app.registered_groups:
            if group.name == name:
                sub = get_group_from_info(
                    group,
                    pretty_exceptions_short=False,
                    suggest_commands=True,
                    rich_markup_mode=None,
                )
                self.add_command(sub, name)


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
    cls=_RootGroup,
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
