"""Test the images of the current state: the exact digest each build recorded.

Per image: the image config checks (metadata, size, non-root) need no container; everything
else runs in at most one container, always removed. Container-structure-test files and custom
testinfra tests run in the same container and land in the same report.

Testing is total: every selected image is tested, and what stops one image (its config cannot
be read, its container does not start or stops at once, a check that fails to run) is a failed
check of that image's report; only an engine that cannot be reached, or a catalog that cannot be
read, refuses the whole run. Every run is recorded in state against its digest, passed or
failed (``ImageRecord.with_test``): a failed rerun withdraws that digest's pass, never another's.
With ``signing:``, every run is also attested to its digest in the build repository (an in-toto
test-result attestation, signed, with the time state records for it): that is what the release
gate reads, from any checkout; the state file is this checkout's cache of it.

The registry credentials (a Docker config in the run's private folder) exist only while the
images are pulled: they are gone before any container starts, so no custom test (run on this
host as pytest) can read them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagefactory import scratch
from imagefactory.build.docker import Engine
from imagefactory.errors import ImageFactoryError, UserError
from imagefactory.evidence import predicates
from imagefactory.evidence.keys import signing_key
from imagefactory.evidence.store import EvidenceStore, Location
from imagefactory.imagetest.checks import (
    container_checks,
    metadata_checks,
    non_root_check,
    service_checks,
    size_checks,
)
from imagefactory.imagetest.container import ContainerFailed, running_container
from imagefactory.imagetest.custom import run_custom_tests
from imagefactory.imagetest.layers import LayerHost, layer_checks, read_image
from imagefactory.imagetest.results import CheckResult, ImageReport
from imagefactory.project.naming import build_registry
from imagefactory.project.paths import state_file, work_dir
from imagefactory.project.plan import built_records
from imagefactory.project.state import (
    ImageRecord,
    TestRecord,
    load_state,
    locked_state,
    with_record,
)
from imagefactory.registry.client import registry_session
from imagefactory.registry.credentials import docker_config
from imagefactory.signing.keys import SigningKey
from imagefactory.spec.catalog import Catalog, CatalogImage, is_application
from imagefactory.spec.companions import custom_test_files
from imagefactory.spec.cst.reader import CST_DIR, read_cst, structure_test_files
from imagefactory.spec.models import ImageTests

#: The image config and size of a pulled image, or the failed check saying why it could not be read.
Pulled = tuple[dict[str, Any], int] | CheckResult


class TestsFailed(UserError):
    def __init__(self, reports: list[ImageReport]) -> None:
        failed = [r for r in reports if not r.passed]
        self.reports = reports
        lines = [f"{len(failed)} of {len(reports)} images failed their tests:"]
        for report in failed:
            lines += [f"  {report.ref}: {r.name}: {r.why}" for r in report.failures]
        super().__init__(
            "\n".join(lines),
            hint="the failed runs are recorded against these digests (a pass of another digest "
            "stays); fix the image, rebuild it and test again",
        )


@dataclass(frozen=True)
class Suite:
    """The checks of one source (image.yaml, or one structure-test file) and their label."""

    label: str
    tests: ImageTests
    file_names: tuple[str, ...] = ()  # a structure-test file names its file checks

    def needs_container(self, shell_less: bool = False) -> bool:
        """Whether a check needs the test container: on a shell-less image only a service
        check does (the others read its layers)."""
        t = self.tests
        if shell_less:
            return bool(t.services)
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
    the state file records a build of when ``images`` is empty. TestsFailed when any failed."""
    state = load_state(state_file(catalog))
    selected = catalog.select(images)
    if not images:
        selected = [i for i in selected if (r := state.images.get(i.ref)) and r.digest]
    # a broken structure-test file refuses the run before anything runs
    planned = [
        (image, record, suites(image)) for image, record in built_records(catalog, selected, state)
    ]
    key = signing_key(catalog)  # and so does signing that needs a key this run lacks
    with docker_config([build_registry(catalog.project)]) as config_dir:
        engine = Engine(config_dir)
        engine.check()
        pulled = [
            [_pull(engine, one) for one in platform_records(record)] for _, record, _ in planned
        ]
    reports, times = [], []
    work = work_dir(catalog) / "imagetest"
    with _engine_without_credentials(config_dir is not None) as engine:
        for (image, record, image_suites), configs in zip(planned, pulled, strict=True):
            report = joined(
                record,
                [
                    test_image(engine, image, one, image_suites, image_config, work)
                    for one, image_config in zip(platform_records(record), configs, strict=True)
                ],
            )
            times.append(record_test(catalog, image.ref, report))
            on_report(report)
            reports.append(report)
    if key is not None:  # once every container is gone: the registry session opens only now
        tested = [(image, record) for image, record, _ in planned]
        attest_tests(catalog, tested, reports, times, key)
    if not all(r.passed for r in reports):
        raise TestsFailed(reports)
    return reports


