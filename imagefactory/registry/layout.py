"""OCI image layout archives (opencontainers image-spec ``image-layout.md``): one tar holding
``oci-layout``, ``index.json`` and every blob under ``blobs/sha256/<hex>``, manifests included,
byte for byte. skopeo reads one (``oci-archive:FILE:NAME``, or ``oci:DIR:NAME`` unpacked), where
NAME is the ``org.opencontainers.image.ref.name`` of an ``index.json`` entry.

Written streamed from a registry (``LayoutWriter`` and ``export_image``): each blob passes
through a spooled temporary file (at most its descriptor's size, hashed on the way, as
``copy.fetch_blob`` does) into the tar; no image is held in memory. The entries are written
last, with any extra files the caller adds (imagefactory's signed index).

Read back as untrusted input (``LayoutReader``): the archive must be a regular file (never
through a symlink), an uncompressed tar of at most ``MEMBER_LIMIT`` members, each a regular
file or one of the two blob folders, named ``oci-layout``, ``index.json``, an extra file the
caller expects, or ``blobs/sha256/<64 hex>`` (no absolute path, no ``..``, no link, device or
sparse file, no name twice), each within its size limit. Manifests are parsed only when they
are small enough and of a manifest media type; blobs are hashed streamed (``check_blob``) and
pushed streamed (``push``: ``copy.copy_image`` from the archive, several blobs at once).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

from imagefactory.errors import UserError
from imagefactory.registry.copy import (
    SPOOL_BYTES,
    Blob,
    Progress,
    Side,
    blobs_of,
    copy_image,
    fetch_blob,
    retried,
    size_text,
)
from imagefactory.registry.http import MANIFEST_LIMIT, MANIFEST_TYPES, Upload

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
BLOB_FOLDER = "blobs/sha256/"
LAYOUT_BYTES = b'{"imageLayoutVersion":"1.0.0"}'
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
OCI_TYPES = (INDEX_MEDIA_TYPE, "application/vnd.oci.image.manifest.v1+json")
#: The most members an archive may have, and the most bytes one blob may have.
MEMBER_LIMIT = 100_000
BLOB_LIMIT = 64 * 1024**3
#: The most bytes of index.json and of an extra file.
FILE_LIMIT = 16 * 1024 * 1024
CHUNK = 1024 * 1024
_HEX = re.compile(r"[0-9a-f]{64}")
#: image-spec annotations.md: the grammar of a ref name.
_REF_NAME = re.compile(
    r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*"
)
_FOLDERS = frozenset({"blobs", "blobs/sha256"})


@dataclass(frozen=True)
class Entry:
    """One entry of ``index.json``: a manifest by digest, under a ref name."""

    name: str
    digest: str
    media_type: str
    size: int

    def descriptor(self) -> dict[str, Any]:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
            "annotations": {REF_NAME: self.name},
        }


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class LayoutWriter:
    """An OCI layout written into the tar ``stream``: ``oci-layout`` first, blobs as they come
    (each once), ``index.json`` and the extra files at ``close``. Members are owned by root,
    mode 0644, dated 0: the same blobs give the same members."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._tar = tarfile.open(  # noqa: SIM115 (ended by close)
            fileobj=stream, mode="w", format=tarfile.PAX_FORMAT
        )
        self.blobs: dict[str, int] = {}  # digest → size, in the order written
        self.platforms: dict[str, dict[str, str] | None] = {}  # config digest → its platform
        for folder in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            self._tar.addfile(info)
        self._add(LAYOUT_FILE, LAYOUT_BYTES)

    def add_bytes(self, data: bytes) -> str:
        """``data`` (a manifest) as a blob unless it is there; its digest."""
        digest = digest_of(data)
        if digest not in self.blobs:
            self._add(_blob_name(digest), data)
            self.blobs[digest] = len(data)
        return digest

    def add_stream(self, blob: Blob, stream: IO[bytes]) -> None:
        """The blob whose ``blob.size`` bytes ``stream`` holds from its start (checked against
        ``blob.digest`` by whoever filled it)."""
        if blob.digest in self.blobs:
            return
        stream.seek(0)
        info = _info(_blob_name(blob.digest), blob.size)
        self._tar.addfile(info, stream)
        self.blobs[blob.digest] = blob.size

    def close(self, index: bytes, extras: Mapping[str, bytes]) -> None:
        """Write ``index`` (``layout_index``'s) as ``index.json`` and the ``extras`` (name →
        bytes); end the tar."""
        self._add(INDEX_FILE, index)
        for name, data in extras.items():
            self._add(name, data)
        self._tar.close()

    def _add(self, name: str, data: bytes) -> None:
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            spool.write(data)
            spool.seek(0)
            self._tar.addfile(_info(name, len(data)), spool)


