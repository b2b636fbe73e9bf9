"""Property tests: whatever the catalog files hold, loading gives a Catalog or a SpecError.

Random YAML documents, random byte-level damage to the example files and random structural
mutations of the example specs are written into a copy of the example catalog, which is then
loaded. Only ``SpecError`` may escape, and each of its issues must name a file and say something.
A catalog that does load must also hash, plan and draw. Content hashes must not depend on where
the catalog lives or on how its YAML is formatted.

Inputs that once crashed the loader (control characters, scalars PyYAML cannot construct,
over-long path components, alias bombs) are in the generators and have tests of their own below.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import re
import tempfile
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from imagefactory.errors import SpecError
from imagefactory.project.hashing import content_inputs
from imagefactory.project.plan import make_plan
from imagefactory.project.state import State
from imagefactory.render.formats import FORMATS
from imagefactory.render.graph import render_graph
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.loader import IMAGE_FILE, PROJECT_FILE, load_catalog
from imagefactory.spec.lock import LOCK_FILE
from imagefactory.spec.models import IDENTIFIER_PATTERN, ImageDocument, ProjectSpec
from imagefactory.spec.yamldoc import read_yaml

from .conftest import REPO, copy_example_catalog

BASE = "images/base/debian12/image.yaml"
RUNTIME = "images/runtime/llm/image.yaml"
APP = "images/app/rag-api/image.yaml"
NEW_IMAGE = "images/extra/new/image.yaml"  # a file that is not in the example
IMAGE_FILES = [BASE, RUNTIME, APP]
EXAMPLE_TEXT = {rel: (REPO / rel).read_bytes() for rel in [PROJECT_FILE, *IMAGE_FILES]}
EXAMPLE_DATA = {rel: yaml.safe_load(text) for rel, text in EXAMPLE_TEXT.items()}
REFS = [
    "app/rag-api",
    "app/rag-api-distroless",
    "base/debian12",
    "runtime/llm:cpu",
    "runtime/llm:cuda",
    "tools/ci",
]
HEX = "0123456789abcdef" * 4

# Sized so the whole file runs in about 15 s on two cores; IMAGEFACTORY_PROPERTY_SCALE=10 (say)
# multiplies every budget for a longer bug hunt.
SCALE = float(os.environ.get("IMAGEFACTORY_PROPERTY_SCALE", "1"))


def budget(examples: int) -> settings:
    return settings(
        max_examples=max(1, round(examples * SCALE)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _model_keys() -> list[str]:
    """Every key the schema knows, at any depth: near-misses of these are the likely typos."""
    keys: set[str] = set()
    seen: set[type] = set()

    def visit(annotation: Any) -> None:
        for argument in typing.get_args(annotation):
            visit(argument)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation in seen:
                return
            seen.add(annotation)
            for name, field in annotation.model_fields.items():
                keys.add(field.alias or name)
                visit(field.annotation)

    visit(ProjectSpec)
    visit(ImageDocument)
    return sorted(keys)


MODEL_KEYS = _model_keys()

# '/' stays out of random text so a random catalog folder never climbs out of the temporary
# directory ('../..'); the path-like strings below are chosen instead.
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/"), max_size=24)
ODD_STRINGS = [
    "",
    " ",
    "~",
    "null",
    "yes",
    "off",
    "True",
    "1.0",
    "1e3",
    "0644",
    "0o644",
    "0x1F",
    ".inf",
    ".nan",
    "-",
    ":",
    "- a",
    "a: b",
    "{",
    "]",
    "&a",
    "*a",
    "!!str",
    "%",
    "@",
    "`",
    "#",
    "'",
    '"',
    "\\",
    "\t",
    "multi\nline",
    "ünïcødé",
    "日本語",
    "🐳",
    "\u00a0",
    "\ufeff",
    "\x00",
    "\x1b[31m",
    "[/x]",
    "a" * 200,
    "x" * 300,
    ".",
    "..",
    "../etc/passwd",
    "/etc/passwd",
    "/etc",
    "app",
    "app/rag_api",
    "images",
    "sha256:" + HEX,
    "x@sha256:" + HEX,
    "registry.example.com/x:1",
    "localhost/x",
    "fastapi==0.115.12",
    "fastapi===",
    "0.0.0",
    "1.0.0-rc.1+build.5",
    "8080/tcp",
    "30s",
    "API_TOKEN",
    "2024-01-31",
    *REFS,
    "runtime/llm",
]
STRINGS = st.one_of(TEXT, st.sampled_from(ODD_STRINGS))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=0, max_value=70000),
    st.floats(),
    STRINGS,
    st.dates(),
    st.binary(max_size=6),
)
KEYS = st.one_of(
    st.sampled_from(MODEL_KEYS),
    TEXT,
    st.sampled_from(["<<", "? a", "- x", "a:b", "[k]", "f(x)", "a.b", "", " "]),
    st.integers(min_value=-2, max_value=3),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=16,
)


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = {"tests": value} if level % 2 else [value]
    return value


DEEP = st.integers(min_value=1, max_value=120).map(_nested)
NEAR_VALID = st.tuples(
    st.sampled_from([PROJECT_FILE, *IMAGE_FILES]), st.dictionaries(KEYS, VALUES, max_size=3)
).map(lambda pair: {**EXAMPLE_DATA[pair[0]], **pair[1]})
DOCUMENTS = st.one_of(
    VALUES,
    st.dictionaries(KEYS, VALUES, max_size=8),
    st.dictionaries(st.sampled_from(MODEL_KEYS), VALUES, max_size=8),
    DEEP,
    st.dictionaries(st.sampled_from(MODEL_KEYS), DEEP, max_size=2),
    NEAR_VALID,
)


# --------------------------------------------------------------------------- the property


@contextlib.contextmanager
def example_copy() -> Iterator[Path]:
    """A fresh copy of the example catalog, two folders deep inside a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="imagefactory-property-") as tmp:
        root = Path(tmp) / "outer" / "catalog"
        root.mkdir(parents=True)
        yield copy_example_catalog(root)