def platform_records(record: ImageRecord) -> list[ImageRecord]:
    """What is tested of a built image: the image itself, or for an image built per platform
    each platform's image (the record with that platform's digest), in the spec's order."""
    if not record.platforms:
        return [record]
    return [record.model_copy(update={"digest": d}) for d in record.platforms.values()]


def joined(record: ImageRecord, reports: list[ImageReport]) -> ImageReport:
    """The report of an image: its one report or, built per platform, the report of its index
    digest with every platform's checks, each named after its platform (``linux/arm64: …``):
    a platform's failure fails the image."""
    if not record.platforms:
        [report] = reports
        return report
    results = tuple(
        dataclasses.replace(result, name=f"{platform}: {result.name}")
        for platform, report in zip(record.platforms, reports, strict=True)
        for result in report.results
    )
    assert record.digest is not None
    return ImageReport(reports[0].ref, _reference(record), record.digest, results)


def _pull(engine: Engine, record: ImageRecord) -> Pulled:
    """The config and size of the built image (pulled when the engine lacks it), or the failed
    check that says why they could not be read."""
    reference = _reference(record)
    try:
        return engine.image_config(reference, hint="the built image must be in the build registry")
    except (ImageFactoryError, ValueError) as exc:  # ValueError: a config that is not JSON
        return CheckResult(
            "image", "image config", False, 0.0, f"the image config of {reference}", str(exc)
        )


@contextlib.contextmanager
def _engine_without_credentials(had_credentials: bool) -> Iterator[Engine]:
    """The engine the checks use once the credentials are gone: with an empty Docker config
    where the pull had one (so the CLI reaches the same engine), else with the user's own."""
    if not had_credentials:
        yield Engine()
        return
    with scratch.private_folder("docker-") as empty:
        yield Engine(empty)


def suites(image: CatalogImage) -> list[Suite]:
    found = [Suite("image.yaml", image.spec.tests)]
    for path in structure_test_files(image.folder):
        converted = read_cst(path)
        found.append(Suite(f"{CST_DIR}/{path.name}", converted.tests, converted.file_check_names))
    return found


def test_image(
    engine: Engine,
    image: CatalogImage,
    record: ImageRecord,
    image_suites: list[Suite],
    pulled: Pulled,
    work: Path,
) -> ImageReport:
    """The report of one image: every check that ran, and a failed check for what stopped the
    others (an unreadable config, a container that did not start, a check that could not run).
    A shell-less image's filesystem checks read its layers (through ``work``), and only its
    service checks start a container."""
    reference = _reference(record)
    assert record.digest is not None
    if isinstance(pulled, CheckResult):
        return ImageReport(image.ref, reference, record.digest, (pulled,))
    config, size = pulled
    results: list[CheckResult] = []
    for suite in image_suites:
        results.extend(_named(suite, metadata_checks(suite.tests.metadata, config)))
        if suite.tests.non_root:
            results.extend(_named(suite, [non_root_check(config)]))
        results.extend(_named(suite, size_checks(suite.tests, size, record.previous_size_bytes)))
    shell_less = image.spec.distroless is not None
    if shell_less:
        results.extend(_layer_results(engine, reference, image, image_suites, work))
    custom = [] if shell_less else custom_test_files(image.folder)  # validate refuses them there
    if any(s.needs_container(shell_less) for s in image_suites) or custom:
        ports = sorted({service.port for s in image_suites for service in s.tests.services})
        user = config.get("User") or "root"
        try:
            with running_container(
                engine, reference, ports, writable_paths=writable_paths(image)
            ) as container:
                # The services first: waiting for them to answer watches the entrypoint (one
                # that stops fails "starts", saying why) before anything runs in it.
                for suite in image_suites:
                    results.extend(_named(suite, service_checks(suite.tests, container)))
                for suite in image_suites:
                    if not shell_less:
                        checks = container_checks(suite.tests, container, user, image.spec.venv)
                        results.extend(_named(suite, checks))
                if custom:
                    results.extend(run_custom_tests(image.folder, container))
        except ImageFactoryError as exc:  # the checks not yet run cannot run: say why
            results.append(_stopped(exc))
    return ImageReport(image.ref, reference, record.digest, tuple(results))


