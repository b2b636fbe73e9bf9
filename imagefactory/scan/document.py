"""Untrusted JSON documents: read bounded, walked with accessors whose errors name the file and key.

A scanner report, a VEX document, an SBOM and each OSV advisory arrive from outside (a CI
artifact, a mirror): :func:`read_json` reads a regular file of at most ``limit`` bytes and parses
it; a :class:`Node` is one value in it with its key path (``Results[0].Vulnerabilities[3]``), and
every accessor that finds something other than what it expects raises a ``UserError`` naming the
file, the key path, what was expected and what was found.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imagefactory.atomic import read_regular
from imagefactory.errors import UserError

#: The most bytes of one report, VEX or SBOM document read.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024


def read_json(path: Path, *, what: str, limit: int = MAX_DOCUMENT_BYTES) -> Node:
    """The JSON document at ``path`` (a ``what``: "the scan report"), its top level an object."""
    return parse_json(read_regular(path, what=what, limit=limit), str(path), what=what)


def parse_json(data: bytes, source: str, *, what: str) -> Node:
    """``data`` (read from ``source``) as a JSON document whose top level is an object."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(
            f"{source}: {what} is not JSON: {reason}",
            hint="pass the file the scanner wrote with its JSON output format",
        ) from exc
    node = Node(source, "", value)
    node.mapping()
    return node


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", str: "a string", dict: "an object", list: "a list"}
    return names.get(type(value), "a number")


@dataclass(frozen=True)
class Node:
    """One value of a JSON document: the file it is in, its key path, the value itself."""

    source: str
    path: str
    value: Any

    def error(self, message: str, hint: str | None = None) -> UserError:
        where = f"{self.source}: {self.path}" if self.path else self.source
        return UserError(f"{where}: {message}", hint=hint)

    def expected(self, what: str) -> UserError:
        return self.error(
            f"expected {what}, found {_kind(self.value)}",
            hint="the file is not the scanner output it claims to be, or not one this version reads",
        )

    def mapping(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            raise self.expected("an object")
        return self.value

    def get(self, key: str) -> Node:
        """The member ``key`` of this object (its value None when absent)."""
        path = f"{self.path}.{key}" if self.path else key
        return Node(self.source, path, self.mapping().get(key))

    def present(self) -> bool:
        return self.value is not None

    def text(self, key: str) -> str:
        """The string member ``key`` (required, non-empty)."""
        value = self.optional_text(key)
        if not value:
            raise self.get(key).expected("a non-empty string")
        return value

    def optional_text(self, key: str) -> str:
        """The string member ``key``; "" when it is absent or null."""
        node = self.get(key)
        if node.value is None:
            return ""
        if not isinstance(node.value, str):
            raise node.expected("a string")
        return node.value

    def items(self, key: str) -> list[Node]:
        """The elements of the list member ``key``; none when it is absent or null."""
        node = self.get(key)
        if node.value is None:
            return []
        if not isinstance(node.value, list):
            raise node.expected("a list")
        return [Node(self.source, f"{node.path}[{i}]", v) for i, v in enumerate(node.value)]

    def texts(self, key: str) -> list[str]:
        """The list member ``key`` of strings (a lone string counts as a list of one)."""
        node = self.get(key)
        if isinstance(node.value, str):
            return [node.value]
        found: list[str] = []
        for item in self.items(key):
            if not isinstance(item.value, str):
                raise item.expected("a string")
            found.append(item.value)
        return found

    def time(self, key: str) -> datetime | None:
        """The member ``key`` as an RFC 3339 time (UTC); None when absent or empty."""
        text = self.optional_text(key)
        return parse_time(text, self.get(key)) if text else None


def parse_time(text: str, node: Node) -> datetime:
    """``text`` (RFC 3339, ``Z`` or an offset, nanoseconds allowed) as an aware UTC time."""
    head, dot, rest = text.partition(".")
    if dot:  # Go writes up to nine fraction digits; Python reads six
        digits = len(rest) - len(rest.lstrip("0123456789"))
        rest = rest[: min(digits, 6)] + rest[digits:]
    cleaned = (head + dot + rest).replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError as exc:
        raise node.expected("an RFC 3339 time") from exc
    if moment.tzinfo is None:
        raise node.error(f"the time {text!r} has no time zone")
    return moment.astimezone(UTC)
