"""The air-gap archive without a registry: the OCI layout writer and reader (``registry.layout``)
and the signed index (``evidence.transfer``), round trip and against hostile archives: links,
paths out of the layout, devices, names twice, unexpected members, sizes over the limits,
compressed or damaged tars, altered blobs and manifests, foreign layers, a forged or swapped
index."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from imagefactory.errors import UserError
from imagefactory.evidence import transfer
from imagefactory.evidence.transfer import SIGNED_INDEX, Manifest, Shipped, TransferIndex
from imagefactory.registry import layout
from imagefactory.registry.copy import Blob
from imagefactory.registry.layout import Entry, LayoutWriter, layout_index, read_layout
from imagefactory.signing.keys import SigningKey, VerificationError
from imagefactory.signing.oci import attestation_tag, signature_tag

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EXTRAS = frozenset({SIGNED_INDEX})


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def new_key(name: str = "test key") -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), name)


@dataclass(frozen=True)
class Written:
    path: Path
    digest: str  # the image manifest's
    layer: bytes
    layout: bytes  # index.json


def image_manifest(config: bytes, layer: bytes, **layer_fields: object) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha(layer),
                    "size": len(layer),
                    **layer_fields,
                }
            ],
        }
    ).encode()


def shipped(digest: str, size: int, **fields: object) -> Shipped:
    values: dict[str, object] = {
        "image": "app/rag-api",
        "name": "app/rag-api",
        "version": "0.3.0",
        "tag": "0.3.0",
        "repository": "127.0.0.1:5000/bank/prod/app/rag-api",
        "manifest": Manifest(digest, MANIFEST, size),
        "signatures": None,
        "attestations": None,
        **fields,
    }
    return Shipped(**values)  # type: ignore[arg-type]


def write_archive(path: Path, key: SigningKey, **image_fields: object) -> Written:
    """A layout of one image (config + one 3 MB layer) and its signed index, as export writes
    them."""
    config, layer = b'{"architecture":"amd64","os":"linux"}', bytes(range(256)) * 12_000
    manifest = image_manifest(config, layer)
    with path.open("wb") as stream:
        writer = LayoutWriter(stream)
        for blob in (config, layer):
            writer.add_stream(Blob(sha(blob), len(blob)), io.BytesIO(blob))
        digest = writer.add_bytes(manifest)
        entries = [Entry("app/rag-api:0.3.0", digest, MANIFEST, len(manifest))]
        index = TransferIndex(
            project="bank-ai-lab",
            environment="prod",
            created="2026-12-03T12:00:00+00:00",
            images=(shipped(digest, len(manifest), **image_fields),),
            blobs=dict(writer.blobs),
        )
        layout_bytes = layout_index(entries)
        writer.close(layout_bytes, {SIGNED_INDEX: transfer.seal(index, layout_bytes, key)})
    return Written(path, digest, layer, layout_bytes)


def opened_index(path: Path, key: SigningKey) -> TransferIndex:
    """The signed index of the archive ``path``, verified with ``key``'s public half."""
    with read_layout(path, EXTRAS) as reader:
        return transfer.open_index(
            reader.file(SIGNED_INDEX), reader.file("index.json"), key.verifying_key(), source="t"
        )


@pytest.fixture
def key() -> SigningKey:
    return new_key()


@pytest.fixture
def written(tmp_path: Path, key: SigningKey) -> Written:
    return write_archive(tmp_path / "prod.oci.tar", key)


def test_the_archive_is_an_oci_layout_with_the_signed_index_beside_it(written: Written) -> None:
    with tarfile.open(written.path) as tar:
        names = tar.getnames()
        assert tar.extractfile("oci-layout").read() == b'{"imageLayoutVersion":"1.0.0"}'  # type: ignore[union-attr]
        members = tar.getmembers()
    assert names[:3] == ["blobs", "blobs/sha256", "oci-layout"]
    assert names[-2:] == ["index.json", SIGNED_INDEX]
    assert f"blobs/sha256/{written.digest[7:]}" in names
    assert {(m.uid, m.gid, m.mtime) for m in members} == {(0, 0, 0)}
    index = json.loads(written.layout)
    [entry] = index["manifests"]
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": "app/rag-api:0.3.0"}
    assert entry["digest"] == written.digest


