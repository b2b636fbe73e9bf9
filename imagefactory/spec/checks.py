"""Checks a schema cannot express: paths that must stay inside a folder, secrets passed as
build args or env, playbooks that must exist, external parents that must be pinned by digest,
and the project's cross-references (environments → registries, the CA bundle, the state and
catalog folders, credentials in mirror and proxy URLs)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from imagefactory.errors import SpecIssue, UserError
from imagefactory.spec.catalog import APP_KIND, is_application
from imagefactory.spec.grammar import CONTROL, has_credentials, shown
from imagefactory.spec.issues import format_key_path
from imagefactory.spec.models import ImageDocument, ImageLayer, ProjectSpec
from imagefactory.spec.parents import DIGEST_PATTERN, ExternalParent, parse_from
from imagefactory.spec.walk import copied_entries
from imagefactory.spec.wheels import wheel_files
from imagefactory.spec.yamldoc import KeyPath, YamlDocument

SECRET_WORDS = frozenset(
    {"TOKEN", "PASSWORD", "PASSWD", "PASS", "PWD", "PASSPHRASE", "SECRET", "KEY", "APIKEY",
     "CREDENTIAL", "CREDS", "CRED", "AUTH", "PAT", "PRIVATE", "CERTKEY", "JWT", "NETRC",
     "SESSION", "COOKIE", "BEARER", "OAUTH", "HTPASSWD"}
)  # fmt: skip
SECRET_SUFFIXES = ("TOKEN", "PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "APIKEY", "PWD")
#: Where a URL in a setting may not carry credentials: they would reach RUN lines or argv.
URL_SETTINGS = (("mirrors", "debian"), ("mirrors", "debian_security"), ("mirrors", "pypi"),
                ("proxy", "http"), ("proxy", "https"))  # fmt: skip


def looks_secret(name: str) -> bool:
    """``DB_PWD``, ``apiKey``, ``GITHUB_TOKENS``: split on ``_``, ``-`` and camelCase; plurals count."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    parts = [p for p in re.split(r"[_\-]", spaced.upper()) if p]
    words = [*parts, *(p.removesuffix("S") for p in parts)]
    return any(p in SECRET_WORDS or p.endswith(SECRET_SUFFIXES) for p in words)


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
        for index, pattern in enumerate(layer.wheels):
            try:
                wheel_files(doc.path.parent, [pattern])
            except UserError as exc:
                issues.add((*prefix, "wheels", index), exc.message, exc.hint)
    _check_deploy(issues, document)
    return issues.found


_KERNEL_FILESYSTEMS = frozenset({"proc", "sys", "dev"})


def _check_deploy(issues: _Issues, document: ImageDocument) -> None:
    """``deploy:`` describes a Kubernetes workload: only applications have one, and a
    scheduled one (a CronJob) serves no ports."""
    for prefix, layer in layers_of(document):
        written = "deploy" in layer.model_fields_set and layer.deploy.model_fields_set
        if written and not is_application(document.name):
            issues.add(
                (*prefix, "deploy"),
                f"deploy is for applications; {document.name} is not under {APP_KIND}/",
                "only images under app/ are deployed (imagefactory gitops); remove deploy here",
            )
        for index, path in enumerate(layer.deploy.writable_paths):
            if path == "/" or path.split("/")[1] in _KERNEL_FILESYSTEMS:
                issues.add(
                    (*prefix, "deploy", "writable_paths", index),
                    f"'{path}' cannot be a writable volume: "
                    + ("it is the root filesystem" if path == "/" else "the kernel mounts it"),
                    "name the folders the process writes, e.g. /var/cache/<app>; /tmp always is",
                )
        if layer.deploy.schedule is not None and any(p.ports for _, p in layers_of(document)):
            issues.add(
                (*prefix, "deploy", "schedule"),
                "a scheduled image runs as a CronJob, which serves no ports",
                "remove ports: for a batch job, or the schedule for a service",
            )


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
    _check_scan_environments(issues, project, sorted(seen))
    if project.build.ca_bundle is not None and not is_file(root / project.build.ca_bundle):
        issues.add(
            ("build", "ca_bundle"),
            f"CA bundle {root / project.build.ca_bundle} is not a file",
            "a PEM file, absolute or relative to the project root",
        )
    for key, relative in (("catalog", project.catalog), ("state", project.state)):
        if not resolves_inside(root, relative):
            issues.add(
                (key,),
                f"'{relative}' resolves outside the project (through a symlink)",
                "catalog and state are folders and files inside the project; replace the symlink",
            )
    for section, key in URL_SETTINGS:
        value = getattr(getattr(project.build, section), key)
        if value is not None and has_credentials(value):
            issues.add(
                ("build", section, key),
                f"the {section} URL carries credentials (user-info before '@')",
                "they would reach RUN lines, argv and the image history; write the URL without "
                "them and give the login as a build secret (a netrc secret: id: netrc, file: …)",
            )
    _check_layer(issues, ("defaults",), project.defaults, root)
    return issues.found