def _line_count(path: Path) -> int:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return 10**9
    return len(re.findall("\n|\x85|\u2028|\u2029", text)) + 1


def load_checked(root: Path) -> Catalog | None:
    """Load ``root``: a Catalog that hashes, plans and draws, or a SpecError that says where."""
    try:
        catalog = load_catalog(root)
    except SpecError as exc:
        assert exc.issues, "a SpecError carries at least one issue"
        for issue in exc.issues:
            assert isinstance(issue.file, Path), issue
            # an image.lock too: a damaged image.yaml can drop a variant its lock still names
            assert issue.file.name in (PROJECT_FILE, IMAGE_FILE, LOCK_FILE), issue
            assert issue.file.is_relative_to(root), issue
            assert isinstance(issue.message, str) and issue.message.strip(), issue
            assert isinstance(issue.key_path, str) and not issue.key_path.startswith("."), issue
            if issue.line is not None:
                assert 1 <= issue.line <= _line_count(issue.file) + 1, issue
            assert issue.render().startswith(str(issue.file))
        assert str(exc).startswith(f"the catalog has {len(exc.issues)} error")
        return None
    assert catalog.images, "a valid catalog has images"
    for ref, image in catalog.images.items():
        assert image.ref == ref
        assert image.file.is_relative_to(root)
    inputs = content_inputs(catalog)
    assert sorted(inputs) == sorted(catalog.images)
    plan = make_plan(catalog, State())
    assert [e.ref for e in plan] == list(inputs)
    for fmt in FORMATS:
        assert render_graph(catalog, fmt).strip()
    return catalog


# --------------------------------------------------------------------------- (a) random YAML


def _dump(document: Any, flow: bool | None, unicode: bool) -> bytes:
    return yaml.safe_dump(
        document, default_flow_style=flow, allow_unicode=unicode, sort_keys=False
    ).encode("utf-8")


@budget(80)
@given(
    document=DOCUMENTS,
    target=st.sampled_from([*IMAGE_FILES, NEW_IMAGE]),
    flow=st.sampled_from([None, False, True]),
    unicode=st.booleans(),
)
def test_any_yaml_as_an_image_file(
    document: Any, target: str, flow: bool | None, unicode: bool
) -> None:
    with example_copy() as root:
        path = root / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_dump(document, flow, unicode))
        load_checked(root)


@budget(60)
@given(document=DOCUMENTS, flow=st.sampled_from([None, False, True]), unicode=st.booleans())
def test_any_yaml_as_the_project_file(document: Any, flow: bool | None, unicode: bool) -> None:
    with example_copy() as root:
        (root / PROJECT_FILE).write_bytes(_dump(document, flow, unicode))
        load_checked(root)