def test_the_reader_gives_back_every_blob_and_the_signed_index(
    written: Written, key: SigningKey
) -> None:
    with read_layout(written.path, EXTRAS) as reader:
        [entry] = reader.entries()
        assert (entry.name, entry.digest) == ("app/rag-api:0.3.0", written.digest)
        assert len(reader.blobs) == 3 and reader.blobs[sha(written.layer)] == len(written.layer)
        for digest, size in reader.blobs.items():
            reader.check_blob(digest, size)
        reader.check_tree(entry)
        blobs = reader.blobs
    index = opened_index(written.path, key)
    assert index.blobs == blobs
    [image] = index.images
    assert (image.image, image.tag, image.manifest.digest) == (
        "app/rag-api",
        "0.3.0",
        written.digest,
    )


def test_the_signed_statement_names_index_json_and_each_image(written: Written) -> None:
    with read_layout(written.path, EXTRAS) as reader:
        envelope = json.loads(reader.file(SIGNED_INDEX))
    import base64

    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert statement["predicateType"] == transfer.PREDICATE_TYPE
    subjects = {s["name"]: "sha256:" + s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects == {
        "index.json": sha(written.layout),
        "127.0.0.1:5000/bank/prod/app/rag-api": written.digest,
    }


def test_evidence_tags_follow_the_digest(written: Written) -> None:
    sig = Manifest(sha(b"sig"), MANIFEST, 3)
    image = shipped(written.digest, 1, signatures=sig)
    assert image.evidence() == [(signature_tag(written.digest), sig)]
    assert attestation_tag(written.digest) not in dict(image.evidence())


# --- hostile archives --------------------------------------------------------------------------


def tar_with(path: Path, *members: tuple[tarfile.TarInfo, bytes | None], mode: str = "w") -> Path:
    """A tar holding oci-layout and ``members`` (a TarInfo and its bytes)."""
    layout_info = tarfile.TarInfo("oci-layout")
    layout_info.size = len(layout.LAYOUT_BYTES)
    with tarfile.open(path, mode) as tar:  # type: ignore[call-overload]
        tar.addfile(layout_info, io.BytesIO(layout.LAYOUT_BYTES))
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


BLOB = "blobs/sha256/" + "a" * 64


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([(member(BLOB, tarfile.SYMTYPE, "/etc/shadow"), None)], "not a regular file"),
        ([(member(BLOB, tarfile.LNKTYPE, "oci-layout"), None)], "not a regular file"),
        ([(member(BLOB, tarfile.CHRTYPE), None)], "not a regular file"),
        ([(member(BLOB, tarfile.FIFOTYPE), None)], "not a regular file"),
        ([(member("blobs/sha256/x", tarfile.DIRTYPE), None)], "not a regular file"),
        ([(member("../escape"), b"x")], "not part of an OCI layout"),
        ([(member("/etc/cron.d/x"), b"x")], "not part of an OCI layout"),
        ([(member("blobs/sha256/../../x"), b"x")], "not part of an OCI layout"),
        ([(member("blobs/sha512/" + "a" * 128), b"x")], "not part of an OCI layout"),
        ([(member("blobs/sha256/" + "A" * 64), b"x")], "not part of an OCI layout"),
        ([(member("run.sh"), b"x")], "not part of an OCI layout"),
        ([(member(BLOB), b"one"), (member("./" + BLOB), b"two")], "is there twice"),
        ([(member("index.json"), b"{}"), (member("index.json"), b"{}")], "is there twice"),
    ],
)
def test_a_hostile_member_is_refused_before_anything_is_read(
    tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], message: str
) -> None:
    path = tar_with(tmp_path / "hostile.tar", *members)
    with pytest.raises(UserError, match=message), read_layout(path, EXTRAS):
        pass


