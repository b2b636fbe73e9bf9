"""The Docker façade without a daemon: where published ports are reachable (DOCKER_HOST), the
argv and environment each call gives the engine's CLI (a fake one that records its calls), and
how every Docker failure reaches the user (a ToolError, never an internal error)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from imagefactory import tools
from imagefactory.build.docker import Engine, daemon_address
from imagefactory.errors import ToolError, UserError

#: Records DOCKER_CONFIG and its arguments, then acts a little like docker: ``exec`` runs the
#: command here (so testinfra can work against it), ``port`` and ``inspect`` answer.
RECORDING = """\
#!/bin/sh
{{ printf 'DOCKER_CONFIG=%s\\n' "${{DOCKER_CONFIG-}}"; printf '%s\\n' "$@"; echo --; }} >> {log}
case "$1" in
  exec) shift; if [ "$1" = --user ]; then shift 2; fi; shift; exec "$@" ;;
  port) echo 127.0.0.1:49153 ;;
  inspect) echo "exited 3" ;;
  logs) echo "cannot start: no model" ;;
  history) printf '0\t/bin/sh -c #(nop)  CMD ["bash"]\n74800000\tADD rootfs.tar / # buildkit\n' ;;
esac
"""
FAILING = """\
#!/bin/sh
echo "Error response from daemon: No such image: $*" >&2
exit 1
"""


@dataclass(frozen=True)
class FakeDocker:
    cli: Path
    log: Path

    def calls(self) -> list[tuple[str, list[str]]]:
        """(DOCKER_CONFIG, argv after the CLI) of every call, in order."""
        text = self.log.read_text() if self.log.exists() else ""
        found = []
        for block in text.split("--\n")[:-1]:
            config, *args = block.splitlines()
            found.append((config.removeprefix("DOCKER_CONFIG="), args))
        return found


def fake_docker(folder: Path, script: str = RECORDING) -> FakeDocker:
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "calls.log"
    cli = folder / "fake-docker"
    cli.write_text(script.format(log=log) if script is RECORDING else script)
    cli.chmod(0o755)
    return FakeDocker(cli, log)


@pytest.fixture
def recording(tmp_path: Path) -> FakeDocker:
    return fake_docker(tmp_path / "docker")


@pytest.fixture
def engine(recording: FakeDocker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    return Engine(tmp_path / "config", cli=str(recording.cli))


# --------------------------------------------------------------------------- where ports are


@pytest.mark.parametrize(
    ("docker_host", "address"),
    [
        ("", "127.0.0.1"),
        ("unix:///var/run/docker.sock", "127.0.0.1"),
        ("tcp://localhost:2375", "127.0.0.1"),
        ("tcp://10.20.30.40:2376", "10.20.30.40"),
        ("ssh://deploy@192.0.2.7", "192.0.2.7"),
    ],
)
def test_daemon_address(docker_host: str, address: str) -> None:
    assert daemon_address(docker_host) == address


def test_a_docker_host_without_a_host_is_refused() -> None:
    with pytest.raises(UserError, match="names no host") as caught:
        daemon_address("tcp://:2375")
    assert "tcp://HOST:PORT" in (caught.value.hint or "")


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    "call",
    [
        lambda e: e.local_image("sha256:" + "a" * 64),
        lambda e: e.image("example/app:1"),
        lambda e: e.tag("sha256:" + "a" * 64, "example/app:1"),
        lambda e: e.push("example/app:1"),
        lambda e: e.commit("imagefactory-provision-x", "example/app:1"),
        lambda e: e.build_config("example/app:1", "FROM scratch\n"),
        lambda e: e.start("example/app:1", "imagefactory-test-x", hint="it must exist"),
        lambda e: e.image_config("example/app:1", hint="it must be in the registry"),
    ],
    ids=["list", "inspect", "tag", "push", "commit", "build", "run", "pull"],
)
def test_every_docker_failure_is_a_tool_error(
    tmp_path: Path, call: Callable[[Engine], object]
) -> None:
    """Every call, queries (list, inspect, tag, push) as much as builds and containers: the
    command, its exit code, the tail of its error output and a hint — not an internal error."""
    failing = fake_docker(tmp_path, FAILING)
    with pytest.raises(ToolError) as caught:
        call(Engine(tmp_path / "config", cli=str(failing.cli)))
    error = caught.value
    assert error.argv[0] == str(failing.cli)
    assert error.returncode == 1
    assert "Error response from daemon: No such image" in error.output_tail
    assert error.hint


def test_a_failure_shows_no_secret(tmp_path: Path) -> None:
    tools.redact("s3cr3t-registry-token")
    failing = fake_docker(tmp_path, FAILING)
    with pytest.raises(ToolError) as caught:
        Engine(cli=str(failing.cli)).tag("example/app:1", "s3cr3t-registry-token")
    assert "No such image" in caught.value.output_tail
    assert "s3cr3t" not in caught.value.output_tail


def test_a_missing_docker_cli_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is not installed") as caught:
        Engine(cli=str(tmp_path / "no-docker")).local_image("sha256:" + "a" * 64)
    assert "IMAGEFACTORY_DOCKER" in (caught.value.hint or "")


# --------------------------------------------------------------------------- argv


def test_containers_run_with_the_engines_cli_and_config(
    engine: Engine, recording: FakeDocker
) -> None:
    engine.start(
        "example/app:1", "c1", hint="", labels={"org.imagefactory.test": "1"}, publish=[80]
    )
    engine.start(
        "example/base:1",
        "c2",
        hint="",
        user="0:0",
        network="host",
        entrypoint="sleep",
        command=["infinity"],
    )
    result = engine.exec("c2", ["echo", "hello"], user="app")
    assert engine.port("c1", 80) == 49153
    assert engine.state("c1") == ("exited", "3")
    assert engine.logs("c1") == "cannot start: no model"
    engine.commit("c2", "example/scratch:1")
    engine.build_config("example/app:2", "FROM example/scratch:1\n")
    engine.remove_image("example/scratch:1")
    engine.remove_container("c1", volumes=True)
    engine.remove_container("c2")
    assert (result.returncode, result.output) == (0, "hello")
    calls = recording.calls()
    assert {config for config, _ in calls} == {str(engine.config_dir)}
    assert [args for _, args in calls] == [
        [
            *("run", "--detach", "--name", "c1", "--label=org.imagefactory.test=1"),
            *("--publish", "127.0.0.1::80", "example/app:1"),
        ],
        [
            *("run", "--detach", "--name", "c2", "--network", "host", "--user", "0:0"),
            *("--entrypoint", "sleep", "example/base:1", "infinity"),
        ],
        ["exec", "--user", "app", "c2", "echo", "hello"],
        ["port", "c1", "80/tcp"],
        ["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "c1"],
        ["logs", "--tail", "30", "c1"],
        ["commit", "c2", "example/scratch:1"],
        ["build", "--quiet", "--tag", "example/app:2", "-"],
        ["rmi", "example/scratch:1"],
        ["rm", "--force", "--volumes", "c1"],
        ["rm", "--force", "c2"],
    ]


def test_a_read_only_container_gets_its_writable_paths_as_tmpfs(
    engine: Engine, recording: FakeDocker
) -> None:
    engine.start("example/app:1", "c1", hint="", read_only=True, tmpfs=["/tmp", "/var/cache/app,x"])
    engine.start("example/base:1", "c2", hint="")
    first, second = (args for _, args in recording.calls())
    assert first == [
        *("run", "--detach", "--name", "c1", "--read-only"),
        *("--mount", "type=tmpfs,destination=/tmp,tmpfs-size=256m,tmpfs-mode=1777"),
        # a comma in a path is quoted: it stays the destination and cannot add a mount option
        *("--mount", 'type=tmpfs,"destination=/var/cache/app,x",tmpfs-size=256m,tmpfs-mode=1777'),
        "example/app:1",
    ]
    assert second == ["run", "--detach", "--name", "c2", "example/base:1"]


def test_history_gives_each_layers_instruction_and_bytes(
    engine: Engine, recording: FakeDocker
) -> None:
    assert engine.history("example/base:1") == [
        ('/bin/sh -c #(nop)  CMD ["bash"]', 0),
        ("ADD rootfs.tar / # buildkit", 74_800_000),
    ]
    # raw bytes (--human=false), and the reference after "--": never read as a flag
    assert recording.log.read_text().splitlines()[1:9] == [
        *("history", "--no-trunc", "--human=false", "--format", "{{.Size}}\t{{.CreatedBy}}"),
        *("--", "example/base:1", "--"),
    ]


def test_ports_are_published_on_the_engines_address(
    engine: Engine, recording: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://192.0.2.7:2376")
    Engine(cli=str(recording.cli)).start("example/app:1", "c1", hint="", publish=[80, 443])
    assert recording.calls()[0][1][4:8] == [
        "--publish",
        "192.0.2.7::80",
        "--publish",
        "192.0.2.7::443",
    ]


def test_children_that_run_docker_find_the_engines_cli_and_config(
    engine: Engine, recording: FakeDocker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Another ``docker`` earlier on PATH (/usr/local/bin's, say) is not the one they run, and
    they get the engine's variables and nothing else."""
    elsewhere = fake_docker(tmp_path / "elsewhere")
    (elsewhere.cli.parent / "docker").symlink_to(elsewhere.cli)
    monkeypatch.setenv("PATH", f"{elsewhere.cli.parent}{os.pathsep}{os.environ['PATH']}")
    with engine.child_env() as env:
        found = shutil.which("docker", path=env["PATH"])
        assert found is not None
        assert Path(found).resolve() == recording.cli
        assert set(env) == {"DOCKER_BUILDKIT", "DOCKER_CONFIG", "PATH"}
        assert env["DOCKER_CONFIG"] == str(engine.config_dir)
        tools.run(["docker", "ps"], env=env)
    assert recording.calls() == [(str(engine.config_dir), ["ps"])]
    assert elsewhere.calls() == []