def layout_index(entries: list[Entry]) -> bytes:
    """The bytes of the ``index.json`` that lists ``entries``, in this order."""
    document = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [entry.descriptor() for entry in entries],
    }
    return json.dumps(document, indent=2).encode()


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.uid, info.gid = size, 0o644, 0, 0, 0
    return info


def _blob_name(digest: str) -> str:
    return BLOB_FOLDER + digest.removeprefix("sha256:")


def export_image(
    writer: LayoutWriter, source: Side, reference: str, name: str, progress: Progress
) -> tuple[Entry, Entry]:
    """The manifest ``reference`` of ``source`` (a tag or a digest) and everything it names
    written into ``writer``, streamed: (the manifest, as an entry named ``name``; the entry
    ``index.json`` lists under ``name``). The two are one for an OCI manifest or index; a
    Docker-typed one (which OCI layout readers such as skopeo do not select by name) is listed
    through an OCI index of it (its platform from its config; a Docker list's platforms), its
    own bytes kept as they are."""
    digest, media_type, size, document = _export(writer, source, reference, progress, None)
    own = Entry(name, digest, media_type, size)
    if media_type in OCI_TYPES:
        return own, own
    children = document.get("manifests")
    if children is None:
        child: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": size}
        platform = writer.platforms.get(document["config"]["digest"])
        children = [child if platform is None else {**child, "platform": platform}]
    wrapper = json.dumps(
        {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": children}, indent=2
    ).encode()
    return own, Entry(name, writer.add_bytes(wrapper), INDEX_MEDIA_TYPE, len(wrapper))


def _export(
    writer: LayoutWriter, source: Side, reference: str, progress: Progress, media_type: str | None
) -> tuple[str, str, int, dict[str, Any]]:
    found = retried(lambda: source.api.manifest(source.repository, reference))
    if found is None:
        raise UserError(
            f"{source.api.registry.url}/{source.repository} does not hold {reference}",
            hint="the digests each environment holds: imagefactory status",
        )
    body, served = found
    where = f"{source.repository}@{reference}"
    kind = media_type or served
    document = parse_manifest(body, kind, where)
    if "manifests" in document:
        for child in document["manifests"]:
            _export(writer, source, child["digest"], progress, child["mediaType"])
    else:
        blobs = blobs_of(document)
        for number, blob in enumerate(blobs, 1):
            if blob.digest in writer.blobs:
                continue
            progress(
                f"{where}: blob {number}/{len(blobs)} {blob.digest[7:19]} {size_text(blob.size)}"
            )
            with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
                retried(partial(fetch_blob, source, blob, spool))
                if blob.digest == document["config"]["digest"]:
                    writer.platforms[blob.digest] = _platform(spool, blob.size)
                writer.add_stream(blob, spool)
    return writer.add_bytes(body), kind, len(body), document


def _platform(spool: IO[bytes], size: int) -> dict[str, str] | None:
    """The platform an image config names (``os``, ``architecture``, ``variant``), if any."""
    if size > MANIFEST_LIMIT:
        return None
    spool.seek(0)
    try:
        config = json.loads(spool.read(size))
    except (ValueError, RecursionError):
        return None
    if not isinstance(config, dict):
        return None
    found = {
        k: config[k]
        for k in ("architecture", "os", "variant")
        if isinstance(config.get(k), str) and config[k]
    }
    return found if {"architecture", "os"} <= set(found) else None


def parse_manifest(body: bytes, media_type: str, where: str) -> dict[str, Any]:
    """The manifest ``body`` of ``media_type``: a JSON object of a manifest media type (its own
    ``mediaType`` the same where it names one), whose descriptors are well formed and which
    names no foreign layer (one outside the registry: it cannot cross an air gap)."""
    if media_type not in MANIFEST_TYPES:
        raise UserError(f"{where}: media type {media_type!r} is not an image manifest or index")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{where}: the manifest is not JSON ({exc})") from exc
    if not isinstance(document, dict) or document.get("mediaType", media_type) != media_type:
        raise UserError(f"{where}: not a manifest of type {media_type}")
    children = document.get("manifests")
    entries = (
        children
        if children is not None
        else [document.get("config"), *(document.get("layers") or [])]
    )
    if not isinstance(entries, list):
        raise UserError(f"{where}: its descriptors are not a list")
    for entry in entries:
        _check_descriptor(entry, where, manifest=children is not None)
    return document


def _check_descriptor(entry: Any, where: str, *, manifest: bool) -> None:
    if not isinstance(entry, dict):
        raise UserError(f"{where}: a descriptor is not an object")
    digest, size, kind = entry.get("digest"), entry.get("size"), entry.get("mediaType")
    if (
        not isinstance(digest, str)
        or not digest.startswith("sha256:")
        or not _HEX.fullmatch(digest[7:])
    ):
        raise UserError(f"{where}: a descriptor's digest {digest!r} is not a sha256 digest")
    if type(size) is not int or not 0 <= size <= BLOB_LIMIT:
        raise UserError(f"{where}: {digest} has no size, or one over {BLOB_LIMIT} bytes")
    if not isinstance(kind, str) or (manifest and kind not in MANIFEST_TYPES):
        raise UserError(f"{where}: {digest} has the media type {kind!r}")
    if entry.get("urls"):
        raise UserError(
            f"{where}: {digest} is a foreign layer (fetched from {entry['urls']!r}, not from a "
            "registry): it cannot cross an air gap",
            hint="build the image without foreign layers",
        )


class LayoutReader:
    """An OCI layout archive opened by ``read_layout``, its members checked."""

    def __init__(
        self, tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], source: str, fd: int
    ):
        self._tar, self._members, self.source, self._fd = tar, members, source, fd

    @property
    def blobs(self) -> dict[str, int]:
        """Every blob of the archive: digest → size."""
        return {
            "sha256:" + name.removeprefix(BLOB_FOLDER): info.size
            for name, info in self._members.items()
            if name.startswith(BLOB_FOLDER)
        }

    def file(self, name: str) -> bytes:
        """The bytes of the file ``name`` (``index.json`` or an extra one)."""
        info = self._members.get(name)
        if info is None:
            raise UserError(f"{self.source} holds no {name}", hint=_HINT)
        return self._read(info, FILE_LIMIT)

    def entries(self) -> list[Entry]:
        """The entries of ``index.json``, each a manifest by digest under a valid ref name."""
        where = f"{self.source}: {INDEX_FILE}"
        document = parse_manifest(self.file(INDEX_FILE), INDEX_MEDIA_TYPE, where)
        found = []
        for descriptor in document.get("manifests") or []:
            annotations = descriptor.get("annotations") or {}
            name = annotations.get(REF_NAME) if isinstance(annotations, dict) else None
            if not isinstance(name, str) or not _REF_NAME.fullmatch(name):
                raise UserError(f"{where}: the ref name {name!r} is not one (image-spec grammar)")
            found.append(
                Entry(name, descriptor["digest"], descriptor["mediaType"], descriptor["size"])
            )
        return found

    def check_blob(self, digest: str, size: int) -> None:
        """The blob ``digest`` is in the archive, of ``size`` bytes, and its bytes hash to it."""
        info = self._blob(digest, size)
        stream = self._tar.extractfile(info)
        assert stream is not None  # a regular file: checked when the archive was opened
        sha = hashlib.sha256()
        while chunk := stream.read(CHUNK):
            sha.update(chunk)
        if "sha256:" + sha.hexdigest() != digest:
            raise UserError(
                f"{self.source}: the blob {digest} does not hash to its name: it was altered",
                hint=_HINT,
            )

    def manifest(self, digest: str, media_type: str) -> tuple[bytes, dict[str, Any]]:
        """The bytes of the manifest ``digest`` (checked) and its document."""
        info = self._blob(digest, None)
        body = self._read(info, MANIFEST_LIMIT)
        if digest_of(body) != digest:
            raise UserError(f"{self.source}: the manifest {digest} was altered", hint=_HINT)
        return body, parse_manifest(body, media_type, f"{self.source}: {digest}")

    def blob(self, digest: str, size: int, limit: int) -> bytes:
        """The bytes of the blob ``digest`` of ``size`` bytes (at most ``limit``), checked."""
        data = self._read(self._blob(digest, size), limit)
        if digest_of(data) != digest:
            raise UserError(f"{self.source}: the blob {digest} was altered", hint=_HINT)
        return data

    def lists(self, listed: Entry, manifest: Entry) -> bool:
        """Whether ``listed`` (an entry of ``index.json``) is ``manifest``, or an OCI index of
        it (``export_image``'s, for a Docker-typed one): of it, or of its platforms."""
        if (listed.digest, listed.media_type) == (manifest.digest, manifest.media_type):
            return True
        if listed.media_type != INDEX_MEDIA_TYPE:
            return False
        _, wrapper = self.manifest(listed.digest, listed.media_type)
        _, document = self.manifest(manifest.digest, manifest.media_type)
        named = {manifest.digest, *(c["digest"] for c in document.get("manifests") or [])}
        return {c["digest"] for c in wrapper["manifests"]} <= named

    def check_tree(self, entry: Entry) -> None:
        """Every manifest below ``entry`` parses, and every blob it names is in the archive
        with the size its descriptor says (before anything is pushed)."""
        _, document = self.manifest(entry.digest, entry.media_type)
        for child in document.get("manifests") or []:
            self.check_tree(Entry(entry.name, child["digest"], child["mediaType"], child["size"]))
        for blob in blobs_of(document) if "manifests" not in document else []:
            self._blob(blob.digest, blob.size)

    def push(self, entry: Entry, target: Side, tag: str, progress: Progress) -> str:
        """The manifest of ``entry`` and everything it names pushed to ``target`` under ``tag``
        (a tag, or its digest), as ``copy.copy_image`` copies: blobs the target holds are
        skipped, the others streamed from the archive, several at once; the manifest's exact
        bytes, last. The digest."""
        return copy_image(
            _Archive(self),
            entry.digest,
            target,
            tag,
            media_type=entry.media_type,
            progress=progress,
        )

    def open_blob(self, blob: Blob) -> IO[bytes]:
        """A stream of the bytes of ``blob`` (of its size), which streams of other blobs may be
        read beside, in other threads: it reads its member by offset (``os.pread``)."""
        info = self._blob(blob.digest, blob.size)
        return io.BufferedReader(_Member(self._fd, info.offset_data, info.size, self.source), CHUNK)

    def _blob(self, digest: str, size: int | None) -> tarfile.TarInfo:
        info = self._members.get(_blob_name(digest))
        if info is None:
            raise UserError(f"{self.source} lacks the blob {digest}", hint=_HINT)
        if size is not None and info.size != size:
            raise UserError(
                f"{self.source}: the blob {digest} has {info.size} bytes, {size} were expected",
                hint=_HINT,
            )
        return info

    def _read(self, info: tarfile.TarInfo, limit: int) -> bytes:
        if info.size > limit:
            raise UserError(
                f"{self.source}: {info.name} has {info.size} bytes, more than the {limit} read",
                hint=_HINT,
            )
        stream = self._tar.extractfile(info)
        assert stream is not None
        return stream.read(limit)


