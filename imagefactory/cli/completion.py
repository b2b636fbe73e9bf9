"""completion: the shell completion script of imagefactory, printed for bash or zsh."""

from __future__ import annotations

from typing import Annotated

import typer

from imagefactory.cli import COMPLETE_VAR
from imagefactory.cli.app import app
from imagefactory.errors import ImageFactoryError

SHELLS = ("bash", "zsh")


@app.command(
    "completion",
    epilog="Examples:\n\n"
    "  imagefactory completion bash > ~/.local/share/bash-completion/completions/imagefactory\n\n"
    "  imagefactory completion zsh > ~/.zfunc/_imagefactory   # fpath+=(~/.zfunc) in ~/.zshrc\n\n"
    '  eval "$(imagefactory completion bash)"                 # this shell only',
)
def completion(
    ctx: typer.Context,
    shell: Annotated[str, typer.Argument(metavar="SHELL", help=f"One of: {', '.join(SHELLS)}.")],
) -> None:
    """Print the completion script for SHELL: commands, subcommands and options complete on Tab.

    Nothing is installed: redirect the script where the shell loads completions from.
    """
    from typer._click.shell_completion import get_completion_class

    if shell not in SHELLS:
        raise typer.BadParameter(f"'{shell}' is not one of {', '.join(SHELLS)}", param_hint="SHELL")
    register_shells()
    script = get_completion_class(shell)
    if script is None:  # register_shells() declares both
        raise ImageFactoryError(f"typer has no completion for {shell}")
    source = script(ctx.find_root().command, {}, "imagefactory", COMPLETE_VAR).source()
    print(source.strip())  # zsh reads #compdef only on a completion file's first line


def register_shells() -> None:
    """Typer's completion classes: the scripts it writes ask for completions in its own format,
    which only its classes answer (a Tab press runs ``imagefactory`` with COMPLETE_VAR set)."""
    from typer._completion_classes import completion_init

    completion_init()
