"""``imagefactory init`` makes a catalog that works out of the box: in a fresh git repository,
``validate``, ``build --all`` and ``test --all`` pass against the real engine and the local
htpasswd registry (the starter's literal 127.0.0.1:5000), and the pipeline stays current.

Two changes to what init wrote, both for the test run, neither in a file a user would touch
first: the registry namespaces come from the variables CI would set (IMAGEFACTORY_*_NAMESPACE:
``it-<session>/init/<env>``, removed at the end), and ``defaults.labels`` gains the session label
(as the example fixture does: every content hash is new, so the build really builds, and the
session's images are removed at the end). The base's bootstrap recipe is the example's
(tests/unit/test_init.py checks it), so the rootfs the example fixture bootstrapped is reused.
"""

from __future__ import annotations

import json
from pathlib import Path

from .helpers.example import (
    SESSION_LABEL,
    ExampleBuild,
    cli_json,
    edit_text,
    git_commit,
    imagefactory,
    link_or_copy_tree,
)
from .helpers.registry import registry_cleanup
from .helpers.services import tail

STAGES = ("dev", "preprod", "prod")
ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"


def test_init_catalog_validates_builds_and_tests(
    example_build: ExampleBuild, tmp_path: Path
) -> None:
    session = example_build.session
    proc = imagefactory(tmp_path, "init", "cat", "--json", env=example_build.env)
    assert proc.returncode == 0, tail(proc.stderr)
    root = tmp_path / "cat"
    assert cli_json(proc)["written"][-1] == ".gitlab-ci.yml"
    edit_text(
        root / "imagefactory.yaml",
        "  labels:\n",
        f"  labels:\n    {SESSION_LABEL}: {session}\n",
    )
    link_or_copy_tree(example_build.root / ".imagefactory" / "cache", root / ".imagefactory/cache")
    git_commit(root, "imagefactory init")
    env = {
        **example_build.env,
        **{f"IMAGEFACTORY_{s.upper()}_NAMESPACE": f"it-{session}/init/{s}" for s in STAGES},
    }
    try:
        validated = imagefactory(root, "validate", "--json", env=env)
        assert validated.returncode == 0, tail(validated.stdout + validated.stderr)

        built = imagefactory(root, "build", "--all", "--json", env=env, timeout=900)
        document = cli_json(built)
        assert built.returncode == 0 and document["ok"] is True, tail(built.stderr, 40)
        [outcome] = document["images"]
        assert outcome["image"] == "base/debian12" and outcome["status"] == "built", outcome

        state = json.loads((root / ".imagefactory" / "state.json").read_text())
        record = state["images"]["base/debian12"]
        repository = record["repository"]
        assert repository == f"{example_build.registry.host}/it-{session}/init/dev/base/debian12"
        status, _, _ = example_build.registry.request(
            "HEAD",
            f"/v2/it-{session}/init/dev/base/debian12/manifests/{record['tag']}",
            headers={"Accept": ACCEPT},
        )
        assert status == 200, f"the pushed tag {record['tag']} is not in the registry"

        tested = imagefactory(root, "test", "--all", "--json", env=env, timeout=600)
        report = cli_json(tested)
        assert tested.returncode == 0 and report["ok"] is True, tail(tested.stdout, 40)
        [image] = report["images"]
        assert image["passed"] is True and len(image["checks"]) >= 10

        check = imagefactory(root, "ci", "generate", "--out", ".gitlab-ci.yml", "--check", env=env)
        assert check.returncode == 0, tail(check.stderr)
    finally:
        registry_cleanup(example_build.registry, f"it-{session}/init")