_HINT = "export it again (imagefactory export) and transfer it unchanged; never edit an archive"


@dataclass(frozen=True)
class _Archive:
    """An OCI layout archive as the source of a copy (``copy.BlobSource``)."""

    reader: LayoutReader

    def manifest(self, reference: str, media_type: str | None) -> tuple[bytes, str, dict[str, Any]]:
        """The manifest ``reference`` (a digest: the archive names no tags) of ``media_type``
        (its entry's, or its index's descriptor's), checked."""
        assert media_type is not None, "push names the entry's media type"
        body, document = self.reader.manifest(reference, media_type)
        return body, media_type, document

    def mount_source(self, target: Side) -> str | None:
        return None  # no registry holds the archive's blobs: asked, each one (HEAD)

    def upload(self, blob: Blob, target: Side) -> None:
        with self.reader.open_blob(blob) as stream:
            target.api.put_blob(target.repository, blob.digest, Upload(stream, blob.size))


class _Member(io.RawIOBase):
    """The ``size`` bytes at ``offset`` of the archive's file ``fd``, read with ``os.pread``
    (no shared file position); an archive that ends early is a UserError."""

    def __init__(self, fd: int, offset: int, size: int, source: str) -> None:
        super().__init__()
        self._fd, self._offset, self._size, self._source, self._at = fd, offset, size, source, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence]
        self._at = max(0, base + offset)
        return self._at

    def tell(self) -> int:
        return self._at

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self._size - self._at)
        if wanted <= 0:
            return 0
        data = os.pread(self._fd, wanted, self._offset + self._at)
        if not data:
            raise UserError(f"{self._source} ends inside a blob: it was cut short", hint=_HINT)
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)


