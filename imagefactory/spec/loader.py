"""Load a catalog: every file read, every error collected, then one SpecError or a Catalog.

The loader never stops at the first problem: a broken project file still lets every image be
checked, and a broken image still lets its siblings be checked. Cross-image checks (parents,
variants, duplicate names, cycles) only speak about images that validated on their own, so one
mistake is not reported three times.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from imagefactory.errors import SpecError, SpecIssue, UserError
from imagefactory.spec.catalog import Catalog, CatalogImage, ref_slug
from imagefactory.spec.checks import check_document, check_project, is_file, resolves_inside
from imagefactory.spec.grammar import relative_path
from imagefactory.spec.graph import find_cycle
from imagefactory.spec.inheritance import inherit, platform_issues, user_issues
from imagefactory.spec.issues import format_key_path, issues_from_validation, near_miss
from imagefactory.spec.lock import ImageLock, Locks, load_lock
from imagefactory.spec.merge import merge_layer
from imagefactory.spec.models import ImageDocument, ImageLayer, ImageSpec, ProjectSpec
from imagefactory.spec.parents import BootstrapParent, CatalogParent, Parent, parse_from
from imagefactory.spec.refresh import load_refresh
from imagefactory.spec.registry_env import registries_from_env
from imagefactory.spec.shell_less import shell_less_issues
from imagefactory.spec.yamldoc import KeyPath, YamlDocument, read_yaml

T = TypeVar("T", ProjectSpec, ImageDocument)

PROJECT_FILE = "imagefactory.yaml"
PLACEHOLDERS = {"version": "0.0.0", "project": "unnamed"}
IMAGE_FILE = "image.yaml"


@dataclass(frozen=True)
class _Loaded:
    document: ImageDocument
    yaml: YamlDocument


def find_project_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` that holds ``imagefactory.yaml``."""
    start = start.resolve()
    for folder in [start, *start.parents]:
        if (folder / PROJECT_FILE).is_file():
            return folder
    raise UserError(
        f"no {PROJECT_FILE} in {start} or any folder above it",
        hint="run imagefactory inside a catalog repository, or pass --project DIR",
    )


def load_catalog(root: Path) -> Catalog:
    if not is_file(root / PROJECT_FILE):
        raise UserError(
            f"no {PROJECT_FILE} in {root}",
            hint="pass the catalog repository with --project DIR, or run inside it",
        )
    issues: list[SpecIssue] = []
    project_yaml = read_yaml(root / PROJECT_FILE)
    issues += _yaml_issues(project_yaml)
    project = _validate(ProjectSpec, project_yaml, issues) or _salvage(ProjectSpec, project_yaml)
    if project is not None:
        issues += check_project(project, project_yaml, root)
        project, found = registries_from_env(project, project_yaml, os.environ)
        issues += found
    catalog = project.catalog if project else _raw_catalog_dir(project_yaml.data)
    catalog_dir = root / catalog

    # if not, check_project says so; nothing outside is read
    confined = resolves_inside(root, catalog)
    files = _image_files(catalog_dir) if confined else []
    if confined and not files:
        issues.append(
            SpecIssue(
                project_yaml.path,
                "catalog",
                f"no {IMAGE_FILE} found under {catalog_dir}",
                project_yaml.line_of(("catalog",)),
                f"each image lives in its own folder: {catalog_dir.name}/<kind>/<name>/{IMAGE_FILE}",
            )
        )

    loaded: list[_Loaded] = []
    broken: set[str] = set()  # images with errors of their own: others are not blamed for them
    for path in files:
        doc = read_yaml(path)
        issues += _yaml_issues(doc)
        document = _validate(ImageDocument, doc, issues)
        if document is None:
            if isinstance(doc.data, dict) and isinstance(doc.data.get("name"), str):
                broken.add(doc.data["name"])
            document = _salvage(ImageDocument, doc)
        if document is not None:
            issues += check_document(document, doc, root)
            loaded.append(_Loaded(document, doc))

    loaded = _drop_duplicate_names(loaded, issues)
    defaults = project.defaults if project else ImageLayer()
    images = {image.ref: image for item in loaded for image in _expand(item, defaults)}
    issues += _check_parents(images, loaded, broken)
    docs = {item.yaml.path: item.yaml for item in loaded}
    issues += _check_merged(images)
    issues += user_issues(images, docs)
    issues += _check_folders(images, docs)
    issues += _check_job_image(project, project_yaml, images)
    cycle = find_cycle({ref: img.parent_ref for ref, img in images.items()})
    if cycle:
        first = images[cycle[0]]
        issues.append(
            SpecIssue(
                first.file,
                "from",
                f"the images form a cycle: {' => '.join(cycle)}",
                None,
                "an image cannot be built on itself; break the chain",
            )
        )
    else:
        issues += shell_less_issues(images, docs)
    if not issues:  # every catalog parent is there and no cycle: the chain can be resolved
        images = inherit(images)
        issues += platform_issues(images, docs)
    refreshed, found = load_refresh(root, None if issues else images)
    issues += found
    locks, found = _locks(images) if not issues else ({}, [])
    issues += found
    if issues:
        raise SpecError(_unique(issues))
    assert project is not None  # no issues means the project validated
    return Catalog(
        root=root,
        project_file=project_yaml.path,
        project=project,
        images=dict(sorted(images.items())),
        refreshed=refreshed,
        locks=locks,
    )


