"""Hostile files on disk (issue 13, hole 6): a catalog names FIFOs, sockets, devices, symlink loops
and symlinks to ``/``; packer.yaml holds what PyYAML's constructors choke on. Every one of them is
a clear user error (exit 1), never a hang, a traceback or an exit 3; ``--json`` prints one JSON
document even on an internal error.

Commands that would hang on a FIFO or read ``/dev/zero`` forever run in a subprocess with a
timeout and a 2 GiB address-space limit, so the old behaviour fails the test instead of the
machine.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import imagefactory.project.plan  # the plan command imports plan_images from it when it runs
from imagefactory.cli.app import app
from imagefactory.errors import SpecError, UserError
from imagefactory.project.hashing import hash_tree
from imagefactory.spec import walk
from imagefactory.spec.packer import load_settings
from imagefactory.spec.walk import copy_into, copy_problem, walk_tree

from .conftest import without_shell_less

APP = "images/app/rag-api"
SOURCE = f"{APP}/app/rag_api"  # the folder app/rag-api copies (files[0].src)
TIMEOUT = 20


def _limit_memory() -> None:
    limit = 2 * 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process: a hang fails the test after TIMEOUT seconds."""
    return subprocess.run(
        [sys.executable, "-m", "imagefactory", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=_limit_memory,
        check=False,
    )


@pytest.fixture
def unix_socket(catalog_dir: Path) -> Iterator[Path]:
    path = catalog_dir / SOURCE / "control.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    yield path
    server.close()


# --------------------------------------------------------------------------- catalog files


def test_a_fifo_as_image_yaml_is_refused_without_blocking(catalog_dir: Path) -> None:
    image = catalog_dir / APP / "image.yaml"
    without_shell_less(catalog_dir)  # its parent would be missing
    image.unlink()
    os.mkfifo(image)
    result = cli("-C", catalog_dir, "validate")
    assert result.returncode == 1, result.stderr
    assert f"{image}: the file {image} is not a regular file" in result.stderr
    assert "Traceback" not in result.stderr


def test_dev_zero_as_image_yaml_is_refused_without_reading_it(catalog_dir: Path) -> None:
    image = catalog_dir / APP / "image.yaml"
    without_shell_less(catalog_dir)  # its parent would be missing
    image.unlink()
    image.symlink_to("/dev/zero")
    result = cli("-C", catalog_dir, "plan", "--json")
    assert result.returncode == 1, result.stderr
    issues = json.loads(result.stdout)["issues"]
    assert [i["message"] for i in issues] == [f"the file {image} is not a regular file"]


def test_a_fifo_as_structure_test_file_is_refused(catalog_dir: Path) -> None:
    fifo = catalog_dir / "images/base/debian12/structure-tests/extra.yaml"
    os.mkfifo(fifo)
    result = cli("-C", catalog_dir, "validate")
    assert result.returncode == 1, result.stderr
    assert f"{fifo}: the file {fifo} is not a regular file" in result.stderr


def test_a_fifo_as_state_file_is_refused(catalog_dir: Path) -> None:
    state = catalog_dir / ".imagefactory/state.json"
    state.parent.mkdir()
    os.mkfifo(state)
    result = cli("-C", catalog_dir, "plan")
    assert result.returncode == 1, result.stderr
    assert f"the state file {state} is not a regular file" in result.stderr


def test_a_state_file_of_urandom_is_refused(catalog_dir: Path) -> None:
    state = catalog_dir / ".imagefactory/state.json"
    state.parent.mkdir()
    state.symlink_to("/dev/urandom")
    result = cli("-C", catalog_dir, "plan")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- packer.yaml


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"targets: [vm]\nqemu: {iso_url: \xff\xfe}\n", "cannot read the file"),
        (b"targets: 2024-13-01\n", "2024-13-01"),
        (b"targets: !!int abc\n", "abc"),
        (b"targets: " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "nest"),
        (
            b'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
            + b"".join(
                f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n".encode()
                for p, c in zip("abcdefgh", "bcdefghi", strict=True)
            )
            + b"targets: *i\n",
            "through its aliases",
        ),
    ],
    ids=["not-utf8", "bad-date", "int-abc", "deep", "alias-bomb"],
)
def test_hostile_packer_yaml_is_a_spec_error(tmp_path: Path, content: bytes, expected: str) -> None:
    (tmp_path / "packer.yaml").write_bytes(content)
    with pytest.raises(SpecError) as error:
        load_settings(tmp_path)
    assert expected in error.value.message
    assert all(issue.file == tmp_path / "packer.yaml" for issue in error.value.issues)


def test_a_fifo_as_packer_yaml_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "packer.yaml")
    with pytest.raises(SpecError, match="is not a regular file"):
        load_settings(tmp_path)


# --------------------------------------------------------------------------- files[].src