TOKENS = [
    b":",
    b": ",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"&a ",
    b"*a",
    b"*b ",
    b"&a [*a]",
    b"&a {x: *a}",
    b"\t",
    b"!!python/object:os.system ",
    b"!!python/name:os.system ",
    b"!!python/object/apply:os.system [id]",
    b"!!binary ",
    b"\x00",
    b"\x07",
    b"\x7f",
    b"2024-13-01",
    b"!!int abc",
    b"!!bool maybe",
    b"!!timestamp abc",
    b"!!set ",
    b"!!str ",
    b"!!map ",
    b"!!seq ",
    b"!!omap ",
    b"!!null ",
    b"!custom ",
    b"? ",
    b"- ",
    b"|",
    b">",
    b'"',
    b"'",
    b"%YAML 1.1\n",
    b"%TAG ! tag:x,2000:\n",
    b"---\n",
    b"...\n",
    b"\n",
    b" ",
    b"<<: *a\n",
    b"<<: ",
    b"#",
    b"@",
    b"`",
    b"\\",
    b"\xff",
    b"\xc3",
    b"\xef\xbb\xbf",
    b"\r\n",
    b"\r",
    "\u2028".encode(),
    "\x85".encode(),
    b"~",
    b"null",
    b"1.0",
    b"name: x\n",
    b"from: base/debian12\n",
    b"version: 1.0.0\n",
    b"packages: [a]\n",
    b"- src: .\n  dest: /x\n",
]
FRACTION = st.floats(min_value=0, max_value=1)
RAW_MUTATIONS = st.one_of(
    st.tuples(st.just("truncate"), FRACTION),
    st.tuples(st.just("insert"), FRACTION, st.sampled_from(TOKENS)),
    st.tuples(st.just("duplicate-line"), FRACTION),
    st.tuples(st.just("delete-line"), FRACTION),
    st.tuples(st.just("swap-lines"), FRACTION, FRACTION),
    st.tuples(st.just("indent-line"), FRACTION, st.sampled_from([b" ", b"  ", b"\t", b"- "])),
)


def _at(fraction: float, length: int) -> int:
    return min(int(fraction * length), max(length - 1, 0))


def apply_raw(text: bytes, mutation: tuple[Any, ...]) -> bytes:
    kind = mutation[0]
    if kind == "truncate":
        return text[: _at(mutation[1], len(text) + 1)]
    if kind == "insert":
        at = _at(mutation[1], len(text) + 1)
        return text[:at] + mutation[2] + text[at:]
    lines = text.splitlines(keepends=True) or [b""]
    at = _at(mutation[1], len(lines))
    if kind == "duplicate-line":
        lines.insert(at, lines[at])
    elif kind == "delete-line":
        del lines[at]
    elif kind == "swap-lines":
        other = _at(mutation[2], len(lines))
        lines[at], lines[other] = lines[other], lines[at]
    elif kind == "indent-line":
        lines[at] = mutation[2] + lines[at]
    return b"".join(lines)


@budget(150)
@given(
    target=st.sampled_from([PROJECT_FILE, *IMAGE_FILES]),
    mutations=st.lists(RAW_MUTATIONS, min_size=1, max_size=5),
)
@example(  # the cuda variant cut off: its entry in image.lock is then the issue
    target="images/runtime/llm/image.yaml",
    mutations=[("truncate", 0.71875), ("duplicate-line", 0.0), ("truncate", 0.625)],
)
def test_damaged_example_files(target: str, mutations: list[tuple[Any, ...]]) -> None:
    text = EXAMPLE_TEXT[target]
    for mutation in mutations:
        text = apply_raw(text, mutation)
    with example_copy() as root:
        (root / target).write_bytes(text)
        load_checked(root)


@budget(10)
@given(
    depth=st.integers(min_value=50, max_value=3000),
    opener=st.sampled_from([("[", "]"), ("{a: ", "}"), ("- ", "")]),
)
def test_deeply_nested_text(depth: int, opener: tuple[str, str]) -> None:
    start, end = opener
    if start == "- ":  # block sequences nest by indentation
        body = "".join("    " + "  " * i + "-\n" for i in range(depth)) + "  " * depth + "    x\n"
    else:
        body = "    " + start * depth + "x" + end * depth + "\n"
    with example_copy() as root:
        (root / APP).write_text(f"name: app/rag-api\nversion: 0.3.0\ntests:\n  files:\n{body}")
        load_checked(root)


# --------------------------------------------------------------------------- (b) mutated specs


Path_ = tuple[str | int, ...]


