"""The factory builds its own CI job image (issue 19, item 2): ``tools/ci``, on the session's
bootstrapped base, with imagefactory installed from a wheel of this checkout, the Docker CLI,
skopeo, mmdebstrap and git. Its declarative tests run the tools (``imagefactory test``); here
the job's own commands run inside it: ``docker version`` against the host's engine (its socket
given to the container), and ``imagefactory validate`` and ``ci generate`` on the catalog,
which must write the same pipeline as the checkout's imagefactory. Without the wheel the build
is refused with the command that makes it.

One build (~1 min warm, ~2 cold: docker.io, skopeo, mmdebstrap, git and 57 locked Python
distributions); the base is the session's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from .helpers.example import ExampleBuild, cli_json, imagefactory
from .helpers.services import DOCKER, REPO_ROOT, docker, run

REF = "tools/ci"
SOCKET = Path("/var/run/docker.sock")


def test_the_tools_image_runs_the_jobs_commands(
    example_build: ExampleBuild, example_copy: Path, tmp_path: Path
) -> None:
    env = example_build.env
    refused = imagefactory(example_copy, "build", REF, env=env)
    assert refused.returncode == 1, refused.stderr
    assert "matches no file" in refused.stderr and "pip wheel --no-deps" in refused.stderr

    dist = example_copy / "images" / "tools" / "ci" / "dist"
    source = tmp_path / "source"  # pip wheel writes build/ and *.egg-info beside the sources
    shutil.copytree(
        REPO_ROOT / "imagefactory",
        source / "imagefactory",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist),
         str(source)], timeout=300)  # fmt: skip
    [wheel] = dist.glob("imagefactory-*.whl")

    built = cli_json(imagefactory(example_copy, "build", REF, "--json", env=env, timeout=900))
    outcome = next(o for o in built["images"] if o["image"] == REF)
    assert outcome["status"] == "built", outcome
    record = json.loads((example_copy / ".imagefactory" / "state.json").read_text())["images"][REF]
    reference = f"{record['repository']}@{outcome['digest']}"

    tested = imagefactory(example_copy, "test", REF, "--json", env=env, timeout=600)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-2000:]

    assert SOCKET.is_socket(), f"{SOCKET}: the engine this test gives the container"
    host = docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    inside = docker(
        "run", "--rm", "--network", "none", "-v", f"{SOCKET}:{SOCKET}", reference,
        "docker", "version", "--format", "{{.Server.Version}}",
    ).stdout.strip()  # fmt: skip
    assert inside == host != ""

    version = docker("run", "--rm", "--network", "none", reference, "imagefactory", "--version")
    assert version.stdout.strip() == imagefactory(example_copy, "--version", env=env).stdout.strip()
    assert wheel.name.split("-")[1] in version.stdout

    mounted = ["-v", f"{example_copy}:/catalog:ro", "-w", "/catalog"]
    validated = docker("run", "--rm", "--network", "none", *mounted, reference,
                       "imagefactory", "validate", "--json", check=False)  # fmt: skip
    assert validated.returncode == 0, validated.stderr
    assert json.loads(validated.stdout)["ok"] is True
    generate = ["imagefactory", "ci", "generate", "--builder", "dind"]
    inside_pipeline = docker("run", "--rm", "--network", "none", *mounted, reference, *generate)
    outside = imagefactory(example_copy, *generate[1:], env=env)
    assert outside.returncode == 0, outside.stderr
    assert inside_pipeline.stdout == outside.stdout
    assert "/tools/ci:1.0.0\n" in outside.stdout  # the default job image, this version
    subprocess.run([DOCKER, "rmi", "--force", reference], capture_output=True, check=False)
