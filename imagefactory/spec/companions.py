"""The catalog's companion files: ``gitops.yaml`` and ``revocations.yaml`` next to the project
file, and ``packer.yaml``, ``structure-tests/*.yaml`` and the custom tests ``tests/test_*.py``
in an image folder.

Only the command that needs one reads it (gitops and promote, the release gate, render packer,
test), so on its own a mistake there shows up only when that command runs. Here each is loaded
by that command's own loader, so ``validate`` finds exactly what the command would refuse. It
needs a loaded catalog: gitops.yaml is checked against the project's environments,
revocations.yaml against its images, and the image folders come from the catalog. Absent files
are fine: every companion is optional. A shell-less image (``distroless:``) runs no custom test
and no structure-test ``commandTests``: both need a shell in its container.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from imagefactory.errors import SpecError, SpecIssue, UserError
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.cst.reader import read_cst, structure_test_files
from imagefactory.spec.gitops import GITOPS_FILE
from imagefactory.spec.gitops import load_settings as load_gitops
from imagefactory.spec.packer import SETTINGS_FILE as PACKER_FILE
from imagefactory.spec.packer import load_settings as load_packer
from imagefactory.spec.revocations import load_revocations

CUSTOM_TESTS_DIR = "tests"


def custom_test_files(folder: Path) -> list[Path]:
    """The custom testinfra tests of an image folder (``tests/test_*.py``)."""
    return sorted((folder / CUSTOM_TESTS_DIR).glob("test_*.py"))


def companion_issues(catalog: Catalog) -> list[SpecIssue]:
    """Every problem in the companion files of a loaded catalog; empty when all load."""
    issues = []
    gitops = catalog.root / GITOPS_FILE
    if gitops.is_file():  # a catalog without one just does not deploy through GitOps
        issues += _load_issues(gitops, partial(load_gitops, catalog))
    issues += _load_issues(catalog.root, partial(load_revocations, catalog))  # absent: none
    for image in _one_image_per_folder(catalog):
        issues += _load_issues(image.folder / PACKER_FILE, partial(load_packer, image.folder))
        for path in structure_test_files(image.folder):
            issues += _load_issues(path, partial(read_cst, path))
    for image in catalog.images.values():
        if image.spec.distroless is not None:
            issues += _shell_less_issues(image)
    return issues


def _shell_less_issues(image: CatalogImage) -> list[SpecIssue]:
    hint = (
        "a shell-less image has no shell to exec into: check what these tests check with "
        "files, packages, users, metadata and services in image.yaml, or remove distroless:"
    )
    issues = [
        SpecIssue(
            path,
            "",
            f"{image.ref} is shell-less: custom tests run through a shell in its container",
            None,
            hint,
        )
        for path in custom_test_files(image.folder)
    ]
    for path in structure_test_files(image.folder):
        try:
            commands = read_cst(path).tests.commands
        except UserError:
            continue  # refused above, with its own issues
        if commands:
            issues.append(
                SpecIssue(
                    path,
                    "commandTests",
                    f"{image.ref} is shell-less: commandTests run in its container",
                    None,
                    hint,
                )
            )
    return issues


def _one_image_per_folder(catalog: Catalog) -> list[CatalogImage]:
    """Variants share their folder and so its companion files: each folder is read once."""
    return list({image.folder: image for image in catalog.images.values()}.values())


def _load_issues(file: Path, load: Callable[[], object]) -> list[SpecIssue]:
    """What ``load`` refuses, as issues: a SpecError's as they are; a plain UserError (packer.yaml's
    loader puts every problem in one message that starts with the path) as one issue on ``file``."""
    try:
        load()
    except SpecError as exc:
        return exc.issues
    except UserError as exc:
        return [SpecIssue(file, "", exc.message.removeprefix(f"{file}: "), None, exc.hint)]
    return []
