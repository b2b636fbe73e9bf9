"""``imagefactory revoke --descendants`` and the evidence bundle for real (issue 16, items 6 and
7), against the registry of ``scripts/services.sh``.

A tiny signed chain of its own: ``base/tiny`` FROM the 2 MB busybox base of ``import_tiny_base``
(pushed to the registry, an external parent pinned by digest) and ``app/tiny`` FROM
``base/tiny``, built, tested and pushed to dev with a P-256 key pair the test makes (the public
half committed in the catalog as ``keys/cosign.pub``, the private one in a file named by
``IMAGEFACTORY_SIGNING_KEY``). Revoking the base with ``--descendants`` revokes both (the app's
signed provenance names the base's digest as its parent), writes ahead in the audit log, reports
dev as the blast radius, and the promotion of the app to preprod is refused; ``status`` marks
both. The app's evidence bundle verifies offline with the public key alone (it says revoked),
and is refused once one byte of a blob or of an audit record is changed. Both digests are listed
in the catalog's revocations.yaml too: once a tamperer with push rights (not the key) drops the
lifecycle layers from the ``.att`` manifests, the promotion is still refused, by the entry.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagefactory.evidence.predicates import LIFECYCLE
from imagefactory.signing.dsse import PREDICATE_ANNOTATION
from imagefactory.signing.oci import (
    MANIFEST_MEDIA_TYPE,
    ArtifactManifest,
    attestation_tag,
    parse_manifest,
    sha256_digest,
)
from imagefactory.spec.revocations import REVOCATIONS_FILE

from .helpers.example import cli_json
from .helpers.registry import Registry
from .helpers.tiny import TinyCatalog, key_pair, ok, project, tiny_parent, write_catalog

pytestmark = pytest.mark.integration

BASE, APP = "base/tiny", "app/tiny"
REASON = "CVE-2026-0002 in busybox, INC-4712"


@dataclass(frozen=True)
class Chain(TinyCatalog):
    base: str  # the digest of base/tiny
    app: str  # the digest of app/tiny, built on it
    dev: str  # the dev repository prefix (HOST/it-…/revoke/dev)


@pytest.fixture(scope="module")
def chain(
    registry: Registry,
    registry_env: dict[str, str],
    docker_config: Path,
    tiny_base: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Chain]:
    folder = tmp_path_factory.mktemp("revoke")
    root, secret = folder / "catalog", folder / "signing.key"
    root.mkdir()
    key_pair(root, secret)
    env = {**registry_env, "COLUMNS": "250", "IMAGEFACTORY_SIGNING_KEY": str(secret)}
    with tiny_parent("revoke", tiny_base, registry, docker_config) as (session, parent):
        stages = [{"name": stage, "registries": [stage]} for stage in ("dev", "preprod")]
        namespace = f"it-{session}/revoke"
        settings = project("it-revoke", registry, namespace, session, stages)
        settings["signing"] = {"public_key": "keys/cosign.pub"}
        write_catalog(
            root, settings, {"name": BASE, "version": "1.0.0", "from": parent, "user": "root"}
        )
        app = root / "images" / APP
        app.mkdir(parents=True)
        (app / "image.yaml").write_text(
            yaml.safe_dump({"name": APP, "version": "1.0.0", "from": BASE, "user": "root"})
        )
        catalog = TinyCatalog(root, env, docker_config / "config.json")
        ok(catalog.cli("build", "--all", "--json"))
        ok(catalog.cli("test", "--all", "--json"))
        pushed = {
            e["image"]: e["digest"] for e in ok(catalog.cli("push", "--all", "--json"))["images"]
        }
        yield Chain(
            root,
            env,
            catalog.authfile,
            pushed[BASE],
            pushed[APP],
            f"{registry.host}/{namespace}/dev",
        )


@pytest.fixture(scope="module")
def revoked(chain: Chain) -> dict[str, Any]:
    """The revocation of the base with its descendants, after its dry run (which finds the same
    digests, needs no key and writes nothing)."""
    command = ("revoke", f"{BASE}@{chain.base}", "--reason", REASON, "--descendants", "--json")
    keyless = {k: v for k, v in chain.env.items() if k != "IMAGEFACTORY_SIGNING_KEY"}
    dry = ok(chain.cli(*command, "--dry-run", env=keyless))
    assert [(r["image"], r["audit_id"]) for r in dry["revoked"]] == [(BASE, None), (APP, None)]
    assert not [line for line in chain.audit() if line["action"] == "revoke"]
    refused = chain.cli(*command, env=keyless)  # the real one needs the key
    assert refused.returncode == 1
    assert "IMAGEFACTORY_SIGNING_KEY is not set" in cli_json(refused)["error"]
    document = ok(chain.cli(*command))
    assert document["still_pinned"] == dry["still_pinned"]
    return document


def test_revoking_the_base_revokes_what_is_built_on_it(
    chain: Chain, revoked: dict[str, Any]
) -> None:
    assert [(r["image"], r["digest"], r["built_on"]) for r in revoked["revoked"]] == [
        (BASE, chain.base, None),
        (APP, chain.app, chain.base),
    ]
    for entry, image in zip(revoked["revoked"], (BASE, APP), strict=True):
        assert f"{chain.dev}/{image}" in entry["repositories"]
    # the blast radius: dev holds both (state); nothing is rolled back
    assert {(p["image"], p["env"], p["source"]) for p in revoked["still_pinned"]} == {
        (BASE, "dev", "state"),
        (APP, "dev", "state"),
    }
    assert chain.digest(f"{chain.dev}/{APP}:1.0.0") == chain.app
    # written ahead: per digest an intent with the reason, then its done record
    lines = [line for line in chain.audit() if line["action"] == "revoke"]
    assert [(line["image"], line["phase"]) for line in lines] == [
        (BASE, "intent"),
        (BASE, "done"),
        (APP, "intent"),
        (APP, "done"),
    ]
    assert lines[0]["reason"] == REASON and REASON in lines[2]["reason"]
    assert {line["id"] for line in lines} == {r["audit_id"] for r in revoked["revoked"]}
    # and listed in the catalog, for the user to commit
    assert revoked["commit"] == REVOCATIONS_FILE
    assert all(r["listed_now"] for r in revoked["revoked"])
    listed = yaml.safe_load((chain.root / REVOCATIONS_FILE).read_text())["revoked"]
    assert [(e["image"], e["digest"], e.get("built_on"), e["reason"]) for e in listed] == [
        (BASE, chain.base, None, REASON),
        (APP, chain.app, chain.base, REASON),
    ]


def test_the_app_built_on_a_revoked_base_is_never_promoted(
    chain: Chain, revoked: dict[str, Any]
) -> None:
    refused = chain.cli("promote", APP, "--to", "preprod")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "revoked" in refused.stderr and "Traceback" not in refused.stderr
    assert chain.digest(f"{chain.dev.rpartition('/')[0]}/preprod/{APP}:1.0.0") is None


def test_status_marks_the_revoked_digests(chain: Chain, revoked: dict[str, Any]) -> None:
    images = ok(chain.cli("status", "--json"))["images"]
    assert images[BASE]["dev"]["revoked"] is True and images[APP]["dev"]["revoked"] is True
    assert images[APP]["preprod"]["revoked"] is False
    assert "REVOKED" in chain.cli("status", APP).stdout


def _verify(chain: Chain, bundle: Path) -> Any:
    return chain.cli("verify", "--bundle", str(bundle), "--key", "keys/cosign.pub", "--json")


def test_the_evidence_bundle_verifies_offline_and_fails_once_edited(
    chain: Chain, revoked: dict[str, Any], tmp_path: Path
) -> None:
    bundle = tmp_path / "app.evidence.json"
    exported = ok(chain.cli("evidence", APP, "--env", "dev", "--out", str(bundle), "--json"))
    assert (exported["digest"], exported["repository"]) == (chain.app, f"{chain.dev}/{APP}")
    summary = exported["summary"]
    assert summary["revoked"] is True and summary["audit_records"] >= 4  # push and revoke
    assert f"{chain.dev}/{APP}" in summary["signed_for"]
    assert [p["parent"] for p in summary["provenance"]] == [chain.base]

    verified = _verify(chain, bundle)  # intact, and it says revoked: exit 1
    checked = cli_json(verified)
    assert verified.returncode == 1 and checked["intact"] is True
    assert checked["problems"] == ["the digest is revoked"]
    assert checked["digest"] == chain.app and checked["summary"] == summary

    document = json.loads(bundle.read_text())
    digest, text = next(iter(sorted(document["blobs"].items())))
    raw = bytearray(base64.b64decode(text))
    raw[len(raw) // 2] ^= 0x01
    edited = tmp_path / "blob-edited.json"
    edited.write_text(
        json.dumps(
            {**document, "blobs": {**document["blobs"], digest: base64.b64encode(raw).decode()}}
        )
    )
    refused = _verify(chain, edited)
    assert refused.returncode == 1
    assert f"the blob {digest} does not match its digest" in cli_json(refused)["error"]

    audit = [dict(line) for line in document["audit"]]
    audit[0]["who"] = audit[0]["who"] + "x"
    edited.write_text(json.dumps({**document, "audit": audit}))
    refused = _verify(chain, edited)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    failed = cli_json(refused)
    assert failed["ok"] is False and "audit records were changed" in failed["error"]


def _drop_lifecycle(registry: Registry, reference: str, digest: str) -> int:
    """What a tamperer with push rights but not the key does: the ``.att`` manifest of
    ``digest`` in repository ``reference`` (HOST/PATH) put again without its lifecycle layers,
    through the registry API. How many layers it dropped."""
    repository = reference.removeprefix(f"{registry.host}/")
    path = f"/v2/{repository}/manifests/{attestation_tag(digest)}"
    status, _, body = registry.request("GET", path, headers={"Accept": MANIFEST_MEDIA_TYPE})
    assert status == 200, body
    held = parse_manifest(body, what="the .att manifest")
    kept = ArtifactManifest(
        tuple(x for x in held.layers if x.annotation(PREDICATE_ANNOTATION) != LIFECYCLE)
    )
    config = kept.config()
    status, headers, body = registry.request("POST", f"/v2/{repository}/blobs/uploads/")
    assert status == 202, body
    upload = headers["Location"].removeprefix(registry.base_url)
    separator = "&" if "?" in upload else "?"
    status, _, body = registry.request(
        "PUT",
        f"{upload}{separator}digest={sha256_digest(config)}",
        headers={"Content-Type": "application/octet-stream"},
        data=config,
    )
    assert status == 201, body
    status, _, body = registry.request(
        "PUT", path, headers={"Content-Type": MANIFEST_MEDIA_TYPE}, data=kept.manifest()
    )
    assert status == 201, body
    return len(held.layers) - len(kept.layers)


def test_the_catalog_entry_refuses_the_promotion_once_the_attestations_are_dropped(
    chain: Chain, revoked: dict[str, Any], registry: Registry
) -> None:
    for image, digest in ((BASE, chain.base), (APP, chain.app)):
        assert _drop_lifecycle(registry, f"{chain.dev}/{image}", digest) == 1
    # the registry no longer says revoked: only the catalog's entry stands in the way
    refused = chain.cli("promote", APP, "--to", "preprod")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"is revoked: {REASON}" in refused.stderr
    assert f"listed in {REVOCATIONS_FILE}:" in refused.stderr and "Traceback" not in refused.stderr
    assert chain.digest(f"{chain.dev.rpartition('/')[0]}/preprod/{APP}:1.0.0") is None