def test_a_blob_over_the_limit_is_refused_by_its_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(layout, "BLOB_LIMIT", 10)
    path = tar_with(tmp_path / "big.tar", (member(BLOB), b"x" * 11))
    with pytest.raises(UserError, match="more than 10"), read_layout(path, EXTRAS):
        pass


def test_index_json_over_the_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(layout, "FILE_LIMIT", 8)
    path = tar_with(tmp_path / "big.tar", (member("index.json"), b"{" + b" " * 20 + b"}"))
    with pytest.raises(UserError, match="more than 8"), read_layout(path, EXTRAS):
        pass


def test_too_many_members_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout, "MEMBER_LIMIT", 3)
    blobs = [(member("blobs/sha256/" + c * 64), b"x") for c in "abcd"]
    path = tar_with(tmp_path / "many.tar", *blobs)
    with pytest.raises(UserError, match="more than 3 members"), read_layout(path, EXTRAS):
        pass


def test_a_compressed_archive_is_refused(tmp_path: Path) -> None:
    path = tar_with(tmp_path / "layout.tar.gz", mode="w:gz")
    with pytest.raises(UserError, match="not an uncompressed tar"), read_layout(path, EXTRAS):
        pass


def test_a_file_that_is_no_tar_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.tar"
    path.write_bytes(b"\x01" * 2048)
    with pytest.raises(UserError, match="tar"), read_layout(path, EXTRAS):
        pass


