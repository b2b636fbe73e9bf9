"""The one Docker façade: every call imagefactory makes to the Docker engine goes through here.

Every call (queries such as inspect, list, tag and push; the build, which needs BuildKit options
such as ``--secret`` and ``--progress``; container work: run, exec, logs, commit, rm) runs the
Docker CLI through ``tools.run``: an argv, a timeout, secrets redacted from its output, and the
environment ``tools`` builds for a child (no variable that holds a registry password or a build
secret). Registry lookups are in ``imagefactory.registry``. Every call uses the same Docker CLI
(``tools.docker_cli()``: Debian's, which runs BuildKit without buildx) and the same
DOCKER_CONFIG (the run's temporary credentials, when there are any); programs that run
``docker`` themselves (Ansible's connection plugin, Packer's docker builder, testinfra) get both
through :meth:`Engine.child_env`.

Every failure is a :class:`~imagefactory.errors.ToolError` with the command, its exit code, the
tail of its error output and a hint (a missing CLI is a ``UserError`` saying so).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import socket
import sys
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from imagefactory import tools
from imagefactory.errors import UserError
from imagefactory.project.naming import CONTENT_LABEL

LOOPBACK = "127.0.0.1"
#: The size of each writable tmpfs of a read-only test container (the emptyDir limit in
#: the Kubernetes workload is 256Mi too).
TMPFS_SIZE = "256m"
INSTALL_HINT = "install Debian's docker.io (scripts/setup.sh), or set IMAGEFACTORY_DOCKER"


def daemon_address(docker_host: str) -> str:
    """The IPv4 address of the machine the Docker daemon runs on, as ``DOCKER_HOST`` names it.

    Ports a container publishes are reachable there: on 127.0.0.1 for a local socket, on the
    service's address for Docker-in-Docker (``tcp://docker:2376`` in a GitLab job).
    """
    url = urllib.parse.urlsplit(docker_host)
    if url.scheme in ("", "unix", "npipe", "fd"):
        return LOOPBACK
    host = url.hostname
    if not host:
        raise UserError(
            f"DOCKER_HOST '{docker_host}' names no host",
            hint="set it to unix:///var/run/docker.sock or tcp://HOST:PORT",
        )
    try:
        found = socket.getaddrinfo(host, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UserError(
            f"cannot resolve the Docker host '{host}' of DOCKER_HOST ({exc})",
            hint="service checks publish container ports on the engine's IPv4 address",
        ) from exc
    return str(found[0][4][0])


@dataclass(frozen=True)
class BuiltImage:
    image_id: str
    size_bytes: int


@dataclass
class Engine:
    config_dir: Path | None = None
    cli: str = field(default_factory=tools.docker_cli)

    @property
    def env(self) -> dict[str, str]:
        env = {"DOCKER_BUILDKIT": "1"}
        if self.config_dir is not None:
            env["DOCKER_CONFIG"] = str(self.config_dir)
        return env

    @cached_property
    def address(self) -> str:
        """Where ports published by this engine's containers can be reached (resolved once)."""
        return daemon_address(os.environ.get("DOCKER_HOST", ""))

    @contextlib.contextmanager
    def child_env(self) -> Iterator[dict[str, str]]:
        """The environment for a program that runs ``docker`` from PATH itself (testinfra,
        Ansible's connection plugin, Packer's docker builder): this engine's variables, and a
        PATH on which ``docker`` is this engine's CLI (a private folder holding only that link
        comes first), then this Python environment's programs (ansible-playbook), then PATH.
        """
        found = shutil.which(self.cli)
        if found is None:
            raise self._not_installed()
        with tempfile.TemporaryDirectory(prefix="imagefactory-docker-cli-") as folder:
            (Path(folder) / "docker").symlink_to(Path(found).absolute())
            path = [folder, str(Path(sys.executable).parent), os.environ.get("PATH", "")]
            yield {**self.env, "PATH": os.pathsep.join(p for p in path if p)}

    def _run(
        self,
        args: Sequence[str | Path],
        *,
        env: Mapping[str, str] | None = None,
        hint: str | None = None,
        check: bool = True,
        timeout: float = 60,
        stdin: bytes | None = None,
        on_line: Callable[[str], None] | None = None,
        separate_stderr: bool = False,
        exact_output: bool = False,
    ) -> tools.Result:
        """``docker ARGS`` with this engine's CLI and environment, and ``env`` (a failure is a
        ToolError; a CLI that is not installed, the UserError saying how to get one)."""
        if shutil.which(self.cli) is None:
            raise self._not_installed()
        return tools.run(
            [self.cli, *args],
            env={**self.env, **(env or {})},
            check=check,
            timeout=timeout,
            hint=hint,
            stdin=stdin,
            on_line=on_line,
            separate_stderr=separate_stderr,
            exact_output=exact_output,
        )

    def _not_installed(self) -> UserError:
        return UserError(f"'{self.cli}' is not installed", hint=INSTALL_HINT)

    def check(self) -> None:
        """Fail with one clear sentence when the daemon does not answer."""
        result = self._run(["version", "--format", "{{.Server.Version}}"], check=False)
        if result.returncode != 0:
            first = next(
                (line for line in result.output.splitlines() if "daemon" in line.lower()),
                result.output.strip().splitlines()[-1] if result.output.strip() else "no answer",
            )
            raise UserError(
                f"the Docker engine is not reachable through {self.cli}: {first.strip()}",
                hint="start it (scripts/services.sh start) or point DOCKER_HOST at one",
            )

    # ------------------------------------------------------------------------------- images

    def local_image(self, content_hash: str) -> BuiltImage | None:
        """The local image carrying this content hash label, if any."""
        listed = self._run(
            [
                "image",
                "ls",
                "--quiet",
                "--no-trunc",
                "--filter",
                f"label={CONTENT_LABEL}={content_hash}",
            ],
            hint="the engine could not list its images",
        )
        found = listed.output.split()
        return self.image(found[0]) if found else None

    def build(
        self,
        context: Path,
        tag: str,
        *,
        labels: Mapping[str, str],
        build_args: Mapping[str, str],
        secrets: Mapping[str, Path],
        no_cache: bool,
        platform: str | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> BuiltImage:
        """Build ``context`` as ``tag``. Only the names of ``build_args`` are on the argv (which
        ``ps`` shows to every user): the CLI reads a ``--build-arg NAME`` without a value from
        its environment, where the values are. (A CLI that reaches a ``tcp://`` daemon through
        HTTP also reads HTTP_PROXY and HTTPS_PROXY there: NO_PROXY should then name the daemon.)
        ``secrets`` are files the CLI reads and hands to BuildKit. ``platform``: the platform
        to build for (``linux/arm64``; None: the engine's own)."""
        iidfile = context / ".imagefactory-iid"
        argv: list[str | Path] = [
            "build",
            "--progress=plain",
            "--network=host",
            "--iidfile",
            iidfile,
            "--tag",
            tag,
        ]
        argv += [f"--label={k}={v}" for k, v in sorted(labels.items())]
        argv += [f"--build-arg={name}" for name in sorted(build_args)]
        argv += [f"--secret=id={sid},src={path}" for sid, path in sorted(secrets.items())]
        argv += ["--no-cache"] if no_cache else []
        argv += [f"--platform={platform}"] if platform is not None else []
        argv.append(context)
        self._run(
            argv,
            env=build_args,
            timeout=3600,
            on_line=on_line,
            hint="the build log above shows the failing step",
        )
        image_id = iidfile.read_text().strip()
        iidfile.unlink()
        return self.image(image_id)

    def build_config(self, tag: str, dockerfile: str) -> None:
        """Build ``tag`` from a Dockerfile without a context (read from stdin): for a
        metadata-only step on top of a local image."""
        self._run(
            ["build", "--quiet", "--tag", tag, "-"],
            stdin=dockerfile.encode(),
            timeout=300,
            hint=f"the image configuration of {tag} could not be set",
        )

    def image(self, reference: str) -> BuiltImage:
        inspected = self._inspect(reference, "{{.Id}}\t{{.Size}}")
        image_id, _, size = inspected.partition("\t")
        return BuiltImage(image_id, int(size or 0))

    def _inspect(self, reference: str, template: str) -> str:
        """``docker image inspect --format TEMPLATE REFERENCE`` (a reference, never a flag)."""
        argv = ["image", "inspect", "--format", template, "--", reference]
        return self._run(argv, hint=f"the engine has no image {reference}").output.strip()

    def image_config(self, reference: str, *, hint: str) -> tuple[dict[str, Any], int]:
        """The config (``.Config`` of ``docker image inspect``) and size of ``reference``, pulled
        first when the engine does not have it; ``hint`` says where it should come from."""
        argv = ["image", "inspect", "--format", "{{json .Config}}\t{{.Size}}", reference]
        result = self._run(argv, check=False)
        if result.returncode != 0:
            self._run(["pull", "--quiet", reference], timeout=1800, hint=hint)
            result = self._run(argv, hint=hint)
        config_json, size = result.output.strip().rsplit("\t", 1)
        return json.loads(config_json) or {}, int(size)

    def history(self, reference: str) -> list[tuple[str, int]]:
        """(the instruction that made it, its size in bytes) of each layer of ``reference``,
        newest first, as ``docker history`` lists them (empty-layer steps included, size 0)."""
        argv = ["history", "--no-trunc", "--human=false", "--format", "{{.Size}}\t{{.CreatedBy}}"]
        output = self._run(
            [*argv, "--", reference], hint=f"the engine has no image {reference}"
        ).output
        layers = []
        for line in output.splitlines():
            size, _, created_by = line.partition("\t")
            layers.append((created_by, int(size) if size.isdigit() else 0))
        return layers

    def tag(self, source: str, tag: str) -> None:
        self._run(["tag", "--", source, tag], hint=f"the engine could not tag {source} as {tag}")

    def push(self, tag: str) -> str:
        """Push ``tag``; return the manifest digest the registry now holds for it."""
        repository = tag.rsplit(":", 1)[0]
        self._run(
            ["push", "--quiet", "--", tag], timeout=3600, hint="check the registry credentials"
        )
        digests = json.loads(self._inspect(tag, "{{json .RepoDigests}}") or "null") or []
        for entry in map(str, digests):
            name, _, digest = entry.partition("@")
            if name == repository:
                return digest
        raise UserError(f"pushed {tag} but the engine reports no digest for {repository}")

    def save(self, reference: str, target: Path) -> None:
        """``docker image save`` of the one image ``reference`` into the tar file ``target``
        (its ``manifest.json`` lists the layer tarballs, lowest first)."""
        self._run(
            ["image", "save", "--output", target, "--", reference],
            timeout=3600,
            hint=f"the engine could not save {reference} (is it a local image?)",
        )

    def remove_image(self, reference: str) -> None:
        """Remove ``reference`` if it exists (cleanup: a failure is not an error)."""
        self._run(["rmi", reference], check=False)

    # ------------------------------------------------------------------------------- containers

    def start(
        self,
        reference: str,
        name: str,
        *,
        hint: str,
        labels: Mapping[str, str] | None = None,
        publish: Sequence[int] = (),
        network: str | None = None,
        user: str | None = None,
        entrypoint: str | None = None,
        command: Sequence[str] = (),
        read_only: bool = False,
        tmpfs: Sequence[str] = (),
    ) -> None:
        """Start container ``name`` of ``reference`` in the background; each port in
        ``publish`` is published on a free port of this engine's :attr:`address`. With
        ``read_only`` its root filesystem is read-only, as in the Kubernetes workload; each
        path of ``tmpfs`` is then a writable, world-writable (sticky) tmpfs of TMPFS_SIZE, like
        the emptyDir the workload mounts there."""
        argv = ["run", "--detach", "--name", name]
        argv += ["--read-only"] if read_only else []
        argv += [arg for path in tmpfs for arg in ("--mount", _tmpfs_mount(path))]
        argv += [f"--label={k}={v}" for k, v in sorted((labels or {}).items())]
        argv += [arg for port in publish for arg in ("--publish", f"{self.address}::{port}")]
        argv += ["--network", network] if network else []
        argv += ["--user", user] if user else []
        argv += ["--entrypoint", entrypoint] if entrypoint else []
        self._run([*argv, reference, *command], timeout=300, hint=hint)

    def run_script(
        self,
        reference: str,
        script: str,
        args: Sequence[str],
        *,
        hint: str,
        files: Mapping[Path, str] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 1800,
    ) -> tools.Result:
        """Run ``bash -c SCRIPT bash ARGS…`` as root in a throw-away container of
        ``reference`` on the host network (as builds run), each of ``files`` bound read-only at
        its target; stdout and stderr apart. ``args`` are words of their own (never parsed by a
        shell) and ``env``'s values travel in the environment, only names on the argv."""
        argv: list[str | Path] = ["run", "--rm", "--network=host", "--user=0:0"]
        argv += ["--entrypoint=bash"]
        for source, target in sorted((files or {}).items()):
            argv += ["--mount", _bind_mount(source, target)]
        argv += [f"--env={name}" for name in sorted(env or {})]
        return self._run(
            [*argv, "--", reference, "-c", script, "bash", *args],
            env=env,
            timeout=timeout,
            hint=hint,
            separate_stderr=True,
        )

    def exec(
        self,
        name: str,
        argv: Sequence[str],
        *,
        user: str | None = None,
        timeout: float = 30,
        exact_output: bool = False,
    ) -> tools.Result:
        """Run ``argv`` in container ``name`` (no shell); its exit code, stdout and stderr
        (``exact_output``: as written, final newline included)."""
        command = ["exec", *(["--user", user] if user else []), name, *argv]
        return self._run(
            command, check=False, timeout=timeout, separate_stderr=True, exact_output=exact_output
        )

    def state(self, name: str) -> tuple[str, str] | None:
        """(status, exit code) of container ``name``; None when it cannot be inspected."""
        result = self._run(
            ["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name], check=False
        )
        status, _, code = result.output.strip().partition(" ")
        return (status, code) if result.returncode == 0 and status else None

    def logs(self, name: str, *, tail: int = 30) -> str:
        return self._run(["logs", "--tail", str(tail), name], check=False).output

    def port(self, name: str, port: int) -> int | None:
        """The host port ``port``/tcp of container ``name`` is published on; None when there
        is none (the container has stopped)."""
        result = self._run(["port", name, f"{port}/tcp"], check=False)
        lines = result.output.strip().splitlines() if result.returncode == 0 else []
        return int(lines[0].rsplit(":", 1)[1]) if lines else None

    def commit(self, name: str, tag: str) -> None:
        self._run(
            ["commit", name, tag], timeout=300, hint=f"the container {name} could not be committed"
        )

    def remove_container(self, name: str, *, volumes: bool = False) -> None:
        """Remove container ``name``, running or not (cleanup: a failure is not an error)."""
        self._run(["rm", "--force", *(["--volumes"] if volumes else []), name], check=False)


def _bind_mount(source: Path, target: str) -> str:
    """The ``--mount`` value binding ``source`` read-only at ``target`` (a CSV record)."""
    return _csv(["type=bind", f"source={source}", f"target={target}", "readonly"])


def _tmpfs_mount(path: str) -> str:
    """The ``--mount`` value of a tmpfs at ``path``: a CSV record, so a path holding a comma or
    a quote stays one field (spec paths are absolute paths; quoting is the second guard)."""
    return _csv(
        ["type=tmpfs", f"destination={path}", f"tmpfs-size={TMPFS_SIZE}", "tmpfs-mode=1777"]
    )


def _csv(fields: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    return buffer.getvalue()