# --------------------------------------------------------------------------- build


#: Records its proxy variables and arguments; ``build`` writes the image id, ``image inspect``
#: answers for it.
BUILDING = """\
#!/bin/sh
{{ printf 'HTTP_PROXY=%s no_proxy=%s\\n' "${{HTTP_PROXY-}}" "${{no_proxy-}}"
   printf '%s\\n' "$@"; echo --; }} >> {log}
case "$1" in
  build) while [ $# -gt 0 ]; do [ "$1" = --iidfile ] && echo sha256:{image} > "$2"; shift; done ;;
  image) printf 'sha256:{image}\t5\n' ;;
esac
"""


def test_build_args_reach_the_build_without_being_on_its_argv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ps`` shows every argv to every user: a proxy setting (and whatever it carries) goes
    to the CLI in its environment, which a ``--build-arg NAME`` without a value reads."""
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    log = tmp_path / "calls.log"
    cli = tmp_path / "fake-docker"
    cli.write_text(BUILDING.format(log=log, image="b" * 64))
    cli.chmod(0o755)
    context = tmp_path / "context"
    context.mkdir()
    proxy = "http://proxy.example:3128"
    built = Engine(cli=str(cli)).build(
        context,
        "example/app:1",
        labels={},
        build_args={"HTTP_PROXY": proxy, "no_proxy": "localhost"},
        secrets={},
        no_cache=False,
    )
    assert built.image_id == "sha256:" + "b" * 64
    environment, *argv = log.read_text().split("--\n")[0].splitlines()
    assert environment == f"HTTP_PROXY={proxy} no_proxy=localhost"
    assert "--build-arg=HTTP_PROXY" in argv
    assert "--build-arg=no_proxy" in argv
    assert not [arg for arg in argv if "proxy.example" in arg or "localhost" in arg]


# --------------------------------------------------------------------------- environment


#: Records whether it saw the two secret variables, then answers the queries: ``image ls`` one
#: image id, ``image inspect`` its id and size, or the repository digests (or, without a
#: ``--format``, the whole inspect document).
QUERYING = """\
#!/bin/sh
printf '%s|%s|%s\\n' "${{IF_TEST_TOKEN-absent}}" "${{IF_TEST_LOGIN-absent}}" "$*" >> {log}
if [ "$1" = --config ]; then shift 2; fi
case "$1 $2 $3 $4" in
  "image ls "* | "image list "*) echo sha256:{image} ;;
  "image inspect --format "*RepoDigests*) echo '["example/app@sha256:{digest}"]' ;;
  "image inspect --format "*) printf 'sha256:{image}\\t5\\n' ;;
  "image inspect "*) echo '[{{"Id": "sha256:{image}", "Size": 5,
    "RepoDigests": ["example/app@sha256:{digest}"]}}]' ;;