def test_a_fifo_under_a_copied_folder_stops_render_with_a_user_error(catalog_dir: Path) -> None:
    os.mkfifo(catalog_dir / SOURCE / "pipe")
    result = cli("-C", catalog_dir, "render", "dockerfile", "app/rag-api")
    assert result.returncode == 1, result.stderr
    assert "is a FIFO, not a regular file" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_dangling_symlink_as_source_stops_render_with_a_user_error(catalog_dir: Path) -> None:
    source = catalog_dir / SOURCE
    source.rename(source.with_name("moved"))
    source.symlink_to("gone")
    result = cli("-C", catalog_dir, "render", "dockerfile", "app/rag-api")
    assert result.returncode == 1, result.stderr
    assert "'app/rag_api' is a dangling symlink (to 'gone')" in result.stderr


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("loop", "'app/rag_api/loop' is a symlink loop"),
        ("/", "'app/rag_api' is a symlink pointing outside the image folder"),
        ("pipe", "rag_api/pipe is a FIFO, not a regular file"),
        ("gone", "'app/rag_api/gone' is a dangling symlink (to 'nowhere')"),
    ],
)
def test_validate_refuses_what_cannot_be_copied(
    catalog_dir: Path, name: str, expected: str
) -> None:
    path = catalog_dir / SOURCE / name
    if name == "pipe":
        os.mkfifo(path)
    elif name == "/":  # the source itself: validate used to walk the whole filesystem
        shutil.rmtree(catalog_dir / SOURCE)
        (catalog_dir / SOURCE).symlink_to("/")
    else:
        path.symlink_to({"loop": "loop", "gone": "nowhere"}[name])
    result = cli("-C", catalog_dir, "validate")
    assert result.returncode == 1, result.stderr
    assert f"{catalog_dir / APP / 'image.yaml'}:12: files[0].src: " in result.stderr
    assert expected in result.stderr


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: os.mkfifo(d / "pipe"), "is a FIFO, not a regular file"),
        (lambda d: (d / "loop").symlink_to("loop"), "'rag_api/loop' is a symlink loop"),
        (lambda d: (d / "gone").symlink_to("nowhere"), "'rag_api/gone' is a dangling symlink"),
        (lambda d: (d / "root").symlink_to("/"), "'rag_api/root' is a symlink pointing outside"),
        (lambda d: (d / "null").symlink_to("/dev/null"), "pointing outside the image folder"),
    ],
    ids=["fifo", "loop", "dangling", "root", "device"],
)
def test_copy_problem_names_what_cannot_be_copied(
    tmp_path: Path, make: object, expected: str
) -> None:
    source = tmp_path / "rag_api"
    (source / "sub").mkdir(parents=True)
    (source / "sub/main.py").write_text("print()\n")
    (source / "inside").symlink_to("sub/main.py")
    assert copy_problem(tmp_path, source) is None
    assert callable(make)
    make(source)
    problem = copy_problem(tmp_path, source)
    assert problem is not None and expected in problem


def test_copy_problem_does_not_walk_a_symlink_to_the_root(tmp_path: Path) -> None:
    (tmp_path / "everything").symlink_to("/")
    assert copy_problem(tmp_path, tmp_path / "everything") == (
        "'everything' is a symlink pointing outside the image folder"
    )


def test_a_socket_under_a_copied_folder_is_refused(catalog_dir: Path, unix_socket: Path) -> None:
    problem = copy_problem(catalog_dir / APP, catalog_dir / SOURCE)
    assert problem is not None and "is a socket, not a regular file" in problem


def test_walks_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = tmp_path.joinpath(*["d"] * 5)
    deep.mkdir(parents=True)
    monkeypatch.setattr(walk, "MAX_TREE_DEPTH", 3)
    with pytest.raises(UserError, match="more than 3 folders deep"):
        walk_tree(tmp_path)
    monkeypatch.setattr(walk, "MAX_TREE_DEPTH", 64)
    monkeypatch.setattr(walk, "MAX_TREE_ENTRIES", 4)
    with pytest.raises(UserError, match="more than 4 entries"):
        hash_tree(tmp_path)


def test_a_symlink_loop_is_hashed_and_copied_as_a_link(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("a\n")
    (source / "loop").symlink_to("loop")
    (source / "up").symlink_to("..")
    before = hash_tree(source)
    copy_into(source, tmp_path / "copy")
    assert (tmp_path / "copy/a.txt").read_text() == "a\n"
    assert (tmp_path / "copy/loop").readlink() == Path("loop")
    assert hash_tree(tmp_path / "copy") == before


# --------------------------------------------------------------------------- --json


def test_an_internal_error_with_json_prints_one_json_document(
    catalog_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(imagefactory.project.plan, "plan_images", explode)
    result = CliRunner().invoke(app, ["-C", str(catalog_dir), "plan", "--json"])
    assert result.exit_code == 3
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["error"] == "internal error: RuntimeError: boom"
    assert "rerun with -v" in document["hint"]
