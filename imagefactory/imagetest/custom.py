"""Custom tests: ``tests/test_*.py`` in an image folder, run by pytest-testinfra against the
image's test container (the ``host`` fixture is bound to it)."""

from __future__ import annotations

import re
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from imagefactory import tools
from imagefactory.imagetest.container import Container
from imagefactory.imagetest.results import CheckResult
from imagefactory.spec.companions import CUSTOM_TESTS_DIR, custom_test_files


def run_custom_tests(folder: Path, container: Container) -> list[CheckResult]:
    files = custom_test_files(folder)
    if not files:
        return []
    with tempfile.TemporaryDirectory(prefix="imagefactory-pytest-") as scratch:
        ini = Path(scratch) / "pytest.ini"
        ini.write_text("[pytest]\n")  # the image's tests, not the surrounding project's settings
        report = Path(scratch) / "report.xml"
        with container.engine.child_env() as env:  # testinfra runs the engine's `docker`
            result = tools.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-c",
                    ini,
                    "--rootdir",
                    folder / CUSTOM_TESTS_DIR,
                    "-p",
                    "no:cacheprovider",
                    f"--hosts=docker://{container.name}",
                    f"--junitxml={report}",
                    "-q",
                    *files,
                ],
                env=env,
                check=False,
                timeout=1800,
            )
        if not report.exists():
            return [
                CheckResult(
                    "testinfra",
                    "custom tests",
                    False,
                    0.0,
                    "pytest to run the tests",
                    result.output[-600:],
                )
            ]
        return _results(report)


def _results(report: Path) -> list[CheckResult]:
    results = []
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
        name = re.sub(r"\[docker://[^\]]*\]$", "", name)  # the container name changes every run
        seconds = float(case.get("time") or 0)
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        skipped = case.find("skipped")
        if skipped is not None:
            results.append(
                CheckResult(
                    "testinfra",
                    name,
                    True,
                    seconds,
                    actual=skipped.get("message", ""),
                    skipped=True,
                )
            )
        elif problem is not None:
            message = problem.get("message") or problem.text or "failed"
            results.append(CheckResult("testinfra", name, False, seconds, "", message[-600:]))
        else:
            results.append(CheckResult("testinfra", name, True, seconds))
    return results
