"""The one place imagefactory runs external programs (docker build, mmdebstrap, skopeo, …).

Commands are argv lists, never shell strings. A failure raises :class:`ToolError` carrying the
command, its exit code, the tail of its output and a hint. Values registered with
:func:`redact` (registry passwords, secret values) are masked in every message and log line
that passes through here.

A child gets an environment built for it, not all of ours: the inherited environment less every
variable whose value is a redacted secret and every variable named by :func:`secret_names`
(those the project names for registry credentials and build secrets), plus what the caller
passes in ``env``. A child that needs a secret variable gets it only that way, explicitly.
Secret values never go on an argv (``ps`` shows it to every user): they reach a child through
its environment or a file in the run's private folder (``imagefactory.scratch``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from imagefactory.errors import ToolError, UserError

#: Debian's docker.io CLI: it runs BuildKit without buildx. A newer CLI elsewhere on PATH may not.
DEFAULT_DOCKER = "/usr/bin/docker"
TAIL_LINES = 30

_redacted: set[str] = set()
_secret_names: set[str] = set()


def redact(secret: str) -> None:
    """Never show ``secret`` in messages or logs that pass through this module."""
    if len(secret) >= 4:
        _redacted.add(secret)


def secret_names(*names: str) -> None:
    """The variables ``names`` hold secrets: no child inherits them (see the module's rule)."""
    _secret_names.update(names)


def _environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: ours without secrets, then ``env`` (passed as it is)."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in _secret_names and value not in _redacted
    }
    return {**inherited, **(env or {})}


def scrub(text: str) -> str:
    for secret in _redacted:
        text = text.replace(secret, "******")
    return text


def docker_cli() -> str:
    """The Docker CLI to use: ``$IMAGEFACTORY_DOCKER``, else Debian's, else ``docker`` on PATH."""
    chosen = os.environ.get("IMAGEFACTORY_DOCKER")
    if chosen:
        return chosen
    return DEFAULT_DOCKER if Path(DEFAULT_DOCKER).exists() else "docker"


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    output: str  # stdout, with stderr merged in unless run(separate_stderr=True)
    stderr: str = ""


def require(program: str, hint: str) -> str:
    """The path of ``program``, or a UserError saying how to install it."""
    path = shutil.which(program)
    if path is None:
        raise UserError(f"'{program}' is not installed", hint=hint)
    return path


def run(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: bytes | None = None,
    timeout: float | None = None,
    check: bool = True,
    hint: str | None = None,
    on_line: Callable[[str], None] | None = None,
    separate_stderr: bool = False,
    exact_output: bool = False,
) -> Result:
    """Run ``argv``; stdout and stderr are merged unless ``separate_stderr``. ``on_line`` sees
    each output line as it comes. The output's lines are joined with newlines, without a last
    one; with ``exact_output`` it is the text exactly as written (a file's content read back).

    The child gets our environment without the secrets (the module's rule), with
    ``env``'s entries added. The whole output is kept in the result; a failure shows its last
    lines.
    """
    command = [str(a) for a in argv]
    full_env = _environment(env)
    lines: list[str] = []
    errors: list[str] = []
    try:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if separate_stderr else subprocess.STDOUT,
        )
    except FileNotFoundError as exc:
        raise UserError(
            f"'{command[0]}' is not installed", hint=hint or "run scripts/setup.sh"
        ) from exc
    with process:
        _feed(process, stdin)
        readers = [
            threading.Thread(target=_pump, args=(process.stdout, lines, on_line), daemon=True)
        ]
        if separate_stderr:
            readers.append(
                threading.Thread(target=_pump, args=(process.stderr, errors, None), daemon=True)
            )
        for reader in readers:
            reader.start()
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            process.wait()
            for reader in readers:
                reader.join(timeout=5)
            raise ToolError(
                command, -1, _tail(lines), hint=f"it ran longer than {timeout:g}s"
            ) from exc
        for reader in readers:
            reader.join()
    join = "".join if exact_output else _joined
    result = Result(command, returncode, join(lines), join(errors))
    if check and returncode != 0:
        raise ToolError(command, returncode, _tail(lines + errors), hint=hint)
    return result


def _feed(process: subprocess.Popen[bytes], stdin: bytes | None) -> None:
    if stdin is not None and process.stdin is not None:
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(stdin)
            process.stdin.close()


def _pump(
    stream: IO[bytes] | None, lines: list[str], on_line: Callable[[str], None] | None
) -> None:
    assert stream is not None
    try:
        for raw in stream:
            line = scrub(raw.decode("utf-8", "replace"))
            lines.append(line)
            if on_line is not None:
                on_line(line.rstrip("\n"))
    except (OSError, ValueError):
        return  # the pipe was closed under us (the process was killed on Ctrl-C or a timeout)


def _joined(lines: list[str]) -> str:
    """Output lines as text: one newline between lines, none at the end."""
    return "\n".join(line.rstrip("\n") for line in lines)


def _tail(lines: list[str]) -> str:
    return _joined(lines[-TAIL_LINES:])
