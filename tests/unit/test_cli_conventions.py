"""What users expect of a command line: an example in every command's help, shell completion
for bash and zsh, and NO_COLOR honoured."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer import _click as click
from typer.main import get_command
from typer.testing import CliRunner

from imagefactory.cli import COMPLETE_VAR
from imagefactory.cli.app import COMMANDS, app
from imagefactory.cli.output import Output

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1", "FORCE_COLOR": None, "TERM": "dumb"})


def _commands() -> Iterator[tuple[tuple[str, ...], str]]:
    """(command path, its --help text) of every command and subcommand of COMMANDS."""
    root = get_command(app)
    parent = click.Context(root, info_name="imagefactory")

    def walk(
        command: click.Command, path: tuple[str, ...], ctx: click.Context
    ) -> Iterator[tuple[tuple[str, ...], str]]:
        own = click.Context(command, info_name=path[-1], parent=ctx)
        yield path, command.get_help(own)
        group = getattr(command, "list_commands", None)
        for name in group(own) if group else []:
            yield from walk(command.get_command(own, name), (*path, name), own)  # type: ignore[attr-defined]

    for name in COMMANDS:
        yield from walk(root.get_command(parent, name), (name,), parent)  # type: ignore[attr-defined]


HELPS = dict(_commands())


def test_the_walk_reaches_every_command_and_subcommand() -> None:
    assert set(COMMANDS) <= {path[0] for path in HELPS}
    assert ("ci", "generate") in HELPS and ("gitops", "init") in HELPS
    assert ("init",) in HELPS and ("completion",) in HELPS


@pytest.mark.parametrize("path", sorted(HELPS), ids=" ".join)
def test_every_help_has_an_example_of_its_own_command(path: tuple[str, ...]) -> None:
    _, found, examples = HELPS[path].partition("Example")
    assert found, f"imagefactory {' '.join(path)} --help has no Example(s) section"
    invocation = rf"(?m)(?:^|:)\s*imagefactory(?: -C \S+)? {re.escape(' '.join(path))}(?:\s|$)"
    assert re.search(invocation, examples), f"no example runs imagefactory {' '.join(path)}"


# --------------------------------------------------------------------------- completion


@pytest.fixture
def on_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has an ``imagefactory`` that runs this checkout's CLI."""
    script = tmp_path / "bin" / "imagefactory"
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\nexec {sys.executable} -m imagefactory "$@"\n')
    script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != COMPLETE_VAR}
    env["PATH"] = f"{script.parent}:{env.get('PATH', '/usr/bin:/bin')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _bash_completes(env: dict[str, str], *words: str) -> list[str]:
    """What Tab offers after ``words`` in a real bash that sourced ``completion bash``."""
    line = " ".join(f"'{w}'" for w in words)
    script = (
        "source <(imagefactory completion bash) || exit 9\n"
        f"COMP_WORDS=(imagefactory {line}); COMP_CWORD={len(words)}\n"
        '_imagefactory_completion imagefactory\nprintf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    proc = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_completes_commands_subcommands_and_options(
    on_path: dict[str, str],
) -> None:
    assert _bash_completes(on_path, "vali") == ["validate"]
    assert _bash_completes(on_path, "ci", "") == ["generate"]
    assert "--template" in _bash_completes(on_path, "init", "x", "--te")
    assert {"gitops", "graph", "gc", "gate"} <= set(_bash_completes(on_path, "g"))


def test_zsh_completion_script_and_its_answers(on_path: dict[str, str]) -> None:
    script = subprocess.run(
        ["imagefactory", "completion", "zsh"], env=on_path, capture_output=True, text=True,
        timeout=60, check=True,
    ).stdout  # fmt: skip
    assert script.startswith("#compdef imagefactory")
    assert f"{COMPLETE_VAR}=complete_zsh imagefactory" in script
    asked = {
        **on_path,
        COMPLETE_VAR: "complete_zsh",
        "_TYPER_COMPLETE_ARGS": "imagefactory gitops d",
    }
    answer = subprocess.run(
        ["imagefactory"], env=asked, capture_output=True, text=True, timeout=60, check=False
    )
    assert answer.returncode == 0, answer.stderr
    assert '"diff":' in answer.stdout and "init" not in answer.stdout


def test_completion_refuses_other_shells() -> None:
    result = runner.invoke(app, ["completion", "fish"])
    assert result.exit_code == 2 and "'fish' is not one of bash, zsh" in result.output


# --------------------------------------------------------------------------- NO_COLOR


@pytest.mark.parametrize("no_color", ["1", ""])
def test_no_color_prints_plain_text_even_on_a_forced_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_color: str
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("NO_COLOR", no_color)  # empty: not set, by https://no-color.org
    output = Output()
    output.error("it broke", "try again")
    output.table(None, ["image"], [["base/debian12"]])
    captured = capsys.readouterr()
    assert "it broke" in captured.err and "base/debian12" in captured.out
    styled = "\x1b[" in captured.err + captured.out
    assert styled is (no_color == ""), repr(captured.err)