esac
"""


def test_queries_give_the_cli_no_secret_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A variable named as secret (a registry password's, a build secret's) and one whose value
    is a redacted secret reach no docker process: not the build, not a list, tag or push."""
    log = tmp_path / "calls.log"
    cli = tmp_path / "fake-docker"
    cli.write_text(QUERYING.format(log=log, image="a" * 64, digest="d" * 64))
    cli.chmod(0o755)
    monkeypatch.setenv("IF_TEST_TOKEN", "token-value-never-shown")
    monkeypatch.setenv("IF_TEST_LOGIN", "login-value-never-shown")
    tools.secret_names("IF_TEST_TOKEN")
    tools.redact("login-value-never-shown")
    engine = Engine(tmp_path / "config", cli=str(cli))

    local = engine.local_image("sha256:" + "c" * 64)
    engine.tag("sha256:" + "a" * 64, "example/app:1")
    digest = engine.push("example/app:1")

    calls = [line.split("|") for line in log.read_text().splitlines()]
    assert {(token, login) for token, login, _ in calls} == {("absent", "absent")}
    assert local is not None and local.image_id == "sha256:" + "a" * 64
    assert digest == "sha256:" + "d" * 64
    assert [args.split(" ", 2)[:2] for _, _, args in calls] == [
        ["image", "ls"], ["image", "inspect"], ["tag", "--"], ["push", "--quiet"],
        ["image", "inspect"],
    ]  # fmt: skip
