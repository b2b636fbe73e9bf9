"""Registry credentials that only a Docker credential helper holds (``credHelpers`` in the user's
Docker config, as ``docker-credential-ecr-login`` or ``pass`` set up): imagefactory's registry
API cannot read them, so every look-up, tag list, label and extra tag falls back to skopeo,
which asks the helper, and the Docker CLI's push asks it too.

The helper here is a script on PATH that answers ``get`` with the registry's real credentials
and logs each call; the project file names no credential variables, and the test's environment
has none, so nothing else can log in. The catalog copy's images are pushed to a namespace of
their own (``build`` reuses the session's local images and pushes them there), then ``push``
writes the semver tags, and the registry must hold them under the built digest.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from pathlib import Path

import pytest
import yaml

from .helpers.example import ExampleBuild, cli_json, imagefactory
from .helpers.registry import Registry

pytestmark = pytest.mark.integration

APP = "app/rag-api"
HELPER = "imagefactorytest"


def helper_config(folder: Path, registry: Registry) -> tuple[Path, Path, Path]:
    """(DOCKER_CONFIG, a PATH entry with the helper, the helper's call log)."""
    config, bin_dir, log = folder / "docker", folder / "bin", folder / "helper-calls.log"
    config.mkdir()
    bin_dir.mkdir()
    (config / "config.json").write_text(json.dumps({"credHelpers": {registry.host: HELPER}}))
    answer = json.dumps(
        {"ServerURL": registry.host, "Username": registry.user, "Secret": registry.password}
    )
    secret_file = folder / "answer.json"
    secret_file.write_text(answer)
    secret_file.chmod(0o600)
    helper = bin_dir / f"docker-credential-{HELPER}"
    helper.write_text(
        "#!/bin/sh\n"
        f'echo "$1" >> {log}\n'
        f'if [ "$1" = get ]; then cat {secret_file}; else cat >/dev/null; fi\n'
    )
    helper.chmod(0o755)
    return config, bin_dir, log


def manifest_digest(registry: Registry, repository: str, tag: str) -> str:
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json, "
            "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
            "Authorization": "Basic "
            + base64.b64encode(f"{registry.user}:{registry.password}".encode()).decode(),
        },
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as answer:
        return str(answer.headers["Docker-Content-Digest"])


def test_push_with_credentials_only_a_helper_holds(
    example_build: ExampleBuild, example_copy: Path, tmp_path: Path
) -> None:
    registry = example_build.registry
    path = example_copy / "imagefactory.yaml"
    project = yaml.safe_load(path.read_text())
    # Evidence (.sig/.att) moves through the registry API, which cannot ask a credential helper
    # (a clear UserError, docs/supply-chain.md): this catalog copy does not sign.
    project.pop("signing", None)
    for stage, settings in project["registries"].items():
        settings.pop("username_env", None)
        settings.pop("password_env", None)
        settings["namespace"] = f"it-{example_build.session}/credential-helper/{stage}"
    path.write_text(yaml.safe_dump(project, sort_keys=False))
    config, bin_dir, log = helper_config(tmp_path, registry)
    env = {
        name: value
        for name, value in example_build.env.items()
        if not name.startswith("IMAGEFACTORY_REGISTRY_")
    }
    env |= {"DOCKER_CONFIG": str(config), "PATH": f"{bin_dir}:{env['PATH']}"}

    built = imagefactory(example_copy, "build", APP, "--json", env=env, timeout=600)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    tested = imagefactory(example_copy, "test", APP, "--json", env=env, timeout=600)
    assert tested.returncode == 0, tested.stdout[-2000:] + tested.stderr[-2000:]
    asked_before_push = log.read_text().split().count("get") if log.exists() else 0
    pushed = imagefactory(example_copy, "push", APP, "--json", env=env, timeout=600)
    assert pushed.returncode == 0, pushed.stdout[-2000:] + pushed.stderr[-2000:]

    (release,) = cli_json(pushed)["images"]
    repository = f"it-{example_build.session}/credential-helper/dev/{APP}"
    for tag in (release["version"], "latest"):
        assert manifest_digest(registry, repository, tag) == release["digest"]
    # push looks up, lists, tags and verifies through skopeo, which asks the helper each time
    assert log.read_text().split().count("get") > asked_before_push, "push never asked the helper"
    assert registry.password not in pushed.stdout + pushed.stderr + built.stdout + built.stderr

    # A pipeline without the previous state: only the content-hash label in the registry (read
    # through skopeo, the helper asked) tells that this content already is that version.
    state_path = example_copy / ".imagefactory" / "state.json"
    state = json.loads(state_path.read_text())
    state["images"][APP]["versions"] = {}
    state["images"][APP]["environments"] = {}
    state_path.write_text(json.dumps(state))
    again = imagefactory(example_copy, "push", APP, "--json", env=env, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    (second,) = cli_json(again)["images"]
    assert (second["version"], second["digest"]) == (release["version"], release["digest"])
