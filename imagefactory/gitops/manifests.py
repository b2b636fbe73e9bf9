"""Render the GitOps repository layout from the catalog and ``gitops.yaml`` (pure: no I/O but
reading templates).

For each application image (an image whose name starts with ``app/``)::

    <path>/<app>/base/{kustomization,deployment,service}.yaml
    <path>/<app>/overlays/<env>/{kustomization,resources}.yaml   # images: pinned by digest
    <path>/argocd/<app>-<env>.yaml                                # one Argo CD Application each
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from imagefactory.errors import UserError
from imagefactory.project.naming import repository
from imagefactory.project.paths import templates_dir
from imagefactory.render.environment import render_template
from imagefactory.spec.catalog import APP_KIND, Catalog, CatalogImage, is_application
from imagefactory.spec.gitops import GitopsSettings, Resources
from imagefactory.spec.models import UserAccount
from imagefactory.spec.parents import ExternalParent

_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class Port:
    name: str
    number: int
    protocol: str


@dataclass(frozen=True)
class Probe:
    command: list[str] | None
    port: int | None
    period: int
    timeout: int
    retries: int
    startup_failures: int


def applications(catalog: Catalog) -> list[CatalogImage]:
    return [i for i in catalog.images.values() if is_application(i.spec.name)]


def application(catalog: Catalog, ref: str) -> CatalogImage:
    """The application image ``ref`` (a ref, or a name without variants)."""
    matches = catalog.select([ref])
    if len(matches) != 1:
        raise UserError(f"'{ref}' has variants; name one", hint=f"e.g. {matches[0].ref}")
    image = matches[0]
    if not is_application(image.spec.name):
        raise UserError(
            f"{image.ref} is not an application: only images under {APP_KIND}/ are deployed",
            hint="applications: " + (", ".join(i.ref for i in applications(catalog)) or "none"),
        )
    return image


def app_name(image: CatalogImage) -> str:
    """A DNS-1123 name for the image: ``app/rag-api`` → ``rag-api``, variants appended."""
    text = image.ref.split("/", 1)[1] if "/" in image.ref else image.ref
    name = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:50].strip("-")
    return name or "app"


def overlay_file(settings: GitopsSettings, image: CatalogImage, env: str) -> str:
    return f"{settings.path}/{app_name(image)}/overlays/{env}/kustomization.yaml"


def _ports(image: CatalogImage) -> list[Port]:
    ports = []
    for text in image.spec.ports:
        number, _, protocol = text.partition("/")
        protocol = (protocol or "tcp").upper()
        ports.append(Port(f"{protocol.lower()}-{number}", int(number), protocol))
    return ports


def _seconds(duration: str) -> int:
    value, unit = re.fullmatch(r"([0-9]+)(ms|s|m|h)", duration).groups()  # type: ignore[union-attr]
    return max(1, round(int(value) * _SECONDS[unit]))


def _probe(image: CatalogImage, ports: list[Port]) -> Probe | None:
    check = image.spec.healthcheck
    if check is not None:
        return Probe(
            command=list(check.cmd),
            port=None,
            period=_seconds(check.interval),
            timeout=_seconds(check.timeout),
            retries=check.retries,
            startup_failures=max(1, -(-_seconds(check.start_period) // 5)) + check.retries,
        )
    tcp = [p for p in ports if p.protocol == "TCP"]
    if tcp:
        return Probe(None, tcp[0].number, 10, 1, 3, 12)
    return None


def _user(catalog: Catalog, image: CatalogImage) -> tuple[int, int]:
    """The uid and gid the image runs as, for the Deployment's ``securityContext``: numeric ids
    as written, names resolved through ``create_users`` of the image and its catalog parents
    (the nearest one that creates the name wins; a group name is the group ``useradd`` gives
    that user). Root, and a name no ``create_users`` gives an id, are refused with a hint."""
    written = image.spec.user or _no_user(catalog, image)
    user, _, group = written.partition(":")
    accounts: dict[str, UserAccount] = {}
    for ancestor in reversed(catalog.lineage(image.ref)):  # the nearest definition last: it wins
        accounts.update((a.name, a) for a in ancestor.spec.create_users)
    uid = _account_id(image, written, user, accounts, "user")
    if uid == 0:
        raise UserError(
            f"{image.ref} runs as root; its Deployment would need runAsNonRoot: false",
            hint="set user: to a non-root account created with create_users",
        )
    if group:
        return uid, _account_id(image, written, group, accounts, "group")
    named = accounts.get(user) or next((a for a in accounts.values() if a.uid == uid), None)
    return uid, (named.gid or named.uid) if named else uid


def _no_user(catalog: Catalog, image: CatalogImage) -> str:
    """What an image without ``user`` in its chain runs as: root on a bootstrap, and on an
    external parent whatever that image's config says, which only a build reads."""
    root = catalog.lineage(image.ref)[-1]
    if isinstance(root.parent, ExternalParent):
        raise UserError(
            f"{image.ref} runs as the user of its external parent's image config, which "
            "gitops cannot read, so its Deployment cannot set runAsUser",
            hint=f"write user: (a name created with create_users, or UID:GID) in {root.ref}'s "
            "image.yaml",
        )
    return "root"