def _locks(images: dict[str, CatalogImage]) -> tuple[Locks, list[SpecIssue]]:
    """The image.lock of every image folder, each read once for the refs its image.yaml gives."""
    by_folder: dict[Path, list[str]] = {}
    for ref, image in images.items():
        by_folder.setdefault(image.folder, []).append(ref)
    locks: dict[str, ImageLock] = {}
    issues: list[SpecIssue] = []
    for folder, refs in sorted(by_folder.items()):
        found, problems = load_lock(folder, refs)
        locks.update(found)
        issues += problems
    return locks, issues


def _image_files(catalog_dir: Path) -> list[Path]:
    try:
        return sorted(catalog_dir.rglob(IMAGE_FILE)) if catalog_dir.is_dir() else []
    except OSError:
        return []


def _raw_catalog_dir(data: Any) -> str:
    """``catalog`` of a project file that did not validate, if it is a valid path at all."""
    value = data.get("catalog") if isinstance(data, dict) else None
    try:
        return relative_path(value) if isinstance(value, str) else "images"
    except PydanticCustomError:
        return "images"


def _yaml_issues(doc: YamlDocument) -> list[SpecIssue]:
    issues = [
        SpecIssue(doc.path, format_key_path(p.key_path), p.message, p.line, p.hint)
        for p in doc.problems
    ]
    if not any(p.fatal for p in doc.problems) and not isinstance(doc.data, dict):
        issues.append(
            SpecIssue(
                doc.path,
                "",
                f"expected a mapping of keys, got {type(doc.data).__name__}",
                doc.line_of(()),
                "the file should start with 'key: value' lines",
            )
        )
    return issues


def _validate(model: type[T], doc: YamlDocument, issues: list[SpecIssue]) -> T | None:
    if not doc.usable:
        return None
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        issues += issues_from_validation(exc, doc, model)
        return None


def _salvage(model: type[T], doc: YamlDocument) -> T | None:
    """The document without its invalid top-level keys, so its other keys still get checked.

    Its own errors are already reported; what it salvages lets the rest of the file (paths,
    build args, its parent) and the images built on it be checked in the same run. Required
    identity keys get a placeholder, except ``name``: without it nothing can refer to the image.
    """
    if not doc.usable:
        return None
    data = dict(doc.data)
    for _ in range(3):
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            bad = {error["loc"][0] for error in exc.errors() if error["loc"]}
            if not bad or "name" in bad:
                return None
            for key in bad:
                data.pop(key, None)
                if key in PLACEHOLDERS and key in model.model_fields:
                    data[key] = PLACEHOLDERS[key]
    return None


def _drop_duplicate_names(loaded: list[_Loaded], issues: list[SpecIssue]) -> list[_Loaded]:
    by_name: dict[str, list[_Loaded]] = {}
    for item in loaded:
        by_name.setdefault(item.document.name, []).append(item)
    for name, items in by_name.items():
        if len(items) > 1:
            files = ", ".join(str(i.yaml.path) for i in items)
            for item in items:
                issues.append(
                    SpecIssue(
                        item.yaml.path,
                        "name",
                        f"image name '{name}' is used by {files}",
                        item.yaml.line_of(("name",)),
                        "every image needs its own name",
                    )
                )
    return [item for item in loaded if len(by_name[item.document.name]) == 1]


def _expand(item: _Loaded, defaults: ImageLayer) -> list[CatalogImage]:
    """One concrete image per combination of variant values (axis order as written)."""
    document = item.document
    axes = list(document.variants.items())
    images = []
    for combo in itertools.product(*(list(values.items()) for _, values in axes)):
        variant = {axis: value for (axis, _), (value, _) in zip(axes, combo, strict=True)}
        spec = ImageSpec(
            name=document.name,
            version=document.version,
            description=document.description,
            variant=variant,
        )
        for layer in [defaults, document, *(overlay for _, overlay in combo)]:
            spec = merge_layer(spec, layer)
        parent: Parent = (
            BootstrapParent(spec.bootstrap)
            if spec.bootstrap is not None
            else parse_from(spec.parent or "")
        )
        images.append(CatalogImage(spec=spec, file=item.yaml.path, parent=parent))
    return images


