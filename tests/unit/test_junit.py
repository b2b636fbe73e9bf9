"""JUnit XML for GitLab: structure, counts, escaping, determinism, atomic writes, and the shape
of the Jenkins/Ant ``junit-10.xsd`` checked by a small structural validator (no network, no
schema library)."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagefactory.imagetest import junit
from imagefactory.imagetest.junit import junit_text, write_junit
from imagefactory.imagetest.results import CheckResult, ImageReport

DIGEST = "sha256:" + "ab" * 32


def report(ref: str, *results: CheckResult) -> ImageReport:
    return ImageReport(ref, f"registry.example.com/{ref}@{DIGEST}", DIGEST, tuple(results))


API = report(
    "app/api",
    CheckResult("files", "/etc/passwd", True, 0.0125),
    CheckResult("commands", "python", False, 1.5, "exit code 0", "exit code 1"),
    CheckResult("services", "health", False, 0.0, skipped=True, actual="no service ports"),
    CheckResult("metadata", "user", True, 0.0),
)
BASE = report("base/debian12", CheckResult("packages", "curl absent", True, 0.25))


def parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode("utf-8"))


# --------------------------------------------------------------------------- junit-10.xsd shape


@dataclass(frozen=True)
class Shape:
    """One element of junit-10.xsd: its attributes (required ones too) and allowed children."""

    attributes: frozenset[str]
    required: frozenset[str] = frozenset()
    children: frozenset[str] = frozenset()
    text: bool = False
    typed: dict[str, str] = field(default_factory=dict)  # attribute → regex of its type


# The SUREFIRE_TIME type of junit-10.xsd.
SUREFIRE_TIME = r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?"
OUTPUT = frozenset({"system-out", "system-err"})

# Transcribed from jenkinsci/xunit-plugin .../types/model/xsd/junit-10.xsd.
JUNIT_10 = {
    "testsuites": Shape(
        frozenset({"name", "time", "tests", "failures", "errors"}),
        children=frozenset({"testsuite"}),
        typed={"time": SUREFIRE_TIME},
    ),
    "testsuite": Shape(
        frozenset(
            {"name", "tests", "failures", "errors", "group", "time", "skipped", "timestamp"}
            | {"hostname", "id", "package", "file", "log", "url"}
        ),
        required=frozenset({"name", "tests", "failures", "errors"}),
        children=frozenset({"testsuite", "properties", "testcase"}) | OUTPUT,
        typed={"time": SUREFIRE_TIME},
    ),
    "properties": Shape(frozenset(), children=frozenset({"property"})),
    "property": Shape(frozenset({"name", "value"}), required=frozenset({"name", "value"})),
    "testcase": Shape(
        frozenset({"name", "time", "classname", "group"}),
        required=frozenset({"name"}),
        children=frozenset({"skipped", "error", "failure"}) | OUTPUT,
    ),
    "failure": Shape(frozenset({"type", "message"}), text=True),
    "error": Shape(frozenset({"type", "message"}), text=True),
    "skipped": Shape(frozenset({"type", "message"}), text=True),
    "system-out": Shape(frozenset(), text=True),
    "system-err": Shape(frozenset(), text=True),
}


def xsd_problems(element: ET.Element, where: str = "") -> list[str]:
    here = f"{where}/{element.tag}"
    shape = JUNIT_10.get(element.tag)
    if shape is None:
        return [f"{here}: element not in junit-10.xsd"]
    problems = [
        f"{here}: attribute {a!r} not allowed" for a in element.attrib if a not in shape.attributes
    ]
    problems += [f"{here}: attribute {a!r} missing" for a in shape.required - set(element.attrib)]
    for name, pattern in shape.typed.items():
        if name in element.attrib and not re.fullmatch(pattern, element.attrib[name]):
            problems.append(f"{here}: {name}={element.attrib[name]!r} does not match its type")
    if not shape.text and (element.text or "").strip():
        problems.append(f"{here}: text not allowed")
    for child in element:
        if child.tag not in shape.children:
            problems.append(f"{here}: child <{child.tag}> not allowed")
        problems += xsd_problems(child, here)
    return problems


def test_the_validator_catches_bad_shapes() -> None:
    bad = parse(
        '<testsuites skipped="1"><testsuite name="x" tests="1" failures="0">'
        '<testcase time="1.5"><bogus/></testcase></testsuite></testsuites>'
    )
    assert xsd_problems(bad) == [
        "/testsuites: attribute 'skipped' not allowed",
        "/testsuites/testsuite: attribute 'errors' missing",
        "/testsuites/testsuite/testcase: attribute 'name' missing",
        "/testsuites/testsuite/testcase: child <bogus> not allowed",
        "/testsuites/testsuite/testcase/bogus: element not in junit-10.xsd",
    ]
    assert xsd_problems(parse('<testsuites time="1,5x"/>')) == [
        "/testsuites: time='1,5x' does not match its type"
    ]


def test_output_has_the_junit_10_shape() -> None:
    assert xsd_problems(parse(junit_text([API, BASE]))) == []


# --------------------------------------------------------------------------- structure


def test_one_suite_per_image_sorted_by_ref() -> None:
    root = parse(junit_text([BASE, API]))
    assert root.tag == "testsuites"
    assert [s.get("name") for s in root.findall("testsuite")] == ["app/api", "base/debian12"]
    assert root.attrib == {
        "name": "imagefactory",
        "tests": "5",
        "failures": "1",
        "errors": "0",
        "time": "1.762",
    }


def test_suite_attributes_and_properties() -> None:
    suite = parse(junit_text([API])).find("testsuite")
    assert suite is not None
    assert suite.attrib == {
        "name": "app/api",
        "tests": "4",
        "failures": "1",
        "errors": "0",
        "skipped": "1",
        "time": "1.512",
    }
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties == {
        "image.ref": "app/api",
        "image.reference": f"registry.example.com/app/api@{DIGEST}",
        "image.digest": DIGEST,
    }
    assert next(iter(suite)).tag == "properties"


def test_testcases_failures_and_skips() -> None:
    suite = parse(junit_text([API])).find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name"), c.get("time")) for c in cases] == [
        ("app/api.files", "/etc/passwd", "0.013"),
        ("app/api.commands", "python", "1.500"),
        ("app/api.services", "health", "0.000"),
        ("app/api.metadata", "user", "0.000"),
    ]
    passed, failed, skipped, _ = cases
    assert list(passed) == []
    [failure] = list(failed)
    assert failure.tag == "failure"
    assert failure.attrib == {
        "message": "expected exit code 0, got exit code 1",
        "type": "commands",
    }
    assert failure.text is not None
    assert "expected: exit code 0" in failure.text and "actual: exit code 1" in failure.text
    assert f"registry.example.com/app/api@{DIGEST}" in failure.text
    [skip] = list(skipped)
    assert skip.tag == "skipped" and skip.attrib == {"message": "no service ports"}


def test_an_image_whose_container_did_not_start_is_a_counted_failure() -> None:
    """A run that went on past an image whose container did not start: that image's suite holds
    its config checks and the failed container check, and the totals count it (the aborted run
    of issue 14 wrote 8 tests and 0 failures)."""
    why = (
        "the container did not start (exit code 127): exec: /no/such/binary: no such file; "
        "its last output: ''"
    )
    broken = report(
        "app/broken",
        CheckResult("metadata", "user", True),
        CheckResult("container", "starts", False, 0.0, "the container to start", why),
    )
    root = parse(junit_text([API, broken, BASE]))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("7", "2", "0")
    suite = next(s for s in root.iter("testsuite") if s.get("name") == "app/broken")
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    failure = suite.find("testcase[@classname='app/broken.container']/failure")
    assert failure is not None and failure.get("type") == "container"
    assert failure.text is not None and "exit code 127" in failure.text
    assert "check: container / starts" in failure.text


def test_failure_without_expected_uses_the_reason() -> None:
    result = CheckResult("testinfra", "test_x", False, 0.1, "", "AssertionError: boom")
    text = junit_text([report("a", result)])
    failure = parse(text).find(".//failure")
    assert failure is not None
    assert failure.get("message") == "AssertionError: boom"
    assert failure.text is not None and "reason: AssertionError: boom" in failure.text


def test_skip_without_reason_is_a_bare_element() -> None:
    text = junit_text([report("a", CheckResult("services", "s", True, skipped=True))])
    skip = parse(text).find(".//skipped")
    assert skip is not None and skip.attrib == {}
    assert "<skipped />" in text
    suite = parse(text).find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("skipped") == "1"


def test_repeated_names_stay_distinct_for_gitlab() -> None:
    text = junit_text(
        [
            report(
                "a",
                CheckResult("files", "/etc/passwd", True),
                CheckResult("files", "/etc/passwd", False, 0, "mode 0644", "mode 0600"),
                CheckResult("files", "/etc/passwd", True),
                CheckResult("commands", "/etc/passwd", True),
                CheckResult("files", "", True),
            )
        ]
    )
    names = [(c.get("classname"), c.get("name")) for c in parse(text).iter("testcase")]
    assert names == [
        ("a.files", "/etc/passwd"),
        ("a.files", "/etc/passwd [2]"),
        ("a.files", "/etc/passwd [3]"),
        ("a.commands", "/etc/passwd"),
        ("a.files", "files"),
    ]
    assert len(set(names)) == len(names)


def test_no_reports_is_an_empty_document() -> None:
    root = parse(junit_text([]))
    assert root.attrib["tests"] == "0" and list(root) == []
    assert xsd_problems(root) == []


def test_an_image_without_checks_still_has_a_suite() -> None:
    suite = parse(junit_text([report("empty")])).find("testsuite")
    assert suite is not None and suite.get("tests") == "0"
    assert [c.tag for c in suite] == ["properties"]


# --------------------------------------------------------------------------- escaping


def test_markup_characters_are_escaped_and_round_trip() -> None:
    nasty = "a <b> & \"c\" 'd' ]]> e"
    result = CheckResult("commands", nasty, False, 0, f"output matching /{nasty}/", nasty)
    text = junit_text([report("app/x", result)])
    assert "]]>" not in text.replace("]]&gt;", "")
    case = parse(text).find(".//testcase")
    assert case is not None and case.get("name") == nasty
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == f"expected output matching /{nasty}/, got {nasty}"
    assert failure.text is not None and nasty in failure.text


def test_control_characters_become_visible_escapes() -> None:
    actual = "colour \x1b[31mred\x1b[0m, nul \x00, bell \x07, tab\tand\nnewline, \ufffe"
    result = CheckResult("commands", "ctl\x01name", False, 0, "", actual)
    text = junit_text([report("app/x", result)])
    root = parse(text)  # would raise on a raw control character
    case = root.find(".//testcase")
    assert case is not None and case.get("name") == "ctl\\x01name"
    failure = case.find("failure")
    assert failure is not None
    message = failure.get("message")
    assert message == (
        "colour \\x1b[31mred\\x1b[0m, nul \\x00, bell \\x07, tab\tand\nnewline, \\ufffe"
    )
    assert failure.text is not None and "\\x1b[31mred" in failure.text


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(max_size=40),
    expected=st.text(max_size=40),
    actual=st.text(max_size=40),
    ref=st.text(min_size=1, max_size=20),
)
def test_any_text_gives_well_formed_xml(name: str, expected: str, actual: str, ref: str) -> None:
    result = CheckResult("commands", name, False, 0.5, expected, actual)
    root = parse(junit_text([report(ref, result)]))
    assert xsd_problems(root) == []
    assert root.get("failures") == "1"


def test_long_messages_are_cut_but_the_body_keeps_everything() -> None:
    actual = "x" * 5000
    text = junit_text([report("a", CheckResult("files", "f", False, 0, "y", actual))])
    failure = parse(text).find(".//failure")
    assert failure is not None
    message = failure.get("message")
    assert message is not None and len(message) == junit.MESSAGE_LIMIT
    assert message.endswith("(truncated)")
    assert failure.text is not None and actual in failure.text


@pytest.mark.parametrize(
    ("seconds", "shown"), [(-1.0, "0.000"), (float("nan"), "0.000"), (2.0, "2.000")]
)
def test_times_are_never_negative_or_nan(seconds: float, shown: str) -> None:
    case = parse(junit_text([report("a", CheckResult("files", "f", True, seconds))])).find(
        ".//testcase"
    )
    assert case is not None and case.get("time") == shown


# --------------------------------------------------------------------------- determinism, files


def test_output_is_deterministic_and_independent_of_report_order() -> None:
    first = junit_text([API, BASE])
    assert junit_text([API, BASE]) == first
    assert junit_text([BASE, API]) == first
    assert first.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')
    assert first.endswith("</testsuites>\n")


def test_write_junit_writes_the_text(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "junit.xml"
    write_junit([API, BASE], path)
    assert path.read_text(encoding="utf-8") == junit_text([API, BASE])
    assert sorted(p.name for p in path.parent.iterdir()) == ["junit.xml"]


def test_write_junit_replaces_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "junit.xml"
    write_junit([BASE], path)
    before = path.read_text()

    def broken_replace(*args: object, **kwargs: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)  # the rename that puts the file in place
    with pytest.raises(OSError, match="disk gone"):
        write_junit([API, BASE], path)
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml"]  # no temp file left


def test_written_file_is_utf8(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit([report("app/ünïcode", CheckResult("files", "café ☕", True))], path)
    assert parse(path.read_bytes().decode("utf-8")).find(".//testcase") is not None
    assert "café ☕".encode() in path.read_bytes()