@contextmanager
def read_layout(path: Path, extras: frozenset[str] = frozenset()) -> Iterator[LayoutReader]:
    """The OCI layout archive at ``path`` (a regular file, not through a symlink), its members
    checked (see the module's docstring); ``extras``: the other files it may hold."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise UserError(
            f"cannot open {path}: {exc.strerror}",
            hint="name the archive file itself (a symlink is refused)",
        ) from None
    with os.fdopen(handle, "rb") as stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            raise UserError(f"{path} is not a regular file", hint="name the archive file itself")
        try:
            tar = tarfile.open(fileobj=stream, mode="r:")  # noqa: SIM115 (the with below)
        except tarfile.TarError as exc:
            raise UserError(f"{path} is not an uncompressed tar archive ({exc})") from None
        with tar:
            members = _members(tar, str(path), extras)
            reader = LayoutReader(tar, members, str(path), stream.fileno())
            try:
                version = json.loads(reader.file(LAYOUT_FILE)).get("imageLayoutVersion")
            except (ValueError, AttributeError):
                version = None
            if version != "1.0.0":
                raise UserError(f"{path}: {LAYOUT_FILE} does not say imageLayoutVersion 1.0.0")
            yield reader


def _members(
    tar: tarfile.TarFile, source: str, extras: frozenset[str]
) -> dict[str, tarfile.TarInfo]:
    files: dict[str, tarfile.TarInfo] = {}
    allowed = {LAYOUT_FILE, INDEX_FILE, *extras}
    for count in range(MEMBER_LIMIT + 1):
        try:
            info = tar.next()
        except tarfile.TarError as exc:
            raise UserError(f"{source}: a damaged tar header ({exc})", hint=_HINT) from None
        if info is None:
            break
        if count == MEMBER_LIMIT:
            raise UserError(f"{source}: more than {MEMBER_LIMIT} members", hint=_HINT)
        name = info.name.removeprefix("./").rstrip("/")
        where = f"{source}: member {info.name!r}"
        if name in files:
            raise UserError(f"{where} is there twice", hint=_HINT)
        if info.isdir() and name in (*_FOLDERS, "", "."):
            continue
        if not info.isreg() or info.issparse():
            raise UserError(
                f"{where} is not a regular file (a link, a device or a folder)", hint=_HINT
            )
        blob = name.startswith(BLOB_FOLDER) and _HEX.fullmatch(name.removeprefix(BLOB_FOLDER))
        if not blob and name not in allowed:
            raise UserError(
                f"{where} is not part of an OCI layout (oci-layout, index.json, "
                f"blobs/sha256/<hex>{''.join(', ' + e for e in sorted(extras))})",
                hint=_HINT,
            )
        limit = BLOB_LIMIT if blob else FILE_LIMIT
        if info.size > limit:
            raise UserError(f"{where} has {info.size} bytes, more than {limit}", hint=_HINT)
        files[name] = info
    if files.get(LAYOUT_FILE) is None:
        raise UserError(f"{source} is not an OCI layout: it holds no {LAYOUT_FILE}", hint=_HINT)
    return files
