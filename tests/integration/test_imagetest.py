"""``imagefactory test`` for real: the images of the session build, run in real containers.

The example catalog is built ONCE per session by ``example_build`` (tests/integration/conftest.py).
Every test here works on a private copy of it; the copies share the built images, the state and
the registry namespace, so nothing is rebuilt (``tests:`` and ``structure-tests/`` are not part
of the content hash).

Two runs are shared by several tests (module-scoped, on one copy, in this order):

* ``passing``: the example catalog as it is, ``test base/debian12 runtime/llm:cpu app/rag-api
  --junit --json``; it must pass and record the passes in state;
* ``kinds``: then, in the same copy, app/rag-api's ``tests:`` hold one passing and one failing
  check of every kind (single-valued metadata fields fail through a structure-test file), and a
  tiny root image ``app/root-probe`` built FROM the base fails non_root and a size budget. One
  ``test app/rag-api app/root-probe --json --junit`` run must exit 1, report every check with
  its expected vs actual, and withdraw the pass the first run recorded for the app's digest.

A catalog of its own, FROM the tiny busybox base (builds in seconds), has one good image and one
whose container cannot start: ``test --all`` tests both (exit 1, the failure in JUnit and JSON),
its custom test cannot read the registry login, and a rebuilt image's new digest is tested
without erasing the pass of the one before.

Containers are found by two labels: ``org.imagefactory.test`` (set by the test run) and
``org.imagefactory.test-session=<session>`` (inherited from the session's images), so that
other test sessions on the same engine do not disturb the leftover checks. Only 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagefactory.project.state import load_state

from .helpers.example import (
    ExampleBuild,
    cli_json,
    copy_built_example,
    edit_text,
    imagefactory,
)
from .helpers.imagetest import (
    checks_of,
    first_json,
    json_documents,
    one_check,
    session_containers,
)
from .helpers.registry import REGISTRY_USER, Registry
from .helpers.services import docker

pytestmark = pytest.mark.integration

EXAMPLE = ("base/debian12", "runtime/llm:cpu", "app/rag-api")
RUN_TIMEOUT = 300  # one `imagefactory test` run: three images, a uvicorn start, service waits
APP_SPEC = Path("images/app/rag-api/image.yaml")
APP_MAIN = Path("images/app/rag-api/app/rag_api/main.py")
CST_BASE = "structure-tests/base.yaml"
CUSTOM_TESTS = (
    "test_api::test_answers_from_the_bundled_policies",
    "test_api::test_search_ranks_the_secrets_policy_first",
    "test_api::test_server_runs_as_the_app_user",
    "test_api::test_only_tmp_is_writable",
)
ENTRYPOINT = ["python", "-m", "uvicorn", "rag_api.main:app", "--host", "0.0.0.0", "--port", "8080"]


# --- helpers ---------------------------------------------------------------------------------


def state_images(root: Path) -> dict[str, dict[str, Any]]:
    images = json.loads((root / ".imagefactory" / "state.json").read_text())["images"]
    assert isinstance(images, dict)
    return images


TEST_FIELDS = ("tests", "test_runs")  # what a test run writes into an image's record


def run_of(record: dict[str, Any], digest: str | None = None) -> dict[str, Any] | None:
    """The recorded test run of ``digest`` (the record's own digest by default), or None."""
    runs = record.get("test_runs") or {}
    found = runs.get(digest or record["digest"])
    assert found is None or isinstance(found, dict)
    return found


def build_fields(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what test runs wrote."""
    return {k: v for k, v in record.items() if k not in TEST_FIELDS}


def remove_containers(lines: list[str]) -> None:
    """Clean up after a failed leftover assertion, so later tests start clean."""
    names = [line.split()[0] for line in lines]
    if names:
        docker("rm", "--force", *names, check=False, timeout=60)


def why(check: dict[str, Any]) -> str:
    """What the CLI table and JUnit say for a failure (``CheckResult.why``)."""
    if check["expected"]:
        return f"expected {check['expected']}, got {check['actual']}"
    return str(check["actual"])


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr


def parse_junit(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites", root.tag
    for suite in root:
        assert suite.tag == "testsuite", suite.tag
        for child in suite:
            assert child.tag in ("properties", "testcase"), child.tag
            for grandchild in child:
                allowed = ("property",) if child.tag == "properties" else ("failure", "skipped")
                assert grandchild.tag in allowed, (child.tag, grandchild.tag)
        for counter in ("tests", "failures", "errors", "skipped"):
            assert suite.get(counter, "").isdigit(), (suite.get("name"), counter)
        assert float(suite.get("time", "x")) >= 0
    for counter in ("tests", "failures", "errors"):
        assert root.get(counter, "").isdigit(), counter
    return root


def suite_by_name(root: ET.Element) -> dict[str, ET.Element]:
    suites = {suite.get("name", ""): suite for suite in root.iter("testsuite")}
    assert len(suites) == len(root.findall("testsuite")), "two testsuites share a name"
    return suites


# --- the passing run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    root: Path
    proc: subprocess.CompletedProcess[str]
    seconds: float
    state_before: dict[str, dict[str, Any]]
    state_after: dict[str, dict[str, Any]]
    junit: Path
    leftovers: list[str]  # test containers of this session right after the run


@pytest.fixture(scope="module")
def shared_copy(example_build: ExampleBuild, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_built_example(example_build, tmp_path_factory.mktemp("imagetest") / "catalog")


@pytest.fixture(scope="module")
def passing(example_build: ExampleBuild, shared_copy: Path) -> Iterator[Run]:
    root = shared_copy
    before = state_images(root)
    junit = root / "report.xml"
    started = time.monotonic()
    proc = imagefactory(
        root,
        "test",
        *EXAMPLE,
        "--junit",
        str(junit),
        "--json",
        env=example_build.env,
        timeout=RUN_TIMEOUT,
    )
    seconds = time.monotonic() - started
    leftovers = session_containers(example_build.session)
    yield Run(root, proc, seconds, before, state_images(root), junit, leftovers)
    remove_containers(leftovers)


def test_example_catalog_passes(passing: Run) -> None:
    proc = passing.proc
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    document = cli_json(proc)
    assert document["ok"] is True
    assert sorted(i["image"] for i in document["images"]) == sorted(EXAMPLE)
    for image in document["images"]:
        assert image["passed"] is True, image["image"]
        failed = [c for c in image["checks"] if not c["passed"] and not c["skipped"]]
        assert failed == [], failed
        assert image["checks"], f"{image['image']}: no checks ran"
    no_traceback(proc)


def test_report_names_the_tested_digest(passing: Run, example_build: ExampleBuild) -> None:
    document = cli_json(passing.proc)
    for image in document["images"]:
        record = example_build.records[image["image"]]
        assert image["reference"] == f"{record['repository']}@{record['digest']}"


def test_report_holds_the_structure_test_file_and_the_custom_tests(passing: Run) -> None:
    document = cli_json(passing.proc)
    base = checks_of(document, "base/debian12")
    from_cst = [c for c in base if c["name"].startswith(f"{CST_BASE}: ")]
    # base.yaml: 3 fileExistenceTests, 2 fileContentTests, 1 commandTest, metadata env + workdir
    assert len(from_cst) == 8, [c["name"] for c in base]
    assert sorted({c["kind"] for c in from_cst}) == ["commands", "files", "metadata"]
    for name, kind in (
        ("timezone data", "commands"),
        ("env LANG", "metadata"),
        ("workdir", "metadata"),
        ("debian 12", "files"),
        ("no package manager caches", "files"),
    ):
        assert one_check(base, kind, f"{CST_BASE}: {name}")["passed"] is True
    # the image.yaml checks are there too, without a prefix
    assert one_check(base, "users", "app")["passed"] is True
    app = checks_of(document, "app/rag-api")
    custom = [c["name"] for c in app if c["kind"] == "testinfra"]
    assert custom == list(CUSTOM_TESTS)
    assert all(c["passed"] for c in app if c["kind"] == "testinfra")
    assert one_check(app, "services", "health endpoint answers")["passed"] is True
    runtime = checks_of(document, "runtime/llm:cpu")
    assert one_check(runtime, "commands", "inference libraries import")["passed"] is True
    assert [c for c in runtime if c["kind"] == "testinfra"] == []


def test_a_pass_is_recorded_against_the_built_digest(
    passing: Run, example_build: ExampleBuild
) -> None:
    document = cli_json(passing.proc)
    counts = {i["image"]: len(i["checks"]) for i in document["images"]}
    for ref in EXAMPLE:
        before = passing.state_before[ref]
        assert run_of(before) is None and "tests" not in before, f"{ref}: a run before any"
        record = passing.state_after[ref]
        built = example_build.records[ref]
        assert record["digest"] == built["digest"], f"{ref}: the test run changed the digest"
        assert record["content_hash"] == built["content_hash"]
        assert "tests" not in record, "runs are recorded per digest, in test_runs"
        tests = run_of(record)
        assert tests is not None, ref
        assert tests["digest"] == built["digest"], ref
        assert tests["passed"] is True, ref
        assert tests["checks"] == counts[ref], ref
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", tests["at"]), tests["at"]
        assert build_fields(record) == build_fields(built), f"{ref}: the run changed more"


def test_junit_has_one_testsuite_per_image_in_gitlab_shape(passing: Run) -> None:
    document = cli_json(passing.proc)
    root = parse_junit(passing.junit)
    suites = suite_by_name(root)
    assert sorted(suites) == sorted(EXAMPLE)
    total = 0
    for image in document["images"]:
        ref, checks = image["image"], image["checks"]
        suite = suites[ref]
        cases = suite.findall("testcase")
        assert suite.get("tests") == str(len(checks)) == str(len(cases)), ref
        assert suite.get("failures") == "0" and suite.get("errors") == "0", ref
        assert suite.get("skipped") == str(sum(c["skipped"] for c in checks)), ref
        assert suite.findall("testcase/failure") == [], ref
        properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert properties["image.ref"] == ref
        assert properties["image.reference"] == image["reference"]
        assert properties["image.digest"] == image["reference"].rsplit("@", 1)[1]
        for case, check in zip(cases, checks, strict=True):
            assert case.get("classname") == f"{ref}.{check['kind']}"
            assert case.get("name", "").startswith(check["name"]), (case.get("name"), check)
            assert float(case.get("time", "x")) >= 0
        total += len(checks)
    assert root.get("tests") == str(total)
    assert root.get("failures") == "0"
    # GitLab keys cases by (classname, name): every pair is unique
    pairs = [(c.get("classname"), c.get("name")) for c in root.iter("testcase")]
    assert len(pairs) == len(set(pairs))
    custom = [c.get("name") for c in suites["app/rag-api"].iter("testcase")]
    assert set(CUSTOM_TESTS) <= set(custom)
    assert any(n.startswith(f"{CST_BASE}: ") for n in (c.get("name") or "" for c in root.iter()))


def test_no_container_is_left_after_a_passing_run(passing: Run) -> None:
    assert passing.proc.returncode == 0
    assert passing.leftovers == []


def test_structure_test_file_checks_keep_their_names(passing: Run) -> None:
    base = checks_of(cli_json(passing.proc), "base/debian12")
    names = {c["name"] for c in base}
    for cst_name in ("passwd", "trusted CA bundle", "no package manager caches", "app user"):
        assert any(n.startswith(f"{CST_BASE}: ") and cst_name in n for n in names), (
            cst_name,
            sorted(names),
        )


# --- one passing and one failing check of every kind ----------------------------------------

APP_TESTS: dict[str, Any] = {
    "packages": {"installed": ["python3", "curl"], "absent": ["openssh-server", "tzdata"]},
    "pip": {"installed": ["fastapi", "uvicorn", "flask"], "absent": ["django", "starlette"]},
    "files": [
        {"path": "/opt/rag-api/rag_api/main.py", "owner": "root", "mode": "0644"},
        {
            "path": "/opt/rag-api/rag_api/retrieval.py",
            "type": "file",
            "mode": "0644",
            "owner": "root",
            "group": "root",
            "contains": r"def load_index\(",
            "executable": False,
        },
        {
            "path": "/opt/rag-api/rag_api/corpus.json",
            "type": "directory",
            "mode": "0600",
            "owner": "app",
            "group": "app",
            "contains": "NO SUCH TEXT",
            "executable": True,
        },
        {"path": "/usr/bin/dash", "type": "file", "executable": True},
        {"path": "/opt/rag-api", "type": "directory", "owner": "root", "group": "0"},
        {"path": "/etc/ssh", "exists": False},
        {"path": "/etc/passwd", "exists": False},
        {"path": "/etc/no-such-file"},
    ],
    "users": [
        {
            "name": "app",
            "uid": 10001,
            "gid": 10001,
            "home": "/home/app",
            "shell": "/usr/sbin/nologin",
        },
        {"name": "root", "uid": 1, "gid": 2, "home": "/home/root", "shell": "/bin/sh"},
        {"name": "ghost"},
    ],
    "commands": [
        {
            "name": "stdout and stderr kept apart",
            "run": ["sh", "-c", "echo to-out; echo to-err >&2; exit 3"],
            "exit_code": 3,
            "stdout": r"\Ato-out\Z",
            "stderr": r"\Ato-err\Z",
        },
        {"name": "runs as the image user", "run": ["id", "-u"], "stdout": r"\A10001\Z"},
        {"name": "sees the image env", "run": ["printenv", "RAG_API_PORT"], "stdout": r"\A8080\Z"},
        {"name": "wrong exit code", "run": ["sh", "-c", "exit 4"]},
        {
            "name": "wrong stdout",
            "run": ["sh", "-c", "echo to-out; echo to-err >&2"],
            "stdout": "to-err",
        },
        {
            "name": "wrong stderr",
            "run": ["sh", "-c", "echo to-out; echo to-err >&2"],
            "stderr": "to-out",
        },
        {"name": "too slow", "run": ["sleep", "30"], "timeout": "2s"},
    ],
    "metadata": {
        "env": {"RAG_API_PORT": "8080", "PYTHONPATH": "/wrong", "NOT_SET": "x"},
        "labels": {
            "com.example-bank.image.tier": "app",
            "org.opencontainers.image.version": r"0\.3\.\d+",
            "org.opencontainers.image.title": "rag",  # full match: 'app/rag-api' does not
            "org.example.no-such-label": ".*",
        },
        "entrypoint": ENTRYPOINT,
        "cmd": [],
        "workdir": "/opt/rag-api",
        "user": "10001:10001",
        "exposed_ports": ["8080/tcp", "9090"],
        "unexposed_ports": ["22/tcp", "8080"],
    },
    "services": [
        {
            "name": "health endpoint answers",
            "port": 8080,
            "http": {"path": "/healthz", "status": 200},
            "timeout": "60s",
        },
        {
            "name": "unknown path is a 404",
            "port": 8080,
            "http": {"path": "/no-such-path", "status": 404},
            "timeout": "10s",
        },
        {"name": "8080 listens", "port": 8080, "timeout": "10s"},
        {
            "name": "wrong HTTP status",
            "port": 8080,
            "http": {"path": "/healthz", "status": 503},
            "timeout": "2s",
        },
        {
            "name": "nobody answers HTTP on 9999",
            "port": 9999,
            "http": {"path": "/", "status": 200},
            "timeout": "3s",
        },
        {"name": "nobody listens on 9998", "port": 9998, "timeout": "3s"},
    ],
    "size": {"max_mb": 1000, "max_growth_percent": 10},
    "non_root": True,
}

# Metadata fields that hold one value fail through a structure-test file of the same image.
KINDS_CST = {
    "schemaVersion": "2.0.0",
    "metadataTest": {
        "entrypoint": ["python", "app.py"],
        "cmd": ["--reload"],
        "workdir": "/srv",
        "user": "root",
    },
}
CST_KINDS = "structure-tests/kinds.yaml"

ROOT_PROBE = {
    "name": "app/root-probe",
    "version": "0.1.0",
    "description": "A root image FROM the base: fails non_root and a size budget.",
    "from": "base/debian12",
    "user": "root",
    "tests": {"non_root": True, "size": {"max_mb": 1}},
}

Pattern = re.Pattern[str]
# (kind, name, passed, expected, actual): actual is the exact text, or a pattern it must match
APP_EXPECTED: list[tuple[str, str, bool, str, str | Pattern]] = [
    ("packages", "python3 installed", True, "installed", "installed"),
    ("packages", "curl installed", False, "installed", "not installed"),
    ("packages", "openssh-server absent", True, "absent", "not installed"),
    ("packages", "tzdata absent", False, "absent", "installed"),
    ("pip", "fastapi installed", True, "installed in /opt/venv", "installed in /opt/venv"),
    ("pip", "uvicorn installed", True, "installed in /opt/venv", "installed in /opt/venv"),
    ("pip", "flask installed", False, "installed in /opt/venv", "not installed in /opt/venv"),
    ("pip", "django absent", True, "absent in /opt/venv", "not installed in /opt/venv"),
    ("pip", "starlette absent", False, "absent in /opt/venv", "installed in /opt/venv"),
    ("files", "/opt/rag-api/rag_api/main.py", True, "", ""),
    ("files", "/opt/rag-api/rag_api/retrieval.py", True, "", ""),
    (
        "files",
        "/opt/rag-api/rag_api/corpus.json",
        False,
        "a directory; mode 0600; owner app; group app; executable; content matching /NO SUCH TEXT/",
        "a file; mode 0644; owner root; group root; mode 0644; no match",
    ),
    ("files", "/usr/bin/dash", True, "", ""),
    ("files", "/opt/rag-api", True, "", ""),
    ("files", "/etc/ssh", True, "absent", "absent"),
    ("files", "/etc/passwd", False, "absent", "exists"),
    ("files", "/etc/no-such-file", False, "exists", "missing"),
    ("users", "app", True, "", ""),
    (
        "users",
        "root",
        False,
        "uid 1; gid 2; home /home/root; shell /bin/sh",
        "uid 0; gid 0; home /root; shell /bin/bash",
    ),
    ("users", "ghost", False, "user ghost", "no such user"),
    ("commands", "stdout and stderr kept apart", True, "", ""),
    ("commands", "runs as the image user", True, "", ""),
    ("commands", "sees the image env", True, "", ""),
    ("commands", "wrong exit code", False, "exit code 0", "exit code 4"),
    ("commands", "wrong stdout", False, "stdout matching /to-err/", "stdout 'to-out'"),
    ("commands", "wrong stderr", False, "stderr matching /to-out/", "stderr 'to-err'"),
    (
        "commands",
        "too slow",
        False,
        "to finish within 2s",
        "still running after 2s: stopped",
    ),
    ("metadata", "env RAG_API_PORT", True, "'8080'", "'8080'"),
    ("metadata", "env PYTHONPATH", False, "'/wrong'", "'/opt/rag-api'"),
    ("metadata", "env NOT_SET", False, "'x'", "None"),
    ("metadata", "label com.example-bank.image.tier", True, "a value matching /app/", "'app'"),
    (
        "metadata",
        "label org.opencontainers.image.version",
        True,
        r"a value matching /0\.3\.\d+/",
        "'0.3.0'",
    ),
    (
        "metadata",
        "label org.opencontainers.image.title",
        False,
        "a value matching /rag/",
        "'app/rag-api'",
    ),
    (
        "metadata",
        "label org.example.no-such-label",
        False,
        "a value matching /.*/",
        "no such label",
    ),
    ("metadata", "entrypoint", True, repr(ENTRYPOINT), repr(ENTRYPOINT)),
    ("metadata", f"{CST_KINDS}: entrypoint", False, "['python', 'app.py']", repr(ENTRYPOINT)),
    ("metadata", "cmd", True, "[]", "[]"),
    ("metadata", f"{CST_KINDS}: cmd", False, "['--reload']", "[]"),
    ("metadata", "workdir", True, "'/opt/rag-api'", "'/opt/rag-api'"),
    ("metadata", f"{CST_KINDS}: workdir", False, "'/srv'", "'/opt/rag-api'"),
    ("metadata", "user", True, "'10001:10001'", "'10001:10001'"),
    ("metadata", f"{CST_KINDS}: user", False, "'root'", "'10001:10001'"),
    ("metadata", "exposes 8080/tcp", True, "8080/tcp exposed", "exposed: 8080/tcp"),
    ("metadata", "exposes 9090/tcp", False, "9090/tcp exposed", "exposed: 8080/tcp"),
    ("metadata", "does not expose 22/tcp", True, "22/tcp not exposed", "exposed: 8080/tcp"),
    ("metadata", "does not expose 8080/tcp", False, "8080/tcp not exposed", "exposed: 8080/tcp"),
    ("services", "health endpoint answers", True, "", ""),
    ("services", "unknown path is a 404", True, "", ""),
    ("services", "8080 listens", True, "", ""),
    (
        "services",
        "wrong HTTP status",
        False,
        "HTTP 503 from /healthz within 2s",
        re.compile(r"(?s)HTTP 200 from http://127\.0\.0\.1:\d+/healthz; container log: .*"),
    ),
    (
        "services",
        "nobody answers HTTP on 9999",
        False,
        "HTTP 200 from / within 3s",
        re.compile(r"(?s)no HTTP answer from http://127\.0\.0\.1:\d+/ \(.*\); container log: .*"),
    ),
    (
        "services",
        "nobody listens on 9998",
        False,
        "9998/tcp listening within 3s",
        re.compile(
            r"(?s)(9998/tcp closed the connection at once \(nothing listening\)"
            r"|cannot connect to 9998/tcp \(.*\)); container log: .*"
        ),
    ),
    ("size", "size at most 1000 MB", True, "≤ 1000 MB", re.compile(r"\d+\.\d MB")),
    ("non_root", "runs as non-root", True, "a non-root USER", "'10001:10001'"),
    *(("testinfra", name, True, "", "") for name in CUSTOM_TESTS),
]
PROBE_EXPECTED: list[tuple[str, str, bool, str, str | Pattern]] = [
    ("non_root", "runs as non-root", False, "a non-root USER", re.compile(r"'(root|0|0:0)'")),
    ("size", "size at most 1 MB", False, "≤ 1 MB", re.compile(r"\d+\.\d MB")),
]
ALL_KINDS = ("packages", "pip", "files", "users", "commands", "metadata", "services", "size")


@dataclass(frozen=True)
class KindsRun(Run):
    plan: dict[str, Any]
    probe_build: dict[str, Any]


def with_tests(spec: str, tests: dict[str, Any]) -> str:
    """``spec`` (an image.yaml text) with its trailing ``tests:`` section replaced."""
    head, marker, _ = spec.partition("\ntests:\n")
    assert marker, "the app's image.yaml no longer ends with a tests: section"
    return head + "\n" + yaml.safe_dump({"tests": tests}, sort_keys=False)


@pytest.fixture(scope="module")
def kinds(example_build: ExampleBuild, passing: Run) -> Iterator[KindsRun]:
    root, env = passing.root, example_build.env
    spec = root / APP_SPEC
    spec.write_text(with_tests(spec.read_text(), APP_TESTS))
    (spec.parent / "structure-tests").mkdir()
    (spec.parent / CST_KINDS).write_text(yaml.safe_dump(KINDS_CST, sort_keys=False))
    plan = cli_json(imagefactory(root, "plan", *EXAMPLE, "--json", env=env))
    probe = root / "images" / "app" / "root-probe"
    probe.mkdir(parents=True)
    (probe / "image.yaml").write_text(yaml.safe_dump(ROOT_PROBE, sort_keys=False))
    built = imagefactory(root, "build", "app/root-probe", "--json", env=env, timeout=600)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    before = state_images(root)
    junit = root / "kinds.xml"
    started = time.monotonic()
    proc = imagefactory(
        root,
        "test",
        "app/rag-api",
        "app/root-probe",
        "--json",
        "--junit",
        str(junit),
        env=env,
        timeout=RUN_TIMEOUT,
    )
    seconds = time.monotonic() - started
    leftovers = session_containers(example_build.session)
    yield KindsRun(
        root, proc, seconds, before, state_images(root), junit, leftovers, plan, cli_json(built)
    )
    remove_containers(leftovers)


def test_tests_sections_are_not_part_of_the_content_hash(kinds: KindsRun) -> None:
    actions = {step["image"]: step["action"] for step in kinds.plan["plan"]}
    assert actions == dict.fromkeys(EXAMPLE, "skip"), kinds.plan
    statuses = {i["image"]: i["status"] for i in kinds.probe_build["images"]}
    assert statuses == {"base/debian12": "reused", "app/root-probe": "built"}, statuses


def test_a_failing_run_exits_1(kinds: KindsRun) -> None:
    proc = kinds.proc
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    document = first_json(proc.stdout)
    assert document["ok"] is False
    assert {i["image"]: i["passed"] for i in document["images"]} == {
        "app/rag-api": False,
        "app/root-probe": False,
    }
    no_traceback(proc)
    error = json_documents(proc.stdout)[-1]
    assert error["ok"] is False
    assert error["error"].startswith("2 of 2 images failed their tests:"), error
    assert "  app/root-probe: runs as non-root: expected a non-root USER, got " in error["error"]
    assert error["hint"].startswith("the failed runs are recorded against these digests"), error


@pytest.mark.parametrize(
    ("ref", "kind", "name", "passed", "expected", "actual"),
    [("app/rag-api", *row) for row in APP_EXPECTED]
    + [("app/root-probe", *row) for row in PROBE_EXPECTED],
    ids=[
        f"{ref}:{row[0]}:{row[1]}:{'pass' if row[2] else 'FAIL'}"
        for ref, rows in (("app/rag-api", APP_EXPECTED), ("app/root-probe", PROBE_EXPECTED))
        for row in rows
    ],
)
def test_check(
    kinds: KindsRun,
    ref: str,
    kind: str,
    name: str,
    passed: bool,
    expected: str,
    actual: str | Pattern,
) -> None:
    check = one_check(checks_of(first_json(kinds.proc.stdout), ref), kind, name)
    assert check["passed"] is passed, check
    assert check["skipped"] is False, check
    assert check["expected"] == expected, check
    if isinstance(actual, re.Pattern):
        assert actual.fullmatch(check["actual"]), check
    else:
        assert check["actual"] == actual, check
    assert check["seconds"] >= 0


def test_every_kind_has_a_pass_and_a_failure(kinds: KindsRun) -> None:
    document = first_json(kinds.proc.stdout)
    checks = [c for image in document["images"] for c in image["checks"]]
    for kind in (*ALL_KINDS, "non_root"):
        outcomes = {c["passed"] for c in checks if c["kind"] == kind and not c["skipped"]}
        assert outcomes == {True, False}, (kind, outcomes)
    listed = {(r[0], r[1]) for r in APP_EXPECTED} | {("size", "growth at most 10%")}
    app = checks_of(document, "app/rag-api")
    assert {(c["kind"], c["name"]) for c in app} == listed
    assert len(checks_of(document, "app/root-probe")) == len(PROBE_EXPECTED)


def test_size_figures_are_the_built_sizes(kinds: KindsRun) -> None:
    document = first_json(kinds.proc.stdout)
    for ref, name in (
        ("app/rag-api", "size at most 1000 MB"),
        ("app/root-probe", "size at most 1 MB"),
    ):
        size = kinds.state_before[ref]["size_bytes"]
        check = one_check(checks_of(document, ref), "size", name)
        assert check["actual"] == f"{size / 1e6:.1f} MB", (check, size)


def test_size_growth_is_skipped_without_a_previous_build(kinds: KindsRun) -> None:
    assert "previous_size_bytes" not in kinds.state_before["app/rag-api"]
    check = one_check(
        checks_of(first_json(kinds.proc.stdout), "app/rag-api"), "size", "growth at most 10%"
    )
    assert check["skipped"] is True and check["passed"] is True, check
    assert check["actual"] == "no previous build to compare with"


def test_timeouts_fail_within_their_budget(kinds: KindsRun) -> None:
    app = checks_of(first_json(kinds.proc.stdout), "app/rag-api")
    for kind, name, budget in (
        ("commands", "too slow", 2),
        ("services", "wrong HTTP status", 2),
        ("services", "nobody answers HTTP on 9999", 3),
        ("services", "nobody listens on 9998", 3),
    ):
        seconds = one_check(app, kind, name)["seconds"]
        # a probe already under way may finish (HTTP timeout 2 s) after the budget ran out
        assert budget - 0.1 <= seconds <= budget + 3, (name, seconds)
    assert kinds.seconds < RUN_TIMEOUT / 2, kinds.seconds


def test_a_failure_is_recorded_as_failed(kinds: KindsRun) -> None:
    before, after = kinds.state_before, kinds.state_after
    assert run_of(before["app/rag-api"]) is not None, "no earlier run to replace"
    assert run_of(before["app/root-probe"]) is None
    counts = {i["image"]: len(i["checks"]) for i in first_json(kinds.proc.stdout)["images"]}
    for ref in ("app/rag-api", "app/root-probe"):
        run = run_of(after[ref])
        assert run is not None and run["passed"] is False, (ref, run)
        assert run["checks"] == counts[ref], ref
        # the build's fields stay as they were
        assert build_fields(after[ref]) == build_fields(before[ref]), ref
    for ref in ("base/debian12", "runtime/llm:cpu"):  # not tested in this run: untouched
        assert after[ref] == before[ref]


def test_a_failure_withdraws_the_earlier_pass_of_that_digest(kinds: KindsRun) -> None:
    """Regression: up to 06c08e9 session._record() popped 'tests' from the record's extras, then
    rebuilt the record from record.model_dump(), which still held it: the stale pass stayed."""
    app_before, app_after = kinds.state_before["app/rag-api"], kinds.state_after["app/rag-api"]
    earlier = run_of(app_before)
    assert earlier is not None and earlier["passed"] is True, (
        "precondition: the first run's pass is in state before the failing run"
    )
    assert app_after["digest"] == app_before["digest"]
    assert "tests" not in app_after, app_after.get("tests")
    later = run_of(app_after)
    assert later is not None and later["passed"] is False, later


def test_junit_of_a_failing_run(kinds: KindsRun) -> None:
    document = first_json(kinds.proc.stdout)
    root = parse_junit(kinds.junit)
    suites = suite_by_name(root)
    assert sorted(suites) == ["app/rag-api", "app/root-probe"]
    all_failures = 0
    for image in document["images"]:
        ref, checks = image["image"], image["checks"]
        suite, failed = suites[ref], [c for c in checks if not c["passed"] and not c["skipped"]]
        cases = suite.findall("testcase")
        assert suite.get("tests") == str(len(checks)) == str(len(cases))
        assert suite.get("failures") == str(len(failed)) == str(len(suite.findall("*/failure")))
        assert suite.get("skipped") == str(sum(c["skipped"] for c in checks))
        for case, check in zip(cases, checks, strict=True):
            assert case.get("classname") == f"{ref}.{check['kind']}"
            failure, skipped = case.find("failure"), case.find("skipped")
            if check["skipped"]:
                assert skipped is not None and failure is None
                assert skipped.get("message") == check["actual"]
            elif check["passed"]:
                assert failure is None and skipped is None, check
            else:
                assert failure is not None, check
                assert failure.get("type") == check["kind"]
                assert failure.get("message") == why(check)[:1000] or (
                    failure.get("message", "").endswith("(truncated)")
                ), (failure.get("message"), check)
                body = failure.text or ""
                assert f"image: {ref} ({image['reference']})" in body
                assert f"check: {check['kind']} / {check['name']}" in body
                if check["expected"]:
                    assert f"expected: {check['expected']}" in body
                    assert f"actual: {check['actual']}" in body
        all_failures += len(failed)
    assert root.get("failures") == str(all_failures)


def test_no_container_is_left_after_a_failing_run_with_service_timeouts(kinds: KindsRun) -> None:
    app = checks_of(first_json(kinds.proc.stdout), "app/rag-api")
    assert one_check(app, "services", "nobody listens on 9998")["passed"] is False
    assert kinds.leftovers == []


def test_a_failing_json_run_prints_one_json_document(kinds: KindsRun) -> None:
    document = json.loads(kinds.proc.stdout)
    assert document["ok"] is False
    assert [i["image"] for i in document["images"]]


def test_a_command_timeout_says_expected_vs_actual(kinds: KindsRun) -> None:
    check = one_check(
        checks_of(first_json(kinds.proc.stdout), "app/rag-api"), "commands", "too slow"
    )
    assert "2s" in check["expected"], check
    assert "could not run" not in check["actual"] and "ToolError" not in check["actual"], check


def test_a_passing_absent_file_check_reports_the_truth(kinds: KindsRun) -> None:
    check = one_check(checks_of(first_json(kinds.proc.stdout), "app/rag-api"), "files", "/etc/ssh")
    assert check["passed"] is True
    assert check["actual"] != "exists", check


# --- interruption ------------------------------------------------------------------------------


def children(pid: int) -> dict[tuple[int, str], str]:
    """The child processes of ``pid``: (pid, start time) → command line."""
    out = subprocess.run(
        ["ps", "--ppid", str(pid), "-o", "pid=,lstart=,args="],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout
    found = {}
    for line in out.splitlines():
        fields = line.split(None, 6)  # pid, "Sat Nov 28 21:42:12 2026" (5 fields), args
        if len(fields) == 7:
            found[(int(fields[0]), " ".join(fields[1:6]))] = fields[6]
    return found


def still_running(child: tuple[int, str]) -> bool:
    """The same process (pid and start time) still runs: a reused pid does not count."""
    pid, started = child
    out = subprocess.run(
        ["ps", "-p", str(pid), "-o", "lstart=,stat="],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout.split()
    return len(out) == 6 and " ".join(out[:5]) == started and not out[5].startswith("Z")


@pytest.mark.parametrize(
    ("target", "moment"),
    [
        ("process group", "container started"),  # Ctrl-C in a terminal
        ("process", "custom tests running"),  # kill -INT <pid>: children not signalled
    ],
)
def test_interrupt_removes_the_container(
    example_build: ExampleBuild, example_copy: Path, target: str, moment: str
) -> None:
    session = example_build.session
    assert session_containers(session) == [], "a test container exists before the run"
    process = subprocess.Popen(
        [sys.executable, "-m", "imagefactory", "-C", str(example_copy), "test", "app/rag-api"],
        env=dict(example_build.env),
        cwd=example_copy,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            ready = bool(session_containers(session))
            if ready and moment == "custom tests running":
                ready = any(" -m pytest " in args for args in children(process.pid).values())
            if ready:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, f"no {moment} within 120 s"
        if moment == "custom tests running":
            time.sleep(0.3)
        running = children(process.pid)
        if target == "process group":
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
    assert process.returncode == 130, stdout[-2000:] + stderr[-3000:]
    assert "interrupted" in stderr
    leftovers = session_containers(session)
    remove_containers(leftovers)
    assert leftovers == []
    state = state_images(example_copy)["app/rag-api"]
    assert run_of(state) is None and "tests" not in state, "an interrupted run recorded a run"
    # no child of the run outlives it for long (one may first see its container vanish)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(map(still_running, running)):
        time.sleep(0.2)
    survivors = {child: args for child, args in running.items() if still_running(child)}
    for pid, _ in survivors:  # a child of the run this test started, still the same process
        os.kill(pid, signal.SIGKILL)
    assert survivors == {}, survivors


# --- refused runs ------------------------------------------------------------------------------


def test_an_image_that_was_never_built(example_build: ExampleBuild, example_copy: Path) -> None:
    before = (example_copy / ".imagefactory" / "state.json").read_text()
    proc = imagefactory(
        example_copy, "test", "base/debian12", "runtime/llm:cuda", env=example_build.env
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "runtime/llm:cuda has not been built" in proc.stderr
    assert "hint: run: imagefactory build runtime/llm:cuda" in proc.stderr
    no_traceback(proc)
    # refused before anything ran: base/debian12 was not tested either
    assert (example_copy / ".imagefactory" / "state.json").read_text() == before
    assert session_containers(example_build.session) == []
    document = cli_json(
        imagefactory(example_copy, "test", "runtime/llm:cuda", "--json", env=example_build.env)
    )
    assert document["ok"] is False
    assert "runtime/llm:cuda has not been built" in document["error"]
    assert document["hint"] == "run: imagefactory build runtime/llm:cuda"


def test_an_image_changed_since_its_build(example_build: ExampleBuild, example_copy: Path) -> None:
    main = example_copy / APP_MAIN
    main.write_text(main.read_text() + "\n# changed after the build\n")
    plan = cli_json(
        imagefactory(example_copy, "plan", "app/rag-api", "--json", env=example_build.env)
    )
    actions = {step["image"]: step["action"] for step in plan["plan"]}
    assert actions["app/rag-api"] == "build", plan
    before = (example_copy / ".imagefactory" / "state.json").read_text()
    proc = imagefactory(example_copy, "test", "app/rag-api", env=example_build.env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "app/rag-api changed since it was built" in proc.stderr
    assert "hint: run: imagefactory build app/rag-api" in proc.stderr
    no_traceback(proc)
    assert (example_copy / ".imagefactory" / "state.json").read_text() == before
    assert session_containers(example_build.session) == []


BAD_CST = """\
schemaVersion: "2.0.0"
commandTests:
  - name: fine
    command: "true"
  - name: prepared
    setup: [["touch", "/tmp/ready"]]
    command: "true"
"""


def test_a_bad_structure_test_file(example_build: ExampleBuild, example_copy: Path) -> None:
    folder = example_copy / "images" / "app" / "rag-api" / "structure-tests"
    folder.mkdir()
    bad = folder / "bad.yaml"
    bad.write_text(BAD_CST)
    line = BAD_CST.splitlines().index('    setup: [["touch", "/tmp/ready"]]') + 1
    before = (example_copy / ".imagefactory" / "state.json").read_text()
    proc = imagefactory(example_copy, "test", "app/rag-api", env=example_build.env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    no_traceback(proc)
    assert f"{bad}:{line}: commandTests[1].setup:" in proc.stderr, proc.stderr
    assert "'setup' cannot be converted" in proc.stderr
    assert "hint:" in proc.stderr
    assert (example_copy / ".imagefactory" / "state.json").read_text() == before
    assert session_containers(example_build.session) == []
    document = cli_json(
        imagefactory(example_copy, "test", "app/rag-api", "--json", env=example_build.env)
    )
    assert document["ok"] is False
    assert [(i["file"], i["line"], i["key"]) for i in document["issues"]] == [
        (str(bad), line, "commandTests[1].setup")
    ]
    # a key container-structure-test does not know at all is refused the same way
    edit_text(bad, "  - name: fine\n", "  - name: fine\n    expectedOuput: [x]\n")
    proc = imagefactory(example_copy, "test", "app/rag-api", env=example_build.env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    no_traceback(proc)
    assert f"{bad}:4: commandTests[0].expectedOuput" in proc.stderr, proc.stderr


def test_a_service_whose_entrypoint_exits_fails_its_check_with_the_reason(
    example_build: ExampleBuild, example_copy: Path
) -> None:
    """The entrypoint exits at once: the container check fails with the exit code and the output
    (the service checks cannot run); the other images' checks still run and report."""
    quits = '["python", "-c", "import sys; print(\'cannot start: no model\'); sys.exit(3)"]'
    edit_text(
        example_copy / APP_SPEC,
        'entrypoint: [python, -m, uvicorn, rag_api.main:app, --host, 0.0.0.0, --port, "8080"]',
        f"entrypoint: {quits}",
    )
    built = imagefactory(example_copy, "build", "app/rag-api", env=example_build.env, timeout=300)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]

    proc = imagefactory(
        example_copy, "test", "base/debian12", "app/rag-api", "--json", env=example_build.env,
        timeout=RUN_TIMEOUT,
    )  # fmt: skip

    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    document = first_json(proc.stdout)
    passed = {i["image"]: i["passed"] for i in document["images"]}
    assert passed == {"base/debian12": True, "app/rag-api": False}
    app = checks_of(document, "app/rag-api")
    check = one_check(app, "container", "starts")
    assert check["passed"] is False
    assert check["expected"] == "the container to start and keep running"
    assert check["actual"].startswith("the container stopped (exit code 3)"), check["actual"]
    assert [c for c in app if c["kind"] == "services"] == [], "checks ran in a stopped container"
    assert "cannot start: no model" in check["actual"]
    no_traceback(proc)
    assert session_containers(example_build.session) == []


# --- a catalog of its own, FROM the tiny busybox base: `test` is total, runs per digest --------

TINY_GOOD, TINY_BROKEN = "tiny/good", "tiny/broken"
PROBE_OUT = "IF_TEST_PROBE_OUT"  # where the good image's custom test writes what it could read
# busybox has no `sleep` applet linked: the idle test container needs one (an exec-form RUN:
# the standard template's SHELL is bash, which busybox lacks)
WITH_SLEEP = (
    '{% extends "dockerfile/Dockerfile.j2" %}\n'
    '{% block extra %}\nRUN ["/bin/busybox", "ln", "-s", "busybox", "/bin/sleep"]\n{% endblock %}\n'
)
# Run on this host by pytest as the user who runs imagefactory: what could it read of the run's
# private folders (``imagefactory.scratch``) and of the Docker config it is handed?
CREDENTIAL_PROBE = """\
import json
import os
from pathlib import Path

from imagefactory import scratch


def test_reads_what_it_can(host):
    assert host.run("echo probe").stdout.strip() == "probe"
    folders = [f for base in scratch.bases() for f in base.glob(scratch.PREFIX + "*")]
    if os.environ.get("DOCKER_CONFIG"):
        folders.append(Path(os.environ["DOCKER_CONFIG"]))
    found = {}
    for folder in folders:
        for path in [folder, *folder.rglob("*")]:
            if path.is_file():
                try:
                    found[str(path)] = path.read_text(errors="replace")
                except OSError as exc:
                    found[str(path)] = f"unreadable: {exc}"
    Path(os.environ["IF_TEST_PROBE_OUT"]).write_text(
        json.dumps({"docker_config": os.environ.get("DOCKER_CONFIG"), "files": found})
    )
"""


@dataclass(frozen=True)
class TinyBase:
    reference: str  # in the registry, pinned by digest: the catalog's external parent
    session: str
    registry: str  # its host: 127.0.0.1:PORT


@pytest.fixture(scope="module")
def tiny_pushed(
    tiny_base: str, docker_config: Path, registry: Registry, test_session_id: str
) -> TinyBase:
    """The tiny busybox base pushed to the registry of the session's namespace (removed with it
    at the session's end): an external parent pinned by digest."""
    target = f"{registry.host}/it-{test_session_id}/imagetest/tiny-base:1"
    docker("tag", tiny_base, target)
    docker("push", "--quiet", target, docker_config=docker_config, timeout=120)
    digests = json.loads(
        docker("image", "inspect", "--format", "{{json .RepoDigests}}", target).stdout
    )
    pinned = next(d for d in digests if d.startswith(target.rsplit(":", 1)[0] + "@"))
    docker("rmi", target, check=False)
    return TinyBase(pinned, test_session_id, registry.host)


def write_tiny_catalog(root: Path, base: TinyBase, stage: str = "a") -> None:
    """``tiny/good`` (a command, a metadata check and the credential probe as its custom test)
    and ``tiny/broken`` (its entrypoint a binary that does not exist, a service check: the
    container cannot start)."""
    project = {
        "project": "it-imagetest",
        "registries": {
            "dev": {
                "url": base.registry,
                "namespace": f"it-{base.session}/imagetest",
                "username_env": "IMAGEFACTORY_REGISTRY_USER",
                "password_env": "IMAGEFACTORY_REGISTRY_PASSWORD",
                "tls_verify": False,
            }
        },
        "environments": [{"name": "dev", "registries": ["dev"]}],
        "defaults": {"labels": {"org.imagefactory.test-session": base.session}},
    }
    good = {
        "name": TINY_GOOD,
        "version": "1.0.0",
        "from": base.reference,
        "user": "0:0",
        "env": {"STAGE": stage},
        "tests": {
            "commands": [{"name": "echo", "run": ["echo", "hi"], "stdout": r"\Ahi\Z"}],
            "metadata": {"env": {"STAGE": stage}},
        },
    }
    broken = {
        "name": TINY_BROKEN,
        "version": "1.0.0",
        "from": base.reference,
        "user": "0:0",
        "entrypoint": ["/no/such/binary"],
        "tests": {
            "metadata": {"entrypoint": ["/no/such/binary"]},
            "services": [{"name": "listens", "port": 8080, "timeout": "5s"}],
        },
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "imagefactory.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    for spec in (good, broken):
        folder = root / "images" / str(spec["name"])
        (folder / "tests").mkdir(parents=True, exist_ok=True)
        (folder / "image.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        (folder / "Dockerfile.j2").write_text(WITH_SLEEP)
    (root / "images" / TINY_GOOD / "tests" / "test_probe.py").write_text(CREDENTIAL_PROBE)


def build_tiny(root: Path, env: dict[str, str], *refs: str) -> None:
    proc = imagefactory(root, "build", *refs, "--json", env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@dataclass(frozen=True)
class TinyRun:
    root: Path
    proc: subprocess.CompletedProcess[str]
    junit: Path
    probe: dict[str, Any]
    password: str = field(repr=False)
    leftovers: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def tiny_run(
    tiny_pushed: TinyBase,
    registry: Registry,
    registry_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TinyRun]:
    root = tmp_path_factory.mktemp("tiny") / "catalog"
    write_tiny_catalog(root, tiny_pushed)
    build_tiny(root, registry_env, "--all")
    out = root.parent / "probe.json"
    junit = root / "report.xml"
    env = {**registry_env, PROBE_OUT: str(out)}
    proc = imagefactory(
        root, "test", "--all", "--junit", str(junit), "--json", env=env, timeout=RUN_TIMEOUT
    )
    probe = json.loads(out.read_text()) if out.exists() else {}
    leftovers = session_containers(tiny_pushed.session)
    yield TinyRun(root, proc, junit, probe, registry.password, leftovers)
    remove_containers(leftovers)


def test_test_all_tests_every_image_past_one_whose_container_cannot_start(
    tiny_run: TinyRun,
) -> None:
    """Regression (issue 14, finding 5): the run stopped at the image whose container did not
    start, with exit 3 and the hint "the image must be pullable"; the other images went untested
    and the JUnit file counted no failure."""
    proc = tiny_run.proc
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    no_traceback(proc)
    assert "pullable" not in proc.stdout + proc.stderr
    document = cli_json(proc)
    assert document["ok"] is False
    assert {i["image"]: i["passed"] for i in document["images"]} == {
        TINY_GOOD: True,
        TINY_BROKEN: False,
    }
    good = checks_of(document, TINY_GOOD)
    assert one_check(good, "commands", "echo")["passed"] is True
    assert one_check(good, "testinfra", "test_probe::test_reads_what_it_can")["passed"] is True
    broken = checks_of(document, TINY_BROKEN)
    assert one_check(broken, "metadata", "entrypoint")["passed"] is True  # config checks ran
    start = one_check(broken, "container", "starts")
    assert (
        start["passed"] is False and start["expected"] == "the container to start and keep running"
    )
    assert re.match(r"the container did not start \(exit code 12[0-9]\): ", start["actual"]), start
    assert "/no/such/binary" in start["actual"] and "its last output: " in start["actual"]
    assert [c["kind"] for c in broken] == ["metadata", "container"], "the service check did not run"
    assert f"{TINY_BROKEN}: starts: expected the container to start" in document["error"]
    assert tiny_run.leftovers == []


def test_the_junit_file_counts_the_container_that_did_not_start(tiny_run: TinyRun) -> None:
    document = cli_json(tiny_run.proc)
    root = parse_junit(tiny_run.junit)
    suites = suite_by_name(root)
    assert sorted(suites) == [TINY_BROKEN, TINY_GOOD]
    total = sum(len(i["checks"]) for i in document["images"])
    assert (root.get("tests"), root.get("failures")) == (str(total), "1")
    assert (suites[TINY_GOOD].get("failures"), suites[TINY_BROKEN].get("failures")) == ("0", "1")
    failure = suites[TINY_BROKEN].find("testcase[@classname='tiny/broken.container']/failure")
    assert failure is not None and failure.get("type") == "container"
    assert "the container did not start (exit code" in (failure.text or "")


def test_every_run_is_recorded_against_its_digest(tiny_run: TinyRun) -> None:
    state = load_state(tiny_run.root / ".imagefactory" / "state.json")
    for ref, passed in ((TINY_GOOD, True), (TINY_BROKEN, False)):
        record = state.images[ref]
        assert record.digest is not None
        run = record.test_of(record.digest)
        assert run is not None and run.passed is passed, (ref, run)
        assert run.checks == len(checks_of(cli_json(tiny_run.proc), ref))


def test_custom_tests_cannot_read_the_registry_credentials(tiny_run: TinyRun) -> None:
    """Regression (issue 13 leftover): the custom tests ran with DOCKER_CONFIG set to the run's
    private folder, whose config.json held the registry login."""
    assert tiny_run.probe, "the custom test did not run"
    auth = base64.b64encode(f"{REGISTRY_USER}:{tiny_run.password}".encode()).decode()
    files = tiny_run.probe["files"]
    # only paths in the messages: the password must never be printed
    leaked = [p for p, text in files.items() if tiny_run.password in text or auth in text]
    assert leaked == [], "these files hold the registry login"
    assert [p for p, text in files.items() if '"auths"' in text] == []


def test_a_pass_of_one_digest_survives_the_test_of_the_next(
    tiny_pushed: TinyBase, registry_env: dict[str, str], tmp_path: Path
) -> None:
    """Regression (issue 14, finding 4): testing a new digest replaced the image's one test
    record, so the pass of the digest running in prod was gone until it was tested again."""
    root = tmp_path / "catalog"
    write_tiny_catalog(root, tiny_pushed, stage="a")
    build_tiny(root, registry_env, TINY_GOOD)
    state_path = root / ".imagefactory" / "state.json"
    env = {**registry_env, PROBE_OUT: str(tmp_path / "probe.json")}
    first = imagefactory(root, "test", TINY_GOOD, env=env, timeout=RUN_TIMEOUT)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    digest_a = load_state(state_path).images[TINY_GOOD].digest
    assert digest_a is not None

    write_tiny_catalog(root, tiny_pushed, stage="b")  # new content: a new digest
    build_tiny(root, registry_env, TINY_GOOD)
    second = imagefactory(root, "test", TINY_GOOD, env=env, timeout=RUN_TIMEOUT)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]

    record = load_state(state_path).images[TINY_GOOD]
    assert record.digest is not None and record.digest != digest_a
    a, b = record.test_of(digest_a), record.test_of(record.digest)
    assert a is not None and a.passed is True, "the pass of the earlier digest was erased"
    assert b is not None and b.passed is True and b.digest == record.digest
