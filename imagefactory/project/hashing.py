"""Content hashes: one fingerprint per concrete image of everything that decides its bytes.

An image's hash combines its input hashes, each kept so a plan can say *why* it changed:

* ``spec``: the merged spec (its ``tests``, ``targets`` and ``deploy`` excluded: they do not
  change the image) plus the project build settings that shape every image — the CA bundle's content,
  the package mirrors and SOURCE_DATE_EPOCH (the proxy is excluded: it never reaches the image);
* ``files``: path, executable bit and content of every file the spec copies, and the content
  of the Ansible playbooks it applies and of the roles beside them (``<playbook dir>/roles``),
  and the name and content of each wheel its ``wheels:`` match (:mod:`imagefactory.spec.wheels`);
* ``templates``: the templates that render the image — the standard Dockerfile templates and
  any override in the image's folder;
* ``parent``: the parent's content hash less its platform list (``shared_hash``; so a base
  change reaches every descendant, a platform added to the parent none), or the external
  parent's digest, or for a bootstrapped rootfs the version of the way it is made
  (its recipe is in ``spec``);
* ``refresh``: the versions ``refresh.yaml`` asks the image to hold at least
  (:mod:`imagefactory.spec.refresh`); empty, and then not hashed, for an image it does not
  name, so a catalog without refreshes keeps its hashes;
* ``lock``: the image's entry in the ``image.lock`` beside its image.yaml
  (:mod:`imagefactory.spec.lock`: the exact Debian and Python packages it installs); empty, and
  then not hashed, for an image without one;
* ``platforms``: the platforms the image is built for, when its spec names them (empty, and then
  not hashed, for an image built for the host's platform only). Each platform has its own hash
  (:meth:`ContentInputs.platform_hash`) from every input but the list, so adding or dropping a
  platform leaves the others' hashes, and so their builds, as they are; the image's own hash
  (the content tag of its index) covers the list.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath
from typing import Any

from imagefactory.project.paths import templates_dir
from imagefactory.project.recipe import RECIPE_VERSION
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.parents import CatalogParent, ExternalParent
from imagefactory.spec.walk import walk_tree
from imagefactory.spec.wheels import wheel_files

HASH_SCHEME = "imagefactory/content/v1"
TEMPLATE_SUFFIX = ".j2"
#: Inputs hashed (and listed) only when the image has them, so a catalog without keeps its hashes.
OPTIONAL_INPUTS = ("refresh", "lock", "platforms")


@dataclass(frozen=True)
class ContentInputs:
    spec: str
    files: str
    templates: str
    parent: str
    refresh: str = ""
    lock: str = ""
    platforms: str = ""  # comma-separated, as the spec lists them

    @property
    def content_hash(self) -> str:
        platforms = ["platforms", self.platforms] if self.platforms else []
        return _digest([*self._parts(), *platforms])

    @property
    def shared_hash(self) -> str:
        """The hash of every input but the platform list (what a child's ``parent`` input is:
        its hash per platform follows the parent's hash of that platform, not the list); the
        content hash itself for an image without ``platforms``."""
        return _digest(self._parts())

    def platform_hash(self, platform: str) -> str:
        """The hash of the image built for ``platform`` (one of :attr:`platforms`)."""
        return _digest([*self._parts(), "platform", platform])

    def _parts(self) -> list[str]:
        parts = [HASH_SCHEME, self.spec, self.files, self.templates, self.parent]
        return [
            *parts,
            *([self.refresh] if self.refresh else []),
            *(["lock", self.lock] if self.lock else []),
        ]

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v or k not in OPTIONAL_INPUTS}


def content_inputs(catalog: Catalog) -> dict[str, ContentInputs]:
    """Inputs for every image of the catalog, in build order (parents before children)."""
    shared = _project_settings(catalog)
    standard_templates = hash_tree(templates_dir() / "dockerfile")
    result: dict[str, ContentInputs] = {}
    for image in catalog.in_build_order():
        result[image.ref] = ContentInputs(
            spec=_canonical(_spec_data(image), shared),
            files=_digest(
                [
                    *(hash_tree(image.folder / copy.src) for copy in image.spec.files),
                    *(_playbook_hash(catalog.root / playbook) for playbook in image.spec.playbooks),
                    *(
                        f"wheel {wheel.name} {hash_tree(wheel.path)}"
                        for wheel in wheel_files(image.folder, image.spec.wheels)
                    ),
                ]
            ),
            templates=_digest([standard_templates, *(hash_tree(p) for p in _overrides(image))]),
            parent=_parent_input(image, result),
            refresh=refresh_input(catalog, image.ref),
            lock=_lock_input(catalog, image.ref),
            platforms=",".join(image.spec.platforms or []),
        )
    return result


def refresh_input(catalog: Catalog, ref: str) -> str:
    """The hash of the versions ``refresh.yaml`` asks ``ref`` to hold; "" when it names none."""
    wanted = catalog.refreshed.get(ref)
    return _canonical(dict(wanted)) if wanted else ""


def _lock_input(catalog: Catalog, ref: str) -> str:
    lock = catalog.locks.get(ref)
    return _canonical(lock.model_dump(mode="json")) if lock else ""


def hash_tree(path: Path) -> str:
    """Hash a file, or a folder's files by relative path, executable bit and content."""
    if path.is_file():  # a symlink to a file is copied as the file: hash what it points to
        return _digest([_file_entry(path)])
    entries = []
    for item in walk_tree(path) if path.is_dir() else []:  # symlinks in it are not followed
        if item.kind == "symlink":
            entries.append(f"link {item.relative} -> {PurePath(item.link).as_posix()}")
        elif item.kind == "file":
            entries.append(f"{item.relative} {_file_entry(item.path)}")
    return _digest(entries)


def playbook_inputs(playbook: Path) -> list[Path]:
    """What a playbook brings into an image: the file, and the roles folder beside it."""
    roles = playbook.parent / "roles"
    return [playbook, *([roles] if roles.is_dir() else [])]


def _playbook_hash(playbook: Path) -> str:
    return _digest(hash_tree(path) for path in playbook_inputs(playbook))


def _file_entry(path: Path) -> str:
    executable = "x" if path.stat().st_mode & 0o111 else "-"
    return f"{executable} {hashlib.sha256(path.read_bytes()).hexdigest()}"


def _spec_data(image: CatalogImage) -> dict[str, Any]:
    excluded = {"tests", "targets", "deploy", "platforms"}  # platforms: their own input
    if not image.spec.wheels:  # a catalog without wheels keeps its hashes
        excluded.add("wheels")
    return image.spec.model_dump(mode="json", by_alias=True, exclude=excluded)


def _project_settings(catalog: Catalog) -> dict[str, Any]:
    build = catalog.project.build
    ca_bundle = None
    if build.ca_bundle is not None:
        ca_bundle = hash_tree(catalog.root / build.ca_bundle)
    return {
        "ca_bundle": ca_bundle,
        "mirrors": build.mirrors.model_dump(mode="json"),
        "source_date_epoch": build.source_date_epoch,
    }


def _overrides(image: CatalogImage) -> list[Path]:
    return sorted(p for p in image.folder.glob(f"*{TEMPLATE_SUFFIX}") if p.is_file())


def _parent_input(image: CatalogImage, done: dict[str, ContentInputs]) -> str:
    parent = image.parent
    if isinstance(parent, CatalogParent):
        return done[parent.ref].shared_hash
    if isinstance(parent, ExternalParent):
        return _digest([f"{parent.reference}@{parent.digest}"])
    return _digest(["bootstrap", f"recipe-v{RECIPE_VERSION}"])


def _canonical(*parts: Any) -> str:
    return _digest(json.dumps(part, sort_keys=True, separators=(",", ":")) for part in parts)


def _digest(parts: Iterable[str]) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode())
        sha.update(b"\0")
    return "sha256:" + sha.hexdigest()
