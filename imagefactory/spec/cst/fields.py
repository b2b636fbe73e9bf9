"""The typed readers a container-structure-test conversion is made of: each reads one value of
the document, and when it is wrong records an issue (file, line, key path, hint) and returns None,
so that one pass reports every problem of a file."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from imagefactory.errors import SpecIssue
from imagefactory.spec.cst.goregex import RegexProblem, combine_regexes, go_regex
from imagefactory.spec.issues import format_key_path, near_miss
from imagefactory.spec.yamldoc import KeyPath, YamlDocument

M = TypeVar("M", bound=BaseModel)
#: The keys of a CST ``{key, value, isRegex}`` entry (env variables, labels).
ENV_VAR_KEYS = ("key", "value", "isRegex")


def go_expansions(text: str) -> list[str]:
    """The ``$name``/``${name}`` references Go's ``os.Expand`` (which CST uses) replaces."""
    found = []
    for match in re.finditer(r"\$(\{[^}]*\}?|[A-Za-z0-9_]+|[*#$@!?-])", text):
        found.append(match.group(0))
    return found


class FieldReader:
    """Reads one CST document, collecting every issue before giving up."""

    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.issues: list[SpecIssue] = []

    def issue(self, path: KeyPath, message: str, hint: str | None = None) -> None:
        self.issues.append(
            SpecIssue(self.doc.path, format_key_path(path), message, self.doc.line_of(path), hint)
        )

    def unsupported(self, path: KeyPath, test: str | None, why: str, hint: str | None) -> None:
        last_key = max(i for i, part in enumerate(path) if isinstance(part, str))
        field = format_key_path(path[last_key:])
        where = f"test '{test}': " if test else ""
        self.issue(path, f"{where}'{field}' cannot be converted: {why}", hint)

    # -- typed readers: each returns None (and records an issue) when the value is wrong

    def mapping(self, value: Any, path: KeyPath, keys: tuple[str, ...]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.issue(path, f"expected a mapping, got {kind(value)}", "write 'key: value' lines")
            return None
        for key in value:
            if key not in keys:
                guess = near_miss(str(key), keys)
                self.issue(
                    (*path, str(key)),
                    f"unknown key '{key}'",
                    f"did you mean '{guess}'?" if guess else "allowed keys: " + ", ".join(keys),
                )
        return value

    def items(self, value: Any, path: KeyPath) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.issue(path, f"expected a list, got {kind(value)}", "write '- item' lines")
            return []
        return value

    def text(self, value: Any, path: KeyPath, *, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.issue(path, "required key is missing")
            return None
        if not isinstance(value, str):
            self.issue(path, f"expected a string, got {kind(value)}", quote_hint(value))
            return None
        if required and not value:
            self.issue(path, "must not be empty")
            return None
        return value

    def texts(self, value: Any, path: KeyPath) -> list[str] | None:
        if value is None:
            return None
        if not isinstance(value, list):
            self.issue(path, f"expected a list of strings, got {kind(value)}", "write [a, b]")
            return None
        result = []
        for index, item in enumerate(value):
            text = self.text(item, (*path, index))
            if text is not None:
                result.append(text)
        return result if len(result) == len(value) else None

    def boolean(self, value: Any, path: KeyPath, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.issue(path, f"expected true or false, got {kind(value)}")
            return default
        return value

    def integer(self, value: Any, path: KeyPath) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.issue(path, f"expected an integer, got {kind(value)}")
            return None
        return value

    def regexes(self, value: Any, path: KeyPath, test: str | None) -> list[str] | None:
        patterns = self.texts(value, path)
        if patterns is None:
            return [] if value is None else None
        result = []
        for index, pattern in enumerate(patterns):
            try:
                result.append(go_regex(pattern))
            except RegexProblem as exc:
                where = f"test '{test}': " if test else ""
                self.issue((*path, index), f"{where}regex {pattern!r}: {exc.message}", exc.hint)
        return result if len(result) == len(patterns) else None

    def combined(
        self,
        expected: list[str] | None,
        excluded: list[str] | None,
        path: KeyPath,
        test: str,
        *,
        whole: bool = False,
    ) -> str | None:
        if expected is None or excluded is None:
            return None
        try:
            return combine_regexes(expected, excluded, whole=whole)
        except RegexProblem as exc:
            self.issue(
                path,
                f"test '{test}': the regexes cannot be joined into one: {exc.message}",
                "give each named group a different name",
            )
            return None

    def model(self, build: Callable[[], M], path: KeyPath, test: str | None) -> M | None:
        try:
            return build()
        except ValidationError as exc:
            where = f"test '{test}': " if test else ""
            for error in exc.errors():
                field = ".".join(str(p) for p in error["loc"])
                self.issue(path, f"{where}cannot express this check ({field}: {error['msg']})")
            return None


def kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def quote_hint(value: Any) -> str | None:
    if isinstance(value, bool | int | float):
        return "quote it: YAML reads unquoted numbers and yes/no/true/false as other types"
    return None
