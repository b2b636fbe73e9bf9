"""Read one YAML file into plain data plus the line of every key, so errors can point at it.

PyYAML's safe loader builds the data; a walk over the composed node tree records, for every key
path, the 1-based line where it appears. Duplicate keys — which PyYAML silently lets the last one
win — are reported as issues, because in a catalog they are always a mistake. So are values that
are not plain data (strings, numbers, booleans, null, lists, mappings): a ``!!set`` has no order
(a new content hash every run), an unquoted date reads as a timestamp where text is meant, and
``!!binary`` or ``!!python/…`` tags have no place in a catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from imagefactory.atomic import read_regular
from imagefactory.errors import UserError

KeyPath = tuple[str | int, ...]

#: libyaml's parser when PyYAML was built with it (several times faster), else the pure-Python one.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: No catalog file needs more values than this; past it, aliases are being used as a bomb.
MAX_VALUES = 20_000

_CORE = "tag:yaml.org,2002:"
#: The tags of plain data; ``merge`` is the ``<<`` key.
PLAIN_TAGS = frozenset(
    _CORE + name for name in ("str", "int", "float", "bool", "null", "seq", "map", "merge")
)
#: What to write instead of a tag that is not plain data.
_INSTEAD = {
    "set": "write a list ('- item' lines or [a, b]): a set has no order",
    "omap": "write a mapping of 'key: value' lines",
    "pairs": "write a mapping of 'key: value' lines",
    "timestamp": 'quote it ("2024-01-31"): catalog values are text, not dates',
    "binary": "write the value as text",
}
#: No catalog file needs more bytes than this; past it, it is not one (``/dev/zero`` is refused
#: before this: only regular files are read).
MAX_YAML_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class YamlProblem:
    key_path: KeyPath
    line: int | None
    message: str
    hint: str | None = None
    fatal: bool = True  # False: the data is still usable and gets checked further


@dataclass
class YamlDocument:
    """The data of one file, where each key sits, and what was wrong with the text itself."""

    path: Path
    data: Any = None
    lines: dict[KeyPath, int] = field(default_factory=dict)
    problems: list[YamlProblem] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        """The file parsed into a mapping that can be validated."""
        return isinstance(self.data, dict) and not any(p.fatal for p in self.problems)

    def line_of(self, key_path: KeyPath) -> int | None:
        """The line of ``key_path``, or of its nearest ancestor that has one."""
        for end in range(len(key_path), -1, -1):
            line = self.lines.get(key_path[:end])
            if line is not None:
                return line
        return None


def read_yaml(path: Path) -> YamlDocument:
    """Parse ``path``; never raises for bad content — problems are collected on the document."""
    doc = YamlDocument(path=path)
    try:  # never blocks: a FIFO, a device or a socket is refused before it is read
        text = read_regular(path, what="the file", limit=MAX_YAML_BYTES).decode("utf-8")
    except UserError as exc:
        doc.problems.append(YamlProblem((), None, exc.message, exc.hint))
        return doc
    except UnicodeDecodeError as exc:
        doc.problems.append(YamlProblem((), None, f"cannot read the file: {exc}"))
        return doc
    try:
        doc.data = _parse(text, doc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        doc.problems.append(
            YamlProblem(
                (),
                line,
                f"invalid YAML: {exc.problem or exc.context}",
                "check indentation, quoting and that every key is followed by ':'",
            )
        )
    except yaml.YAMLError as exc:
        doc.problems.append(YamlProblem((), None, f"invalid YAML: {exc}"))
    except RecursionError:
        doc.problems.append(YamlProblem((), None, "the YAML nests too deeply or refers to itself"))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        # PyYAML's constructors raise plain errors for values such as 2024-13-01 or !!int abc.
        doc.problems.append(
            YamlProblem(
                (), None, f"invalid YAML value: {exc}", "quote values that are meant as text"
            )
        )
    return doc


def _parse(text: str, doc: YamlDocument) -> Any:
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        # Without an anchor there is no alias, and each value takes at least half a character
        # (an empty key and value of a flow mapping share one ':'): a short file without '&'
        # cannot expand past the limit, and is not walked for it.
        bounded = "&" not in text and 2 * len(text) + 1 <= MAX_VALUES
        if not bounded and _expanded_size(node, {}) > MAX_VALUES:
            raise yaml.YAMLError(
                f"the document expands to more than {MAX_VALUES} values through its aliases"
            )
        doc.lines[()] = node.start_mark.line + 1
        _record_lines(node, (), doc)
        if any(p.fatal for p in doc.problems):
            return None  # a tag that is not plain data: never construct it
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values the document holds once aliases are expanded (memoized: linear time)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = MAX_VALUES + 1  # a node met again while being measured: an alias cycle
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(item, sizes) for item in node.value)
    else:
        size = 1
    sizes[id(node)] = min(size, MAX_VALUES + 1)
    return sizes[id(node)]


def _check_tag(node: yaml.Node, path: KeyPath, doc: YamlDocument) -> None:
    if node.tag in PLAIN_TAGS:
        return
    name = node.tag.removeprefix(_CORE)
    shown = f"!!{name}" if node.tag.startswith(_CORE) else node.tag
    if name == "timestamp":
        message = f"{node.value!r} reads as a YAML timestamp, not as text"
    else:
        message = f"the YAML tag '{shown}' is not plain data"
    hint = _INSTEAD.get(
        name, "remove the tag: catalog files hold text, numbers, booleans, lists and mappings"
    )
    doc.problems.append(YamlProblem(path, node.start_mark.line + 1, message, hint))


def _record_lines(node: yaml.Node, path: KeyPath, doc: YamlDocument) -> None:
    _check_tag(node, path, doc)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = str(key_node.value)
            key_path = (*path, key)
            _check_tag(key_node, key_path, doc)
            line = key_node.start_mark.line + 1
            if key in seen and key != "<<":
                doc.problems.append(
                    YamlProblem(
                        key_path,
                        line,
                        f"duplicate key '{key}'",
                        "YAML keeps only the last one; remove or merge the duplicates",
                        fatal=False,
                    )
                )
            seen.add(key)
            doc.lines.setdefault(key_path, line)
            _record_lines(value_node, key_path, doc)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            doc.lines.setdefault((*path, index), item.start_mark.line + 1)
            _record_lines(item, (*path, index), doc)
