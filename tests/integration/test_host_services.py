"""The host is usable: dockerd + BuildKit, secret mounts that do not leak, and an
authenticated loopback registry that docker and skopeo agree on.

Needs ``scripts/services.sh start`` (CI runs it before the tests); fails, never skips, otherwise.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .helpers.registry import Registry
from .helpers.services import SKOPEO, HostServices, docker, run, unique

pytestmark = pytest.mark.integration

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


def build(context: Path, tag: str, *extra: str, docker_config: Path | None = None) -> None:
    docker(
        "build",
        "--network",
        "host",
        "--progress",
        "plain",
        "--tag",
        tag,
        *extra,
        str(context),
        docker_config=docker_config,
        timeout=180,
    )


def repo_digest(ref: str, repository: str) -> str:
    """The sha256 digest docker recorded for ``ref`` in ``repository`` after a push."""
    out = docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref).stdout
    for entry in json.loads(out) or []:
        name, _, digest = entry.partition("@")
        if name == repository:
            return digest
    raise AssertionError(f"no RepoDigest for {repository} on {ref}: {out.strip()}")


def find_in_saved_image(image: str, tmp_path: Path, needle: bytes) -> list[str]:
    """``docker save`` the image and return every tar member (layer members included) whose
    name or content contains ``needle``."""
    archive = tmp_path / "saved.tar"
    docker("save", "--output", str(archive), image, timeout=120)
    hits: list[str] = []
    with tarfile.open(archive) as outer:
        for member in outer.getmembers():
            if needle in member.name.encode():
                hits.append(member.name)
            if not member.isfile():
                continue
            fileobj = outer.extractfile(member)
            assert fileobj is not None
            data = fileobj.read()
            if needle in data:
                hits.append(member.name)
            if member.name.endswith(".tar"):
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    for inner in layer.getmembers():
                        label = f"{member.name}!{inner.name}"
                        if needle in inner.name.encode() or inner.name.endswith("run/secrets/tok"):
                            hits.append(label)
                        if inner.isfile():
                            inner_obj = layer.extractfile(inner)
                            if inner_obj is not None and needle in inner_obj.read():
                                hits.append(label)
    return hits


@dataclass
class Cleanup:
    images: list[str]
    manifests: list[tuple[str, str]]


@pytest.fixture
def cleanup(registry: Registry) -> Iterator[Cleanup]:
    todo = Cleanup(images=[], manifests=[])
    yield todo
    if todo.images:
        docker("rmi", "--force", *todo.images, check=False)
    for repository, digest in todo.manifests:
        registry.delete_manifest(repository, digest)


# ---------------------------------------------------------------------------------------------


def test_dockerd_answers_via_debian_cli(host_services: HostServices) -> None:
    version = docker("version", "--format", "{{.Client.Version}} {{.Server.Version}}").stdout
    client, server = version.split()
    assert client and server, version
    driver = docker("info", "--format", "{{.Driver}}").stdout.strip()
    assert driver, "docker info reports no storage driver"


def test_buildkit_secret_mount_does_not_leak(
    tiny_base: str, tmp_path: Path, cleanup: Cleanup
) -> None:
    secret = "imagefactory-secret-" + secrets.token_hex(16)
    secret_file = tmp_path / "tok"
    secret_file.write_text(secret)
    secret_file.chmod(0o600)
    context = tmp_path / "context"
    context.mkdir()
    # The RUN line proves the secret was readable during the build by storing only its hash.
    (context / "Dockerfile").write_text(
        f"FROM {tiny_base}\n"
        "RUN --mount=type=secret,id=tok,required=true "
        "test -s /run/secrets/tok && sha256sum /run/secrets/tok > /tok.sha256\n"
    )
    tag = f"imagefactory-test/secret:{unique('t')}"
    cleanup.images.append(tag)

    build(context, tag, "--secret", f"id=tok,src={secret_file}")

    stored = docker("run", "--rm", "--network", "none", tag, "cat", "/tok.sha256").stdout
    assert stored.split()[0] == hashlib.sha256(secret.encode()).hexdigest()
    absent = docker(
        "run",
        "--rm",
        "--network",
        "none",
        tag,
        "sh",
        "-c",
        "test ! -e /run/secrets/tok",
        check=False,
    )
    assert absent.returncode == 0, "the secret mount target persisted in the image"

    history = docker("history", "--no-trunc", tag).stdout
    assert secret not in history
    inspect = docker("image", "inspect", tag).stdout
    assert secret not in inspect
    assert find_in_saved_image(tag, tmp_path, secret.encode()) == []


def test_registry_demands_credentials(registry: Registry) -> None:
    status, headers, _ = registry.request("GET", "/v2/", auth=False)
    assert status == 401
    challenge = {k.lower(): v for k, v in headers.items()}.get("www-authenticate", "")
    assert challenge.lower().startswith("basic"), challenge

    assert registry.request("GET", "/v2/", password=secrets.token_hex(8))[0] == 401
    assert registry.request("GET", "/v2/")[0] == 200

    # Starting a blob upload (the first step of any push) is refused without credentials.
    status, _, _ = registry.request(
        "POST", f"/v2/imagefactory-test/{unique('anon')}/blobs/uploads/", auth=False, data=b""
    )
    assert status == 401


def test_push_without_login_is_refused(
    registry: Registry, tiny_base: str, tmp_path: Path, cleanup: Cleanup
) -> None:
    empty_config = tmp_path / "no-creds"
    empty_config.mkdir(mode=0o700)
    ref = f"{registry.host}/imagefactory-test/anon:{unique('t')}"
    docker("tag", tiny_base, ref)
    cleanup.images.append(ref)

    proc = docker("push", ref, docker_config=empty_config, check=False, timeout=60)

    assert proc.returncode != 0, "an unauthenticated push succeeded"
    message = (proc.stdout + proc.stderr).lower()
    assert any(
        word in message for word in ("unauthorized", "authentication required", "no basic auth")
    ), message


def test_push_with_login_skopeo_digest_and_from_digest(
    registry: Registry,
    docker_config: Path,
    tiny_base: str,
    tmp_path: Path,
    cleanup: Cleanup,
) -> None:
    # A fresh image (unique content) so that removing it locally below does not touch the base.
    context = tmp_path / "base"
    context.mkdir()
    marker = unique("marker")
    (context / "Dockerfile").write_text(f"FROM {tiny_base}\nRUN echo {marker} > /marker\n")
    repository = f"imagefactory-test/pushed-{unique('r')}"
    ref = f"{registry.host}/{repository}:1"
    cleanup.images.append(ref)
    build(context, ref)

    docker("push", ref, docker_config=docker_config, timeout=120)
    digest = repo_digest(ref, f"{registry.host}/{repository}")
    cleanup.manifests.append((repository, digest))
    assert digest.startswith("sha256:")

    skopeo_digest = run(
        [
            SKOPEO,
            "inspect",
            "--tls-verify=false",
            "--authfile",
            str(docker_config / "config.json"),
            "--format",
            "{{.Digest}}",
            f"docker://{ref}",
        ],
        timeout=60,
    ).stdout.strip()
    assert skopeo_digest == digest

    status, headers, _ = registry.request(
        "HEAD", f"/v2/{repository}/manifests/1", headers={"Accept": MANIFEST_TYPES}
    )
    assert status == 200
    assert {k.lower(): v for k, v in headers.items()}.get("docker-content-digest") == digest

    # FROM <registry>/<repo>@sha256:... : with the image gone locally, BuildKit must pull it
    # from the registry using the client's credentials (DOCKER_CONFIG).
    docker("rmi", "--force", ref)
    pinned = tmp_path / "pinned"
    pinned.mkdir()
    (pinned / "Dockerfile").write_text(
        f"FROM {registry.host}/{repository}@{digest}\nRUN cat /marker > /copied\n"
    )
    child = f"imagefactory-test/pinned:{unique('t')}"
    cleanup.images.append(child)
    build(pinned, child, docker_config=docker_config)
    copied = docker("run", "--rm", "--network", "none", child, "cat", "/copied").stdout
    assert copied.strip() == marker
