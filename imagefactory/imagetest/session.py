"""Test the images of the current state: the exact digest each build recorded.

Per image: the image config checks (metadata, size, non-root) need no container; everything
else runs in at most one container, always removed. Container-structure-test files and custom
testinfra tests run in the same container and land in the same report. A pass is recorded in
state against the digest; a failure records nothing as passed (and withdraws an earlier pass of
that digest).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from imagefactory.build.docker import Engine
from imagefactory.errors import UserError
from imagefactory.imagetest.checks import (
    container_checks,
    metadata_checks,
    non_root_check,
    service_checks,
    size_checks,
)
from imagefactory.imagetest.container import running_container
from imagefactory.imagetest.custom import custom_test_files, run_custom_tests
from imagefactory.imagetest.results import CheckResult, ImageReport
from imagefactory.project.naming import build_registry
from imagefactory.project.paths import state_file
from imagefactory.project.plan import built_records
from imagefactory.project.state import (
    ImageRecord,
    State,
    TestRecord,
    load_state,
    save_state,
    with_record,
)
from imagefactory.registry.credentials import docker_config
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.cst.reader import CST_DIR, read_cst, structure_test_files
from imagefactory.spec.models import ImageTests


class TestsFailed(UserError):
    def __init__(self, reports: list[ImageReport]) -> None:
        failed = [r for r in reports if not r.passed]
        self.reports = reports
        lines = [f"{len(failed)} of {len(reports)} images failed their tests:"]
        for report in failed:
            lines += [f"  {report.ref}: {r.name}: {r.why}" for r in report.failures]
        super().__init__("\n".join(lines), hint="nothing was recorded as passed for these digests")


@dataclass(frozen=True)
class Suite:
    """The checks of one source (image.yaml, or one structure-test file) and their label."""

    label: str
    tests: ImageTests
    file_names: tuple[str, ...] = ()  # a structure-test file names its file checks

    def needs_container(self) -> bool:
        t = self.tests
        return bool(
            t.packages.installed
            or t.packages.absent
            or t.pip.installed
            or t.pip.absent
            or t.files
            or t.users
            or t.commands
            or t.services
        )


def test_images(
    catalog: Catalog, images: list[str], on_report: Callable[[ImageReport], None]
) -> list[ImageReport]:
    """Test the digest each build recorded, of ``images`` (refs or names), or of every image
    the state file records a build of when ``images`` is empty."""
    state = load_state(state_file(catalog))
    selected = catalog.select(images)
    if not images:
        selected = [i for i in selected if (r := state.images.get(i.ref)) and r.digest]
    records = built_records(catalog, selected, state)
    registry = build_registry(catalog.project)
    reports = []
    with docker_config([registry]) as config_dir:
        engine = Engine(config_dir)
        engine.check()
        for image, record in records:
            report = test_image(engine, image, record)
            state = _record(catalog, state, image.ref, record, report)
            on_report(report)
            reports.append(report)
    if not all(r.passed for r in reports):
        raise TestsFailed(reports)
    return reports


def suites(image: CatalogImage) -> list[Suite]:
    found = [Suite("image.yaml", image.spec.tests)]
    for path in structure_test_files(image.folder):
        converted = read_cst(path)
        found.append(Suite(f"{CST_DIR}/{path.name}", converted.tests, converted.file_check_names))
    return found


def test_image(engine: Engine, image: CatalogImage, record: ImageRecord) -> ImageReport:
    assert record.repository is not None and record.digest is not None
    reference = f"{record.repository}@{record.digest}"
    config, size = engine.image_config(
        reference, hint="the built image must be in the build registry"
    )
    results: list[CheckResult] = []
    all_suites = suites(image)
    for suite in all_suites:
        results += _named(suite, metadata_checks(suite.tests.metadata, config))
        if suite.tests.non_root:
            results += _named(suite, [non_root_check(config)])
        results += _named(suite, size_checks(suite.tests, size, record.previous_size_bytes))
    if any(s.needs_container() for s in all_suites) or custom_test_files(image.folder):
        ports = sorted({service.port for suite in all_suites for service in suite.tests.services})
        user = config.get("User") or "root"
        with running_container(engine, reference, ports) as container:
            for suite in all_suites:
                results += _named(
                    suite, container_checks(suite.tests, container, user, image.spec.venv)
                )
                results += _named(suite, service_checks(suite.tests, container))
            results += run_custom_tests(image.folder, container)
    return ImageReport(image.ref, reference, record.digest, tuple(results))


def _named(suite: Suite, results: Iterable[CheckResult]) -> list[CheckResult]:
    """Checks from a structure-test file say where they come from, by the names it gives them."""
    if suite.label == "image.yaml":
        return list(results)
    file_names = iter(suite.file_names)
    named = []
    for r in results:
        name = next(file_names, r.name) if r.kind == "files" else r.name
        named.append(
            CheckResult(
                r.kind,
                f"{suite.label}: {name}",
                r.passed,
                r.seconds,
                r.expected,
                r.actual,
                r.skipped,
            )
        )
    return named


def _record(
    catalog: Catalog, state: State, ref: str, record: ImageRecord, report: ImageReport
) -> State:
    if report.passed:
        passed = TestRecord(
            digest=report.digest,
            passed=True,
            checks=len(report.results),
            at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        )
        updated = record.model_copy(update={"tests": passed})
    elif record.tests is not None and record.tests.digest == report.digest:
        updated = record.model_copy(update={"tests": None})  # an earlier pass no longer holds
    else:
        return state
    state = with_record(state, ref, updated)
    save_state(state_file(catalog), state)
    return state
