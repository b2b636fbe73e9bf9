"""``imagefactory lock`` against the real Debian mirror and PyPI, and a locked build.

An image on the session's runtime/llm:cpu installs a Debian package with dependencies (jq) and
a pip requirement (six): its lock holds the closure apt would install, at the candidates
``apt-cache policy`` names, and pip's file hash, as ``pip download`` and ``sha256sum`` find
them in a container of the parent (independently of imagefactory). The build installs exactly
that; a version the mirror no longer has and a wrong hash fail it, saying which; a package
added to image.yaml makes ``lock --check`` fail.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .helpers.example import ExampleBuild, cli_json, imagefactory
from .helpers.services import docker

LOCKED = "app/locked"
PARENT = "runtime/llm:cpu"
SPEC: dict[str, Any] = {
    "name": LOCKED,
    "version": "1.0.0",
    "from": PARENT,
    "user": "app",
    "packages": ["jq"],
    "pip": ["six==1.17.0"],
}
CLOSURE = ("jq", "libjq1", "libonig5")  # jq's dependencies in bookworm; none in the runtime


def _in(image: str, script: str, timeout: float = 300) -> str:
    return docker(
        "run", "--rm", "--network", "host", "--user", "0:0", "--entrypoint", "bash", image,
        "-c", script, timeout=timeout,
    ).stdout  # fmt: skip


def _candidates(image: str) -> dict[str, str]:
    """``apt-cache policy``'s candidate of each package of CLOSURE, in ``image``."""
    out = _in(image, f"apt-get update -qq >/dev/null && apt-cache policy {' '.join(CLOSURE)}")
    found, name = {}, None
    for line in out.splitlines():
        if not line.startswith(" "):
            name = line.rstrip(":")
        elif line.strip().startswith("Candidate:") and name:
            found[name] = line.split(":", 1)[1].strip()
    return found


def test_lock_resolves_the_closure_and_hashes_and_the_build_installs_exactly_them(
    example_build: ExampleBuild, example_copy: Path
) -> None:
    env = example_build.env
    folder = example_copy / "images" / LOCKED
    folder.mkdir(parents=True)
    (folder / "image.yaml").write_text(yaml.safe_dump(SPEC, sort_keys=False))

    missing = imagefactory(example_copy, "lock", LOCKED, "--check", "--json", env=env)
    assert missing.returncode == 1
    assert cli_json(missing)["stale"] == [
        {"image": LOCKED, "problems": ["no lock: run 'imagefactory lock'"]}
    ]

    proc = imagefactory(example_copy, "lock", LOCKED, "--json", env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    [result] = cli_json(proc)["images"]
    assert result["changed"] is True
    lock = yaml.safe_load((folder / "image.lock").read_text())["locks"][LOCKED]
    parent = example_build.reference(PARENT)
    assert lock["apt"] == _candidates(parent)  # the closure, at apt's own candidates
    assert lock["arch"] == _in(parent, "dpkg --print-architecture").strip()
    downloaded = _in(
        parent,
        "cd /tmp && /opt/venv/bin/pip download -q --no-deps six==1.17.0 && sha256sum *.whl",
    ).split()[0]
    assert lock["pip"] == {"six": {"version": "1.17.0", "hash": f"sha256:{downloaded}"}}
    checked = imagefactory(example_copy, "lock", "--all", "--check", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    built = imagefactory(example_copy, "build", LOCKED, "--json", env=env, timeout=900)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    state = json.loads((example_copy / ".imagefactory" / "state.json").read_text())
    record = state["images"][LOCKED]
    image = f"{record['repository']}:{record['tag']}"
    installed = _in(
        image,
        "dpkg-query --show --showformat='${Package} ${Version}\\n' " + " ".join(CLOSURE)
        + " && /opt/venv/bin/python -c 'import six; print(\"six\", six.__version__)'",
    )  # fmt: skip
    assert dict(line.split() for line in installed.splitlines()) == {
        **lock["apt"],
        "six": "1.17.0",
    }

    again = imagefactory(example_copy, "lock", LOCKED, "--json", env=env, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [r["changed"] for r in cli_json(again)["images"]] == [False]  # same mirror state

    # a version the mirror does not have fails the build, naming it and the way out
    original = (folder / "image.lock").read_text()
    gone = f"{lock['apt']['libjq1']}+z1"
    (folder / "image.lock").write_text(
        original.replace(f"libjq1: '{lock['apt']['libjq1']}'", f"libjq1: '{gone}'")
    )
    failed = imagefactory(example_copy, "build", LOCKED, env=env, timeout=900)
    assert failed.returncode != 0
    said = failed.stdout + failed.stderr
    assert (
        f"image.lock pins libjq1 {gone}, which the mirror no longer has: run imagefactory lock {LOCKED}"
        in said
    )

    # a file whose hash is not the lock's is refused by pip
    (folder / "image.lock").write_text(original.replace(downloaded, "0" * 64))
    failed = imagefactory(example_copy, "build", LOCKED, env=env, timeout=900)
    assert failed.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in failed.stdout + failed.stderr

    # image.yaml asks for more than the lock holds: --check says so (no engine needed)
    (folder / "image.lock").write_text(original)
    (folder / "image.yaml").write_text(
        yaml.safe_dump({**SPEC, "packages": ["jq", "tree"]}, sort_keys=False)
    )
    stale = imagefactory(example_copy, "lock", LOCKED, "--check", env=env)
    assert stale.returncode == 1
    assert f"{LOCKED}: package tree is not locked" in stale.stdout
