"""``imagefactory outdated`` against the real Debian mirror: an image built with an older
version of a package that has a newer one in bookworm-security or bookworm-updates reports it
pending, with the version the mirror has now.

Which package and versions is found independently of imagefactory (``helpers/mirror.py``): the
first candidate whose bookworm (point release) version is older than its newest is pinned.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .helpers.example import ExampleBuild, cli_json, imagefactory
from .helpers.mirror import older_version


def test_an_image_built_from_an_older_package_version_is_reported_outdated(
    example_build: ExampleBuild, example_copy: Path
) -> None:
    base = example_build.reference("base/debian12")
    package, old, new, security = older_version(base)
    folder = example_copy / "images" / "runtime" / "stale"
    folder.mkdir(parents=True)
    spec = {
        "name": "runtime/stale",
        "version": "1.0.0",
        "from": "base/debian12",
        "packages": [f"{package}={old}"],
        "user": "app",
    }
    (folder / "image.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    env = example_build.env
    built = imagefactory(example_copy, "build", "runtime/stale", "--json", env=env, timeout=900)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]

    proc = imagefactory(
        example_copy, "outdated", "runtime/stale", "base/debian12", "--json", env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    document = cli_json(proc)
    reports = {r["image"]: r for r in document["images"]}
    stale = reports["runtime/stale"]
    assert stale["suite"] == "bookworm" and stale["packages"] > 50
    [update] = [u for u in stale["updates"] if u["package"] == package]
    assert (update["installed"], update["available"], update["security"]) == (old, new, security)
    assert stale["security"] == sum(1 for u in stale["updates"] if u["security"])
    # the base is whatever its rootfs was bootstrapped with: every pending entry is a real one
    assert reports["base/debian12"]["suite"] == "bookworm"
    assert all(u["available"] != u["installed"] for u in reports["base/debian12"]["updates"])
    assert {i["source"] for i in document["indexes"]} <= {"mirror", "cache"}
    assert len(document["indexes"]) == 3  # bookworm, -updates, -security: main, amd64

    # a runner has no state: the digest comes from the content tag in the build registry
    (example_copy / ".imagefactory" / "state.json").rename(example_copy / "state.json.away")
    stateless = imagefactory(example_copy, "outdated", "--json", env=env, timeout=300)
    assert stateless.returncode == 0, stateless.stderr[-3000:]
    found = cli_json(stateless)
    by_image = {r["image"]: r for r in found["images"]}
    assert by_image["runtime/stale"]["reference"] == stale["reference"]
    assert by_image["runtime/stale"]["updates"] == stale["updates"]
    assert "runtime/llm:cuda" in found["not_built"]  # the session never builds it
    (example_copy / "state.json.away").rename(example_copy / ".imagefactory" / "state.json")

    # a warm cache: the same answer; --check fails the run while anything is pending
    again = imagefactory(example_copy, "outdated", "runtime/stale", "--check", env=env, timeout=300)
    assert again.returncode == 1, again.stdout + again.stderr
    assert f"{package}" in again.stdout and "pending updates" in again.stdout
