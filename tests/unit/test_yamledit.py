"""set_version: only the version's characters change; anything doubtful leaves the file alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from imagefactory.errors import UserError
from imagefactory.project.yamledit import set_version

from .conftest import REPO

DOCUMENT = """\
# The runtime image. Keep this comment.
name: runtime/llm

version: 1.0.0
description: "version: 9.9.9 in a string is not the version"
packages: [python3]   # inline
variants:
  accelerator:
    cpu:
      version: 7.7.7  # a nested key: not the top-level version
"""


def write(tmp_path: Path, text: str, *, newline: str = "\n") -> Path:
    path = tmp_path / "image.yaml"
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def test_only_the_version_changes(tmp_path: Path) -> None:
    path = write(tmp_path, DOCUMENT)
    assert set_version(path, "1.1.0") == "1.0.0"
    assert path.read_text() == DOCUMENT.replace("version: 1.0.0", "version: 1.1.0")


def test_an_inline_comment_stays(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\nversion: 1.0.0   # bump with imagefactory version bump\n")
    set_version(path, "2.0.0")
    assert path.read_text() == "name: a\nversion: 2.0.0   # bump with imagefactory version bump\n"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ('version: "1.0.0"', 'version: "1.0.1"'),
        ("version: '1.0.0'", "version: '1.0.1'"),
        ("version:   1.0.0", "version:   1.0.1"),
        ('version: "1.0.0"  # quoted', 'version: "1.0.1"  # quoted'),
        ("version:\n  1.0.0", "version:\n  1.0.1"),
    ],
)
def test_the_quoting_style_stays(tmp_path: Path, written: str, expected: str) -> None:
    path = write(tmp_path, f"name: a\n{written}\nfrom: b\n")
    assert set_version(path, "1.0.1") == "1.0.0"
    assert path.read_text() == f"name: a\n{expected}\nfrom: b\n"


def test_crlf_line_endings_stay(tmp_path: Path) -> None:
    path = write(tmp_path, DOCUMENT, newline="\r\n")
    set_version(path, "1.0.1")
    data = path.read_bytes()
    assert (
        data == DOCUMENT.replace("version: 1.0.0", "version: 1.0.1").replace("\n", "\r\n").encode()
    )
    assert data.count(b"\r\n") == DOCUMENT.count("\n")


def test_a_flow_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "{name: a, version: 1.0.0, from: b}\n")
    set_version(path, "1.2.0")
    assert path.read_text() == "{name: a, version: 1.2.0, from: b}\n"


def test_a_version_written_as_a_number_becomes_a_string(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\nversion: 1.0\n")
    assert set_version(path, "1.0.0") == "1.0"
    assert yaml.safe_load(path.read_text())["version"] == "1.0.0"


def test_a_utf8_file_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "image.yaml"
    path.write_bytes("\ufeff# naïve comment ✓\nname: a\nversion: 1.0.0\n".encode())
    set_version(path, "1.0.1")
    assert path.read_bytes() == "\ufeff# naïve comment ✓\nname: a\nversion: 1.0.1\n".encode()


def test_prerelease_and_build_metadata_versions(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\nversion: 2.0.0-rc.1\n")
    assert set_version(path, "2.0.0+build.5") == "2.0.0-rc.1"
    assert path.read_text() == "name: a\nversion: 2.0.0+build.5\n"


def test_the_example_catalog_files(tmp_path: Path) -> None:
    for source in sorted((REPO / "images").rglob("image.yaml")):
        path = tmp_path / "image.yaml"
        original = source.read_text()
        path.write_text(original)
        old = yaml.safe_load(original)["version"]
        assert set_version(path, "9.8.7") == old
        assert path.read_text() == original.replace(f"version: {old}", "version: 9.8.7", 1)


def test_the_file_mode_stays(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\nversion: 1.0.0\n")
    path.chmod(0o640)
    set_version(path, "1.0.1")
    assert path.stat().st_mode & 0o777 == 0o640


def test_no_temporary_file_is_left(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\nversion: 1.0.0\n")
    set_version(path, "1.0.1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.yaml"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: a\nfrom: b\n", "has no top-level version"),
        ("name: a\nvariants:\n  x:\n    version: 1.0.0\n", "has no top-level version"),
        ("- version: 1.0.0\n", "it is not a mapping"),
        ("", "it is not a mapping"),
        ("name: a\nversion: 1.0.0\nversion: 1.0.1\n", "more than once"),
        ("name: a\nversion: [1, 0, 0]\n", "not a single value"),
        ("name: a\nversion: |\n  1.0.0\n", "one plain or quoted value"),
        ("name: a\nversion: !!str 1.0.0\n", "one plain or quoted value"),
        ("name: a\nversion: &v 1.0.0\n", "one plain or quoted value"),
        ("base: &v 1.0.0\nversion: *v\n", "one plain or quoted value"),
        ('name: a\nversion: "1.0.\n  0"\n', "one plain or quoted value"),
        ("name: a\nversion: 1.0.0\n  bad: [\n", "not valid YAML"),
        ("a: 1\n---\nversion: 1.0.0\n", "not valid YAML"),
    ],
)
def test_refusals_leave_the_file_unchanged(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    before = path.stat()
    with pytest.raises(UserError, match=message):
        set_version(path, "2.0.0")
    assert path.read_text() == text
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.yaml"]


def test_a_new_version_that_is_not_semver_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\nversion: 1.0.0\n")
    with pytest.raises(UserError, match=r"'2\.0' is not a semantic version"):
        set_version(path, "2.0")
    assert path.read_text() == "name: a\nversion: 1.0.0\n"


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read"):
        set_version(tmp_path / "image.yaml", "1.0.0")


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "image.yaml"
    path.write_bytes(b"name: a\nversion: 1.0.0\n# \xff\n")
    with pytest.raises(UserError, match="cannot read"):
        set_version(path, "2.0.0")
    assert path.read_bytes() == b"name: a\nversion: 1.0.0\n# \xff\n"


def test_a_failed_write_leaves_the_file_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "name: a\nversion: 1.0.0\n")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(UserError, match=r"cannot write .*No space left"):
        set_version(path, "2.0.0")
    assert path.read_text() == "name: a\nversion: 1.0.0\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.yaml"]