def _layer_results(
    engine: Engine, reference: str, image: CatalogImage, image_suites: list[Suite], work: Path
) -> list[CheckResult]:
    """The filesystem checks of every suite, on the image's layers (read once); a failed check
    saying why when the layers cannot be read."""
    try:
        host = LayerHost(read_image(engine, reference, work, [s.tests for s in image_suites]))
    except ImageFactoryError as exc:
        return [
            CheckResult("image", "layers", False, 0.0, f"the layers of {reference}", exc.message)
        ]
    return [
        result
        for suite in image_suites
        for result in _named(suite, layer_checks(suite.tests, host, image.spec.venv))
    ]


def writable_paths(image: CatalogImage) -> list[str] | None:
    """Where an application's test container may write (/tmp and its ``deploy.writable_paths``,
    as its Kubernetes workload); None for other images, whose root filesystem stays writable."""
    if not is_application(image.spec.name):
        return None
    return image.spec.deploy.mounted_paths()


def _stopped(exc: ImageFactoryError) -> CheckResult:
    if isinstance(exc, ContainerFailed):
        name, expected = "starts", "the container to start and keep running"
    else:
        name, expected = "checks", "the checks in the container to run to the end"
    return CheckResult("container", name, False, 0.0, expected, exc.message)


def _reference(record: ImageRecord) -> str:
    assert record.repository is not None and record.digest is not None
    return f"{record.repository}@{record.digest}"


def _named(suite: Suite, results: Iterable[CheckResult]) -> Iterator[CheckResult]:
    """Checks from a structure-test file say where they come from, by the names it gives them.
    (One at a time: what ran before a check that raised stays in the report.)"""
    if suite.label == "image.yaml":
        yield from results
        return
    file_names = iter(suite.file_names)
    for r in results:
        name = next(file_names, r.name) if r.kind == "files" else r.name
        yield CheckResult(
            r.kind, f"{suite.label}: {name}", r.passed, r.seconds, r.expected, r.actual, r.skipped
        )


def record_test(catalog: Catalog, ref: str, report: ImageReport) -> datetime.datetime:
    """Record ``report`` as the latest test run of its digest, under the state lock and on the
    record as it is now (another command may have changed it since this run began); the runs
    of other digests stay. Nothing is recorded for an image whose record is gone. Returns the
    run's time, as recorded (its attestation signs the same)."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    run = TestRecord(
        digest=report.digest,
        passed=report.passed,
        checks=len(report.results),
        at=now.isoformat(timespec="seconds"),
    )
    path = state_file(catalog)
    with locked_state(path, root=catalog.root) as save:
        state = load_state(path)
        current = state.images.get(ref)
        if current is not None:
            save(with_record(state, ref, current.with_test(run)))
    return now


def attest_tests(
    catalog: Catalog,
    tested: list[tuple[CatalogImage, ImageRecord]],
    reports: list[ImageReport],
    times: list[datetime.datetime],
    key: SigningKey,
) -> None:
    """Attest each of ``reports`` (passed or failed), run at its time of ``times``, to its
    digest where the build put it."""
    registry = build_registry(catalog.project)
    with registry_session(catalog, [registry]) as client:
        for (image, record), report, at in zip(tested, reports, times, strict=True):
            assert record.repository is not None
            store = EvidenceStore(client, Location(registry, record.repository))
            predicate = test_predicate(catalog, image, report, at)
            store.attest(report.digest, predicates.TEST_RESULT, predicate, key)


def test_predicate(
    catalog: Catalog, image: CatalogImage, report: ImageReport, at: datetime.datetime
) -> dict[str, Any]:
    """The test-result predicate of ``report``: its checks by ``kind:name`` (a skipped one is in
    neither list), the image.yaml it ran, the CI job that ran it, when it ran (``at``)."""
    return predicates.result_predicate(
        passed=report.passed,
        passed_tests=[f"{r.kind}:{r.name}" for r in report.results if r.passed],
        failed_tests=[f"{r.kind}:{r.name}" for r in report.failures],
        spec_path=image.file.relative_to(catalog.root).as_posix(),
        spec_sha256=hashlib.sha256(image.file.read_bytes()).hexdigest(),
        url=os.environ.get("CI_JOB_URL"),
        at=at,
    )
