"""Render one concrete image to a Dockerfile and lay out its build context.

``render_dockerfile`` is a pure function of the spec, the project settings, the content hash and
the parent pin: the same inputs give byte-identical output. ``write_build_context`` copies what
the Dockerfile refers to (files, wheels, CA bundle, the closure script of a shell-less image:
``shell_less.py``) next to it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from debian.debian_support import version_compare

from imagefactory.project.naming import CONTENT_LABEL, REF_LABEL
from imagefactory.render.environment import (
    dockerfile_token,
    render_template,
    shell_name,
    shell_word,
)
from imagefactory.render.shell_less import (
    CLOSURE_SCRIPT,
    closure_arguments,
    closure_script,
    lineage_config,
)
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.lock import pip_requirements
from imagefactory.spec.walk import copy_into
from imagefactory.spec.wheels import CONTEXT_FOLDER as WHEELS_CONTEXT
from imagefactory.spec.wheels import TARGET_FOLDER as WHEELS_TARGET
from imagefactory.spec.wheels import wheel_files

STANDARD_TEMPLATE = "dockerfile/Dockerfile.j2"
OVERRIDE_TEMPLATE = "Dockerfile.j2"
CA_FILE = "ca-bundle.pem"
CA_TARGET = "/run/imagefactory/ca.pem"
SECRETS_DIR = "/run/secrets"
ROOTFS_FILE = "rootfs.tar"
PIP_LOCK_FILE = "requirements.lock"  # image.lock's Python distributions, with their hashes
PIP_LOCK_TARGET = f"/run/imagefactory/{PIP_LOCK_FILE}"


@dataclass(frozen=True)
class ParentPin:
    """What FROM names: the parent by digest once built, else by its content tag."""

    reference: str
    name: str
    digest: str | None


@dataclass(frozen=True)
class FileEntry:
    source: Path
    context_path: str
    dest: str
    mode: str | None
    owner: str
    is_dir: bool


def file_entries(image: CatalogImage) -> list[FileEntry]:
    entries = []
    for index, copy in enumerate(image.spec.files):
        source = image.folder / copy.src
        name = PurePosixPath(copy.src).name or f"file{index}"
        entries.append(
            FileEntry(
                source, f"files/{index}/{name}", copy.dest, copy.mode, copy.owner, source.is_dir()
            )
        )
    return entries


def template_name(catalog: Catalog, image: CatalogImage) -> str:
    override = image.folder / OVERRIDE_TEMPLATE
    if override.is_file():
        return override.relative_to(catalog.root).as_posix()
    return STANDARD_TEMPLATE


def render_dockerfile(
    catalog: Catalog,
    image: CatalogImage,
    content_hash: str,
    parent: ParentPin | None,
) -> str:
    context = dockerfile_context(catalog, image, content_hash, parent)
    text = render_template(catalog.root, template_name(catalog, image), context)
    return re.sub(r"\n{3,}", "\n\n", text)  # empty blocks leave runs of blank lines


def dockerfile_context(
    catalog: Catalog, image: CatalogImage, content_hash: str, parent: ParentPin | None
) -> dict[str, Any]:
    spec = image.spec
    build = catalog.project.build
    has_ca = build.ca_bundle is not None
    # RUN fragments: ids are tokens (no shell or flag metacharacter), names checked, values words
    mounts = [f"--mount=type=bind,source={CA_FILE},target={CA_TARGET}"] if has_ca else []
    mounts += [
        f"--mount=type=secret,id={dockerfile_token(s.id)},"
        f"required={'true' if s.required else 'false'}"
        for s in spec.secrets
    ]
    exports = [
        f'{shell_name(s.as_env)}="$(cat {shell_word(f"{SECRETS_DIR}/{s.id}")})"'
        for s in spec.secrets
        if s.as_env
    ]
    lock = catalog.locks.get(image.ref)
    pip_lock = [f"--mount=type=bind,source={PIP_LOCK_FILE},target={PIP_LOCK_TARGET}"]
    wheels = wheel_files(image.folder, spec.wheels)
    wheel_mount = [f"--mount=type=bind,source={WHEELS_CONTEXT},target={WHEELS_TARGET}"]
    pip_mounts = mounts + (pip_lock if lock and lock.pip else []) + (wheel_mount if wheels else [])
    pip_exports = [
        *([f"PIP_CERT={CA_TARGET}"] if has_ca else []),
        *([f"PIP_INDEX_URL={shell_word(build.mirrors.pypi)}"] if build.mirrors.pypi else []),
        *exports,
    ]
    config: dict[str, Any] = {
        "env": spec.env,
        "workdir": spec.workdir,
        "ports": spec.ports,
        "healthcheck": spec.healthcheck.model_dump() if spec.healthcheck else None,
        "entrypoint": spec.entrypoint,
        "cmd": spec.cmd,
        "labels": image_labels(image, content_hash, parent),
    }
    if spec.distroless is not None:  # a scratch stage inherits nothing: the lineage's config
        inherited = lineage_config(catalog, image)
        config.update(
            inherited, labels=dict(sorted({**inherited["labels"], **config["labels"]}.items()))
        )
    return {
        "source": image.file.relative_to(catalog.root).as_posix(),
        "ref": image.ref,
        "version": spec.version,
        "content_hash": content_hash,
        "bootstrap": parent is None,
        "parent_from": parent.reference if parent else None,
        "ca_bundle": has_ca,
        "users": [
            {"name": u.name, "uid": u.uid, "gid": u.gid or u.uid, "home": u.home, "shell": u.shell}
            for u in spec.create_users
        ],
        "build_args": spec.build_args,
        "packages": spec.packages,
        # refresh.yaml: NAME=VERSION, each checked against what dpkg holds after the packages
        "refresh": [f"{n}={v}" for n, v in sorted(catalog.refreshed.get(image.ref, {}).items())],
        # image.lock: the arch it was resolved for, its closure as NAME=VERSION, its pip file
        "lock_arch": lock.arch if lock else None,
        "apt_lock": [f"{n}={v}" for n, v in sorted(locked_versions(catalog, image).items())],
        "pip_lock": PIP_LOCK_TARGET if lock and lock.pip else None,
        "apt_options": f" -o Acquire::https::CaInfo={CA_TARGET}" if has_ca else "",
        "mounts": _run_prefix(mounts, exports),
        "pip_mounts": _run_prefix(pip_mounts, exports),
        "pip": spec.pip,
        "wheels": [f"{WHEELS_TARGET}/{wheel.name}" for wheel in wheels],
        "pip_env": " ".join(f"export {e} &&" for e in pip_exports if e not in exports),
        "venv": spec.venv,
        "files": file_entries(image),
        **config,
        "user": catalog.numeric_user(image.ref),
        "closure_script": CLOSURE_SCRIPT,
        "closure_arguments": closure_arguments(catalog, image) if spec.distroless else None,
    }


def locked_versions(catalog: Catalog, image: CatalogImage) -> dict[str, str]:
    """What the image's image.lock pins each Debian package of its closure at, raised to the
    version refresh.yaml asks the image or an ancestor to hold at least when that is newer (a
    refresh never contradicts a lock; ``imagefactory lock`` resolves the closure again)."""
    lock = catalog.locks.get(image.ref)
    if lock is None:
        return {}
    pins = dict(lock.apt)
    for owner in catalog.lineage(image.ref):
        for name, wanted in catalog.refreshed.get(owner.ref, {}).items():
            if name in pins and version_compare(wanted, pins[name]) > 0:
                pins[name] = wanted
    return pins


def _run_prefix(mounts: list[str], exports: list[str]) -> str:
    """What a RUN line starts with: its mounts, one a line, then the secrets it exports."""
    return "".join(f"{m} \\\n    " for m in mounts) + "".join(f"export {e} && " for e in exports)


def image_labels(
    image: CatalogImage, content_hash: str, parent: ParentPin | None
) -> dict[str, str]:
    spec = image.spec
    labels = {
        **spec.labels,
        "org.opencontainers.image.title": spec.name,
        "org.opencontainers.image.version": spec.version,
        "org.opencontainers.image.base.name": parent.name if parent else "scratch",
        "org.opencontainers.image.base.digest": (parent.digest or "") if parent else "",
        CONTENT_LABEL: content_hash,
        REF_LABEL: image.ref,
    }
    if spec.description:
        labels["org.opencontainers.image.description"] = spec.description
    return dict(sorted(labels.items()))


def write_build_context(
    catalog: Catalog,
    image: CatalogImage,
    text: str,
    folder: Path,
    *,
    rootfs: Path | None = None,
    main_file: str = "Dockerfile",
    texts: Mapping[str, str] | None = None,
    chain: Sequence[tuple[str, CatalogImage]] = (),
) -> Path:
    """Write ``folder`` (``main_file`` holding ``text`` — the Dockerfile, or a Packer template —,
    files/ and the lock's requirements.lock, CA bundle[, rootfs.tar], more ``texts`` by name,
    and each ``(prefix, ancestor)`` of ``chain``'s files and requirements.lock under ``prefix``)
    whole, or leave it as it was."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        shell_less = {CLOSURE_SCRIPT: closure_script()} if image.spec.distroless else {}
        for name, content in {main_file: text, **shell_less, **(texts or {})}.items():
            (staging / name).write_text(content, encoding="utf-8")
        if catalog.project.build.ca_bundle is not None:
            shutil.copyfile(catalog.root / catalog.project.build.ca_bundle, staging / CA_FILE)
        for prefix, owner in [("", image), *chain]:
            lock = catalog.locks.get(owner.ref)
            if lock and lock.pip:
                (staging / prefix).mkdir(parents=True, exist_ok=True)
                (staging / prefix / PIP_LOCK_FILE).write_text(pip_requirements(lock))
            for entry in file_entries(owner):
                target = staging / prefix / entry.context_path
                target.parent.mkdir(parents=True)
                copy_into(entry.source, target)  # bounded; FIFOs, sockets, devices refused
            wheels = wheel_files(owner.folder, owner.spec.wheels)
            if wheels:
                (staging / prefix / WHEELS_CONTEXT).mkdir(parents=True, exist_ok=True)
            for wheel in wheels:
                shutil.copyfile(wheel.path, staging / prefix / WHEELS_CONTEXT / wheel.name)
        if rootfs is not None:
            os.link(rootfs, staging / ROOTFS_FILE)
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return folder
