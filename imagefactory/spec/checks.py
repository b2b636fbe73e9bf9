"""Checks a schema cannot express: paths that must stay inside a folder, secrets passed as
build args, playbooks that must exist, external parents that must be pinned by digest, and the
project's cross-references (environments → registries, the CA bundle)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from imagefactory.errors import SpecIssue
from imagefactory.spec.issues import format_key_path
from imagefactory.spec.models import ImageDocument, ImageLayer, ProjectSpec
from imagefactory.spec.parents import DIGEST_PATTERN, ExternalParent, parse_from
from imagefactory.spec.yamldoc import KeyPath, YamlDocument

SECRET_WORDS = frozenset(
    {"TOKEN", "PASSWORD", "PASSWD", "PASS", "SECRET", "KEY", "APIKEY", "CREDENTIAL", "CREDENTIALS",
     "AUTH", "PAT", "PRIVATE", "CERTKEY"}
)  # fmt: skip
SECRET_SUFFIXES = ("TOKEN", "PASSWORD", "SECRET", "APIKEY")


def looks_secret(name: str) -> bool:
    parts = [p for p in re.split(r"[_\-]", name.upper()) if p]
    return any(p in SECRET_WORDS or p.endswith(SECRET_SUFFIXES) for p in parts)


@dataclass
class _Issues:
    doc: YamlDocument
    found: list[SpecIssue] = field(default_factory=list)

    def add(self, path: KeyPath, message: str, hint: str | None = None) -> None:
        line = self.doc.line_of(path)
        self.found.append(SpecIssue(self.doc.path, format_key_path(path), message, line, hint))


def layers_of(document: ImageDocument) -> Iterator[tuple[KeyPath, ImageLayer]]:
    """The document itself and each variant overlay, with the key path that leads to it."""
    yield (), document
    for axis, values in document.variants.items():
        for value, overlay in values.items():
            yield ("variants", axis, value), overlay


def check_document(document: ImageDocument, doc: YamlDocument, root: Path) -> list[SpecIssue]:
    issues = _Issues(doc)
    for prefix, layer in layers_of(document):
        _check_layer(issues, prefix, layer, root)
        for index, copy in enumerate(layer.files):
            problem = source_problem(doc.path.parent, copy.src)
            if problem:
                issues.add(
                    (*prefix, "files", index, "src"),
                    problem,
                    "files come from the image's own folder; put the file there",
                )
    return issues.found


def check_project(project: ProjectSpec, doc: YamlDocument, root: Path) -> list[SpecIssue]:
    issues = _Issues(doc)
    seen: set[str] = set()
    defined = ", ".join(sorted(project.registries)) or "none"
    for index, env in enumerate(project.environments):
        if env.name in seen:
            issues.add(
                ("environments", index, "name"), f"environment '{env.name}' is defined twice"
            )
        seen.add(env.name)
        for position, registry in enumerate(env.registries):
            if registry not in project.registries:
                issues.add(
                    ("environments", index, "registries", position),
                    f"unknown registry '{registry}'",
                    f"registries defined under 'registries': {defined}",
                )
    if project.build.ca_bundle is not None and not is_file(root / project.build.ca_bundle):
        issues.add(
            ("build", "ca_bundle"),
            f"CA bundle {root / project.build.ca_bundle} is not a file",
            "a PEM file, absolute or relative to the project root",
        )
    _check_layer(issues, ("defaults",), project.defaults, root)
    return issues.found


def _check_layer(issues: _Issues, prefix: KeyPath, layer: ImageLayer, root: Path) -> None:
    for name in layer.build_args:
        if looks_secret(name):
            issues.add(
                (*prefix, "build_args", name),
                f"build arg '{name}' looks like a secret; build args stay in the image history",
                f"declare it under 'secrets' (id: {name.lower().replace('_', '-')}, env: {name}) "
                "and read it with RUN --mount=type=secret",
            )
    for index, playbook in enumerate(layer.playbooks):
        problem = source_problem(root, playbook)
        if problem:
            issues.add(
                (*prefix, "playbooks", index),
                problem.replace("image folder", "project"),
                "playbooks are paths relative to the project root, e.g. ansible/base.yml",
            )
    ids = [secret.id for secret in layer.secrets]
    for index, secret_id in enumerate(ids):
        if secret_id in ids[:index]:
            issues.add(
                (*prefix, "secrets", index, "id"), f"secret id '{secret_id}' is declared twice"
            )
    if layer.parent is not None:
        parent = parse_from(layer.parent)
        if isinstance(parent, ExternalParent):
            if parent.digest is None:
                issues.add(
                    (*prefix, "from"),
                    f"external parent '{parent.reference}' is not pinned by digest",
                    f"write it as {parent.reference}@sha256:<digest> so builds are reproducible",
                )
            elif not DIGEST_PATTERN.match(parent.digest):
                issues.add(
                    (*prefix, "from"),
                    f"'{parent.digest}' is not a sha256 digest",
                    "a digest is 'sha256:' followed by 64 lowercase hex digits",
                )


def is_file(path: Path) -> bool:
    """``Path.is_file`` that answers False for names the OS refuses (too long, …)."""
    try:
        return path.is_file()
    except OSError:
        return False


def source_problem(folder: Path, src: str) -> str | None:
    """Why ``src`` may not be used as a path inside ``folder``, or None when it is fine."""
    try:
        return _source_problem(folder, src)
    except OSError as exc:
        return f"'{src}' cannot be used: {exc.strerror}"


def _source_problem(folder: Path, src: str) -> str | None:
    pure = PurePosixPath(src)
    if pure.is_absolute():
        return f"'{src}' is an absolute path; it must be relative to the image folder"
    if ".." in pure.parts:
        return f"'{src}' leaves the image folder ('..')"
    target = folder / pure
    if not target.exists() and not target.is_symlink():
        return f"'{src}' does not exist in the image folder"
    base = folder.resolve()
    for path in [target, *(sorted(target.rglob("*")) if target.is_dir() else [])]:
        if not path.resolve().is_relative_to(base):
            shown = path.relative_to(folder)
            return f"'{shown}' is a symlink pointing outside the image folder"
    return None
