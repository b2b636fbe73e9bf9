"""The example's shell-less application (``app/rag-api-distroless``: ``distroless: true`` on
app/rag-api), for real: built on the session's example, its exported filesystem holds no shell,
perl, apt or dpkg (read from ``docker export``, never by exec), its declarative tests pass
through ``imagefactory test`` (files, packages, users and pip read from its layers; the service
check starts its real entrypoint and reaches /healthz), its SBOM still lists the Debian packages
of the Python runtime, and it is smaller than the shell image it is made from.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

from .helpers.example import ExampleBuild, cli_json, imagefactory
from .helpers.services import docker, unique

SHELL_LESS = "app/rag-api-distroless"
APP = "app/rag-api"
FORBIDDEN = ("bin/sh", "bin/bash", "bin/dash", "usr/bin/perl", "usr/bin/apt-get", "usr/bin/dpkg")


def _ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _exported(reference: str, folder: Path) -> tuple[set[str], dict[str, str]]:
    """Every path of the image's filesystem and its symlinks (path → target), from ``docker
    export`` of a container that is created, never started."""
    name = unique("shell-less-export")
    docker("create", "--name", name, reference, timeout=120)
    try:
        archive = folder / "export.tar"
        docker("export", "--output", str(archive), name, timeout=300)
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
    finally:
        docker("rm", "--force", name, check=False)
    links = {m.name.strip("/"): m.linkname for m in members if m.issym()}
    return {m.name.strip("/") for m in members}, links


def _present(path: str, names: set[str], links: dict[str, str]) -> bool:
    """Whether ``path`` is in the image, its first folder resolved (``bin`` → ``usr/bin``)."""
    top, _, rest = path.partition("/")
    target = links.get(top)
    return path in names or (target is not None and f"{target.strip('/')}/{rest}" in names)


def test_the_shell_less_app_has_no_shell_passes_its_tests_and_lists_its_packages(
    example_build: ExampleBuild, example_copy: Path, tmp_path: Path
) -> None:
    env = example_build.env
    built = imagefactory(example_copy, "build", SHELL_LESS, "--json", env=env, timeout=900)
    _ok(built)
    outcome = {o["image"]: o for o in cli_json(built)["images"]}[SHELL_LESS]
    assert outcome["status"] == "built", outcome

    reference = f"{example_build.repository(SHELL_LESS)}@{outcome['digest']}"

    names, links = _exported(reference, tmp_path)
    assert links["bin"] == "usr/bin"  # merged /usr, so bin/sh would be usr/bin/sh
    assert "opt/venv/bin/python" in names and "usr/bin/python3.11" in names
    assert "opt/rag-api/rag_api/main.py" in names
    assert [path for path in FORBIDDEN if _present(path, names, links)] == []
    assert "var/lib/dpkg/status.d/python3.11-minimal" in names
    assert "var/lib/dpkg/status" not in names

    tested = imagefactory(example_copy, "test", SHELL_LESS, "--json", env=env, timeout=600)
    _ok(tested)
    (report,) = cli_json(tested)["images"]
    kinds = {check["kind"] for check in report["checks"] if check["passed"]}
    assert {"files", "packages", "pip", "users", "services", "metadata"} <= kinds, report
    assert report["passed"] is True, report

    sbom_file = tmp_path / "shell-less.cdx.json"
    _ok(imagefactory(example_copy, "sbom", SHELL_LESS, "--out", str(sbom_file), env=env))
    components = json.loads(sbom_file.read_text())["components"]
    debian = {c["name"] for c in components if c.get("purl", "").startswith("pkg:deb/debian/")}
    assert {"python3.11-minimal", "libpython3.11-stdlib", "python3-minimal", "libc6"} <= debian
    assert not debian & {"bash", "dash", "dpkg", "apt", "perl-base", "coreutils"}

    sizes = cli_json(imagefactory(example_copy, "size", SHELL_LESS, APP, "--json", env=env))
    by_image = {r["image"]: r["size_bytes"] for r in sizes["images"]}
    print(
        f"size: {SHELL_LESS} {by_image[SHELL_LESS] / 1e6:.1f} MB, {APP} {by_image[APP] / 1e6:.1f} MB"
    )
    assert by_image[SHELL_LESS] < by_image[APP]