def test_a_layout_without_oci_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bare.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("index.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(UserError, match="holds no oci-layout"), read_layout(path, EXTRAS):
        pass


def test_an_archive_named_through_a_symlink_is_refused(tmp_path: Path, written: Written) -> None:
    link = tmp_path / "link.tar"
    link.symlink_to(written.path)
    with pytest.raises(UserError, match="symlink"), read_layout(link, EXTRAS):
        pass


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo.tar"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="not a regular file"), read_layout(fifo, EXTRAS):
        pass


def rewrite(source: Path, target: Path, change: Callable[[str, bytes], bytes | None]) -> Path:
    """``source``'s members into ``target``, each through ``change`` (None: left out)."""
    with tarfile.open(source) as old, tarfile.open(target, "w") as new:
        for info in old.getmembers():
            data = old.extractfile(info).read() if info.isfile() else b""  # type: ignore[union-attr]
            changed = change(info.name, data) if info.isfile() else data
            if changed is None:
                continue
            info.size = len(changed)
            new.addfile(info, io.BytesIO(changed) if info.isfile() else None)
    return target


def test_an_altered_layer_fails_its_digest(tmp_path: Path, written: Written) -> None:
    layer = "blobs/sha256/" + sha(written.layer)[7:]
    path = rewrite(
        written.path,
        tmp_path / "altered.tar",
        lambda name, data: data[:-1] + b"\x00" if name == layer else data,
    )
    with read_layout(path, EXTRAS) as reader:
        with pytest.raises(UserError, match="does not hash to its name"):
            reader.check_blob(sha(written.layer), len(written.layer))
        with pytest.raises(UserError, match="bytes, 5 were expected"):
            reader.check_blob(sha(written.layer), 5)


def test_an_altered_index_json_no_longer_matches_the_signature(
    tmp_path: Path, written: Written, key: SigningKey
) -> None:
    path = rewrite(
        written.path,
        tmp_path / "swapped.tar",
        lambda name, data: (
            data.replace(b"app/rag-api:0.3.0", b"app/rag-api:9.9.9")
            if name == "index.json"
            else data
        ),
    )
    with pytest.raises(VerificationError, match="subject"):
        opened_index(path, key)


def test_an_index_signed_by_another_key_is_refused(tmp_path: Path, key: SigningKey) -> None:
    forged = write_archive(tmp_path / "forged.tar", new_key("attacker"))
    with pytest.raises(VerificationError, match="no signature verifies"):
        opened_index(forged.path, key)


@pytest.mark.parametrize(
    "fields",
    [
        {"tag": "../../latest"},
        {"tag": "0.3.0 --force"},
        {"image": "app/rag-api;rm -rf"},
        {"name": "App/Rag"},
        {"name": "registry.example/rag"},  # the spec's grammar: a name never reads as a host
        {"name": "a" * 201},  # and is at most 200 characters
        {"image": "registry.example/rag-api"},
        {"version": "latest"},
        {"version": "01.2.3"},  # semver: no leading zero
        {"repository": "127.0.0.1:5000/../x"},
    ],
)
def test_a_signed_index_with_a_field_outside_its_grammar_is_refused(
    tmp_path: Path, key: SigningKey, fields: dict[str, str]
) -> None:
    signed = write_archive(tmp_path / "odd.tar", key, **fields)
    with pytest.raises(VerificationError, match="is not what the format allows"):
        opened_index(signed.path, key)


def test_a_missing_signed_index_is_a_clear_error(tmp_path: Path, written: Written) -> None:
    path = rewrite(
        written.path, tmp_path / "unsigned.tar", lambda n, d: None if n == SIGNED_INDEX else d
    )
    with read_layout(path, EXTRAS) as reader, pytest.raises(UserError, match="holds no"):
        reader.file(SIGNED_INDEX)


# --- manifests ---------------------------------------------------------------------------------


def test_a_foreign_layer_cannot_cross_the_air_gap() -> None:
    body = image_manifest(b"{}", b"layer", urls=["https://example.invalid/layer.tar"])
    with pytest.raises(UserError, match="foreign layer"):
        layout.parse_manifest(body, MANIFEST, "m")


@pytest.mark.parametrize(
    ("body", "media_type", "message"),
    [
        (b"{}", "application/vnd.dsse.envelope.v1+json", "not an image manifest"),
        (b"[1]", MANIFEST, "not a manifest"),
        (b"{", MANIFEST, "not JSON"),
        (b'{"mediaType":"application/vnd.oci.image.index.v1+json"}', MANIFEST, "not a manifest"),
        (b'{"config":{"digest":"sha256:x","size":1,"mediaType":"a/b"}}', MANIFEST, "sha256"),
        (b'{"layers":[]}', MANIFEST, "not an object"),
        (b'{"manifests":[{"digest":"sha256:' + b"a" * 64 + b'","size":-1}]}', MANIFEST, "size"),
        (
            b'{"manifests":[{"digest":"sha256:' + b"a" * 64 + b'","size":1,"mediaType":"x/y"}]}',
            MANIFEST,
            "media type",
        ),
    ],
)
def test_a_manifest_that_is_not_one_is_refused(body: bytes, media_type: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        layout.parse_manifest(body, media_type, "m")


def test_a_manifest_naming_a_blob_the_archive_lacks_is_refused(
    tmp_path: Path, written: Written
) -> None:
    layer = "blobs/sha256/" + sha(written.layer)[7:]
    path = rewrite(written.path, tmp_path / "short.tar", lambda n, d: None if n == layer else d)
    with read_layout(path, EXTRAS) as reader:
        [entry] = reader.entries()
        with pytest.raises(UserError, match="lacks the blob"):
            reader.check_tree(entry)


def test_a_docker_typed_manifest_is_listed_through_an_oci_index_of_it(tmp_path: Path) -> None:
    """skopeo selects only OCI-typed entries of index.json by name: a Docker manifest is listed
    through an OCI index naming it (``export_image``); the reader accepts that index for it, and
    no index naming something else."""
    docker = "application/vnd.docker.distribution.manifest.v2+json"
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"layer"
    body = image_manifest(config, layer).replace(MANIFEST.encode(), docker.encode())
    with (tmp_path / "d.tar").open("wb") as stream:
        writer = LayoutWriter(stream)
        for blob in (config, layer):
            writer.add_stream(Blob(sha(blob), len(blob)), io.BytesIO(blob))
        digest = writer.add_bytes(body)
        wrappers = [
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": layout.INDEX_MEDIA_TYPE,
                    "manifests": [{"mediaType": docker, "digest": named, "size": len(body)}],
                }
            ).encode()
            for named in (digest, sha(b"another"))
        ]
        listed = [
            Entry(f"app/x:{n}", writer.add_bytes(w), layout.INDEX_MEDIA_TYPE, len(w))
            for n, w in enumerate(wrappers)
        ]
        writer.close(layout_index(listed), {})
    own = Entry("app/x:0", digest, docker, len(body))
    with read_layout(tmp_path / "d.tar", EXTRAS) as reader:
        assert reader.lists(own, own)
        assert reader.lists(listed[0], own)
        assert not reader.lists(listed[1], own)


