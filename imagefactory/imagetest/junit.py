"""Write test reports as JUnit XML, the format GitLab's test report widget reads.

One ``<testsuite>`` per image (named by its ref, with the tested reference and digest as
properties) and one ``<testcase>`` per check::

    <testsuites name="imagefactory" tests="3" failures="1" errors="0" time="1.250">
      <testsuite name="app/api" tests="3" failures="1" errors="0" skipped="1" time="1.250">
        <properties>
          <property name="image.ref" value="app/api" />
          <property name="image.reference" value="registry/app/api@sha256:…" />
          <property name="image.digest" value="sha256:…" />
        </properties>
        <testcase classname="app/api.files" name="/etc/passwd" time="0.010" />
        <testcase classname="app/api.commands" name="python" time="1.240">
          <failure message="expected exit code 0, got 1" type="commands">…</failure>
        </testcase>
        <testcase classname="app/api.services" name="health" time="0.000"><skipped /></testcase>
      </testsuite>
    </testsuites>

GitLab shows ``classname`` as the suite and ``name`` as the test, keys test cases by the pair and
keeps only the first of equal pairs, so a repeated check name gets `` [2]``, `` [3]``… appended.
It shows a failure's body, not its ``message``, so the body repeats everything. The shape also
satisfies the Jenkins/Ant ``junit-10.xsd`` (which is why ``testsuites`` has no ``skipped``).

The output is deterministic: suites are sorted by ref, checks keep the engine's order, no
timestamps or host names. Characters XML 1.0 cannot carry (most control characters) are written
as ``\\xNN`` text; ``<``, ``&`` and quotes are escaped by the serializer.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from imagefactory.atomic import write_atomically
from imagefactory.imagetest.results import CheckResult, ImageReport

#: A failure's ``message`` attribute is cut here; the body always has the full text.
MESSAGE_LIMIT = 1000
_CUT = " … (truncated)"

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def junit_text(reports: Sequence[ImageReport]) -> str:
    """The JUnit XML document for ``reports``, as text."""
    total = sum(len(r.results) for r in reports)
    failures = sum(len(r.failures) for r in reports)
    root = ET.Element(
        "testsuites",
        {
            "name": "imagefactory",
            "tests": str(total),
            "failures": str(failures),
            "errors": "0",
            "time": _seconds(sum(r.seconds for r in reports)),
        },
    )
    for report in sorted(reports, key=lambda r: (r.ref, r.reference, r.digest)):
        _suite(root, report)
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def write_junit(reports: Sequence[ImageReport], path: Path) -> None:
    """Write the report whole or not at all: a temp file in the same folder, fsync, rename."""
    write_atomically(path, junit_text(reports).encode("utf-8"))


def _suite(root: ET.Element, report: ImageReport) -> None:
    results = report.results
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": _clean(report.ref),
            "tests": str(len(results)),
            "failures": str(len(report.failures)),
            "errors": "0",
            "skipped": str(sum(1 for r in results if r.skipped)),
            "time": _seconds(report.seconds),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("image.ref", report.ref),
        ("image.reference", report.reference),
        ("image.digest", report.digest),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": _clean(value)})
    seen: dict[tuple[str, str], int] = {}
    for result in results:
        classname = _clean(f"{report.ref}.{result.kind}")
        name = _clean(result.name or result.kind)
        count = seen.get((classname, name), 0) + 1
        seen[(classname, name)] = count
        if count > 1:
            name = f"{name} [{count}]"
        _case(suite, report, result, classname, name)


def _case(
    suite: ET.Element, report: ImageReport, result: CheckResult, classname: str, name: str
) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        {"classname": classname, "name": name, "time": _seconds(result.seconds)},
    )
    if result.skipped:
        reason = result.actual or result.expected
        ET.SubElement(case, "skipped", {"message": _clean(reason)} if reason else {})
    elif not result.passed:
        message = _clean(result.why or "failed")
        if len(message) > MESSAGE_LIMIT:
            message = message[: MESSAGE_LIMIT - len(_CUT)] + _CUT
        failure = ET.SubElement(case, "failure", {"message": message, "type": _clean(result.kind)})
        failure.text = _details(report, result)


def _details(report: ImageReport, result: CheckResult) -> str:
    lines = [
        f"image: {report.ref} ({report.reference})",
        f"check: {result.kind} / {result.name}",
    ]
    if result.expected:
        lines.append(f"expected: {result.expected}")
    lines.append(f"{'actual' if result.expected else 'reason'}: {result.actual or 'failed'}")
    return _clean("\n".join(lines))


def _clean(text: str) -> str:
    """``text`` with every character XML 1.0 cannot hold written as a visible escape."""
    return _NOT_XML.sub(lambda m: _visible(m.group(0)), text)


def _visible(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _seconds(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) and value > 0 else "0.000"
