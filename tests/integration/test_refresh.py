"""``imagefactory build --refresh`` against the real Debian mirror: an image that holds an older
version of a package (built while image.yaml pinned it; the pin since removed) gets the newest
version recorded in refresh.yaml under the image that installed it, and the build rebuilds
exactly that image and its descendants; then a record alone rebuilds exactly that cascade, and
a version the mirror does not have fails the build, naming it.

The package and versions are found independently of imagefactory (``helpers/mirror.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.fakes.gitlab_api import FakeGitlab, serve

from .helpers.example import ExampleBuild, cli_json, imagefactory
from .helpers.mirror import older_version
from .helpers.services import docker

STALE, CHILD, SIBLING = "runtime/stale", "runtime/stale-child", "runtime/llm:cpu"
BASE = "base/debian12"
LINEAGE = {
    BASE: {BASE},
    STALE: {BASE, STALE},
    CHILD: {BASE, STALE, CHILD},
    SIBLING: {BASE, SIBLING},
}


def _write(root: Path, spec: dict[str, Any]) -> None:
    folder = root / "images" / spec["name"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "image.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def _statuses(proc: Any) -> dict[str, str]:
    return {o["image"]: o["status"] for o in cli_json(proc)["images"]}


def test_refresh_records_under_the_installer_and_rebuilds_exactly_the_cascade(
    example_build: ExampleBuild, example_copy: Path
) -> None:
    env = example_build.env
    package, old, new, _ = older_version(example_build.reference(BASE))
    stale = {"name": STALE, "version": "1.0.0", "from": "base/debian12", "user": "app"}
    _write(example_copy, {**stale, "packages": [f"{package}={old}"]})
    _write(example_copy, {"name": CHILD, "version": "1.0.0", "from": STALE, "env": {"X": "1"}})
    built = imagefactory(example_copy, "build", CHILD, "--json", env=env, timeout=900)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    _write(example_copy, {**stale, "packages": [package]})  # the pin removed: what was built stays

    dry = imagefactory(
        example_copy, "build", CHILD, SIBLING, "--refresh", "--dry-run", "--json", env=env,
        timeout=300,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr[-3000:]
    document = cli_json(dry)
    updates = document["refresh"]["updates"]
    [mine] = [u for u in updates if u["package"] == package]
    assert (mine["image"], mine["installed"], mine["version"]) == (STALE, old, new)
    assert mine["seen_in"] == [STALE, CHILD]  # found in the child, recorded under its installer
    assert not (example_copy / "refresh.yaml").exists()  # a dry run writes nothing
    owners = {u["image"] for u in updates}
    assert "runtime/llm:cuda" not in owners  # not in the build: not asked

    # as the scheduled pipeline runs it: the records proposed through GitLab's API (a fake)
    with serve(FakeGitlab(token="glpat-it", project_path="bank/images")) as fake:
        fake.repository = {"main": {}}
        fake.branches = lambda: set(fake.repository)
        gitlab = {"CI_SERVER_URL": fake.url, "CI_PROJECT_PATH": "bank/images",
                  "CI_DEFAULT_BRANCH": "main", "IMAGEFACTORY_GITLAB_TOKEN": "glpat-it"}  # fmt: skip
        proc = imagefactory(
            example_copy, "build", CHILD, SIBLING, "--refresh", "--merge-request", "--json",
            env={**env, **gitlab}, timeout=1800,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "glpat-it" not in proc.stdout + proc.stderr
    statuses = _statuses(proc)
    text = (example_copy / "refresh.yaml").read_text()
    recorded = yaml.safe_load(text)["refreshed"]
    assert recorded[STALE][package] == new
    assert cli_json(proc)["merge_request"]["action"] == "created"
    assert fake.repository["imagefactory/refresh"] == {"refresh.yaml": text}
    assert f"| {STALE} | {package} | {old} | {new} |" in fake.merge_requests[0]["description"]
    # exactly the cascade: the owners of updates and their descendants in the build
    cascade = {ref for ref, line in LINEAGE.items() if line & owners}
    assert set(statuses) == set(LINEAGE)
    assert {ref for ref, s in statuses.items() if s == "built"} == cascade | {STALE, CHILD}

    after = imagefactory(example_copy, "outdated", CHILD, "--json", env=env, timeout=300)
    assert after.returncode == 0, after.stderr[-3000:]
    [report] = cli_json(after)["images"]
    assert package not in {u["package"] for u in report["updates"]}

    # a record alone: exactly its image and descendants, checked against what dpkg holds
    state = json.loads((example_copy / ".imagefactory" / "state.json").read_text())
    record = state["images"][STALE]
    libc = docker(
        "run", "--rm", "--entrypoint", "dpkg-query", f"{record['repository']}:{record['tag']}",
        "--show", "--showformat=${Version}", "libc6",
    ).stdout.strip()  # fmt: skip
    recorded[STALE]["libc6"] = libc
    (example_copy / "refresh.yaml").write_text(yaml.safe_dump({"refreshed": recorded}))
    again = imagefactory(example_copy, "build", CHILD, SIBLING, "--json", env=env, timeout=900)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert _statuses(again) == {BASE: "reused", STALE: "built", CHILD: "built", SIBLING: "reused"}

    # a version the mirror does not have fails the build, saying which
    recorded[STALE][package] = f"{new}+z1"
    (example_copy / "refresh.yaml").write_text(yaml.safe_dump({"refreshed": recorded}))
    failed = imagefactory(example_copy, "build", STALE, env=env, timeout=900)
    assert failed.returncode != 0
    assert f"refresh.yaml asks for {package} {new}+z1 or later; installed: {new}" in (
        failed.stdout + failed.stderr
    )
