"""The SBOM of an image in the local engine, without running it.

``docker image save`` writes the image to a tar file (:meth:`Engine.save`); its ``manifest.json``
lists the image's layer tarballs, lowest first (Docker 20.10: ``<id>/layer.tar``, a symlink to
another layer's file when two layers are the same; Docker 25+: the OCI layout's
``blobs/sha256/<hex>``). Each layer is copied out of the archive under a name of ours, read
(:func:`imagefactory.sbom.rootfs.from_layers`: whiteouts applied) and removed before the next
one is copied, so the disk holds the archive and one layer at a time. Nothing the archive
names is used as a path on the host: a layer the manifest names must be a regular member of
the archive (symlinks followed inside it), or the archive is refused.

The files the spec copies (``files:``) join the SBOM as ``file`` components, hashed from the
catalog's sources (what ``COPY`` put into the image).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from imagefactory.build.docker import Engine
from imagefactory.errors import UserError
from imagefactory.render.dockerfile import file_entries
from imagefactory.sbom.rootfs import MAX_ENTRIES, RootFiles, Wanted, from_layers, wanted
from imagefactory.spec.catalog import Catalog, CatalogImage

if TYPE_CHECKING:
    from imagefactory.sbom.document import CopiedFile

#: The most bytes the archive's manifest.json may have.
MANIFEST_LIMIT = 1024 * 1024
#: Symlinks followed to find one layer inside the archive.
MAX_LINK_HOPS = 8


def saved_root(engine: Engine, reference: str, work: Path, want: Wanted = wanted) -> RootFiles:
    """The files an SBOM reads (or ``want`` names) of the local image ``reference``, and its
    entries, through ``docker image save`` into a private folder made under ``work`` (removed
    afterwards)."""
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sbom-", dir=work) as folder:
        archive = Path(folder) / "image.tar"
        engine.save(reference, archive)
        return saved_archive_root(archive, Path(folder), want)


def saved_archive_root(archive: Path, folder: Path, want: Wanted = wanted) -> RootFiles:
    """The files an SBOM reads (or ``want`` names) of the one image in the ``docker image
    save`` tar ``archive``; its layers pass through ``folder`` one at a time."""
    try:
        with tarfile.open(archive, mode="r:") as tar:
            members = _layer_members(tar, archive)
            return from_layers(_copied_layers(tar, members, folder), want)
    except tarfile.TarError as exc:
        raise UserError(f"{archive} is not an image archive (docker image save): {exc}") from exc


def _copied_layers(
    tar: tarfile.TarFile, members: list[tarfile.TarInfo], folder: Path
) -> Iterator[Path]:
    """Each layer copied to ``folder/layer.tar`` in turn: yielded, read, then removed."""
    path = folder / "layer.tar"
    for member in members:
        stream = tar.extractfile(member)
        if stream is None:  # a regular member always has a stream; kept for the type
            raise UserError(f"the image archive cannot read its layer {member.name}")
        with stream, path.open("wb") as target:
            shutil.copyfileobj(stream, target, length=1024 * 1024)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)


def _layer_members(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    """The members of the archive that its manifest.json names as the image's layers."""
    manifest = _member(tar, "manifest.json", archive)
    if manifest.size > MANIFEST_LIMIT:
        raise UserError(f"{archive}: manifest.json is larger than {MANIFEST_LIMIT} bytes")
    stream = tar.extractfile(manifest)
    try:
        document = json.loads(stream.read() if stream is not None else b"")
    except ValueError as exc:
        raise UserError(f"{archive}: manifest.json is not JSON: {exc}") from exc
    if not isinstance(document, list) or len(document) != 1 or not isinstance(document[0], dict):
        raise UserError(
            f"{archive}: manifest.json must describe exactly one image",
            hint="save one image: docker image save --output FILE IMAGE",
        )
    layers = document[0].get("Layers")
    if not isinstance(layers, list) or not all(isinstance(name, str) for name in layers):
        raise UserError(f"{archive}: manifest.json has no list of layers (key Layers)")
    return [_member(tar, name, archive) for name in layers]


def _member(tar: tarfile.TarFile, name: str, archive: Path) -> tarfile.TarInfo:
    """The regular member ``name`` of the archive, symlinks followed inside it (bounded)."""
    wanted = posixpath.normpath(name)
    for _ in range(MAX_LINK_HOPS):
        try:
            member = tar.getmember(wanted)
        except KeyError:
            raise UserError(
                f"{archive}: the archive holds no {name!r} that its manifest names",
                hint="the file is not what docker image save writes",
            ) from None
        if member.isfile():
            return member
        if not member.issym():
            raise UserError(f"{archive}: {name!r} is not a regular file in the archive")
        wanted = posixpath.normpath(posixpath.join(posixpath.dirname(wanted), member.linkname))
        if wanted.startswith("../") or wanted.startswith("/"):
            raise UserError(f"{archive}: {name!r} links outside the archive")
    raise UserError(f"{archive}: {name!r} is behind more than {MAX_LINK_HOPS} symlinks")


def copied_files(catalog: Catalog, image: CatalogImage) -> list[CopiedFile]:
    """Every file ``image``'s spec copies: its path in the image, its SHA-256, its source in
    the catalog. A folder gives each regular file below it (links are not followed)."""
    found: list[CopiedFile] = []
    for entry in file_entries(image):
        if entry.is_dir:
            for relative, path in _files_below(entry.source):
                found.append(_copied(catalog, path, posixpath.join(entry.dest, relative)))
        elif entry.source.is_file():
            found.append(_copied(catalog, entry.source, entry.dest))
    return found


def _copied(catalog: Catalog, path: Path, dest: str) -> CopiedFile:
    from imagefactory.sbom.document import CopiedFile  # cyclonedx: only where SBOMs are made

    with path.open("rb") as stream:
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
    return CopiedFile(dest, digest, path.relative_to(catalog.root).as_posix())


def _files_below(folder: Path) -> list[tuple[str, Path]]:
    """(POSIX path relative to ``folder``, path) of every regular file below it, sorted."""
    found: list[tuple[str, Path]] = []
    pending = [(folder, "")]
    count = 0
    while pending:  # each folder listed once; bounded by the entry count
        current, prefix = pending.pop()
        with os.scandir(current) as scan:
            for entry in scan:
                count += 1
                if count > MAX_ENTRIES:
                    raise UserError(f"{folder} holds more than {MAX_ENTRIES} entries")
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    pending.append((Path(entry.path), f"{prefix}{entry.name}/"))
                elif stat.S_ISREG(mode):
                    found.append((f"{prefix}{entry.name}", Path(entry.path)))
    return sorted(found)
