"""Render the GitOps repository layout from the catalog and ``gitops.yaml`` (pure: no I/O but
reading templates).

For each application image (an image whose name starts with ``app/``)::

    <path>/<app>/base/kustomization.yaml
    <path>/<app>/base/{deployment,job,cronjob}.yaml    # ports: a Deployment; none: a Job, or
                                                       # a CronJob with deploy.schedule
    <path>/<app>/base/service.yaml                     # with ports
    <path>/<app>/base/networkpolicy.yaml               # default deny, but its ports and DNS
    <path>/<app>/overlays/<env>/{kustomization,resources}.yaml   # images: pinned by digest
    <path>/<app>/overlays/<env>/pdb.yaml               # a Deployment with replicas > 1
    <path>/argocd/<app>-<env>.yaml                     # one Argo CD Application each
    <path>/argocd/project.yaml                         # their AppProject (unless 'default')
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
    command: list[str] | None  # exec; None: tcpSocket on ``port``
    port: int | None
    period: int
    timeout: int
    failures: int


@dataclass(frozen=True)
class Volume:
    name: str
    path: str
    why: str


@dataclass(frozen=True)
class Pinned:
    """What an overlay pins: the digest, and the version it was released as."""

    digest: str
    version: str


#: The kinds of the rendered resources (group, kind): the AppProject permits these alone.
KINDS = (
    ("apps", "Deployment"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("", "Service"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("policy", "PodDisruptionBudget"),
)
_API_VERSIONS = {"Deployment": "apps/v1", "Job": "batch/v1", "CronJob": "batch/v1"}
#: Each emptyDir's size limit (it counts against the pod's ephemeral-storage limit).
VOLUME_SIZE = "256Mi"
#: Argo CD's own project: the layout then brings no AppProject.
ARGO_DEFAULT_PROJECT = "default"


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


def _probes(image: CatalogImage, ports: list[Port]) -> list[tuple[str, Probe]]:
    """A Deployment's probes. The healthcheck is the startup and readiness probe; liveness is
    a TCP connect to the first TCP port, so a slow dependency makes the pod unready without
    restarting it (kube-score: readiness and liveness must differ). Without a healthcheck,
    readiness is the TCP connect and there is no liveness probe (better none than the same)."""
    check = image.spec.healthcheck
    tcp = next((p.number for p in ports if p.protocol == "TCP"), None)
    probes: list[tuple[str, Probe]] = []
    if check is not None:
        command = list(check.cmd)
        period, timeout = _seconds(check.interval), _seconds(check.timeout)
        startup = max(1, -(-_seconds(check.start_period) // 5)) + check.retries
        probes += [
            ("startupProbe", Probe(command, None, 5, timeout, startup)),
            ("readinessProbe", Probe(command, None, period, timeout, check.retries)),
        ]
        if tcp is not None:
            probes.append(("livenessProbe", Probe(None, tcp, period, timeout, check.retries)))
    elif tcp is not None:
        probes.append(("readinessProbe", Probe(None, tcp, 10, 1, 3)))
    return probes


def _volumes(image: CatalogImage) -> list[Volume]:
    """/tmp and each of ``deploy.writable_paths``, as emptyDir volumes with DNS-1123 names."""
    volumes = [Volume("tmp", "/tmp", "/tmp: scratch space, always writable")]
    for path in image.spec.deploy.mounted_paths()[1:]:
        base = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")[:40].strip("-") or "data"
        name, count = base, 1
        while name in {v.name for v in volumes}:
            count += 1
            name = f"{base}-{count}"
        volumes.append(Volume(name, path, f"{path}: deploy.writable_paths"))
    return volumes


def workload_kind(image: CatalogImage) -> str:
    """Deployment (it serves ports), CronJob (no ports, a schedule) or Job (no ports)."""
    if image.spec.ports:
        return "Deployment"
    return "CronJob" if image.spec.deploy.schedule else "Job"


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
    catalog: Catalog, settings: GitopsSettings, pins: Mapping[tuple[str, str], Pinned]
) -> dict[str, str]:
    """Every file of the layout, relative path → text. ``pins``: (ref, env) → what is pinned."""
    files: dict[str, str] = {}
    apps = sorted(applications(catalog), key=lambda i: i.ref)
    for image in apps:
        files.update(_render_application(catalog, settings, image, pins))
    project = argo_project(catalog, settings)
    if apps and project != ARGO_DEFAULT_PROJECT:
        context = {
            "gitops": settings,
            "project": project,
            "part_of": catalog.project.project,
            "namespaces": sorted({e.namespace for e in settings.environments.values()}),
            "kinds": KINDS,
        }
        files[f"{settings.path}/argocd/project.yaml"] = _render("project.yaml.j2", context)
    return files


def argo_project(catalog: Catalog, settings: GitopsSettings) -> str:
    return settings.argocd.project or catalog.project.project


def _render_application(
    catalog: Catalog,
    settings: GitopsSettings,
    image: CatalogImage,
    pins: Mapping[tuple[str, str], Pinned],
) -> dict[str, str]:
    app = app_name(image)
    ports = _ports(image)
    uid, gid = _user(catalog, image)
    kind = workload_kind(image)
    context: dict[str, object] = {
        "app": app,
        "container": app,
        "image": image,
        "kind": kind,
        "api_version": _API_VERSIONS[kind],
        "workload_file": f"{kind.lower()}.yaml",
        "ports": ports,
        "probes": _probes(image, ports) if kind == "Deployment" else [],
        "volumes": _volumes(image),
        "volume_size": VOLUME_SIZE,
        "uid": uid,
        "gid": gid,
        "resources": Resources(),
        "gitops": settings,
        "part_of": catalog.project.project,
        "project": argo_project(catalog, settings),
        "source": image.file.relative_to(catalog.root)
        if image.file.is_relative_to(catalog.root)
        else image.file.name,
    }
    folder = f"{settings.path}/{app}"
    files = {
        f"{folder}/base/kustomization.yaml": _render("base-kustomization.yaml.j2", context),
        f"{folder}/base/{kind.lower()}.yaml": _render("workload.yaml.j2", context),
        f"{folder}/base/networkpolicy.yaml": _render("networkpolicy.yaml.j2", context),
    }
    if ports:
        files[f"{folder}/base/service.yaml"] = _render("service.yaml.j2", context)
    envs = {e.name: e for e in catalog.project.environments}
    for env, env_settings in settings.environments.items():
        registry = catalog.project.registries[envs[env].registries[0]]
        overlay = f"{folder}/overlays/{env}"
        pinned = pins.get((image.ref, env))
        local = {
            **context,
            "env": env,
            # one instance per namespace: named like its resources (Polaris
            # metadataAndInstanceMismatched); the Application in argocd/ adds the environment
            "instance": app,
            "settings": env_settings,
            "new_name": repository(registry, image.spec.name),
            "digest": pinned.digest if pinned else None,
            "version": pinned.version if pinned else image.spec.version,
            "pdb": kind == "Deployment" and env_settings.replicas not in (0, 1),  # > 1
            "path": overlay,
        }
        files[f"{overlay}/kustomization.yaml"] = _render("overlay-kustomization.yaml.j2", local)
        files[f"{overlay}/resources.yaml"] = _render("overlay-resources.yaml.j2", local)
        if local["pdb"]:
            files[f"{overlay}/pdb.yaml"] = _render("pdb.yaml.j2", local)
        files[f"{settings.path}/argocd/{app}-{env}.yaml"] = _render("application.yaml.j2", local)
    return files


def _render(name: str, context: dict[str, object]) -> str:
    return render_template(templates_dir(), f"gitops/{name}", context)
