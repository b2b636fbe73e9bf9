"""Targeted edits of an image.yaml that keep the file as its authors wrote it.

No YAML round-trip library is used: PyYAML's composer says where the top-level ``version:``
value sits (its start and end marks), and only those characters are replaced. Comments,
blank lines, key order, indentation, line endings (LF or CRLF), an inline comment after the
value and its quoting style (plain, ``'single'`` or ``"double"``) stay exactly as they were.
The result is parsed again and must differ from the original in the version alone before it
replaces the file, atomically (a temp file in the same folder, fsync, rename).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import semver
import yaml

from imagefactory.atomic import write_atomically
from imagefactory.errors import UserError

_STR_TAG = "tag:yaml.org,2002:str"
_HINT = "write it as a top-level key: version: 1.0.0"


def set_version(path: Path, new_version: str) -> str:
    """Set the top-level ``version:`` of the YAML file ``path`` to ``new_version``, in place.

    Returns the version the file had. Raises UserError, leaving the file untouched, when the
    new version is not a semantic version, the file cannot be read or parsed, or it has no
    top-level ``version`` written as a plain or quoted scalar.
    """
    try:
        semver.Version.parse(new_version)
    except ValueError as exc:
        raise UserError(
            f"'{new_version}' is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.4.2)"
        ) from exc
    try:
        text = path.read_bytes().decode("utf-8")  # bytes: keep CRLF line endings as they are
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from exc
    old, start, end, style = _version_scalar(path, text)
    quote = style if style in ("'", '"') else ""
    edited = f"{text[:start]}{quote}{new_version}{quote}{text[end:]}"
    _check_only_version_changed(path, text, edited, new_version)
    _write_atomically(path, edited.encode("utf-8"))
    return old


def _version_scalar(path: Path, text: str) -> tuple[str, int, int, str | None]:
    """The top-level version's value, where its characters start and end, and its style."""
    try:
        # The pure-Python loader: its marks count characters of ``text`` (libyaml's may not).
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(root, yaml.MappingNode):
        raise UserError(f"{path} has no top-level version: it is not a mapping", hint=_HINT)
    found = [
        (key, value)
        for key, value in root.value
        if isinstance(key, yaml.ScalarNode) and key.tag == _STR_TAG and key.value == "version"
    ]
    if not found:
        raise UserError(f"{path} has no top-level version", hint=_HINT)
    if len(found) > 1:
        raise UserError(f"{path} sets the top-level version more than once", hint=_HINT)
    key, node = found[0]
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.ScalarNode):
        raise UserError(f"{path}:{line}: version is not a single value", hint=_HINT)
    start, end = node.start_mark.index, node.end_mark.index
    source = text[start:end]
    if (
        start < key.end_mark.index  # an alias: the node's marks point at its anchor
        or node.style not in (None, "'", '"')
        or source[:1] in ("!", "&", "*")
        or "\n" in source
        or "\r" in source
    ):
        raise UserError(
            f"{path}:{line}: version must be written as one plain or quoted value to be edited",
            hint=f"{_HINT} (no anchor, alias, tag or block scalar)",
        )
    return node.value, start, end, node.style


def _check_only_version_changed(path: Path, before: str, after: str, version: str) -> None:
    old_data, new_data = _load(before), _load(after)
    if not isinstance(new_data, dict) or new_data.get("version") != version:
        raise UserError(f"cannot set the version of {path}: the edited file would not read back")
    if isinstance(old_data, dict):
        old_data = {**old_data, "version": version}
    if old_data != new_data:
        raise UserError(f"cannot set the version of {path}: the edit would change other values")


def _load(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        write_atomically(path, data, mode=path.stat().st_mode & 0o7777)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc}") from exc
