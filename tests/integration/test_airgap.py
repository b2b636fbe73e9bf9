"""``imagefactory export`` and ``import`` between two real registries: the air-gap transfer.

The session build of the example catalog (``example_build``) is copied once for this module; its
app/rag-api is tested and pushed to dev on registry A (the htpasswd registry of
``scripts/services.sh``, 127.0.0.1:5000), nothing is rebuilt. ``export --env dev`` writes the
OCI layout archive of what dev holds, with the ``.sig``/``.att`` and the signed index; skopeo
reads it (``oci-archive:`` and, unpacked, ``oci:``); ``import --to airgap`` pushes it into
registry B (TLS from the session's CA, htpasswd: ``registry_b``), an environment of its own
whose only registry is B. Then the digests, the manifests' bytes and the evidence are the same
on both sides, the signatures verify in B, state and the audit log record it (intent, then
done), a second import writes nothing, and an archive with one byte changed is refused before
anything reaches a registry.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagefactory.release import audit
from imagefactory.release.audit import DONE, INTENT, phase
from imagefactory.signing.oci import attestation_tag, signature_tag

from .helpers.example import ExampleBuild, imagefactory
from .helpers.registry import Registry
from .helpers.services import SKOPEO, run
from .helpers.tls_registry import HOST_BUNDLE, TLSRegistry, write_bundle
from .test_release import (
    APP,
    APP_VERSION,
    B_PASSWORD_ENV,
    B_USER_ENV,
    CLI_TIMEOUT,
    audit_of,
    copy_catalog,
    ok,
    refused,
    state_of,
    without_ci,
)

pytestmark = pytest.mark.integration

NAME = APP.partition(":")[0]
TIMEOUT = 600  # the app's layers (~130 MB) through a tar and over loopback TLS, on 2 cores


def add_airgap_environment(root: Path, session: str, b_host: str, namespace: str) -> None:
    """dev in a namespace of this module's own on A; an ``airgap`` environment after prod whose
    registry is B (TLS verified, its own credential variables) in ``namespace``."""
    path = root / "imagefactory.yaml"
    project = yaml.safe_load(path.read_text())
    project["registries"]["dev"]["namespace"] = f"it-{session}/airgap/dev"
    project["registries"]["airgap"] = {
        "url": b_host,
        "namespace": f"it-{session}/{namespace}",
        "username_env": B_USER_ENV,
        "password_env": B_PASSWORD_ENV,
        "tls_verify": True,
    }
    project["environments"].append({"name": namespace, "registries": ["airgap"]})
    path.write_text(yaml.safe_dump(project, sort_keys=False))


def registry_of(root: Path, env: str) -> dict[str, Any]:
    project = yaml.safe_load((root / "imagefactory.yaml").read_text())
    [name] = next(e for e in project["environments"] if e["name"] == env)["registries"]
    registry = project["registries"][name]
    assert isinstance(registry, dict)
    return registry


def path_of(root: Path, env: str) -> str:
    """The repository path (no host) of the app in ``env``'s registry."""
    return f"{registry_of(root, env)['namespace']}/{NAME}"


def manifest_bytes(registry: Registry | TLSRegistry, path: str, reference: str) -> bytes | None:
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
    status, _, body = registry.request(
        "GET", f"/v2/{path}/manifests/{reference}", headers={"Accept": accept}
    )
    return body if status == 200 else None


@dataclass(frozen=True)
class Transfer:
    root: Path
    env: dict[str, str]
    digest: str  # what dev holds of the app
    archive: Path
    dry_export: dict[str, Any]
    export: dict[str, Any]
    dry_import: dict[str, Any]
    b_after_dry_run: bytes | None
    imported: dict[str, Any]
    imported_text: str  # its progress lines (stderr)
    again: dict[str, Any]
    audit_after_import: list[dict[str, Any]]


