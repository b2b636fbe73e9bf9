"""The files of an image's root filesystem that an SBOM reads, from a folder or from layers.

An SBOM needs few files of a root filesystem: the dpkg database (``var/lib/dpkg/status`` and
``status.d/*`` of shell-less images), ``os-release``, ``usr/share/doc/NAME/copyright``, every
``*.dist-info/METADATA`` and ``RECORD`` (a distribution's size), dpkg's file lists
(``var/lib/dpkg/info/*.list``: a package's size as it is in the image), and the Debian
mirrors' ``Release``/``InRelease`` files apt keeps in ``var/lib/apt/lists`` (the build's
provenance names them). The size of every regular file is kept too (a tar header says it: no
file is read for it), and every entry's kind, mode and owner (what the tests of a shell-less
image check, ``imagetest/layers.py``; they also want a few more files: ``want``).
:class:`RootFiles` holds those
(their bytes, by POSIX path relative to ``/``) plus every symlink of the tree
(``etc/os-release`` is a link to ``../usr/lib/os-release`` on Debian), and resolves links
inside the image root, never on the host.

:func:`from_directory` reads an unpacked root filesystem without following a symlink;
:func:`from_layers` streams the layer tarballs of an image (``docker save`` or an OCI layout,
gzip or plain, the order of the manifest's layer list) without extracting anything to disk,
applying each layer's whiteouts (``.wh.NAME`` removes NAME, ``.wh..wh..opq`` empties its folder
of what lower layers put there) before its own entries. zstd-compressed layers are not read
(Python's tarfile knows gzip, bzip2 and xz; Docker 20.10 writes gzip). Both stop past :data:`MAX_ENTRIES`
entries, and refuse a wanted file larger than :data:`MAX_FILE`.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
import tarfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from imagefactory.errors import UserError

#: Entries (files, folders, links) one root filesystem or one image's layers may hold.
MAX_ENTRIES = 2_000_000
#: Bytes of one file the SBOM reads (a dpkg status of a large image is a few MB).
MAX_FILE = 64 * 1024 * 1024
#: Symlinks followed while resolving one path.
MAX_LINK_HOPS = 40

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"

_WANTED = re.compile(
    r"""(?x)^(?:
        var/lib/dpkg/status
      | var/lib/dpkg/status\.d/[^/]+
      | etc/os-release
      | usr/lib/os-release
      | usr/share/doc/[^/]+/copyright
      | (?:.+/)?[^/]+\.dist-info/(?:METADATA|RECORD)
      | var/lib/apt/lists/[^/]+_(?:In)?Release
      | var/lib/dpkg/info/[^/]+\.list
    )$"""
)


def wanted(path: str) -> bool:
    """Whether the SBOM reads the file at ``path`` (POSIX, relative to ``/``)."""
    return _WANTED.match(path) is not None


#: Which files' bytes to keep, by POSIX path relative to ``/``.
Wanted = Callable[[str], bool]


@dataclass(frozen=True)
class Entry:
    """What a tar header (or ``lstat``) says of one path: its kind, permission bits (with
    setuid, setgid and sticky) and numeric owner."""

    kind: str  # file, directory, symlink or other (a device, a FIFO)
    mode: int
    uid: int
    gid: int


@dataclass(frozen=True)
class RootFiles:
    """The wanted files of a root filesystem (bytes by path), all its symlinks (target as
    written, by path), the size of every regular file (a hard link's second name counts 0:
    its bytes are stored once) and every entry. Paths are POSIX, relative to ``/``, without
    ``./``."""

    files: Mapping[str, bytes] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    sizes: Mapping[str, int] = field(default_factory=dict)
    entries: Mapping[str, Entry] = field(default_factory=dict)

    def resolve(self, path: str) -> str:
        """``path`` with every symlink on the way resolved inside the root (an absolute target
        is relative to the image's ``/``, ``..`` stops at ``/``)."""
        parts = _split(path)
        done: list[str] = []
        hops = 0
        while parts:  # bounded: each hop is counted, and each step consumes a part
            part = parts.pop(0)
            candidate = "/".join([*done, part])
            target = self.links.get(candidate)
            if target is None:
                done.append(part)
                continue
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise UserError(f"too many levels of symlinks in the image at /{path}")
            base = [] if target.startswith("/") else done
            parts = _split("/".join([*base, target])) + parts
            done = []
        return "/".join(done)

    def read(self, path: str) -> bytes | None:
        """The bytes of the wanted file at ``path`` (links resolved), or None."""
        return self.files.get(self.resolve(path))

    def matching(self, pattern: re.Pattern[str]) -> list[str]:
        """The sorted paths of the wanted files that ``pattern`` matches whole."""
        return sorted(p for p in self.files if pattern.fullmatch(p))


def _split(path: str) -> list[str]:
    """The parts of ``path`` with ``.``, empty parts and ``..`` above the root dropped."""
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return out


def _normal(name: str) -> str:
    return "/".join(_split(name))


def from_directory(root: Path, want: Wanted = wanted) -> RootFiles:
    """The files ``want`` names and the symlinks below ``root``, an unpacked root filesystem; no
    link is followed on the host. UserError when ``root`` is not a folder or past the bounds."""
    if not root.is_dir():
        raise UserError(f"{root} is not a folder", hint="give the unpacked root filesystem")
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    sizes: dict[str, int] = {}
    metadata: dict[str, Entry] = {}
    inodes: set[tuple[int, int]] = set()
    count = 0
    pending = [(root, "")]
    while pending:  # bounded: each folder is listed once, and the entries are capped
        folder, prefix = pending.pop()
        with os.scandir(folder) as scan:
            entries = list(scan)
        for entry in entries:
            count += 1
            if count > MAX_ENTRIES:
                raise UserError(f"{root} holds more than {MAX_ENTRIES} entries")
            relative = f"{prefix}{entry.name}"
            info = entry.stat(follow_symlinks=False)
            metadata[relative] = Entry(
                _KINDS.get(stat.S_IFMT(info.st_mode), "other"),
                stat.S_IMODE(info.st_mode),
                info.st_uid,
                info.st_gid,
            )
            if stat.S_ISLNK(info.st_mode):
                links[relative] = str(Path(entry.path).readlink())
            elif stat.S_ISDIR(info.st_mode):
                pending.append((Path(entry.path), f"{relative}/"))
            elif stat.S_ISREG(info.st_mode):
                inode = (info.st_dev, info.st_ino)
                sizes[relative] = 0 if inode in inodes else info.st_size
                inodes.add(inode)
                if want(relative):
                    files[relative] = _read_file(Path(entry.path), info.st_size)
    return RootFiles(files, links, sizes, metadata)


_KINDS = {stat.S_IFREG: "file", stat.S_IFDIR: "directory", stat.S_IFLNK: "symlink"}


def _read_file(path: Path, size: int) -> bytes:
    if size > MAX_FILE:
        raise UserError(f"{path} is larger than {MAX_FILE} bytes")
    handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(handle, "rb") as stream:
        return stream.read(MAX_FILE)


@dataclass(frozen=True)
class _Layer:
    files: dict[str, bytes]
    links: dict[str, str]
    sizes: dict[str, int]
    entries: dict[str, Entry]
    removed: frozenset[str]  # whiteouts: these paths and everything below them
    opaque: frozenset[str]  # folders whose lower content is hidden


def from_layers(layers: Iterable[Path], want: Wanted = wanted) -> RootFiles:
    """The files ``want`` names, the symlinks and the entries of the image whose layer tarballs
    are ``layers``, lowest first, read as streams (gzip or plain). UserError for a file that is
    not a tar archive."""
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    sizes: dict[str, int] = {}
    entries: dict[str, Entry] = {}
    for path in layers:
        layer = _read_layer(path, want)
        if layer.removed or layer.opaque:
            for mapping in (files, links, sizes, entries):
                for name in [n for n in mapping if _hidden(n, layer)]:
                    del mapping[name]
        for name in layer.sizes:
            links.pop(name, None)
        for name in layer.links:
            files.pop(name, None)
            sizes.pop(name, None)
        files.update(layer.files)
        links.update(layer.links)
        sizes.update(layer.sizes)
        entries.update(layer.entries)
    return RootFiles(files, links, sizes, entries)


def _hidden(name: str, layer: _Layer) -> bool:
    """Whether a lower layer's ``name`` is gone under ``layer``'s whiteouts."""
    return any(name == r or name.startswith(r + "/") for r in layer.removed) or any(
        name.startswith(o + "/") for o in layer.opaque
    )


def _read_layer(path: Path, want: Wanted) -> _Layer:
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    sizes: dict[str, int] = {}
    entries: dict[str, Entry] = {}
    removed: set[str] = set()
    opaque: set[str] = set()
    try:
        with tarfile.open(path, mode="r|*") as archive:
            for count, member in enumerate(archive, start=1):
                if count > MAX_ENTRIES:
                    raise UserError(f"layer {path} holds more than {MAX_ENTRIES} entries")
                name = _normal(member.name)
                folder, base = posixpath.split(name)
                if base == OPAQUE:
                    opaque.add(folder)
                    continue
                if base.startswith(WHITEOUT):
                    removed.add(posixpath.join(folder, base[len(WHITEOUT) :]))
                    continue
                if name:
                    entries[name] = _entry(member)
                if member.issym():
                    links[name] = member.linkname
                elif member.islnk():
                    sizes[name] = 0  # the bytes are the target's
                    target = _normal(member.linkname)
                    if target in files and want(name):
                        files[name] = files[target]
                elif member.isfile():
                    sizes[name] = member.size
                    if not want(name):
                        continue
                    if member.size > MAX_FILE:
                        raise UserError(f"{name} in layer {path} is larger than {MAX_FILE} bytes")
                    stream = archive.extractfile(member)
                    files[name] = stream.read() if stream is not None else b""
    except (tarfile.TarError, OSError) as exc:
        raise UserError(f"cannot read the layer {path}: {exc}") from exc
    return _Layer(files, links, sizes, entries, frozenset(removed), frozenset(opaque))


def _entry(member: tarfile.TarInfo) -> Entry:
    kind = (
        "symlink"
        if member.issym()
        else "directory"
        if member.isdir()
        else "file"
        if member.isfile() or member.islnk()
        else "other"
    )
    return Entry(kind, stat.S_IMODE(member.mode), member.uid, member.gid)
