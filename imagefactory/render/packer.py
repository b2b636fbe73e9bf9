"""Render one concrete image to a Packer HCL2 template (``<image>.pkr.hcl``).

The template has a ``docker`` source that starts from the parent's digest (the same pin as the
Dockerfile's FROM), the same shell steps as the Dockerfile (users, apt, pip, files), then the
image's Ansible playbooks, and ``changes`` that restore the image config Packer's commit resets
(ENV, USER, WORKDIR, ENTRYPOINT, CMD, EXPOSE, LABEL); a ``docker-tag`` post-processor tags the
result with the image's content tag in the build registry.

VM builders (``qemu``, ``amazon-ebs``) share the provisioners. ``image.yaml`` cannot name a
``vm`` target, so they come from an optional ``packer.yaml`` next to it
(:mod:`imagefactory.spec.packer`). A VM starts from an ISO or AMI, not from the parent image,
so on the VM sources the ancestors' steps and playbooks come first (the root's first; their
files under ``chain/<ancestor>/`` in the folder). Uploads go to a folder the communicator's user may write
(the ssh user on a VM), then a root step moves them into place.

Beside the template, ``plugins.pkr.hcl`` holds ``packer { required_plugins { … } }`` for
Packer >= 1.7 (whose releases no longer bundle the docker, qemu, amazon and ansible plugins);
Packer 1.6.6 refuses that block, so the template itself stays valid there on its own.

Output is a pure function of the spec, the project settings, the content hash and the parent pin.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel

from imagefactory.errors import UserError
from imagefactory.project.naming import content_tag, repository
from imagefactory.render.catalog import Pins
from imagefactory.render.dockerfile import (
    CA_FILE,
    CA_TARGET,
    PIP_LOCK_FILE,
    ParentPin,
    file_entries,
    image_labels,
    locked_versions,
    write_build_context,
)
from imagefactory.render.environment import (
    dockerfile_token,
    dockerfile_value,
    dockerfile_word,
    render_template,
    shell_name,
    shell_word,
)
from imagefactory.spec.catalog import Catalog, CatalogImage, ref_slug
from imagefactory.spec.packer import DOCKER_SOURCE, load_settings
from imagefactory.spec.parents import BootstrapParent

STANDARD_TEMPLATE = "packer/image.pkr.hcl.j2"
PLUGINS_TEMPLATE = "packer/plugins.pkr.hcl.j2"
#: beside the template: Packer 1.6.6 refuses ``required_plugins``, Packer >= 1.7 reads the folder
PLUGINS_FILE = "plugins.pkr.hcl"
#: plugin name: (source, version constraint); releases checked in each plugin's repository
#: (docker 1.1.0-1.1.4, qemu 1.1.0-1.1.7, amazon 1.3.0-1.3.9, ansible 1.1.0-1.1.3)
PLUGINS = {
    "docker": ("github.com/hashicorp/docker", "~> 1.1"),
    "qemu": ("github.com/hashicorp/qemu", "~> 1.1"),
    "amazon": ("github.com/hashicorp/amazon", "~> 1.3"),
    "ansible": ("github.com/hashicorp/ansible", "~> 1.1"),
}
UNSETTABLE = ("ENTRYPOINT []", "CMD []")
VM_SOURCES = {"qemu": "qemu.vm", "amazon_ebs": "amazon-ebs.vm"}
#: the plugin each VM source's builder is in
SOURCE_PLUGINS = {"qemu.vm": "qemu", "amazon-ebs.vm": "amazon"}
#: where the ``file`` provisioner uploads (a folder the communicator's user may write)
UPLOADS = "/tmp/imagefactory-upload"


def hcl(value: str) -> str:
    """An HCL string literal: JSON escapes, with template sequences (``${``, ``%{``) escaped."""
    return json.dumps(value, ensure_ascii=False).replace("${", "$${").replace("%{", "%%{")


def config_changes(
    catalog: Catalog, image: CatalogImage, content_hash: str, parent: ParentPin | None
) -> list[str]:
    """Dockerfile instructions that restore the image config a container commit resets or lacks.

    Packer's docker builder (and :mod:`imagefactory.build.provision`) run the build container as root
    with another entrypoint; these put back what the Dockerfile path would give the image.
    """
    spec = image.spec
    changes = [
        f"ENV {dockerfile_token(name)}={dockerfile_value(value)}"
        for name, value in spec.env.items()
    ]
    changes.append(f"WORKDIR {dockerfile_word(catalog.lineage_value(image.ref, 'workdir') or '/')}")
    changes += [f"EXPOSE {dockerfile_token(port)}" for port in spec.ports]
    entrypoint = catalog.lineage_value(image.ref, "entrypoint")
    cmd = catalog.lineage_value(image.ref, "cmd")
    changes.append(f"ENTRYPOINT {json.dumps(entrypoint or [])}")
    changes.append(f"CMD {json.dumps(cmd or [])}")
    changes += [
        f"LABEL {dockerfile_token(name)}={dockerfile_value(value)}"
        for name, value in image_labels(image, content_hash, parent).items()
    ]
    changes.append(f"USER {dockerfile_word(catalog.numeric_user(image.ref))}")
    return changes


def _shell_steps(
    catalog: Catalog, image: CatalogImage, prefix: str = "", only: list[str] | None = None
) -> list[dict[str, Any]]:
    """The Dockerfile's RUN/COPY steps as Packer provisioners, in the same order: every value
    in a command is a shell word, every command an HCL string.

    The ``file`` provisioner uploads as the communicator's user (root in the docker container,
    the ssh user on a VM), so every upload goes to :data:`UPLOADS`, a folder that user creates
    (``as_user``: no sudo), and a root step moves it into place. ``prefix``: the folder (in the
    template's folder) of the image's ``files/``; ``only``: the sources the steps run on."""
    spec = image.spec
    build = catalog.project.build
    has_ca = build.ca_bundle is not None
    steps: list[dict[str, Any]] = []
    q = shell_word

    def shell(name: str, *commands: str, as_user: bool = False) -> None:
        steps.append(
            {
                "kind": "shell",
                "name": name,
                "inline": [hcl(c) for c in commands],
                "as_user": as_user,
                "only": only,
            }
        )

    def upload(source: str, dest: str) -> None:
        """``source`` is relative to the template's folder (``path.root``)."""
        quoted = '"${path.root}/' + hcl(source)[1:]
        steps.append({"kind": "file", "source": quoted, "destination": hcl(dest), "only": only})

    needs_ca = has_ca and bool(spec.packages or spec.pip)
    entries = [replace(e, context_path=prefix + e.context_path) for e in file_entries(image)]
    lock = catalog.locks.get(image.ref)  # image.lock: the closure's pins, the pip file's hashes
    pip_lock = f"{prefix}{PIP_LOCK_FILE}" if lock and lock.pip and spec.pip else None
    for account in spec.create_users:
        gid, name = q(account.gid or account.uid), q(account.name)
        home = f"--home-dir {q(account.home)} --create-home" if account.home else "--no-create-home"
        command = (
            f"groupadd --system --gid {gid} {name} && useradd --system --uid "
            f"{q(account.uid)} --gid {gid} --shell {q(account.shell)} {home} {name}"
        )
        if account.home:
            command += f" && chmod 0750 {q(account.home)}"
        shell(f"user {account.name}", command)
    if needs_ca or entries or pip_lock:
        folders = [
            f"{UPLOADS}/{e.context_path if e.is_dir else PurePosixPath(e.context_path).parent}"
            for e in entries
        ]
        shell(
            "upload folder (the communicator's user)",
            f"mkdir -m 0700 {UPLOADS}",
            *[f"mkdir -p {q(folder)}" for folder in folders],
            as_user=True,
        )
    if pip_lock:
        upload(pip_lock, f"{UPLOADS}/{PIP_LOCK_FILE}")
    if needs_ca:
        upload(CA_FILE, f"{UPLOADS}/{CA_FILE}")
        shell("CA bundle", f"install -D -m 0644 {UPLOADS}/{CA_FILE} {CA_TARGET}")
    apt_options = f" -o Acquire::https::CaInfo={CA_TARGET}" if has_ca else ""
    if spec.packages:
        shell(
            "packages",
            f"apt-get update{apt_options}",
            f"apt-get install -y --no-install-recommends{apt_options} "
            + " ".join(q(p) for p in _installed(catalog, image)),
            "apt-get clean",
            "rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/log/apt/* "
            "/var/log/dpkg.log",
        )
    if spec.pip:
        exports = [
            *([f"PIP_CERT={CA_TARGET}"] if has_ca else []),
            *([f"PIP_INDEX_URL={q(build.mirrors.pypi)}"] if build.mirrors.pypi else []),
        ]
        prefix = "".join(f"export {e} && " for e in exports)
        venv = spec.venv
        shell(
            "pip",
            f"{prefix}{{ test -x {q(f'{venv}/bin/python')} || python3 -m venv {q(venv)}; }} && "
            f"{q(f'{venv}/bin/pip')} install --no-cache-dir --disable-pip-version-check "
            "--no-compile "
            + (
                f"--require-hashes --no-deps -r {UPLOADS}/{PIP_LOCK_FILE}"
                if pip_lock
                else " ".join(q(r) for r in spec.pip)
            ),
        )
    if needs_ca:
        shell("remove CA bundle", f"rm -f {CA_TARGET}")
    for entry in entries:
        staged = q(f"{UPLOADS}/{entry.context_path}")
        dest = q(entry.dest)
        if entry.is_dir:
            upload(f"{entry.context_path}/", f"{UPLOADS}/{entry.context_path}")
            place = f"mkdir -p {dest} && cp -R --preserve=mode {staged}/. {dest}/"
        else:
            upload(entry.context_path, f"{UPLOADS}/{entry.context_path}")
            parent_dir = q(str(PurePosixPath(entry.dest).parent))
            place = f"mkdir -p {parent_dir} && cp --preserve=mode {staged} {dest}"
        commands = [place, f"chown -R {q(entry.owner)} {dest}"]
        if entry.mode and entry.is_dir:
            commands.append(
                f"find {dest} -type f -exec chmod {q(entry.mode)} {{}} + && "
                f"find {dest} -type d -exec chmod 0755 {{}} +"
            )
        elif entry.mode:
            commands.append(f"chmod {q(entry.mode)} {dest}")
        shell(f"{entry.dest}: into place, owner and mode", *commands)
    if needs_ca or entries or pip_lock:
        shell("remove the upload folder", f"rm -rf {UPLOADS}")
    return steps


def _installed(catalog: Catalog, image: CatalogImage) -> list[str]:
    """What apt installs: the lock's closure pinned (as the Dockerfile does), else image.yaml's."""
    pins = locked_versions(catalog, image)
    return [f"{n}={v}" for n, v in sorted(pins.items())] if pins else image.spec.packages


def chain_prefix(ancestor: CatalogImage) -> str:
    """Where an ancestor's files are in the template's folder (its VM sources upload them)."""
    return f"chain/{ref_slug(ancestor.ref)}/"


def _chain_steps(
    catalog: Catalog, image: CatalogImage, vm_sources: list[str]
) -> list[dict[str, Any]]:
    """A VM starts from an ISO or AMI, not from the parent image: on the VM sources, the steps
    and playbooks of every ancestor first, the root's first."""
    if not vm_sources:
        return []
    steps: list[dict[str, Any]] = []
    for ancestor in reversed(catalog.lineage(image.ref)[1:]):
        steps += _shell_steps(catalog, ancestor, chain_prefix(ancestor), vm_sources)
        steps += [
            {"kind": "ansible", "name": ancestor.ref, "path": hcl(p)[1:-1], "only": vm_sources}
            for p in ancestor.spec.playbooks
        ]
    return steps


def packer_context(
    catalog: Catalog, image: CatalogImage, pins: Pins, out_folder: Path
) -> dict[str, Any]:
    spec = image.spec
    content_hash = pins.content_hash(image)
    parent = pins.parent(image)
    if parent is None:
        raise UserError(
            f"{image.ref} is bootstrapped from a rootfs; Packer's docker builder needs a parent image",
            hint="build it with 'imagefactory build' (Docker engine); its children can use Packer",
        )
    if spec.secrets:
        raise UserError(
            f"{image.ref} declares build secrets; the Packer template cannot mount them",
            hint="build images with secrets through the Docker engine ('imagefactory build')",
        )
    if spec.healthcheck is not None:
        raise UserError(
            f"{image.ref} sets a healthcheck; a container commit (Packer) cannot set HEALTHCHECK",
            hint="build it with the Docker engine, or move the healthcheck to the deployment",
        )
    settings = load_settings(image.folder)
    changes = config_changes(catalog, image, content_hash, parent)
    # A commit keeps the build container's ENTRYPOINT/CMD unless a change replaces them, and an
    # empty ENTRYPOINT/CMD change is ignored: start the container so that what stays is right.
    if catalog.lineage_value(image.ref, "entrypoint"):
        keep_alive = ["--entrypoint=/bin/sh", "--", "{{.Image}}"]  # docker run clears CMD
    else:
        keep_alive = ["--entrypoint=", "--", "{{.Image}}", "/bin/sh"]  # CMD stays without one
    run_command = ["-d", "-i", "-t", "--user=0:0", "--network=host", *keep_alive]
    project_root = os.path.relpath(catalog.root, out_folder)
    vm_sources = packer_sources(image)[1:]
    return {
        "source": image.file.relative_to(catalog.root).as_posix(),
        "ref": image.ref,
        "ref_literal": hcl(image.ref),
        "version": spec.version,
        "content_hash": content_hash,
        "content_hash_literal": hcl(content_hash),
        "parent_image": hcl(parent.reference),
        "project_root": hcl(Path(project_root).as_posix()),
        "changes": [hcl(c) for c in changes if c not in UNSETTABLE],
        "run_command": [hcl(a) for a in run_command],
        # Packer single-quotes each value on the shell line, not the name
        "build_args": {
            name: hcl(f"{shell_name(name)}={value}") for name, value in spec.build_args.items()
        },
        "steps": [*_chain_steps(catalog, image, vm_sources), *_shell_steps(catalog, image)],
        # fragments of quoted HCL strings below the project root: a shell word on the
        # shell-local line, the path itself as the ansible provisioner's playbook_file
        "playbooks": [
            {"shell": hcl(shell_word(p))[1:-1], "path": hcl(p)[1:-1]} for p in spec.playbooks
        ],
        "repository": hcl(repository(pins.registry, spec.name)),
        "tag": hcl(content_tag(content_hash)),
        "sources": [DOCKER_SOURCE, *vm_sources],
        "vm_sources": vm_sources,
        "qemu": _quoted(settings.qemu),
        "amazon_ebs": _quoted(settings.amazon_ebs),
        "vm_name": hcl(
            f"{re.sub(r'[^a-z0-9-]+', '-', spec.name)}-{spec.version}-{content_hash[7:19]}"
        ),
    }


def packer_sources(image: CatalogImage) -> list[str]:
    """The template's sources, as ``packer build -only`` names them: docker first, then the VM
    sources ``packer.yaml`` configures."""
    settings = load_settings(image.folder)
    return [
        DOCKER_SOURCE,
        *(source for key, source in VM_SOURCES.items() if getattr(settings, key) is not None),
    ]


def required_plugins(image: CatalogImage) -> list[str]:
    """The plugins the template uses: docker (source and docker-tag), each VM source's, and
    ansible when a VM source applies playbooks (shell-local is part of Packer)."""
    vm_sources = packer_sources(image)[1:]
    ansible = ["ansible"] if vm_sources and image.spec.playbooks else []
    return ["docker", *(SOURCE_PLUGINS[source] for source in vm_sources), *ansible]


def _quoted(settings: BaseModel | None) -> dict[str, Any] | None:
    if settings is None:
        return None
    quoted: dict[str, Any] = {}
    for key, value in settings.model_dump().items():
        if isinstance(value, str):
            quoted[key] = hcl(value)
        elif isinstance(value, list):
            quoted[key] = [hcl(str(v)) for v in value]
        else:
            quoted[key] = value
    return quoted


def render_packer(catalog: Catalog, image: CatalogImage, pins: Pins, out_folder: Path) -> str:
    context = packer_context(catalog, image, pins, out_folder)
    text = render_template(catalog.root, STANDARD_TEMPLATE, context)
    return re.sub(r"\n{3,}", "\n\n", text)


def render_plugins(catalog: Catalog, image: CatalogImage) -> str:
    """:data:`PLUGINS_FILE` of the image's folder: the plugins its template uses."""
    plugins = [
        {"name": name, "source": PLUGINS[name][0], "version": PLUGINS[name][1]}
        for name in required_plugins(image)
    ]
    context: dict[str, object] = {
        "source": image.file.relative_to(catalog.root).as_posix(),
        "template": template_file_name(image.ref),
        "plugins": plugins,
    }
    return render_template(catalog.root, PLUGINS_TEMPLATE, context)


def template_file_name(ref: str) -> str:
    return f"{ref_slug(ref)}.pkr.hcl"


def write_packer_folder(
    catalog: Catalog, image: CatalogImage, text: str, plugins: str, folder: Path
) -> Path:
    """Write ``folder`` whole (``<image>.pkr.hcl`` holding ``text``, :data:`PLUGINS_FILE`
    holding ``plugins``, files/, CA bundle and, for VM sources, the ancestors' files under
    ``chain/``); return the template path."""
    name = template_file_name(image.ref)
    ancestors = catalog.lineage(image.ref)[1:] if packer_sources(image)[1:] else []
    chain = [(chain_prefix(ancestor), ancestor) for ancestor in ancestors]
    texts = {PLUGINS_FILE: plugins}
    return (
        write_build_context(catalog, image, text, folder, main_file=name, texts=texts, chain=chain)
        / name
    )


def uses_packer(image: CatalogImage) -> bool:
    """Built by Packer: targets packer and has a parent image (bootstrapped ones use Docker)."""
    return "packer" in image.spec.targets and not isinstance(image.parent, BootstrapParent)


def packer_images(
    catalog: Catalog, images: list[CatalogImage]
) -> tuple[list[CatalogImage], list[CatalogImage]]:
    """The images ``render packer`` writes, and those it leaves out: the named images (all
    written), else every image targeting packer except bootstrapped ones (no parent image for
    Packer's docker builder to start from; the Docker engine builds them)."""
    shell_less = [i.ref for i in images if i.spec.distroless is not None]
    if shell_less:
        raise UserError(
            f"{', '.join(shell_less)}: shell-less (distroless:), and Packer's steps are shell steps",
            hint="render and build shell-less images with the Docker engine (render dockerfile)",
        )
    if images:
        return images, []
    targeted = [i for i in catalog.images.values() if "packer" in i.spec.targets]
    return [i for i in targeted if uses_packer(i)], [i for i in targeted if not uses_packer(i)]


def render_packer_images(
    catalog: Catalog, images: list[CatalogImage], pins: Pins, out_dir: Path
) -> list[Path]:
    """Write ``<out_dir>/<slug>/<slug>.pkr.hcl`` (with files/ and the CA bundle) for each image.

    Every image is rendered before anything is written, so a bad one writes nothing.
    """
    rendered = []
    for image in images:
        folder = out_dir / ref_slug(image.ref)
        text, plugins = render_packer(catalog, image, pins, folder), render_plugins(catalog, image)
        rendered.append((image, text, plugins, folder))
    return [
        write_packer_folder(catalog, image, text, plugins, folder)
        for image, text, plugins, folder in rendered
    ]