# --- what import checks of the whole archive before the first push ------------------------------


def checked(path: Path, catalog_dir: Path, key: SigningKey) -> TransferIndex:
    from imagefactory.release.importing import _checked
    from imagefactory.spec.loader import load_catalog

    lines: list[str] = []
    with read_layout(path, EXTRAS) as reader:
        return _checked(load_catalog(catalog_dir), reader, key.verifying_key(), lines.append)


def test_an_archive_as_export_writes_it_passes_every_check(
    written: Written, catalog_dir: Path, key: SigningKey
) -> None:
    index = checked(written.path, catalog_dir, key)
    assert [image.manifest.digest for image in index.images] == [written.digest]


def test_a_blob_the_signed_index_does_not_list_is_refused(
    tmp_path: Path, written: Written, catalog_dir: Path, key: SigningKey
) -> None:
    extra = b"smuggled"
    path = rewrite(written.path, tmp_path / "extra.tar", lambda name, data: data)
    with tarfile.open(path, "a") as tar:
        info = tarfile.TarInfo("blobs/sha256/" + sha(extra)[7:])
        info.size = len(extra)
        tar.addfile(info, io.BytesIO(extra))
    with pytest.raises(VerificationError, match="which its signed index does not list"):
        checked(path, catalog_dir, key)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda data: None, "lacks the blob"),  # a signed blob missing from the archive
        (lambda data: bytes([data[0] ^ 1]) + data[1:], "does not hash to its name"),  # altered
    ],
)
def test_a_layer_missing_or_altered_after_signing_is_refused_before_any_push(
    tmp_path: Path,
    written: Written,
    catalog_dir: Path,
    key: SigningKey,
    change: Callable[[bytes], bytes | None],
    message: str,
) -> None:
    layer = "blobs/sha256/" + sha(written.layer)[7:]
    path = rewrite(
        written.path, tmp_path / "changed.tar", lambda n, d: change(d) if n == layer else d
    )
    with pytest.raises(UserError, match=message):
        checked(path, catalog_dir, key)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"image": "app/unknown"}, "not an image of this catalog"),
        ({"tag": "9.9.9"}, "but this catalog names it app/rag-api:0.3.0"),
        ({"name": "base/debian12"}, "but this catalog names it app/rag-api:0.3.0"),
    ],
)
def test_an_image_filed_otherwise_than_the_catalog_names_it_is_refused(
    tmp_path: Path, catalog_dir: Path, key: SigningKey, fields: dict[str, str], message: str
) -> None:
    signed = write_archive(tmp_path / "odd.tar", key, **fields)
    with pytest.raises(UserError, match=message):
        checked(signed.path, catalog_dir, key)


def test_a_signed_index_nested_too_deep_is_refused_not_a_crash(
    tmp_path: Path, written: Written, key: SigningKey
) -> None:
    path = rewrite(
        written.path,
        tmp_path / "deep.tar",
        lambda name, data: b"[" * 200_000 + b"]" * 200_000 if name == SIGNED_INDEX else data,
    )
    with pytest.raises(VerificationError, match="nested too deep"):
        opened_index(path, key)