def _check_parents(
    images: dict[str, CatalogImage], loaded: list[_Loaded], broken: set[str]
) -> list[SpecIssue]:
    documents = {item.document.name: item for item in loaded}
    by_file = {item.yaml.path: item for item in loaded}
    variants_of: dict[str, list[str]] = {}
    for other in images.values():
        if other.spec.variant:
            variants_of.setdefault(other.spec.name, []).append(other.spec.ref.partition(":")[2])
    issues = []
    for image in images.values():
        parent = image.parent
        if not isinstance(parent, CatalogParent):
            continue
        item = by_file[image.file]
        path = _from_key_path(item.document, image.spec.variant)
        line = item.yaml.line_of(path)
        key = format_key_path(path)
        if parent.name in broken:
            continue  # that image has errors of its own, reported already
        if parent.name not in documents:
            guess = near_miss(parent.name, documents)
            hint = (
                f"did you mean '{guess}'?"
                if guess
                else "name a catalog image, or an external image pinned by digest (REF@sha256:...)"
            )
            issues.append(
                SpecIssue(
                    image.file,
                    key,
                    f"parent image '{parent.name}' is not in the catalog",
                    line,
                    hint,
                )
            )
            continue
        variants = sorted(variants_of.get(parent.name, []))
        if parent.variant is None and variants:
            issues.append(
                SpecIssue(
                    image.file,
                    key,
                    f"'{parent.name}' has variants; name one",
                    line,
                    "e.g. " + ", ".join(f"{parent.name}:{v}" for v in variants),
                )
            )
        elif parent.variant is not None and parent.ref not in images:
            known = ", ".join(variants) if variants else "none (it has no variants)"
            issues.append(
                SpecIssue(
                    image.file,
                    key,
                    f"'{parent.name}' has no variant '{parent.variant}'; variants: {known}",
                    line,
                    None,
                )
            )
    return issues


def _check_job_image(
    project: ProjectSpec | None, doc: YamlDocument, images: dict[str, CatalogImage]
) -> list[SpecIssue]:
    """``ci.job_image`` names an image of the catalog."""
    wanted = project.ci.job_image if project else None
    if wanted is None or wanted in images or not images:  # no images: other issues say why
        return []
    close = near_miss(wanted, images)
    return [
        SpecIssue(
            doc.path,
            "ci.job_image",
            f"no catalog image '{wanted}'",
            doc.line_of(("ci", "job_image")),
            f"did you mean '{close}'?" if close else "name an image of the catalog, by its ref",
        )
    ]


def _check_merged(images: dict[str, CatalogImage]) -> list[SpecIssue]:
    """What only shows once defaults, document and variant are merged."""
    issues = []
    for image in images.values():
        ids = [secret.id for secret in image.spec.secrets]
        for secret_id in sorted({i for i in ids if ids.count(i) > 1}):
            issues.append(
                SpecIssue(
                    image.file,
                    "secrets",
                    f"{image.ref}: secret id '{secret_id}' is declared "
                    "twice (by the defaults, the image or a variant)",
                    None,
                    "each build secret id must be unique in an image",
                )
            )
    return issues


def _check_folders(
    images: dict[str, CatalogImage], docs: dict[Path, YamlDocument]
) -> list[SpecIssue]:
    """Every image renders and builds in a folder named for its ref: two refs, one folder."""
    by_folder: dict[str, list[CatalogImage]] = {}
    for image in images.values():
        by_folder.setdefault(ref_slug(image.ref), []).append(image)
    issues = []
    for folder, sharing in by_folder.items():
        if len(sharing) < 2:
            continue
        refs = " and ".join(f"'{image.ref}'" for image in sharing)
        for image in sharing:
            issues.append(
                SpecIssue(
                    image.file,
                    "name",
                    f"{refs} share the output folder '{folder}' (render and build would mix them)",
                    docs[image.file].line_of(("name",)),
                    "rename one of the images (or variant values) so that their refs differ "
                    "in more than '/', ':' and '_'",
                )
            )
    return issues


def _from_key_path(document: ImageDocument, variant: dict[str, str]) -> KeyPath:
    """Where the ``from`` that a concrete image uses was written: the last overlay that sets it."""
    for axis, value in reversed(list(variant.items())):
        if "parent" in document.variants[axis][value].model_fields_set:
            return ("variants", axis, value, "from")
    return ("from",)


def _unique(issues: Iterable[SpecIssue]) -> list[SpecIssue]:
    """Variants share their document: an error in it is found once per variant, shown once."""
    return list(dict.fromkeys(issues))
