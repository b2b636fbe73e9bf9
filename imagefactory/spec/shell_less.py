"""What a shell-less image (``distroless:``, docs/images.md) cannot have, refused at validate time.

Its final stage holds no shell and nothing to exec into a container with, and is assembled from
the config of its whole catalog chain. So, for each image that sets ``distroless``:

* no ``tests.commands``: they run in the test container (files, packages, users and pip
  packages are read from the layers instead; services start the real entrypoint);
* no entrypoint, cmd or healthcheck that starts a shell;
* no ``playbooks`` (Ansible runs in the built image) and no ``packer`` target (its steps are
  shell steps);
* a chain rooted at a bootstrap: an external parent's config (env, entrypoint …) is what only a
  build reads, and the scratch stage must restate it;
* no catalog image built on it (there is no shell for a child's RUN steps).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from imagefactory.errors import SpecIssue
from imagefactory.spec.catalog import CatalogImage
from imagefactory.spec.issues import format_key_path
from imagefactory.spec.parents import ExternalParent
from imagefactory.spec.yamldoc import KeyPath, YamlDocument

SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh"})
HINT = "a shell-less image has no shell to run it in; remove it, or remove distroless:"


def shell_less_issues(
    images: Mapping[str, CatalogImage], docs: Mapping[Path, YamlDocument]
) -> list[SpecIssue]:
    """Every problem of the shell-less images of a catalog whose parents resolve, without a cycle."""
    issues: list[SpecIssue] = []
    for image in images.values():
        parent = images.get(image.parent_ref) if image.parent_ref else None
        doc = docs[image.file]
        if parent is not None and parent.spec.distroless is not None:
            issues.append(
                _issue(
                    image,
                    doc,
                    ("from",),
                    f"{image.ref} is built on {parent.ref}, which is shell-less (distroless:): "
                    "its RUN steps would have no shell",
                    f"build on {parent.ref}'s own parent, and set distroless: here instead",
                )
            )
        if image.spec.distroless is not None:
            issues += _own_issues(image, _lineage(image, images), doc)
    return issues


def _lineage(image: CatalogImage, images: Mapping[str, CatalogImage]) -> list[CatalogImage]:
    chain = [image]
    while (ref := chain[-1].parent_ref) is not None and ref in images and len(chain) <= len(images):
        chain.append(images[ref])
    return chain


def _own_issues(
    image: CatalogImage, lineage: list[CatalogImage], doc: YamlDocument
) -> list[SpecIssue]:
    spec = image.spec
    found = []
    if spec.tests.commands:
        found.append(
            _issue(
                image,
                doc,
                ("tests", "commands"),
                f"{image.ref} is shell-less (distroless:): command checks run in the image, "
                "which has no shell and nothing to exec",
                "check files, packages, users and pip packages (read from the image's layers), "
                "the config under metadata and what it serves under services",
            )
        )
    if isinstance(lineage[-1].parent, ExternalParent):
        found.append(
            _issue(
                image,
                doc,
                ("distroless",),
                f"{image.ref} is shell-less, but its chain starts at the external image "
                f"{lineage[-1].spec.parent}: its scratch stage would lose that image's config",
                "build shell-less images on a chain bootstrapped from Debian packages",
            )
        )
    for key in ("entrypoint", "cmd"):
        argv = next((v for i in lineage if (v := getattr(i.spec, key)) is not None), None)
        if argv and PurePosixPath(argv[0]).name in SHELLS:
            found.append(_issue(image, doc, (key,), f"{image.ref}'s {key} starts {argv[0]}", HINT))
    healthcheck = next((i.spec.healthcheck for i in lineage if i.spec.healthcheck), None)
    if healthcheck and PurePosixPath(healthcheck.cmd[0]).name in SHELLS:
        found.append(
            _issue(
                image,
                doc,
                ("healthcheck", "cmd"),
                f"{image.ref}'s healthcheck starts {healthcheck.cmd[0]}",
                "write it in exec form with the runtime, e.g. "
                "[python, -c, \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/')\"]",
            )
        )
    if spec.playbooks:
        found.append(
            _issue(
                image,
                doc,
                ("playbooks",),
                f"{image.ref} is shell-less: Ansible cannot run in it",
                "apply the playbooks to its parent instead",
            )
        )
    if "packer" in spec.targets:
        found.append(
            _issue(
                image,
                doc,
                ("targets",),
                f"{image.ref} is shell-less: Packer's steps are shell steps",
                "target docker only",
            )
        )
    return found


def _issue(
    image: CatalogImage, doc: YamlDocument, keys: KeyPath, message: str, hint: str
) -> SpecIssue:
    """The issue at the place ``keys`` is written for ``image``: its variant's overlay when
    that sets it, else the document (where the line of its nearest written ancestor is)."""
    path = next(
        (
            prefix + keys
            for prefix in [
                *(
                    ("variants", axis, value)
                    for axis, value in reversed(image.spec.variant.items())
                ),
                (),
            ]
            if prefix + keys in doc.lines
        ),
        keys,
    )
    return SpecIssue(image.file, format_key_path(path), message, doc.line_of(path), hint)
