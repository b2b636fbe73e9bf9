"""Terraform variables from the catalog: one ECR repository per catalog image, per environment.

:func:`terraform_vars` is pure: the catalog in, one tfvars document per environment out. Every
image *name* gets one repository in each environment's namespace (variants share it and differ
by tag, as :func:`imagefactory.project.naming.repository` lays them out); adding an image to the
catalog adds its repository. Each environment's document also carries what its ECR lifecycle
policy may expire (:func:`retention_vars`, :func:`parent_names`), a subset of what
``imagefactory gc`` deletes. :func:`write_tfvars` writes ``<out>/<env>/imagefactory.auto.tfvars.json``
for the root configurations in ``terraform/environments/<env>/``, deterministic and atomic.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagefactory.atomic import write_atomically
from imagefactory.errors import UserError
from imagefactory.project.retention import retention_of
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.models import Retention

TFVARS_FILE = "imagefactory.auto.tfvars.json"
#: What ECR accepts as a repository name (CreateRepository: repositoryName).
ECR_NAME_PATTERN = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
ECR_NAME_MIN = 2
ECR_NAME_MAX = 256


@dataclass(frozen=True)
class TfvarsFile:
    environment: str
    path: Path
    repositories: int


def ecr_name_problem(name: str) -> str | None:
    """Why ECR would refuse ``name`` as a repository name, or None."""
    if not ECR_NAME_MIN <= len(name) <= ECR_NAME_MAX:
        return f"is {len(name)} characters long; ECR accepts {ECR_NAME_MIN}-{ECR_NAME_MAX}"
    if not ECR_NAME_PATTERN.match(name):
        return "is not an ECR repository name (lowercase letters and digits joined by . _ - /)"
    return None


def retention_vars(retention: Retention | None) -> dict[str, int] | None:
    """The environment's effective retention as the root configuration reads it (None: ECR
    expires no build there). ``build_expiry_days``: how old an unreleased build (``content-*``)
    must be before ECR may expire it. gc keeps one younger than ``keep_days``, and a revoked one
    ``hold_days``, so the larger of the two; at least 1, the least ECR accepts."""
    if retention is None:
        return None
    return {
        "keep_days": retention.keep_days,
        "keep_versions": retention.keep_versions,
        "hold_days": retention.hold_days,
        "build_expiry_days": max(retention.keep_days, retention.hold_days, 1),
    }


def parent_names(catalog: Catalog) -> set[str]:
    """The image names some catalog image is built on. ECR cannot tell which build of such an
    image a child used, so it may expire no build in their repositories."""
    return {catalog.images[ref].spec.name for ref in catalog.parents.values() if ref is not None}


def terraform_vars(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """Per environment (in promotion order), the tfvars its root configuration reads: the
    repositories (and whether ECR expires each one's unreleased builds) and the retention.

    Raises a UserError listing every repository name ECR would refuse, before anything runs.
    """
    project = catalog.project
    if not project.environments:
        raise UserError(
            "the project defines no environments, so there are no registries to create",
            hint="add environments (dev, preprod, prod) with their registries to imagefactory.yaml",
        )
    names = sorted({image.spec.name: image for image in catalog.images.values()}.items())
    parents = parent_names(catalog)
    problems: list[str] = []
    documents: dict[str, dict[str, Any]] = {}
    for environment in project.environments:
        namespaces = sorted({project.registries[r].namespace or "" for r in environment.registries})
        retention = retention_vars(retention_of(project, environment))
        repositories: dict[str, dict[str, Any]] = {}
        for name, image in names:
            for namespace in namespaces:
                full = f"{namespace}/{name}" if namespace else name
                problem = ecr_name_problem(full)
                if problem is not None:
                    problems.append(
                        f"{environment.name}: repository '{full}' for image '{name}' "
                        f"({image.file}) {problem}"
                    )
                repositories[full] = {
                    "image": name,
                    # its content-* builds expire: a leaf image, in an environment that deletes
                    "expire_builds": retention is not None and name not in parents,
                }
        documents[environment.name] = {
            "project": project.project,
            "environment": environment.name,
            "repositories": dict(sorted(repositories.items())),
            "retention": retention,
        }
    if problems:
        raise UserError(
            "cannot render Terraform variables: " + "; ".join(problems),
            hint="shorten the image name or the registry namespace in imagefactory.yaml",
        )
    return documents


def tfvars_bytes(document: dict[str, Any]) -> bytes:
    """The file's bytes: sorted keys, two-space indent, a final newline — stable for diffs."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def write_tfvars(catalog: Catalog, out_dir: Path) -> list[TfvarsFile]:
    """Write ``<out_dir>/<env>/imagefactory.auto.tfvars.json`` for every environment.

    Everything is computed (and validated) before the first file is written.
    """
    documents = terraform_vars(catalog)
    written = []
    for environment, document in documents.items():
        path = out_dir / environment / TFVARS_FILE
        write_atomically(path, tfvars_bytes(document))
        written.append(TfvarsFile(environment, path, len(document["repositories"])))
    return written


def stale_tfvars(catalog: Catalog, out_dir: Path) -> dict[str, list[str]]:
    """By environment, the tfvars file under ``out_dir`` that differs from a fresh render (or is
    missing); only the environments whose file differs."""
    return {
        environment: [TFVARS_FILE]
        for environment, document in terraform_vars(catalog).items()
        if not (out_dir / environment / TFVARS_FILE).is_file()
        or (out_dir / environment / TFVARS_FILE).read_bytes() != tfvars_bytes(document)
    }
