"""``gitops.yaml``, next to ``imagefactory.yaml``: where the GitOps repository is and how each
environment is deployed. Frozen, unknown keys forbidden; errors carry file, line and key."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from imagefactory.errors import SpecError, SpecIssue, UserError
from imagefactory.spec import grammar
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.issues import format_key_path, issues_from_validation
from imagefactory.spec.models import EnvName, Identifier, NonEmpty
from imagefactory.spec.yamldoc import read_yaml

GITOPS_FILE = "gitops.yaml"

#: Kubernetes quantities: 250m, 0.5, 512Mi, 1G …
Quantity = Annotated[
    str, StringConstraints(pattern=r"^[0-9]+(?:\.[0-9]+)?(?:m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
]
Namespace = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
]
#: A folder inside the deployment repository: relative, no '.' or '..', no '//'.
RelativePath = Annotated[str, AfterValidator(grammar.relative_path)]
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _check_gitlab_url(value: str) -> str:
    """The token travels to this URL: https, or http to this machine only (tests)."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or not host or parts.scheme not in ("https", "http") or parts.username:
        raise grammar.refuse(
            f"{grammar.shown(value)} is not a GitLab URL",
            "https://HOST[:PORT], without user-info: the token is read from token_env",
        )
    if parts.scheme == "http" and host not in LOOPBACK:
        raise grammar.refuse(
            f"{grammar.shown(value)} is plain http: the GitLab token would travel in clear",
            "use https://; plain http is allowed only for loopback (127.0.0.1, localhost, ::1), "
            "for tests",
        )
    return value


GitlabUrl = Annotated[NonEmpty, AfterValidator(_check_gitlab_url)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Requests(_Frozen):
    cpu: Quantity
    memory: Quantity
    ephemeral_storage: Quantity = "64Mi"  # logs, /tmp and the writable paths count here


class Limits(_Frozen):
    cpu: Quantity
    memory: Quantity
    ephemeral_storage: Quantity = "1Gi"  # the kubelet evicts the pod above this


class Resources(_Frozen):
    requests: Requests = Requests(cpu="100m", memory="128Mi")
    limits: Limits = Limits(cpu="1", memory="512Mi")


class EnvironmentSettings(_Frozen):
    namespace: Namespace
    replicas: int = Field(default=1, ge=0, le=1000)
    resources: Resources = Resources()
    mode: Literal["push", "merge_request"] = "push"
    image_pull_secret: Namespace | None = Field(
        default=None,
        description="a docker-registry Secret in the namespace the pods pull with",
    )


def _check_network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        raise grammar.refuse(
            f"{grammar.shown(value)} is not a network",
            "an address block in CIDR form, e.g. 10.20.0.0/16 or 192.0.2.10/32",
        ) from None


class EgressRule(_Frozen):
    """Where the pods may connect to, besides the cluster DNS (the NetworkPolicy denies the
    rest)."""

    cidr: Annotated[str, AfterValidator(_check_network)]
    ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(min_length=1)
    protocol: Literal["TCP", "UDP"] = "TCP"


class ArgoSettings(_Frozen):
    namespace: Namespace = "argocd"
    project: Identifier | None = Field(
        default=None,
        description="the AppProject; default: the catalog's project name ('default': Argo CD's "
        "own, and no AppProject is generated)",
    )
    server: NonEmpty = "https://kubernetes.default.svc"
    repo_url: NonEmpty | None = Field(
        default=None, description="the URL Argo CD reads the repository from; default: repo_url"
    )


class GitlabSettings(_Frozen):
    url: GitlabUrl
    project: NonEmpty = Field(description="path with namespace, e.g. platform/deployments")
    token_env: EnvName = "GITLAB_TOKEN"


class GitopsSettings(_Frozen):
    repo_url: NonEmpty
    branch: NonEmpty = "main"
    path: RelativePath = "apps"
    skip_ci: bool = True
    attempts: int = Field(default=20, ge=1, le=100, description="push attempts before giving up")
    argocd: ArgoSettings = ArgoSettings()
    gitlab: GitlabSettings | None = None
    egress: list[EgressRule] = Field(default_factory=list)
    environments: dict[Identifier, EnvironmentSettings] = Field(min_length=1)

    def environment(self, name: str) -> EnvironmentSettings:
        if name not in self.environments:
            raise UserError(
                f"no environment '{name}' in {GITOPS_FILE}",
                hint="environments there: " + ", ".join(self.environments),
            )
        return self.environments[name]


def load_settings(catalog: Catalog) -> GitopsSettings:
    path = catalog.root / GITOPS_FILE
    settings = read_settings(path)
    known = [env.name for env in catalog.project.environments]
    doc = read_yaml(path)
    issues = [
        SpecIssue(
            path,
            f"environments.{name}",
            f"'{name}' is not an environment of the project",
            doc.line_of(("environments", name)),
            "environments in imagefactory.yaml: " + ", ".join(known),
        )
        for name in settings.environments
        if name not in known
    ]
    if (
        any(s.mode == "merge_request" for s in settings.environments.values())
        and not settings.gitlab
    ):
        issues.append(
            SpecIssue(path, "gitlab", "merge_request mode needs gitlab settings", doc.line_of(()))
        )
    if issues:
        raise SpecError(issues)
    return settings


def read_settings(path: Path) -> GitopsSettings:
    if not path.is_file():
        raise UserError(
            f"no {GITOPS_FILE} in {path.parent}",
            hint=f"write {GITOPS_FILE} next to imagefactory.yaml (repo_url, environments …)",
        )
    doc = read_yaml(path)
    problems = [
        SpecIssue(path, format_key_path(p.key_path), p.message, p.line, p.hint)
        for p in doc.problems
    ]
    if problems or not isinstance(doc.data, dict):
        raise SpecError(problems or [SpecIssue(path, "", "the file is not a mapping", 1)])
    try:
        return GitopsSettings.model_validate(doc.data)
    except ValidationError as exc:
        raise SpecError(issues_from_validation(exc, doc, GitopsSettings)) from exc


def remote_url(root: Path, url: str) -> str:
    """``repo_url`` as git takes it: a URL as written; a plain path relative to the project root."""
    if "://" in url or url.startswith("git@") or Path(url).is_absolute():
        return url
    return str(root / url)
