"""The filesystem checks of a shell-less image, read from its layers, never from a container.

A shell-less image (``distroless:``) has nothing to exec: as container-structure-test's tar
driver does, its packages, pip, files and users checks read the image's filesystem from the
layers ``docker image save`` writes (:func:`imagefactory.build.image_sbom.saved_root`: whiteouts
applied, nothing unpacked on disk). :class:`LayerHost` answers the questions the checks ask a
testinfra host (``checks.filesystem_checks`` runs the same probes on both):

* a Debian package is installed when the dpkg database (``status`` or ``status.d/*``) lists it
  and not as removed (what the SBOM reads);
* a pip distribution is installed when a ``*.dist-info/METADATA`` of that name (PEP 503
  normalised) is in the venv;
* a file's kind, mode and owner are its tar header's (the path's folders resolved through the
  image's symlinks, the last part not: ``stat`` without ``-L``), owner and group named by the
  image's ``/etc/passwd`` and ``/etc/group``; ``exists``, ``is_directory`` and the content
  follow the last link too (``test -e``, ``test -d``, ``cat``);
* a user is its ``/etc/passwd`` line.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from imagefactory.build.docker import Engine
from imagefactory.build.image_sbom import saved_root
from imagefactory.errors import UserError
from imagefactory.imagetest.checks import filesystem_checks
from imagefactory.imagetest.results import CheckResult
from imagefactory.sbom.catalog import debian_packages, normalise_name, os_release, python_packages
from imagefactory.sbom.rootfs import Entry, RootFiles, wanted
from imagefactory.spec.models import ImageTests

PASSWD = "etc/passwd"
GROUP = "etc/group"
UNKNOWN = "UNKNOWN"  # what stat's %U and %G say of an id without a name


def relative(path: str) -> str:
    """``path`` as the layers name it: POSIX, relative to ``/``, ``.`` and empty parts dropped."""
    return posixpath.normpath("/" + path).lstrip("/")


def read_image(
    engine: Engine, reference: str, work: Path, tests: Iterable[ImageTests]
) -> RootFiles:
    """The filesystem of the local image ``reference`` as ``tests`` check it: the files the SBOM
    reads, the account databases and the files a ``contains`` check reads (a second pass
    reads those behind a symlink, once the links are known)."""
    contents = {relative(c.path) for t in tests for c in t.files if c.contains is not None}
    root = saved_root(
        engine, reference, work, lambda p: wanted(p) or p in {PASSWD, GROUP, *contents}
    )
    behind = {root.resolve(path) for path in contents} - root.files.keys()
    if behind:
        root = saved_root(
            engine, reference, work, lambda p: wanted(p) or p in {PASSWD, GROUP, *contents, *behind}
        )
    return root


@dataclass(frozen=True)
class _Package:
    is_installed: bool


@dataclass(frozen=True)
class LayerUser:
    exists: bool
    uid: int = -1
    gid: int = -1
    home: str = ""
    shell: str = ""


@dataclass(frozen=True)
class LayerFile:
    """One path of the image as testinfra's ``host.file`` describes it."""

    root: RootFiles
    path: str  # relative to /
    names: tuple[dict[int, str], dict[int, str]]  # uid → user name, gid → group name

    @property
    def _entry(self) -> Entry | None:  # the path itself: its folders resolved, not its last part
        folder, base = posixpath.split(self.path)
        return self.root.entries.get(posixpath.join(self.root.resolve(folder), base))

    @property
    def _target(self) -> str:
        return self.root.resolve(self.path)

    def _resolved(self) -> Entry | None:
        target = self._target
        return Entry("directory", 0o755, 0, 0) if not target else self.root.entries.get(target)

    @property
    def exists(self) -> bool:
        return self._resolved() is not None

    @property
    def is_symlink(self) -> bool:
        entry = self._entry
        return entry is not None and entry.kind == "symlink"

    @property
    def is_directory(self) -> bool:
        entry = self._resolved()
        return entry is not None and entry.kind == "directory"

    def _own(self) -> Entry:
        entry = self._entry or self._resolved()
        if entry is None:
            raise UserError(f"/{self.path} is not in the image")
        return entry

    @property
    def mode(self) -> int:
        return self._own().mode

    @property
    def uid(self) -> int:
        return self._own().uid

    @property
    def gid(self) -> int:
        return self._own().gid

    @property
    def user(self) -> str:
        return self.names[0].get(self.uid, UNKNOWN)

    @property
    def group(self) -> str:
        return self.names[1].get(self.gid, UNKNOWN)

    @property
    def content_string(self) -> str:
        content = self.root.files.get(self._target)
        if content is None:
            raise UserError(f"/{self.path} is not a file of the image that was read")
        return content.decode("utf-8", "replace")


def _account_lines(raw: bytes | None) -> Iterator[list[str]]:
    for line in (raw or b"").decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[2].isdigit():
            yield fields


class LayerHost:
    """The testinfra host methods the filesystem checks call, answered from the layers."""

    def __init__(self, root: RootFiles) -> None:
        self.root = root
        self.debian = {p.name for p in debian_packages(root, os_release(root))}
        self.python = python_packages(root)
        passwd = list(_account_lines(root.read(PASSWD)))
        self.users = {f[0]: f for f in passwd if len(f) >= 7}
        groups = {int(f[2]): f[0] for f in _account_lines(root.read(GROUP))}
        self.names = ({int(f[2]): f[0] for f in self.users.values()}, groups)

    def package(self, name: str) -> _Package:
        return _Package(name in self.debian)

    def pip(self, name: str, pip_path: str) -> _Package:
        venv = relative(pip_path.removesuffix("/bin/pip")) + "/"
        wanted_name = normalise_name(name)
        return _Package(
            any(
                p.location.startswith(venv) and normalise_name(p.name) == wanted_name
                for p in self.python
            )
        )

    def file(self, path: str) -> LayerFile:
        return LayerFile(self.root, relative(path), self.names)

    def user(self, name: str) -> LayerUser:
        fields = self.users.get(name)
        if fields is None:
            return LayerUser(False)
        return LayerUser(True, int(fields[2]), int(fields[3]), fields[5], fields[6])


def layer_checks(tests: ImageTests, host: LayerHost, venv: str) -> Iterator[CheckResult]:
    """The filesystem checks of ``tests`` on the image ``host`` read; each command check fails:
    a shell-less image cannot run one (validate refuses them in image.yaml)."""
    yield from filesystem_checks(tests, host, venv)
    for command in tests.commands:
        yield CheckResult(
            "commands",
            command.name,
            False,
            0.0,
            "a shell in the image",
            "the image is shell-less (distroless:): command checks cannot run in it",
        )
