"""Turn pydantic validation errors into SpecIssues a person can act on.

Each issue names the key path as written in the YAML (``files[0].mode``), the line, what was
expected and — where we can guess — a hint, such as the near-miss key the user probably meant.
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from imagefactory.errors import SpecIssue
from imagefactory.spec.yamldoc import KeyPath, YamlDocument, read_yaml

M = TypeVar("M", bound=BaseModel)


def unknown_images(
    path: Path,
    doc: YamlDocument,
    key: str,
    refs: typing.Iterable[str],
    images: typing.Collection[str],
    *,
    what: str,
    otherwise: str,
) -> list[SpecIssue]:
    """An issue for each of ``refs`` (the keys under ``key`` of ``path``) that is not one of
    ``images``: "'REF' is not WHAT", with a near miss, else the hint ``otherwise``."""
    issues = []
    for ref in refs:
        if ref not in images:
            guess = near_miss(ref, images)
            issues.append(
                SpecIssue(
                    path,
                    f"{key}.{ref}",
                    f"'{ref}' is not {what}",
                    doc.line_of((key, ref)),
                    f"did you mean '{guess}'?" if guess else otherwise,
                )
            )
    return issues


def read_model(path: Path, model: type[M]) -> tuple[M | None, YamlDocument | None, list[SpecIssue]]:
    """An optional catalog file beside the images (refresh.yaml, image.lock) read into
    ``model``: nothing when it is absent; else the model (None when the file has problems),
    the document (the line of each key) and its problems, each with line and key path."""
    if not path.exists() and not path.is_symlink():
        return None, None, []
    doc = read_yaml(path)
    issues = [
        SpecIssue(path, format_key_path(p.key_path), p.message, p.line, p.hint)
        for p in doc.problems
    ]
    if issues or doc.data is None:
        return None, doc, issues
    try:
        return model.model_validate(doc.data), doc, []
    except ValidationError as exc:
        return None, doc, issues_from_validation(exc, doc, model)


def format_key_path(path: KeyPath) -> str:
    """``files[0].mode``; keys that would read ambiguously are quoted: ``env[" X"]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[^\s.\[\]\"][^\s\[\]\"]*", part) and not part.endswith("."):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def near_miss(word: str, choices: typing.Iterable[str]) -> str | None:
    match = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return match[0] if match else None


def issues_from_validation(
    exc: ValidationError, doc: YamlDocument, model: type[BaseModel], prefix: KeyPath = ()
) -> list[SpecIssue]:
    issues = []
    for error in exc.errors():
        loc: KeyPath = (*prefix, *_clean_loc(error["loc"]))
        message, hint = _describe(error, loc[len(prefix) :], model)
        issues.append(SpecIssue(doc.path, format_key_path(loc), message, doc.line_of(loc), hint))
    return issues


def _clean_loc(loc: tuple[int | str, ...]) -> KeyPath:
    """Drop pydantic's internal markers (``[key]``, validator and union tags) from a location."""
    return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or "(" in p)))


def _describe(error: Any, loc: KeyPath, model: type[BaseModel]) -> tuple[str, str | None]:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        allowed = _allowed_keys(model, loc[:-1])
        guess = near_miss(key, allowed)
        if guess:
            return f"unknown key '{key}'", f"did you mean '{guess}'?"
        return f"unknown key '{key}'", "allowed keys: " + ", ".join(sorted(allowed))
    if kind == "missing":
        return "required key is missing", None
    message = str(error["msg"])
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind.endswith("_type") or kind in {"literal_error", "string_pattern_mismatch"}:
        message = f"{message[0].lower()}{message[1:]}; got {_short(error.get('input'))}"
    hint = (error.get("ctx") or {}).get("hint")  # grammar errors carry their own (grammar.py)
    return message, hint if isinstance(hint, str) else _hint_for(kind)


def _hint_for(kind: str) -> str | None:
    return {
        "string_pattern_mismatch": "names use lowercase letters, digits and . _ - (and / in image names)",
        "dict_type": "write it as a mapping of 'key: value' lines",
        "list_type": "write it as a list ('- item' lines or [a, b])",
    }.get(kind)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_keys(model: type[BaseModel], loc: KeyPath) -> list[str]:
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _step(annotation: Any, part: str | int) -> Any:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is list and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the type that has the keys."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = options[0] if len(options) == 1 else annotation
            if len(options) != 1:
                return annotation
        else:
            return annotation