def _check_scan_environments(issues: _Issues, project: ProjectSpec, names: list[str]) -> None:
    """``scan.thresholds`` and ``scan.require`` name environments that exist: a misspelt one
    would leave the real environment at the default threshold, or unguarded."""
    hint = f"environments: {', '.join(names) or 'none'}"
    for name in project.scan.thresholds:
        if name not in names:
            issues.add(("scan", "thresholds", name), f"unknown environment '{name}'", hint)
    for position, name in enumerate(project.scan.require):
        if name not in names:
            issues.add(("scan", "require", position), f"unknown environment '{name}'", hint)


def resolves_inside(root: Path, relative: str) -> bool:
    """``root / relative`` resolves inside ``root`` (symlinks followed)."""
    try:
        return (root / relative).resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop: not a place inside the project either
        return False


def _check_layer(issues: _Issues, prefix: KeyPath, layer: ImageLayer, root: Path) -> None:
    _check_secret_names(issues, prefix, layer)
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
            if not REFERENCE_PATTERN.fullmatch(parent.reference):
                issues.add(
                    (*prefix, "from"),
                    f"'{parent.reference}' is not an image reference"
                    if parent.reference
                    else f"'{layer.parent}' names a digest but no image",
                    "an external parent is REGISTRY/PATH[:TAG]@sha256:<digest>, e.g. "
                    "docker.io/library/debian@sha256:<64 hex digits>",
                )
            elif parent.digest is None:
                issues.add(
                    (*prefix, "from"),
                    f"external parent '{parent.reference}' is not pinned by digest",
                    f"write it as {parent.reference}@sha256:<digest> so builds are reproducible",
                )
            elif not DIGEST_PATTERN.fullmatch(parent.digest):
                issues.add(
                    (*prefix, "from"),
                    f"'{parent.digest}' is not a sha256 digest",
                    "a digest is 'sha256:' followed by 64 lowercase hex digits",
                )


def _check_secret_names(issues: _Issues, prefix: KeyPath, layer: ImageLayer) -> None:
    """Build args stay in the image history and env in its config: neither may hold a secret."""
    for section, values, where in (
        ("build_args", layer.build_args, "build args stay in the image history"),
        ("env", layer.env, "env is stored in the image config (docker inspect shows it)"),
    ):
        kind = "build arg" if section == "build_args" else "env"
        for name, value in values.items():
            secret_id = name.lower().replace("_", "-")
            if looks_secret(name):
                issues.add(
                    (*prefix, section, name),
                    f"{kind} '{name}' looks like a secret; {where}",
                    f"declare it under 'secrets' (id: {secret_id}, env: {name}, as_env: {name}) "
                    "and read it with RUN --mount=type=secret",
                )
            elif has_credentials(value):
                issues.add(
                    (*prefix, section, name),
                    f"{kind} '{name}' holds a URL with credentials (user-info before '@'); {where}",
                    f"write the URL without them and give the login as a build secret "
                    f"(id: {secret_id}, as_env: {name}, or a netrc secret)",
                )


#: distribution/reference: [HOST[:PORT]/]PATH[:TAG]; the digest is checked on its own.
REFERENCE_PATTERN = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
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
    problem, entries = copied_entries(folder, target)
    if problem:
        return problem
    bad = next((e.relative for e in entries if CONTROL.search(e.relative)), None)  # copyable
    return None if bad is None else f"{shown(bad)} has a control character in its name"