@pytest.fixture(scope="module")
def transfer(
    example_build: ExampleBuild,
    registry_b: TLSRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Transfer:
    folder = tmp_path_factory.mktemp("airgap")
    root = copy_catalog(example_build.root, folder / "catalog")
    add_airgap_environment(root, example_build.session, registry_b.host, "airgap")
    env = without_ci(example_build.env)
    env[B_USER_ENV], env[B_PASSWORD_ENV] = registry_b.user, registry_b.password
    ok(imagefactory(root, "test", APP, "--json", env=env, timeout=CLI_TIMEOUT))
    ok(imagefactory(root, "push", APP, "--json", env=env, timeout=CLI_TIMEOUT))
    # only now: the CA bundle is part of the content hash (as in test_release.py)
    bundle = write_bundle(folder / "bundle.pem", HOST_BUNDLE, registry_b.ca_cert)
    project = yaml.safe_load((root / "imagefactory.yaml").read_text())
    project["build"]["ca_bundle"] = str(bundle)
    (root / "imagefactory.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    digest = state_of(root)[APP]["environments"]["dev"]["digest"]

    archive = folder / "dev.oci.tar"
    export = ["export", "--env", "dev", APP, "--out", str(archive), "--json"]
    dry_export = ok(imagefactory(root, *export, "--dry-run", env=env, timeout=TIMEOUT))
    assert not archive.exists()
    exported = ok(imagefactory(root, *export, env=env, timeout=TIMEOUT))

    into = ["import", str(archive), "--to", "airgap", "--json"]
    dry_import = ok(imagefactory(root, *into, "--dry-run", env=env, timeout=TIMEOUT))
    b_after_dry_run = manifest_bytes(registry_b, path_of(root, "airgap"), APP_VERSION)
    proc = imagefactory(root, *into, env=env, timeout=TIMEOUT)
    imported = ok(proc)
    audit_after_import = audit_of(root)
    again = ok(imagefactory(root, *into, env=env, timeout=TIMEOUT))
    return Transfer(
        root, env, digest, archive, dry_export, exported, dry_import, b_after_dry_run,
        imported, proc.stderr, again, audit_after_import,
    )  # fmt: skip


def test_export_writes_an_oci_layout_of_the_digest_and_its_evidence(transfer: Transfer) -> None:
    [image] = transfer.export["images"]
    assert (image["image"], image["version"], image["digest"]) == (
        APP,
        APP_VERSION,
        transfer.digest,
    )
    assert sorted(image["evidence"]) == sorted(
        [signature_tag(transfer.digest), attestation_tag(transfer.digest)]
    )
    assert (
        transfer.dry_export["out"] is None
        and transfer.dry_export["images"] == transfer.export["images"]
    )
    with tarfile.open(transfer.archive) as tar:
        names = tar.getnames()
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        assert all(m.isfile() or m.isdir() for m in tar.getmembers())
    assert {"oci-layout", "index.json", "imagefactory-index.json"} <= set(names)
    refs = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}
    listed = refs[f"{NAME}:{APP_VERSION}"]
    if listed["digest"] != transfer.digest:  # a Docker-typed manifest: listed through an OCI index
        assert listed["mediaType"] == "application/vnd.oci.image.index.v1+json"
        with tarfile.open(transfer.archive) as tar:
            member = tar.extractfile(f"blobs/sha256/{listed['digest'][7:]}")
            assert member is not None
            [child] = json.loads(member.read())["manifests"]
        assert child["digest"] == transfer.digest
        assert child["platform"] == {"architecture": "amd64", "os": "linux"}
    assert set(refs) == {
        f"{NAME}:{APP_VERSION}",
        f"{NAME}:{signature_tag(transfer.digest)}",
        f"{NAME}:{attestation_tag(transfer.digest)}",
    }
    assert transfer.export["blobs"] == sum(1 for n in names if n.startswith("blobs/sha256/"))


def test_skopeo_reads_every_image_of_the_archive_and_of_the_unpacked_layout(
    transfer: Transfer, tmp_path: Path, registry: Registry
) -> None:
    """skopeo copies each image by its ref name out of the archive (``oci-archive:``) and out
    of the layout unpacked (``oci:``) with its digest preserved: the manifest it writes is the
    registry's, byte for byte; ``inspect`` lists the image's layers."""
    unpacked = tmp_path / "layout"
    unpacked.mkdir()
    with tarfile.open(transfer.archive) as tar:
        tar.extractall(unpacked, filter="data")
    dev = path_of(transfer.root, "dev")
    tags = (APP_VERSION, signature_tag(transfer.digest), attestation_tag(transfer.digest))
    for number, tag in enumerate(tags):
        expected = manifest_bytes(registry, dev, tag)
        assert expected is not None
        for transport in (f"oci-archive:{transfer.archive}", f"oci:{unpacked}"):
            out = tmp_path / f"copy-{number}-{transport.partition(':')[0]}"
            run(
                [SKOPEO, "copy", "--preserve-digests", f"{transport}:{NAME}:{tag}", f"dir:{out}"],
                timeout=300,
            )
            assert (out / "manifest.json").read_bytes() == expected, (transport, tag)
    inspected = run(
        [SKOPEO, "inspect", f"oci-archive:{transfer.archive}:{NAME}:{APP_VERSION}"], timeout=120
    )
    layers = [layer["digest"] for layer in layers_of(manifest_bytes(registry, dev, APP_VERSION))]
    assert json.loads(inspected.stdout)["Layers"] == layers


def test_a_dry_run_import_checks_and_writes_nothing(transfer: Transfer) -> None:
    [image] = transfer.dry_import["images"]
    assert image["action"] == "would import" and image["audit_id"] is None
    assert transfer.b_after_dry_run is None
    assert not [r for r in transfer.audit_after_import[:-2] if r["action"] == "import"]


def layers_of(body: bytes | None) -> list[dict[str, Any]]:
    assert body is not None
    layers = json.loads(body)["layers"]
    assert isinstance(layers, list)
    return layers


def test_import_lands_the_same_digests_byte_for_byte_in_registry_b(
    transfer: Transfer, registry: Registry, registry_b: TLSRegistry
) -> None:
    """The image manifest is the same bytes under the version tag and by digest; the .sig and
    .att in B hold every layer of A's, verbatim, then the signature for B's repository and the
    release attestation into airgap that the import added with the key."""
    [image] = transfer.imported["images"]
    assert image["action"] == "import" and image["digest"] == transfer.digest
    assert image["repositories"] == [f"{registry_b.host}/{path_of(transfer.root, 'airgap')}"]
    dev, airgap = path_of(transfer.root, "dev"), path_of(transfer.root, "airgap")
    a = manifest_bytes(registry, dev, APP_VERSION)
    assert a is not None and hashlib.sha256(a).hexdigest() == transfer.digest[7:]
    assert manifest_bytes(registry_b, airgap, APP_VERSION) == a
    assert manifest_bytes(registry_b, airgap, transfer.digest) == a
    for layer in layers_of(a):
        status, _, _ = registry_b.request("HEAD", f"/v2/{airgap}/blobs/{layer['digest']}")
        assert status == 200, layer
    for tag, added in ((signature_tag(transfer.digest), 1), (attestation_tag(transfer.digest), 1)):
        in_a = layers_of(manifest_bytes(registry, dev, tag))
        in_b = layers_of(manifest_bytes(registry_b, airgap, tag))
        assert in_b[: len(in_a)] == in_a and len(in_b) == len(in_a) + added, tag
    assert "blob" in transfer.imported_text  # progress, on stderr


def test_the_signatures_verify_in_registry_b(transfer: Transfer) -> None:
    document = ok(
        imagefactory(
            transfer.root,
            "verify",
            APP,
            "--env",
            "airgap",
            "--json",
            env=transfer.env,
            timeout=TIMEOUT,
        )
    )
    assert json.dumps(document).count(transfer.digest) >= 1


def test_state_and_the_audit_log_record_the_import(transfer: Transfer) -> None:
    [image] = transfer.imported["images"]
    held = state_of(transfer.root)[APP]["environments"]["airgap"]
    assert (held["digest"], held["version"], held["audit_id"]) == (
        transfer.digest,
        APP_VERSION,
        image["audit_id"],
    )
    records = [r for r in transfer.audit_after_import if r["action"] == "import"]
    assert [phase(r) for r in records] == [INTENT, DONE]
    assert {r["id"] for r in records} == {image["audit_id"]}
    assert records[0]["source"] == "dev" and records[0]["target"] == "airgap"
    assert records[0]["archive"] == str(transfer.archive)
    assert records[0]["registries"] == ["airgap"]


def test_a_second_import_writes_nothing(transfer: Transfer) -> None:
    [image] = transfer.again["images"]
    assert image["action"] == "keep" and image["audit_id"] is None
    assert audit_of(transfer.root) == transfer.audit_after_import


def test_an_archive_with_one_byte_changed_is_refused_before_any_push(
    transfer: Transfer, tmp_path: Path, registry_b: TLSRegistry, example_build: ExampleBuild
) -> None:
    altered = tmp_path / "altered.oci.tar"
    with tarfile.open(transfer.archive) as old, tarfile.open(altered, "w") as new:
        largest = max((m for m in old.getmembers() if m.isfile()), key=lambda m: m.size)
        for info in old.getmembers():
            stream = old.extractfile(info) if info.isfile() else None
            if info.name == largest.name:
                assert stream is not None
                data = bytearray(stream.read())
                data[len(data) // 2] ^= 1
                new.addfile(info, io.BytesIO(bytes(data)))
            else:
                new.addfile(info, stream)
    root = copy_catalog(transfer.root, tmp_path / "catalog")
    add_airgap_environment(root, example_build.session, registry_b.host, "untouched")
    before = audit_of(root)
    stderr = refused(
        imagefactory(
            root, "import", str(altered), "--to", "untouched", env=transfer.env, timeout=TIMEOUT
        ),
        1,
    )
    assert "was altered" in stderr or "does not hash" in stderr, stderr
    assert manifest_bytes(registry_b, path_of(root, "untouched"), APP_VERSION) is None
    assert audit_of(root) == before


def test_without_the_signing_key_the_evidence_lands_byte_for_byte(
    transfer: Transfer, tmp_path: Path, registry: Registry, registry_b: TLSRegistry,
    example_build: ExampleBuild,
) -> None:  # fmt: skip
    """An air-gapped side without the private key (signing.required: false): the import signs
    nothing; the .sig and .att land as the archive holds them, and still verify."""
    root = copy_catalog(transfer.root, tmp_path / "catalog")
    add_airgap_environment(root, example_build.session, registry_b.host, "verbatim")
    project = yaml.safe_load((root / "imagefactory.yaml").read_text())
    project["signing"]["required"] = False
    (root / "imagefactory.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    env = {k: v for k, v in transfer.env.items() if k != "IMAGEFACTORY_SIGNING_KEY"}
    into = ["import", str(transfer.archive), "--to", "verbatim", "--json"]
    [image] = ok(imagefactory(root, *into, env=env, timeout=TIMEOUT))["images"]
    assert image["action"] == "import"
    dev, verbatim = path_of(root, "dev"), path_of(root, "verbatim")
    for tag in (APP_VERSION, signature_tag(transfer.digest), attestation_tag(transfer.digest)):
        a = manifest_bytes(registry, dev, tag)
        assert a is not None and manifest_bytes(registry_b, verbatim, tag) == a, tag


def test_an_interrupted_import_is_completed_under_its_own_audit_id(
    transfer: Transfer, tmp_path: Path, registry_b: TLSRegistry, example_build: ExampleBuild
) -> None:
    """A crash after the intent was logged (and after the image itself was written: its version
    tag is there, its evidence is not) leaves the intent open; ``status`` names the command that
    completes it, and running it closes that intent, done, under the same id."""
    root = copy_catalog(transfer.root, tmp_path / "catalog")
    add_airgap_environment(root, example_build.session, registry_b.host, "resumed")
    resumed = path_of(root, "resumed")
    layers = layers_of(manifest_bytes(registry_b, path_of(transfer.root, "airgap"), APP_VERSION))
    manifest = manifest_bytes(registry_b, path_of(transfer.root, "airgap"), APP_VERSION)
    assert manifest is not None
    for layer in layers:  # the image written by the run that crashed, not its evidence
        mount = f"/v2/{resumed}/blobs/uploads/?mount={layer['digest']}&from={path_of(transfer.root, 'airgap')}"
        assert registry_b.request("POST", mount)[0] == 201
    config = json.loads(manifest)["config"]["digest"]
    mount = f"/v2/{resumed}/blobs/uploads/?mount={config}&from={path_of(transfer.root, 'airgap')}"
    assert registry_b.request("POST", mount)[0] == 201
    media = json.loads(manifest)["mediaType"]
    status, _, _ = registry_b.request(
        "PUT",
        f"/v2/{resumed}/manifests/{APP_VERSION}",
        headers={"Content-Type": media},
        data=manifest,
    )
    assert status == 201
    intent = audit.new_record(
        action="import",
        image=APP,
        version=APP_VERSION,
        digest=transfer.digest,
        source="dev",
        target="resumed",
        tags=[APP_VERSION],
        git_revision=None,
        approver=None,
        registries=["airgap"],
        archive=str(transfer.archive),
    )
    audit.append(root / ".imagefactory" / "audit.jsonl", intent)
    status_doc = ok(imagefactory(root, "status", APP, "--json", env=transfer.env))
    [open_intent] = status_doc["incomplete"]
    assert open_intent["complete_with"] == f"imagefactory import {transfer.archive} --to resumed"
    [image] = ok(
        imagefactory(root, "import", str(transfer.archive), "--to", "resumed", "--json",
                     env=transfer.env, timeout=TIMEOUT)
    )["images"]  # fmt: skip
    assert image["action"] == "import" and image["audit_id"] == intent.id
    closing = [r for r in audit_of(root) if r["id"] == intent.id]
    assert [phase(r) for r in closing] == [INTENT, DONE]
    assert ok(imagefactory(root, "status", APP, "--json", env=transfer.env))["incomplete"] == []
    assert manifest_bytes(registry_b, resumed, signature_tag(transfer.digest)) is not None
    ok(
        imagefactory(
            root, "verify", APP, "--env", "resumed", "--json", env=transfer.env, timeout=TIMEOUT
        )
    )
