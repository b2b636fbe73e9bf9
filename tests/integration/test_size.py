"""How big the example's images are, and where the bytes are: ``imagefactory size`` on the
session's real builds, and the build's own ``size_bytes``.

The base is bootstrapped by recipe 4 (merged-/usr by mmdebstrap's hook; docs, man and info
pages, translations, legacy gconv modules, leap-second zones, completions, unused apt methods
and OpenSSL engines never unpacked): no usrmerge, no perl, and under 71.5 MB (its image.yaml's
``size.max_mb``), against the 131 MB of recipe 2 and 72.0 MB of recipe 3
(debian:bookworm-slim publishes 74.8 MB with apt and no tzdata or CA certificates).
"""

from __future__ import annotations

from typing import Any

from .helpers.example import ExampleBuild, cli_json, imagefactory

MB = 1000 * 1000
BASE_LIMIT = 71_500_000  # images/base/debian12/image.yaml: size.max_mb


def _size(example: ExampleBuild, *images: str) -> dict[str, dict[str, Any]]:
    proc = imagefactory(example.root, "size", *images, "--json", env=example.env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return {report["image"]: report for report in cli_json(proc)["images"]}


def test_the_base_is_slim_and_the_report_says_where_its_bytes_are(
    example_build: ExampleBuild,
) -> None:
    report = _size(example_build, "base/debian12")["base/debian12"]
    record = example_build.records["base/debian12"]
    assert report["reference"].endswith("@" + record["digest"])
    assert report["size_bytes"] == record["size_bytes"] <= BASE_LIMIT
    names = {p["name"] for p in report["packages"] if p["kind"] == "deb"}
    assert {"ca-certificates", "tzdata", "passwd", "apt", "libc6"} <= names
    assert not names & {"usrmerge", "perl", "perl-modules-5.36", "libperl5.36", "e2fsprogs"}
    # the rootfs layer holds nearly all of it; the packages' own figures account for it
    assert report["layers"][0]["created_by"].startswith("ADD rootfs.tar")
    assert report["layers"][0]["size_bytes"] > 0.9 * report["size_bytes"]
    assert 0.6 * report["size_bytes"] < report["debian_bytes"] < 1.2 * report["size_bytes"]
    sizes = [p["size_bytes"] for p in report["packages"]]
    assert sizes == sorted(sizes, reverse=True)


def test_the_app_report_lists_its_python_distributions(example_build: ExampleBuild) -> None:
    reports = _size(example_build, "app/rag-api", "runtime/llm:cpu")
    assert list(reports) == ["app/rag-api", "runtime/llm:cpu"]
    app = reports["app/rag-api"]
    python = {p["name"].lower(): p["size_bytes"] for p in app["packages"] if p["kind"] == "pypi"}
    assert {"fastapi", "uvicorn"} <= set(python)
    assert all(size > 0 for size in python.values())
    assert app["python_bytes"] == sum(python.values())
    assert app["size_bytes"] > reports["runtime/llm:cpu"]["size_bytes"]


def test_the_build_reports_each_images_size(example_build: ExampleBuild) -> None:
    built = [o for o in example_build.outcomes if o["status"] == "built"]
    assert built  # a fresh session namespace: the chain is built (or published) here
    for outcome in example_build.outcomes:
        record = example_build.records[outcome["image"]]
        assert outcome["size_bytes"] == record.get("size_bytes"), outcome
    assert all(o["size_bytes"] > 0 for o in built)


def test_the_text_report(example_build: ExampleBuild) -> None:
    proc = imagefactory(
        example_build.root, "size", "base/debian12", "--top", "3", env=example_build.env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("base/debian12: ") and " MB (" in lines[0]
    assert "layers (lowest first)" in proc.stdout and "largest 3 packages" in proc.stdout
    assert "ADD rootfs.tar" in proc.stdout