def _paths(data: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every key and list index in ``data``, depth first."""
    if isinstance(data, dict):
        items: Any = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return []
    found: list[Path_] = []
    for key, value in items:
        found.append((*prefix, key))
        found += _paths(value, (*prefix, key))
    return found


def _get(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


def _near_miss(data: st.DataObject, word: str) -> str:
    """A plausible typo of ``word``."""
    if not word:
        return "x"
    i = data.draw(st.integers(min_value=0, max_value=len(word) - 1), label="at")
    edits = [
        word[:i] + word[i + 1 :],  # a letter dropped
        word[:i] + word[i] * 2 + word[i + 1 :],  # a letter doubled
        word[:i] + word[i + 1 : i + 2] + word[i : i + 1] + word[i + 2 :],  # two swapped
        word.upper(),
        word + "s",
        word.replace("_", "-"),
        word.replace("-", "_"),
        word.title(),
        " " + word,
        word + ":",
    ]
    return data.draw(st.sampled_from(edits), label="typo")


IDENTIFIERS = st.one_of(
    st.sampled_from(["cpu", "cuda", "gpu", "x", "x-y", "y-z", "z", "a.b", "CPU", "", "c p u"]),
    st.from_regex(IDENTIFIER_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 64),
    TEXT,
)
FROM_VALUES = st.one_of(
    st.sampled_from(
        [
            *REFS,
            "runtime/llm",
            "runtime/llm:gpu",
            "runtime/llm:",
            "base/debian12:cpu",
            "base/debian",
            "app/rag-api",  # a cycle when set on the app itself
            ":",
            "@",
            "@sha256:" + HEX,
            "docker.io/library/debian:12",
            "docker.io/library/debian@sha256:" + HEX,
            "docker.io/library/debian@sha256:" + HEX.upper(),
            "localhost/x@md5:1234",
            "localhost:5000/x",
            "debian@sha256:" + HEX,
            "a@b@c",
        ]
    ),
    TEXT,
    st.sampled_from(REFS).map(lambda r: r.replace("/", "//")),
)
VERSIONS = st.one_of(
    st.sampled_from(["1.0.0", "1.0", "1", "v1.0.0", "1.0.0-rc.1", "01.0.0", "1.0.0+x", ""]),
    st.integers(),
    st.floats(),
    TEXT,
)
MUTATION_KINDS = [
    "delete",
    "rename-key",
    "retype",
    "inject-key",
    "from",
    "variants",
    "name",
    "version",
]


def _other_type(old: Any) -> st.SearchStrategy[Any]:
    return VALUES.filter(lambda new: type(new) is not type(old))


def mutate(data: st.DataObject, doc: dict[Any, Any], project: bool) -> None:
    kind = data.draw(
        st.sampled_from(MUTATION_KINDS[:4] if project else MUTATION_KINDS), label="kind"
    )
    paths = _paths(doc)
    if kind in ("delete", "rename-key", "retype") and paths:
        path = data.draw(st.sampled_from(paths), label="path")
        container, key = _get(doc, path[:-1]), path[-1]
        if kind == "delete":
            del container[key]
        elif kind == "retype":
            container[key] = data.draw(_other_type(container[key]), label="value")
        elif isinstance(container, dict):
            container[_near_miss(data, str(key))] = container.pop(key)
    elif kind == "inject-key":
        mappings = [()] + [p for p in paths if isinstance(_get(doc, p), dict)]
        target = _get(doc, data.draw(st.sampled_from(mappings), label="where"))
        key = data.draw(
            st.one_of(st.sampled_from(MODEL_KEYS).map(lambda k: k + "_x"), KEYS), label="key"
        )
        target[key] = data.draw(VALUES, label="value")
    elif kind == "from":
        variants = doc.get("variants")  # an earlier mutation may have retyped it
        overlays = [doc] + [
            overlay
            for values in (variants.values() if isinstance(variants, dict) else [])
            if isinstance(values, dict)
            for overlay in values.values()
            if isinstance(overlay, dict)
        ]
        overlay = data.draw(st.sampled_from(overlays), label="overlay")
        if data.draw(st.booleans(), label="drop"):
            overlay.pop("from", None)
        else:
            overlay["from"] = data.draw(FROM_VALUES, label="from")
        if data.draw(st.booleans(), label="drop-bootstrap"):
            doc.pop("bootstrap", None)
    elif kind == "variants":
        mutate_variants(data, doc)
    elif kind == "name":
        doc["name"] = data.draw(
            st.one_of(
                st.sampled_from(
                    ["base/debian12", "runtime/llm", "app/rag-api", "a", "A/b", "a//b"]
                ),
                st.sampled_from(["base/debian12", "runtime/llm"]).map(lambda n: n + "x"),
                TEXT,
            ),
            label="name",
        )
    elif kind == "version":
        doc["version"] = data.draw(VERSIONS, label="version")


def mutate_variants(data: st.DataObject, doc: dict[Any, Any]) -> None:
    variants = doc.get("variants")
    if not isinstance(variants, dict) or not variants:
        axis = data.draw(IDENTIFIERS, label="new-axis")
        values = data.draw(st.lists(IDENTIFIERS, min_size=0, max_size=3), label="new-values")
        doc["variants"] = {axis: {value: {} for value in values}}
        return
    axis = data.draw(st.sampled_from(sorted(variants, key=str)), label="axis")
    values = variants[axis]
    action = data.draw(
        st.sampled_from(["rename-axis", "rename-value", "add-value", "empty", "overlay", "axis"]),
        label="action",
    )
    if action == "rename-axis":
        variants[data.draw(IDENTIFIERS, label="to")] = variants.pop(axis)
    elif action == "empty":
        variants[axis] = data.draw(st.sampled_from([{}, None, [], "cpu"]), label="empty")
    elif action == "axis":
        variants[data.draw(IDENTIFIERS, label="axis-name")] = {
            value: {} for value in data.draw(st.lists(IDENTIFIERS, max_size=3), label="values")
        }
    elif isinstance(values, dict) and values:
        value = data.draw(st.sampled_from(sorted(values, key=str)), label="value")
        if action == "rename-value":
            values[data.draw(IDENTIFIERS, label="to")] = values.pop(value)
        elif action == "add-value":
            values[data.draw(IDENTIFIERS, label="new")] = copy.deepcopy(values[value])
        else:
            values[value] = data.draw(
                st.one_of(VALUES, st.sampled_from([{"bootstrap": {}}, {"from": None}])),
                label="overlay",
            )


@budget(180)
@given(
    target=st.sampled_from([PROJECT_FILE, *IMAGE_FILES]),
    count=st.integers(min_value=1, max_value=4),
    data=st.data(),
)
def test_mutated_example_specs(target: str, count: int, data: st.DataObject) -> None:
    document = copy.deepcopy(EXAMPLE_DATA[target])
    for _ in range(count):
        mutate(data, document, project=target == PROJECT_FILE)
    with example_copy() as root:
        (root / target).write_bytes(_dump(document, None, True))
        load_checked(root)


@budget(40)
@given(
    mutations=st.lists(
        st.tuples(st.sampled_from(IMAGE_FILES), st.integers(min_value=1, max_value=3)),
        min_size=2,
        max_size=3,
    ),
    data=st.data(),
)
def test_several_files_mutated_at_once(
    mutations: list[tuple[str, int]], data: st.DataObject
) -> None:
    documents = {rel: copy.deepcopy(EXAMPLE_DATA[rel]) for rel in IMAGE_FILES}
    for target, count in mutations:
        for _ in range(count):
            mutate(data, documents[target], project=False)
    with example_copy() as root:
        for rel, document in documents.items():
            (root / rel).write_bytes(_dump(document, None, True))
        load_checked(root)


# --------------------------------------------------------------------------- content hashes


def _hashes(root: Path) -> dict[str, str]:
    return {ref: inputs.content_hash for ref, inputs in content_inputs(load_catalog(root)).items()}


@functools.cache
def example_hashes() -> dict[str, str]:
    return _hashes(REPO)


def test_example_hashes_are_stable_and_independent_of_location() -> None:
    assert sorted(example_hashes()) == REFS
    assert len(set(example_hashes().values())) == 6
    assert _hashes(REPO) == example_hashes()
    with example_copy() as root:
        assert _hashes(root) == example_hashes()
        assert _hashes(root) == example_hashes()


@budget(30)
@given(
    target=st.sampled_from([PROJECT_FILE, *IMAGE_FILES]),
    flow=st.sampled_from([None, False, True]),
    indent=st.integers(min_value=2, max_value=6),
    data=st.data(),
)
def test_hashes_ignore_formatting_and_key_order(
    target: str, flow: bool | None, indent: int, data: st.DataObject
) -> None:
    """Same data, written differently (key order, style, indent, comments): same hashes."""
    document = EXAMPLE_DATA[target]
    shuffled = dict(data.draw(st.permutations(list(document.items())), label="order"))
    text = yaml.safe_dump(shuffled, default_flow_style=flow, indent=indent, sort_keys=False)
    text = "# reformatted\n" + text + "# the end\n"
    with example_copy() as root:
        (root / target).write_text(text)
        assert _hashes(root) == example_hashes()


@budget(20)
@given(package=st.from_regex(r"[a-z][a-z0-9-]{1,15}", fullmatch=True))  # Debian: 2+ chars
def test_a_base_change_reaches_every_descendant(package: str) -> None:
    document = copy.deepcopy(EXAMPLE_DATA[BASE])
    document["bootstrap"]["packages"].append(package)
    with example_copy() as root:
        (root / BASE).write_text(yaml.safe_dump(document, sort_keys=False))
        changed = _hashes(root)
    assert all(changed[ref] != example_hashes()[ref] for ref in REFS)


# --------------------------------------------------------------------------- regressions


def _replace(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text()
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new, 1))


def _only_spec_errors(root: Path) -> None:
    """What the properties above demand; fails with the escaping exception's own traceback."""
    load_checked(root)


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f"], ids=repr)
def test_control_character_in_a_file(char: str) -> None:
    with example_copy() as root:
        _replace(root, APP, "description: Retrieval", f"description: Retr{char}ieval")
        _only_spec_errors(root)


@pytest.mark.parametrize(
    "value",
    [
        "2024-13-01",  # no tag needed: an impossible date
        "2023-02-30",
        "!!int abc",
        "!!int 0x",
        '!!int ""',
        "!!float abc",
        "!!bool maybe",
        "!!timestamp abc",
    ],
)
def test_scalar_pyyaml_cannot_construct(value: str) -> None:
    with example_copy() as root:
        _replace(root, APP, "version: 0.3.0", f"version: {value}")
        _only_spec_errors(root)


LONG = "x" * 300  # one path component longer than NAME_MAX (255)


@pytest.mark.parametrize(
    ("relative", "old", "new"),
    [
        (APP, "src: app/rag_api", f"src: {LONG}"),
        (APP, "user: app\n", f"playbooks: [{LONG}]\nuser: app\n"),
        (PROJECT_FILE, "catalog: images", f"catalog: {LONG}"),
        (PROJECT_FILE, "ca_bundle: /etc/ssl/certs/ca-certificates.crt", f"ca_bundle: {LONG}"),
    ],
    ids=["files.src", "playbooks", "catalog", "ca_bundle"],
)
def test_overlong_path_component(relative: str, old: str, new: str) -> None:
    with example_copy() as root:
        _replace(root, relative, old, new)
        _only_spec_errors(root)


def test_variant_combinations_never_share_a_ref() -> None:
    """Refs join variant values with '-': values holding '-' could collide (x + y-z, x-y + z)
    and one image would silently replace the other. Found by this suite; fixed by forbidding
    '-' in variant values. Either the loader refuses them, or every combination is an image."""
    with example_copy() as root:
        _replace(
            root,
            RUNTIME,
            "variants:\n",
            "variants:\n  size:\n    x: {}\n    x-y: {}\n  extra:\n    z: {}\n    y-z: {}\n",
        )
        _replace(root, APP, "from: runtime/llm:cpu", "from: runtime/llm:x-y-z-cpu")
        try:
            catalog = load_catalog(root)
        except SpecError as exc:
            assert any(i.key_path.startswith("variants.") for i in exc.issues), exc
            return
        runtime = [ref for ref in catalog.images if ref.startswith("runtime/llm:")]
        assert len(runtime) == 2 * 2 * 2, runtime


def test_nested_aliases_stay_cheap(tmp_path: Path) -> None:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 5)]
    path = tmp_path / "image.yaml"
    path.write_text("\n".join(lines) + "\n")
    doc = read_yaml(path)  # 4 levels: ~100k paths today, 5 levels ~1.2M
    assert len(doc.lines) < 1000 or doc.problems


@pytest.mark.parametrize(
    "text",
    [
        "[" + "a," * 20_001 + "]\n",  # no anchor, but longer than the limit allows unwalked
        "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"  # short, anchored: 10**5 values
        + "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 5)),
    ],
    ids=["long-without-anchor", "anchored"],
)
def test_a_file_past_the_value_limit_is_refused_with_or_without_anchors(
    tmp_path: Path, text: str
) -> None:
    """Only a short file without '&' skips the walk that counts values (it cannot reach the
    limit): a long one, or one with anchors, is counted and refused past MAX_VALUES."""
    path = tmp_path / "image.yaml"
    path.write_text(text)
    doc = read_yaml(path)
    assert doc.data is None
    assert any("expands to more than" in p.message for p in doc.problems)
