"""Block-style YAML for big, repetitive data (the GitLab pipeline), byte for byte what PyYAML
writes, at the cost of one PyYAML call per distinct scalar instead of one per node.

A deep chain's pipeline repeats each ancestor's paths in every job of every descendant:
megabytes made of a few hundred distinct strings, which PyYAML's pure-Python emitter writes at
about 1 MB/s (24 s for a 200-deep chain). :class:`BlockYaml` lays out the block structure itself
(mappings; sequences indented under their key, as a dumper that is never indentless writes them)
and asks PyYAML once for each distinct key and scalar: in block context a scalar's one-line form
does not depend on where it stands. Anything else (a scalar PyYAML writes on several lines or
very long, an empty collection, a sequence directly in a sequence, a type other than plain
data) makes that document go to PyYAML whole, so the text is always what PyYAML would write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: A scalar longer than this goes to PyYAML with its document: PyYAML folds plain scalars at its
#: line width, which depends on the column (the pipeline's width is 10,000).
MAX_SCALAR = 1000
#: What YAML takes for a line break (PyYAML writes a scalar holding one on several lines).
_BREAKS = frozenset("\r\n\x85\u2028\u2029")
_SCALARS = frozenset({str, bool, int, float, type(None)})


class _Unsupported(Exception):
    """The document holds something only PyYAML itself writes right."""


class BlockYaml:
    """``dump(document)`` with each distinct scalar's form computed once, across documents.

    ``dump`` is the PyYAML call to match, for a mapping (its dumper must be block style and never
    indentless, with an indent of 2); it writes whatever this cannot."""

    def __init__(self, dump: Callable[[Mapping[str, Any]], str]) -> None:
        self._dump = dump
        self._keys: dict[str, str] = {}
        self._values: dict[tuple[type, Any], str] = {}

    def each(self, data: Mapping[str, Any]) -> list[str]:
        """``dump({key: value})`` for every item of ``data``; the forms of all its distinct keys
        and scalars are first learnt from two PyYAML calls, not one call each."""
        keys: set[Any] = set()
        values: set[tuple[type, Any]] = set()
        _collect(data, keys, values)
        self._learn(self._keys, sorted(k for k in keys if isinstance(k, str)), ": 0\n")
        fresh = [v for v in values if v not in self._values]
        self._learn(self._values, fresh, "\n", named=True)
        return [self({key: value}) for key, value in data.items()]

    def _learn(
        self, known: dict[Any, str], new: list[Any], end: str, *, named: bool = False
    ) -> None:
        """Batch ``new`` into one mapping (as keys, or as the values of keys v0, v1, …) and keep
        each one-line form; a batch PyYAML writes on more lines than entries teaches nothing
        (those forms are then asked for one at a time)."""
        if not new:
            return
        batch = {f"v{i}": v[1] for i, v in enumerate(new)} if named else dict.fromkeys(new, 0)
        lines = [f"{line}\n" for line in self._dump(batch).split("\n")[:-1]]
        if len(lines) != len(new):
            return
        for index, (item, line) in enumerate(zip(new, lines, strict=True)):
            try:
                known[item] = _one_line(line, f"v{index}: " if named else "", end)
            except _Unsupported:
                continue

    def __call__(self, document: Mapping[str, Any]) -> str:
        out: list[str] = []
        try:
            self._mapping(document, 0, "", out)
        except _Unsupported:
            return self._dump(document)
        return "".join(out)

    def _mapping(self, data: Mapping[Any, Any], indent: int, lead: str, out: list[str]) -> None:
        if type(data) is not dict or not data:  # plain dicts only, as the pipeline is made of
            raise _Unsupported
        for position, (key, value) in enumerate(data.items()):
            prefix = lead if position == 0 else " " * indent
            if type(value) in _SCALARS:
                out.append(f"{prefix}{self._key(key)}: {self._value(value)}\n")
                continue
            out.append(f"{prefix}{self._key(key)}:\n")
            if type(value) is list:
                self._sequence(value, indent + 2, out)
            else:
                self._mapping(value, indent + 2, " " * (indent + 2), out)

    def _sequence(self, items: list[Any], indent: int, out: list[str]) -> None:
        if not items:
            raise _Unsupported
        lead = " " * indent + "- "
        for item in items:
            if type(item) in _SCALARS:
                out.append(f"{lead}{self._value(item)}\n")
            else:
                self._mapping(item, indent + 2, lead, out)

    def _key(self, key: Any) -> str:
        if type(key) is not str:
            raise _Unsupported
        known = self._keys.get(key)
        if known is None:
            known = self._keys[key] = _one_line(self._dump({key: None}), "", ": null\n")
        return known

    def _value(self, value: Any) -> str:
        index = (type(value), value)
        known = self._values.get(index)
        if known is None:
            known = self._values[index] = _one_line(self._dump({"k": value}), "k: ", "\n")
        return known


def _collect(data: Any, keys: set[Any], values: set[tuple[type, Any]]) -> None:
    """Every key and scalar (with its type: True is not 1) in dicts and lists of ``data``."""
    items = data.values() if type(data) is dict else data if type(data) is list else ()
    if type(data) is dict:
        keys.update(data)
    for item in items:
        if type(item) in _SCALARS:
            values.add((type(item), item))
        else:
            _collect(item, keys, values)


def _one_line(text: str, start: str, end: str) -> str:
    """The scalar in ``text`` (PyYAML's ``start`` + scalar + ``end``), if it is one short line."""
    inner = text.removeprefix(start).removesuffix(end)
    if not text.startswith(start) or not text.endswith(end) or _BREAKS.intersection(inner):
        raise _Unsupported
    if len(inner) > MAX_SCALAR:
        raise _Unsupported
    return inner