def _account_id(
    image: CatalogImage, written: str, name: str, accounts: Mapping[str, UserAccount], kind: str
) -> int:
    if name.isdigit():
        return int(name)
    if name == "root":
        return 0
    account = accounts.get(name)
    if account is None:
        known = ", ".join(sorted(accounts)) or "none"
        raise UserError(
            f"{image.ref} runs as '{written}', but no create_users of it or of its catalog "
            f"parents gives the {kind} '{name}' an id, so its Deployment cannot set "
            f"runAs{'User' if kind == 'user' else 'Group'}",
            hint=f"add {{name: {name}, uid: …}} to create_users (accounts created there: "
            f"{known}), or write user: as UID:GID, the ids the parent image gives '{name}'",
        )
    return account.uid if kind == "user" else account.gid or account.uid


def render_repository(
    catalog: Catalog, settings: GitopsSettings, pins: Mapping[tuple[str, str], str]
) -> dict[str, str]:
    """Every file of the layout, relative path → text. ``pins``: (ref, env) → digest."""
    files: dict[str, str] = {}
    for image in sorted(applications(catalog), key=lambda i: i.ref):
        files.update(_render_application(catalog, settings, image, pins))
    return files


def _render_application(
    catalog: Catalog,
    settings: GitopsSettings,
    image: CatalogImage,
    pins: Mapping[tuple[str, str], str],
) -> dict[str, str]:
    app = app_name(image)
    ports = _ports(image)
    uid, gid = _user(catalog, image)
    context: dict[str, object] = {
        "app": app,
        "container": app,
        "image": image,
        "ports": ports,
        "probe": _probe(image, ports),
        "uid": uid,
        "gid": gid,
        "resources": Resources(),
        "gitops": settings,
        "source": image.file.relative_to(catalog.root)
        if image.file.is_relative_to(catalog.root)
        else image.file.name,
    }
    folder = f"{settings.path}/{app}"
    files = {
        f"{folder}/base/kustomization.yaml": _render("base-kustomization.yaml.j2", context),
        f"{folder}/base/deployment.yaml": _render("deployment.yaml.j2", context),
    }
    if ports:
        files[f"{folder}/base/service.yaml"] = _render("service.yaml.j2", context)
    envs = {e.name: e for e in catalog.project.environments}
    for env, env_settings in settings.environments.items():
        registry = catalog.project.registries[envs[env].registries[0]]
        overlay = f"{folder}/overlays/{env}"
        local = {
            **context,
            "env": env,
            "settings": env_settings,
            "new_name": repository(registry, image.spec.name),
            "digest": pins.get((image.ref, env)),
            "path": overlay,
        }
        files[f"{overlay}/kustomization.yaml"] = _render("overlay-kustomization.yaml.j2", local)
        files[f"{overlay}/resources.yaml"] = _render("overlay-resources.yaml.j2", local)
        files[f"{settings.path}/argocd/{app}-{env}.yaml"] = _render("application.yaml.j2", local)
    return files


def _render(name: str, context: dict[str, object]) -> str:
    return render_template(templates_dir(), f"gitops/{name}", context)
