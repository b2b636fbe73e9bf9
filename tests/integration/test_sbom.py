"""The SBOM at build and on demand (issue 16, item 1), for real: ``imagefactory build`` of a tiny
image signs its digest and attests its provenance and SBOM into the build repository, and
``imagefactory sbom`` reads them back, verified, from the registry of ``scripts/services.sh``.

A tiny catalog of its own (a git repository; one registry in a namespace of its own; signing
with a key pair the test makes): one image, ``app/tiny``, FROM the 2 MB busybox base of
``import_tiny_base`` pushed there and pinned by digest. Its spec copies a Debian package database
(``/var/lib/dpkg/status``), ``/etc/os-release`` and an apt ``InRelease`` file into the image, so
its SBOM lists Debian packages with syft's purls and its provenance names the Release file; the
second build adds one package to the database. One more test bootstraps a Debian base with
mmdebstrap for real: its provenance names the InRelease file of each suite it installed from.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from imagefactory.sbom import document

from ..unit.test_build_evidence import key_pair
from .helpers.example import git_commit, remove_session_images
from .helpers.registry import Registry, registry_cleanup
from .helpers.services import SKOPEO, run, unique
from .helpers.tiny import TinyCatalog, ok, project, tiny_parent, write_catalog

pytestmark = pytest.mark.integration

IMAGE = "app/tiny"
LISTS = "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease"
IN_RELEASE = b"-----BEGIN PGP SIGNED MESSAGE-----\nOrigin: Debian\nCodename: bookworm\n"
OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
PACKAGE = "Package: {name}\nStatus: install ok installed\nArchitecture: amd64\n{source}Version: {version}\n"
STATUS = "\n".join(
    [
        PACKAGE.format(name="libc6", source="Source: glibc\n", version="2.36-9+deb12u9"),
        PACKAGE.format(name="libssl3", source="Source: openssl\n", version="3.0.15-1~deb12u1"),
    ]
)
CURL = PACKAGE.format(name="curl", source="", version="7.88.1-10+deb12u8")


@dataclass(frozen=True)
class Built(TinyCatalog):
    repository: str  # the build repository of app/tiny
    first: str  # the digest of the first build
    second: str  # the digest of the second (one more package)
    first_sbom: dict[str, Any]  # the first build's SBOM, read from the registry


def raw_manifest(authfile: Path, reference: str) -> dict[str, Any]:
    proc = run(
        [SKOPEO, "inspect", "--raw", "--tls-verify=false", "--authfile", str(authfile),
         f"docker://{reference}"],
        timeout=60,
    )  # fmt: skip
    manifest = json.loads(proc.stdout)
    assert isinstance(manifest, dict)
    return manifest


def refused(proc: Any) -> str:
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr}"
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return str(proc.stderr)


@pytest.fixture(scope="module")
def built(
    registry: Registry,
    registry_env: dict[str, str],
    docker_config: Path,
    tiny_base: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Built]:
    root = tmp_path_factory.mktemp("sbom") / "catalog"
    pem = key_pair(root / "keys")
    env = {k: v for k, v in registry_env.items() if k not in ("CI", "GITLAB_CI")}
    env["IMAGEFACTORY_SIGNING_KEY"] = pem
    with tiny_parent("sbom", tiny_base, registry, docker_config) as (session, parent):
        settings = project(
            "it-sbom",
            registry,
            f"it-{session}/sbom",
            session,
            [{"name": "dev", "registries": ["dev"]}],
        )
        settings["signing"] = {"public_key": "keys/cosign.pub", "builders": ["local:"]}
        image = {
            "name": IMAGE,
            "version": "1.0.0",
            "from": parent,
            "user": "65534",
            "files": [
                {"src": "dpkg/status", "dest": "/var/lib/dpkg/status"},
                {"src": "os-release", "dest": "/etc/os-release"},
                {"src": "InRelease", "dest": f"/{LISTS}"},
            ],
        }
        folder = write_catalog(root, settings, image)
        (folder / "dpkg").mkdir()
        (folder / "dpkg" / "status").write_text(STATUS)
        (folder / "os-release").write_text(OS_RELEASE)
        (folder / "InRelease").write_bytes(IN_RELEASE)
        (root / ".gitignore").write_text("/.imagefactory/\n")
        git_commit(root, "tiny catalog")
        catalog = TinyCatalog(root, env, docker_config / "config.json")

        # a required key that is missing: refused before anything is built
        without_key = {k: v for k, v in env.items() if k != "IMAGEFACTORY_SIGNING_KEY"}
        error = refused(catalog.cli("build", IMAGE, env=without_key))
        assert "IMAGEFACTORY_SIGNING_KEY is not set" in error
        assert not (root / ".imagefactory" / "state.json").exists()

        [first] = ok(catalog.cli("build", IMAGE, "--json"))["images"]
        first_sbom = ok(catalog.cli("sbom", IMAGE, "--json"))
        (folder / "dpkg" / "status").write_text(f"{STATUS}\n{CURL}")
        git_commit(root, "curl")
        [second] = ok(catalog.cli("build", IMAGE, "--json"))["images"]
        assert (first["status"], second["status"]) == ("built", "built")
        yield Built(
            root,
            env,
            catalog.authfile,
            f"{registry.host}/it-{session}/sbom/dev/{IMAGE}",
            first["digest"],
            second["digest"],
            first_sbom,
        )


def test_the_build_signs_and_attests_provenance_and_sbom_into_the_registry(
    built: Built, registry: Registry
) -> None:
    hex_part = built.second.removeprefix("sha256:")
    signatures = raw_manifest(built.authfile, f"{built.repository}:sha256-{hex_part}.sig")
    assert [layer["mediaType"] for layer in signatures["layers"]] == [
        "application/vnd.dev.cosign.simplesigning.v1+json"
    ]
    attestations = raw_manifest(built.authfile, f"{built.repository}:sha256-{hex_part}.att")
    assert [layer["annotations"]["predicateType"] for layer in attestations["layers"]] == [
        "https://slsa.dev/provenance/v1",
        "https://cyclonedx.org/bom",
    ]
    provenance = attested(
        registry, built.repository, built.second, "https://slsa.dev/provenance/v1"
    )
    dependencies = provenance["buildDefinition"]["resolvedDependencies"]
    assert [d for d in dependencies if d["name"] == "debian-release"] == [
        {
            "name": "debian-release",
            "uri": f"file:///{LISTS}",
            "digest": {"sha256": hashlib.sha256(IN_RELEASE).hexdigest()},
        }
    ]
    assert provenance["runDetails"]["builder"]["id"].startswith("local:")


def test_sbom_lists_the_debian_packages_with_syft_purls_from_the_signed_attestation(
    built: Built,
) -> None:
    answer = built.first_sbom
    assert (answer["source"], answer["note"]) == ("registry", None)
    assert answer["reference"] == f"{built.repository}@{built.first}"
    text = json.dumps(answer["sbom"], indent=2, sort_keys=True) + "\n"
    document.validate(text)  # the library's strict validator
    components = answer["sbom"]["components"]
    assert {c["name"]: c["purl"] for c in components if c["type"] == "library"} == {
        "libc6": "pkg:deb/debian/libc6@2.36-9%2Bdeb12u9?arch=amd64&distro=debian-12&upstream=glibc",
        "libssl3": "pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&distro=debian-12&upstream=openssl",
    }
    files = {c["name"]: c["hashes"][0]["content"] for c in components if c["type"] == "file"}
    assert files[f"/{LISTS}"] == hashlib.sha256(IN_RELEASE).hexdigest()
    assert sorted(files) == sorted(["/var/lib/dpkg/status", "/etc/os-release", f"/{LISTS}"])
    [parent] = [c for c in components if c["type"] == "container"]
    assert parent["name"].startswith(f"{built.repository.split('/sbom/')[0]}/base@sha256:")
    subject = answer["sbom"]["metadata"]["component"]
    assert subject["version"] == built.first  # the digest, as syft writes it
    assert {"name": "imagefactory:version", "value": "1.0.0"} in subject["properties"]


def test_sbom_out_writes_the_attested_bytes_and_the_cache_holds_the_same(built: Built) -> None:
    out = built.root / "tiny.cdx.json"
    ok_proc = built.cli("sbom", f"{IMAGE}@{built.second}", "--out", str(out))
    assert ok_proc.returncode == 0, ok_proc.stderr
    cached = built.root / ".imagefactory" / "sbom" / f"sha256-{built.second[7:]}.cdx.json"
    assert out.read_text() == cached.read_text()  # attested at build = kept at build


def test_without_signing_sbom_falls_back_to_the_cache_then_to_the_engine(built: Built) -> None:
    unsigned = {k: v for k, v in built.env.items() if k != "IMAGEFACTORY_SIGNING_KEY"}
    project_file = built.root / "imagefactory.yaml"
    original = project_file.read_text()
    cached = built.root / ".imagefactory" / "sbom" / f"sha256-{built.first[7:]}.cdx.json"
    kept = cached.read_text()
    try:
        head, found, _ = original.partition("\nsigning:\n")  # signing: is the last key
        assert found, original
        project_file.write_text(head + "\n")
        from_cache = ok(built.cli("sbom", f"{IMAGE}@{built.first}", "--json", env=unsigned))
        assert from_cache["source"] == "cache"
        cached.unlink()
        from_engine = ok(built.cli("sbom", f"{IMAGE}@{built.first}", "--json", env=unsigned))
        assert from_engine["source"] == "engine"
        assert cached.is_file()  # and kept for next time
    finally:
        project_file.write_text(original)
        cached.write_text(kept)

    def libraries(answer: dict[str, Any]) -> list[dict[str, Any]]:
        return [c for c in answer["sbom"]["components"] if c["type"] in ("library", "container")]

    assert libraries(from_cache) == libraries(built.first_sbom)
    assert libraries(from_engine) == libraries(built.first_sbom)  # same packages, same parent


def test_sbom_diff_of_two_builds_lists_the_one_package_added(built: Built) -> None:
    answer = ok(
        built.cli("sbom", "diff", f"{IMAGE}@{built.first}", f"{IMAGE}@{built.second}", "--json")
    )
    assert (answer["before"]["source"], answer["after"]["source"]) == ("registry", "registry")
    assert [(e["name"], e["version"]) for e in answer["added"]] == [("curl", "7.88.1-10+deb12u8")]
    assert answer["removed"] == [] and answer["changed"] == []
    text = built.cli("sbom", "diff", f"{IMAGE}@{built.first}", IMAGE)  # IMAGE: the latest build
    assert text.returncode == 0, text.stderr
    assert "+ curl 7.88.1-10+deb12u8" in text.stdout


def attested(registry: Registry, repository: str, digest: str, predicate_type: str) -> Any:
    """The predicate of the first attestation of ``predicate_type`` in ``digest``'s .att, read
    straight from the registry API (the DSSE envelope's in-toto statement)."""
    path = repository.removeprefix(f"{registry.host}/")
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    status, _, body = registry.request(
        "GET", f"/v2/{path}/manifests/sha256-{digest[7:]}.att", headers=accept
    )
    assert status == 200, body
    [layer] = [
        layer
        for layer in json.loads(body)["layers"]
        if layer["annotations"]["predicateType"] == predicate_type
    ]
    status, _, envelope = registry.request("GET", f"/v2/{path}/blobs/{layer['digest']}")
    assert status == 200, envelope
    statement = json.loads(base64.b64decode(json.loads(envelope)["payload"]))
    assert statement["subject"][0]["digest"] == {"sha256": digest[7:]}
    return statement["predicate"]


def test_a_bootstrapped_base_names_the_release_files_it_was_installed_from(
    registry: Registry, registry_env: dict[str, str], tmp_path: Path
) -> None:
    """mmdebstrap for real (minbase from the configured mirror): the base's SBOM lists its
    Debian packages with syft's purls, and its provenance names the InRelease file of each suite
    it installed from, as the bootstrap's hook hashed them before the lists were emptied."""
    session = unique("sbom-bootstrap")
    root = tmp_path / "catalog"
    env = {k: v for k, v in registry_env.items() if k not in ("CI", "GITLAB_CI")}
    env["IMAGEFACTORY_SIGNING_KEY"] = key_pair(root / "keys")
    settings = project(
        "it-sbom", registry, f"it-{session}", session, [{"name": "dev", "registries": ["dev"]}]
    )
    settings["signing"] = {"public_key": "keys/cosign.pub"}
    write_catalog(
        root, settings, {"name": "base/deb", "version": "1.0.0", "bootstrap": {}, "user": "root"}
    )
    try:
        catalog = TinyCatalog(root, env, Path())
        [built_base] = ok(catalog.cli("build", "base/deb", "--json", env=env))["images"]
        digest = built_base["digest"]
        repository = f"{registry.host}/it-{session}/dev/base/deb"
        [hashes] = list((root / ".imagefactory" / "cache").glob("rootfs-*.releases"))
        expected = {
            f"file:///var/lib/apt/lists/{name}": {"sha256": hex_part}
            for hex_part, _, name in (
                line.partition("  ") for line in hashes.read_text().splitlines()
            )
        }
        assert sorted(uri.rsplit("_", 2)[-2] for uri in expected) == [
            "bookworm",
            "bookworm-security",
            "bookworm-updates",
        ]
        provenance = attested(registry, repository, digest, "https://slsa.dev/provenance/v1")
        releases = {
            d["uri"]: d["digest"]
            for d in provenance["buildDefinition"]["resolvedDependencies"]
            if d["name"] == "debian-release"
        }
        assert releases == expected
        sbom = attested(registry, repository, digest, "https://cyclonedx.org/bom")
        libraries = [c for c in sbom["components"] if c["type"] == "library"]
        assert len(libraries) > 50  # minbase: ~90 packages
        for component in libraries:  # syft's text: libstdc++6 is pkg:deb/debian/libstdc%2B%2B6@…
            name = urllib.parse.quote(component["name"], safe="-._~")
            assert component["purl"].startswith(f"pkg:deb/debian/{name}@"), component
        assert all("distro=debian-12" in c["purl"] for c in libraries)
    finally:
        remove_session_images(session)
        registry_cleanup(registry, f"it-{session}")
