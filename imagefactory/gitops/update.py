"""Pin one image by digest in an overlay's ``kustomization.yaml``, keeping the file as written.

Like ``imagefactory.project.yamledit``: PyYAML's composer says where the ``images:`` item for the
image sits; only the characters of its ``digest:`` value (or its ``newTag:`` key and value,
replaced by ``digest:``) change. Comments, order, indentation and every other entry stay. The
result is parsed again and must differ from the original in that one pin alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from imagefactory.atomic import read_inside
from imagefactory.errors import UserError
from imagefactory.spec.parents import DIGEST_PATTERN

NULL_DIGEST = "sha256:" + "0" * 64
VERSION_LABEL = "app.kubernetes.io/version"


def check_digest(digest: str) -> str:
    """``digest`` when it is an image digest; else a UserError. The all-zero digest names no
    content (it is a placeholder), so it is refused too."""
    if not DIGEST_PATTERN.fullmatch(digest):
        raise UserError(
            f"'{digest}' is not an image digest",
            hint="write sha256: followed by 64 lowercase hex digits",
        )
    if digest == NULL_DIGEST:
        raise UserError(
            f"'{digest}' is the all-zero placeholder, not the digest of an image",
            hint="take the digest from the registry: imagefactory status IMAGE --json",
        )
    return digest


def read_overlay(checkout: Path, relative: str) -> str | None:
    """The text of the file ``relative`` in ``checkout``, None when there is none. Read as bytes
    (CRLF line endings stay as they are), never through a symlink, never outside ``checkout``."""
    data = read_inside(checkout, relative)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{relative} is not UTF-8 text (byte {exc.start})",
            hint="regenerate the overlay with: imagefactory gitops init",
        ) from exc


def read_pins(text: str) -> dict[str, str | None]:
    """Each ``images:`` entry's name → its digest (None when it pins a tag, or nothing)."""
    data = _load(text)
    entries = data.get("images") if isinstance(data, dict) else None
    pins: dict[str, str | None] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            digest = entry.get("digest")
            pins[entry["name"]] = digest if isinstance(digest, str) else None
    return pins


def set_pin(
    text: str,
    name: str,
    digest: str,
    where: str = "kustomization.yaml",
    version: str | None = None,
) -> str:
    """``text`` with the ``images:`` entry ``name`` pinned to ``digest`` (unchanged if it is),
    and, given a ``version``, the overlay's ``app.kubernetes.io/version`` label set to it."""
    check_digest(digest)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise UserError(f"{where} is not valid YAML: {exc}") from exc
    entry = _entry(root, name, where)
    keys = {k.value: (k, v) for k, v in entry.value if isinstance(k, yaml.ScalarNode)}
    if "digest" in keys:
        key, value = keys["digest"]
        start, end = value.start_mark.index, value.end_mark.index
        replacement = digest
    elif "newTag" in keys:
        key, value = keys["newTag"]
        start, end = key.start_mark.index, value.end_mark.index
        replacement = f"digest: {digest}"
        stale = _UNPINNED_COMMENT.match(text, end)
        end = stale.end() if stale else end
    else:
        raise UserError(
            f"{where}: the images entry '{name}' has neither digest nor newTag",
            hint="regenerate the overlay with: imagefactory gitops init",
        )
    if not isinstance(value, yaml.ScalarNode) or "\n" in text[start:end]:
        raise UserError(f"{where}: the pin of '{name}' must be one plain value to be edited")
    edits = [(start, end, replacement)]
    label = _version_label(root) if version is not None else None
    if label is not None and label.value != version:
        edits.append((label.start_mark.index, label.end_mark.index, json.dumps(version)))
    edited = text
    for begin, finish, written in sorted(edits, reverse=True):
        edited = edited[:begin] + written + edited[finish:]
    _check_only_pin_changed(text, edited, name, digest, where, version if label else None)
    return edited


#: What ``gitops init`` writes after an unpinned tag; the first pin removes it with the tag.
_UNPINNED_COMMENT = re.compile(r"[ \t]*# not promoted here yet[^\n]*")


def _version_label(root: yaml.Node | None) -> yaml.ScalarNode | None:
    """The scalar of ``app.kubernetes.io/version`` in the overlay's ``labels:`` pairs."""
    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if getattr(key, "value", None) != "labels" or not isinstance(value, yaml.SequenceNode):
            continue
        for item in value.value:
            for pairs_key, pairs in item.value if isinstance(item, yaml.MappingNode) else []:
                if pairs_key.value != "pairs" or not isinstance(pairs, yaml.MappingNode):
                    continue
                for label, label_value in pairs.value:
                    if label.value == VERSION_LABEL and isinstance(label_value, yaml.ScalarNode):
                        return label_value
    return None


def _entry(root: yaml.Node | None, name: str, where: str) -> yaml.MappingNode:
    if not isinstance(root, yaml.MappingNode):
        raise UserError(f"{where} is not a mapping")
    images = [v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "images"]
    if len(images) != 1 or not isinstance(images[0], yaml.SequenceNode):
        raise UserError(
            f"{where} has no images: list", hint="regenerate it: imagefactory gitops init"
        )
    for item in images[0].value:
        if isinstance(item, yaml.MappingNode) and any(
            isinstance(k, yaml.ScalarNode)
            and k.value == "name"
            and getattr(v, "value", None) == name
            for k, v in item.value
        ):
            return item
    raise UserError(
        f"{where} has no images entry for '{name}'",
        hint="regenerate the overlay with: imagefactory gitops init",
    )


def _check_only_pin_changed(
    before: str, after: str, name: str, digest: str, where: str, version: str | None
) -> None:
    old, new = _load(before), _load(after)
    if not isinstance(old, dict) or not isinstance(new, dict):
        raise UserError(f"cannot pin {name} in {where}: the edited file would not read back")
    expected = {
        **old,
        "images": [
            {**{k: v for k, v in e.items() if k != "newTag"}, "digest": digest}
            if isinstance(e, dict) and e.get("name") == name
            else e
            for e in old.get("images", [])
        ],
    }
    if version is not None:
        expected["labels"] = [
            {**e, "pairs": {**e["pairs"], VERSION_LABEL: version}}
            if isinstance(e, dict)
            and isinstance(e.get("pairs"), dict)
            and VERSION_LABEL in e["pairs"]
            else e
            for e in old.get("labels", [])
        ]
    if expected != new:
        raise UserError(f"cannot pin {name} in {where}: the edit would change other values")


def _load(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None
