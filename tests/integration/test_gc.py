"""``imagefactory gc`` for real (issue 21): retention that never deletes what is deployed.

A tiny signed chain of its own: ``base/tiny`` FROM the 2 MB busybox base (an external parent
pinned by digest) and ``app/tiny`` FROM it, each app version carrying 512 KiB of random bytes
of its own (a layer no other version shares). dev is registry A (``scripts/services.sh``),
preprod registry B (TLS, its own storage, which this test garbage-collects); both keep 1
version per line and nothing by age (``keep_days: 0``), so only the other rules protect.

The life: 1.0.0 pushed and promoted (GitOps pins it in preprod), then 1.0.1 pushed and promoted
over it (preprod's pin and aliases move on), 1.0.2 pushed and yanked, 1.0.3 pushed (dev's pin
and aliases), one build never pushed (a change built, then reverted), and last base 1.0.1
(the apps stay built on base 1.0.0). So gc must delete exactly app 1.0.0 (in dev and in
preprod) and the unreleased build, with their ``.sig``/``.att``; and keep app 1.0.1 (pinned in
preprod), 1.0.2 (yanked: under audit hold), 1.0.3 (aliases, pin, state, the current build) and
base 1.0.0, which nothing but being the parent of the kept apps protects. A first gc is killed
with SIGKILL right after its first audit intent; the second completes it and ends in the same
state as one uninterrupted run would. Then registry B's ``garbage-collect`` reclaims the bytes
of the deleted version while every kept digest still pulls and verifies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagefactory.signing.oci import attestation_tag, signature_tag
from tests.unit.test_gitops_repo import GIT_ENV, make_remote

from .helpers.example import cli_json, edit_text
from .helpers.registry import Registry
from .helpers.services import SKOPEO, run
from .helpers.tiny import TinyCatalog, key_pair, ok, project, tiny_parent, write_catalog
from .helpers.tls_registry import HOST_BUNDLE, REGISTRY_BINARY, TLSRegistry, write_bundle
from .test_release import B_PASSWORD_ENV, B_USER_ENV

pytestmark = pytest.mark.integration

BASE, APP = "base/tiny", "app/tiny"
PAYLOAD = 512 * 1024
KEEP = {"keep_versions": 1, "keep_days": 0, "hold_days": 365}
KILL_WAIT = 120  # seconds the killed run may take to write its first intent


@dataclass(frozen=True)
class Garden(TinyCatalog):
    dev: str  # HOST/…/gc/dev on registry A
    preprod: str  # HOST/…/gc/preprod on registry B
    app: dict[str, str]  # version → digest
    base: str  # base 1.0.0, which every app is built on
    new_base: str  # base 1.0.1, built last (the catalog's current base)
    unreleased: str  # a build never pushed, its change reverted
    b: TLSRegistry

    def b_digest(self, reference: str) -> str | None:
        proc = run(
            [SKOPEO, "inspect", "--no-tags", "--format={{.Digest}}",
             f"--cert-dir={self.root / 'b-certs'}", "--creds",
             f"{self.b.user}:{self.b.password}", f"docker://{reference}"],
            timeout=60, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            assert "manifest unknown" in proc.stderr.lower(), proc.stderr
            return None
        return proc.stdout.strip()


def _payload(folder: Path) -> None:
    (folder / "payload.bin").write_bytes(os.urandom(PAYLOAD))


def _gitops(root: Path, where: Path) -> None:
    settings = {
        "repo_url": str(where / "deployments.git"),
        "environments": {"dev": {"namespace": "tiny-dev"}, "preprod": {"namespace": "tiny-pre"}},
    }
    (root / "gitops.yaml").write_text(yaml.safe_dump(settings))
    make_remote(root, where)


def _release(catalog: TinyCatalog, *, promote: bool) -> str:
    """Build, test and push the app (a new payload makes a new version); its digest."""
    ok(catalog.cli("build", APP, "--json"))
    ok(catalog.cli("test", APP, "--json"))
    [pushed] = [e for e in ok(catalog.cli("push", APP, "--json"))["images"] if e["image"] == APP]
    if promote:
        ok(catalog.cli("promote", APP, "--to", "preprod", "--json"))
    return str(pushed["digest"])


@pytest.fixture(scope="module")
def garden(
    registry: Registry,
    registry_env: dict[str, str],
    registry_b: TLSRegistry,
    docker_config: Path,
    tiny_base: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Garden]:
    where = tmp_path_factory.mktemp("gc")
    root, secret = where / "catalog", where / "signing.key"
    root.mkdir()
    key_pair(root, secret)
    bundle = write_bundle(where / "bundle.pem", HOST_BUNDLE, registry_b.ca_cert)
    (root / "b-certs").mkdir()
    (root / "b-certs" / "ca.crt").write_bytes(registry_b.ca_cert.read_bytes())
    git_identity = {k: v for k, v in GIT_ENV.items() if k.startswith("GIT_")}
    env = {
        **registry_env,
        **git_identity,
        "COLUMNS": "250",
        "IMAGEFACTORY_SIGNING_KEY": str(secret),
        B_USER_ENV: registry_b.user,
        B_PASSWORD_ENV: registry_b.password,
    }
    with tiny_parent("gc", tiny_base, registry, docker_config) as (session, parent):
        namespace = f"it-{session}/gc"
        stages = [
            {"name": stage, "registries": [stage], "retention": KEEP}
            for stage in ("dev", "preprod")
        ]
        settings = project("it-gc", registry, namespace, session, stages)
        settings["registries"]["preprod"] = {
            "url": registry_b.host,
            "namespace": f"{namespace}/preprod",
            "username_env": B_USER_ENV,
            "password_env": B_PASSWORD_ENV,
            "tls_verify": True,
        }
        settings["signing"] = {"public_key": "keys/cosign.pub"}
        settings["build"] = {"ca_bundle": str(bundle)}
        write_catalog(
            root, settings, {"name": BASE, "version": "1.0.0", "from": parent, "user": "root"}
        )
        app = root / "images" / APP
        app.mkdir(parents=True)
        files = [{"src": "payload.bin", "dest": "/payload.bin", "mode": "0644"}]
        (app / "image.yaml").write_text(
            yaml.safe_dump(
                {
                    "name": APP,
                    "version": "1.0.0",
                    "from": BASE,
                    "user": "65534:65534",
                    "files": files,
                }
            )
        )
        _payload(app)
        _gitops(root, where)
        catalog = TinyCatalog(root, env, docker_config / "config.json")
        ok(catalog.cli("build", "--all", "--json"))
        ok(catalog.cli("test", "--all", "--json"))
        pushed = {
            e["image"]: e["digest"] for e in ok(catalog.cli("push", "--all", "--json"))["images"]
        }
        ok(catalog.cli("promote", APP, "--to", "preprod", "--json"))
        digests = {"1.0.0": pushed[APP]}
        for version, promote in (("1.0.1", True), ("1.0.2", False), ("1.0.3", False)):
            _payload(app)
            digests[version] = _release(catalog, promote=promote)
        ok(catalog.cli("yank", APP, "1.0.2", "--reason", "INC-5150 broken payload", "--json"))
        kept_payload = (app / "payload.bin").read_bytes()
        _payload(app)
        [built] = [
            e for e in ok(catalog.cli("build", APP, "--json"))["images"] if e["image"] == APP
        ]
        (app / "payload.bin").write_bytes(kept_payload)
        ok(catalog.cli("build", APP, "--json"))  # the catalog as released again: 1.0.3's
        # last, base 1.0.1: the apps stay on 1.0.0, which only they protect now
        edit_text(root / "images" / BASE / "image.yaml", "user: root", "user: root\nenv: {B: '2'}")
        ok(catalog.cli("build", BASE, "--json"))
        ok(catalog.cli("test", BASE, "--json"))
        [base] = ok(catalog.cli("push", BASE, "--json"))["images"]
        yield Garden(
            root,
            env,
            catalog.authfile,
            f"{registry.host}/{namespace}/dev",
            f"{registry_b.host}/{namespace}/preprod",
            digests,
            pushed[BASE],
            str(base["digest"]),
            str(built["digest"]),
            registry_b,
        )


def _planned(document: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(d["environment"], d["image"], d["digest"]) for d in document["delete"]}


def _reasons(document: dict[str, Any], env: str, digest: str) -> str:
    [kept] = [k for k in document["kept"] if (k["environment"], k["digest"]) == (env, digest)]
    return "; ".join(kept["reasons"])


@pytest.fixture(scope="module")
def dry(garden: Garden) -> dict[str, Any]:
    return ok(garden.cli("gc", "--dry-run", "--json"))


def expected(garden: Garden) -> set[tuple[str, str, str]]:
    first = garden.app["1.0.0"]
    return {("dev", APP, first), ("preprod", APP, first), ("dev", APP, garden.unreleased)}


def test_the_dry_run_lists_exactly_the_unprotected_with_reasons(
    garden: Garden, dry: dict[str, Any]
) -> None:
    assert len(set(garden.app.values()) | {garden.unreleased}) == 5
    assert _planned(dry) == expected(garden)
    assert all(d["audit_id"] is None and d["size_bytes"] > PAYLOAD for d in dry["delete"])
    app = garden.app
    assert "pinned: preprod" in _reasons(dry, "dev", app["1.0.1"])
    assert "alias: latest" in _reasons(dry, "preprod", app["1.0.1"])
    assert "held: yanked app/tiny 1.0.2" in _reasons(dry, "dev", app["1.0.2"])
    assert "alias: latest" in _reasons(dry, "dev", app["1.0.3"])
    assert "current: the build" in _reasons(dry, "dev", garden.new_base)
    parent = _reasons(dry, "dev", garden.base).split("; ")  # base 1.0.0, under every app
    assert all(reason.startswith("parent: of ") for reason in parent)
    assert {reason.rpartition("@")[2] for reason in parent} == {
        app[v] for v in ("1.0.1", "1.0.2", "1.0.3")
    }
    # nothing deleted, nothing audited
    assert garden.digest(f"{garden.dev}/{APP}:1.0.0") == app["1.0.0"]
    assert not [line for line in garden.audit() if line["action"] == "gc"]


@pytest.fixture(scope="module")
def collected(garden: Garden, dry: dict[str, Any]) -> dict[str, Any]:
    """gc killed (SIGKILL) right after its first audit intent, then run again; B's storage
    before and after."""
    before = garden.b.storage_bytes()
    log = garden.root / ".imagefactory" / "audit.jsonl"
    killed = subprocess.Popen(
        [sys.executable, "-m", "imagefactory", "-C", str(garden.root), "gc", "--json"],
        env=garden.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + KILL_WAIT
    while time.monotonic() < deadline and killed.poll() is None:
        if '"action": "gc"' in log.read_text():
            killed.send_signal(signal.SIGKILL)
            break
        time.sleep(0.001)
    assert killed.wait(timeout=30) == -signal.SIGKILL, "the first gc ended before it was killed"
    open_intents = _open_gc_intents(garden)
    assert len(open_intents) == 1  # killed between its intent and its done record
    document = ok(garden.cli("gc", "--json"))
    return {"document": document, "open": open_intents, "before": before}


def _open_gc_intents(garden: Garden) -> list[str]:
    lines = [line for line in garden.audit() if line["action"] == "gc"]
    closed = {line["id"] for line in lines if line["phase"] != "intent"}
    return [line["id"] for line in lines if line["phase"] == "intent" and line["id"] not in closed]


def test_gc_deletes_them_with_their_evidence_and_only_them(
    garden: Garden, collected: dict[str, Any]
) -> None:
    document = collected["document"]
    assert document["completed_interrupted"] == collected["open"]
    app = garden.app
    first = app["1.0.0"]
    for repository, digest in (
        (f"{garden.dev}/{APP}", first),
        (f"{garden.dev}/{APP}", garden.unreleased),
    ):
        assert garden.digest(f"{repository}@{digest}") is None
        assert garden.digest(f"{repository}:{signature_tag(digest)}") is None
        assert garden.digest(f"{repository}:{attestation_tag(digest)}") is None
    assert garden.b_digest(f"{garden.preprod}/{APP}@{first}") is None
    assert garden.b_digest(f"{garden.preprod}/{APP}:{attestation_tag(first)}") is None
    # what is kept still pulls
    assert garden.digest(f"{garden.dev}/{BASE}:1.0.0") == garden.base
    for version in ("1.0.1", "1.0.2", "1.0.3"):
        assert garden.digest(f"{garden.dev}/{APP}:{version}") == app[version]
    assert garden.b_digest(f"{garden.preprod}/{APP}:1.0.1") == app["1.0.1"]
    # one audit record per deletion: each intent with its done record, none left open
    lines = [line for line in garden.audit() if line["action"] == "gc"]
    ids = {line["id"] for line in lines}
    assert len(ids) == 3 and not _open_gc_intents(garden)
    assert {(line["target"], line["digest"]) for line in lines} == {
        (env, digest) for env, _, digest in expected(garden)
    }
    done = [line["id"] for line in lines if line["phase"] == "done"]
    assert sorted(done) == sorted(ids)
    # and a run after that has nothing left to do
    again = ok(garden.cli("gc", "--json"))
    assert again["delete"] == [] and again["completed_interrupted"] == []


def test_the_registrys_garbage_collection_reclaims_the_bytes(
    garden: Garden, collected: dict[str, Any]
) -> None:
    b = garden.b
    b.stop()
    try:
        run([REGISTRY_BINARY, "garbage-collect", str(b.root / "config.yml")], timeout=300)
    finally:
        b.start()
    after = b.storage_bytes()
    reclaimed = collected["before"] - after
    print(f"registry B: {collected['before']} bytes before gc, {after} after garbage-collect")
    assert reclaimed >= PAYLOAD, (collected["before"], after)
    # the kept digest still pulls, every blob of it, and its evidence still verifies
    pulled = garden.root / "pulled"
    run(
        [SKOPEO, "copy", f"--src-cert-dir={garden.root / 'b-certs'}", "--src-creds",
         f"{b.user}:{b.password}", f"docker://{garden.preprod}/{APP}:1.0.1", f"dir:{pulled}"],
        timeout=120,
    )  # fmt: skip
    assert (pulled / "manifest.json").is_file()
    verified = garden.cli("verify", APP, "--env", "preprod", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert cli_json(verified)["ok"] is True
    dev = garden.cli("verify", APP, "--env", "dev", "--json")
    assert dev.returncode == 0, dev.stdout + dev.stderr
