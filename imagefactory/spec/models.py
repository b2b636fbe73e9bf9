"""The catalog's typed, frozen spec objects (pydantic v2, unknown keys forbidden).

Two files feed them: the project file ``imagefactory.yaml`` (:class:`ProjectSpec`) and one
``image.yaml`` per image (:class:`ImageDocument`). A document's variants are overlays
(:class:`ImageLayer`) merged into it to give one :class:`ImageSpec` per concrete image; see
``merge.py`` for the rules. Every field is documented in ``docs/catalog.md``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

import semver
from packaging.requirements import InvalidRequirement, Requirement
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from imagefactory.spec import grammar
from imagefactory.spec.platforms import platform_name


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# The first component has no "." so that a name never reads as a registry host (see parents.py).
IMAGE_NAME = r"[a-z0-9]+(?:[_-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
IMAGE_NAME_PATTERN = rf"^{IMAGE_NAME}$"
IDENTIFIER_PATTERN = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$"
# Variant values are joined with "-" in refs (rt:cuda-py312), so they contain none themselves.
VARIANT_VALUE = r"[a-z0-9]+(?:[._][a-z0-9]+)*"
VARIANT_VALUE_PATTERN = rf"^{VARIANT_VALUE}$"
#: A catalog ref (``ImageSpec.ref``): the name, then its variant's values joined by "-".
IMAGE_REF = rf"{IMAGE_NAME}(?::{VARIANT_VALUE}(?:-{VARIANT_VALUE})*)?"
DURATION_PATTERN = r"^[0-9]+(?:ms|s|m|h)$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

#: Text that reaches a template or an argv: one line, no control characters.
Text = Annotated[str, AfterValidator(grammar.single_line)]
#: Env and label values, scripts in exec form: tab and newline are kept, other controls refused.
MultiLine = Annotated[str, AfterValidator(grammar.multi_line)]
ConfigValue = Annotated[str, AfterValidator(grammar.config_value)]
NonEmpty = Annotated[Text, StringConstraints(min_length=1)]
ImageName = Annotated[str, StringConstraints(pattern=IMAGE_NAME_PATTERN, max_length=200)]
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN, max_length=64)]
ImageRef = Annotated[str, StringConstraints(pattern=rf"^{IMAGE_REF}$", max_length=300)]
VariantValue = Annotated[str, StringConstraints(pattern=VARIANT_VALUE_PATTERN, max_length=64)]
Duration = Annotated[str, StringConstraints(pattern=DURATION_PATTERN)]
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME_PATTERN)]
DebianPackage = Annotated[str, AfterValidator(grammar.debian_package)]
DebianPackageName = Annotated[str, AfterValidator(grammar.debian_package_name)]
PosixName = Annotated[str, AfterValidator(grammar.posix_name)]
Account = Annotated[str, AfterValidator(grammar.account)]
LabelKey = Annotated[str, AfterValidator(grammar.label_key)]
AbsolutePath = Annotated[str, AfterValidator(grammar.absolute_path)]
ProjectPath = Annotated[str, AfterValidator(grammar.relative_path)]
SourcePath = Annotated[NonEmpty, AfterValidator(grammar.source_path)]
WheelPattern = Annotated[str, AfterValidator(grammar.wheel_pattern)]
Regex = Annotated[MultiLine, AfterValidator(grammar.regex)]
Url = Annotated[str, AfterValidator(grammar.url)]
CronSchedule = Annotated[str, AfterValidator(grammar.cron_schedule)]
#: Whole-value grammars (no anchors: pydantic's patterns get them below, fullmatch elsewhere).
REGISTRY_URL = r"[a-zA-Z0-9.-]+(?::[0-9]+)?"
REGISTRY_NAMESPACE = r"[a-z0-9]+(?:[._/-][a-z0-9]+)*"
RegistryUrl = Annotated[str, StringConstraints(pattern=rf"^{REGISTRY_URL}$")]
RegistryNamespace = Annotated[str, StringConstraints(pattern=rf"^{REGISTRY_NAMESPACE}$")]
RegistryUrlEnv = Annotated[str, AfterValidator(grammar.registry_url_env)]
RegistryNamespaceEnv = Annotated[str, AfterValidator(grammar.registry_namespace_env)]
ExecForm = list[MultiLine]
Platform = Annotated[str, AfterValidator(platform_name)]


def is_semver(value: str) -> bool:
    """Whether ``value`` is a semantic version (the grammar of ``SemVer``)."""
    try:
        semver.Version.parse(value)
    except ValueError:
        return False
    return True


def _check_semver(value: str) -> str:
    if not is_semver(value):
        raise ValueError(f"'{value}' is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.4.2)")
    return value


def _check_mode(value: str) -> str:
    if not re.fullmatch(r"0?[0-7]{3,4}", value):
        raise ValueError(f"'{value}' is not an octal file mode (quote it: \"0644\")")
    return value.zfill(4)[-4:]


def _check_requirement(value: str) -> str:
    try:
        requirement = Requirement(value)
    except InvalidRequirement as exc:
        raise ValueError(
            f"{grammar.shown(value)} is not a pip requirement (e.g. 'fastapi==0.115.0')"
        ) from exc
    if requirement.url and grammar.has_credentials(requirement.url):
        raise grammar.refuse(
            f"{grammar.shown(value)} carries credentials in its URL",
            "they would stay in the image history; use a netrc build secret (secrets: id: netrc)",
        )
    return value


def _quoted_mode(value: Any) -> Any:
    """YAML reads ``mode: 644`` as decimal 644 and ``0644`` as octal 420: neither is reliable."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(
            f'file modes must be quoted: write "0{value:o}" or "0{value}", not {value}'
        )
    return value


def _number_to_str(value: Any) -> Any:
    """``version: 1.0`` reads as a float; give the semver check the text the user typed."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


SemVer = Annotated[str, BeforeValidator(_number_to_str), AfterValidator(_check_semver)]
FileMode = Annotated[str, BeforeValidator(_quoted_mode), AfterValidator(_check_mode)]
PipRequirement = Annotated[Text, AfterValidator(_check_requirement)]


def _scalar_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _text_values(value: Any) -> Any:
    """``PORT: 8080`` in YAML is an int; environment and labels are text, so take it as text."""
    return {k: _scalar_text(v) for k, v in value.items()} if isinstance(value, dict) else value


Port = Annotated[str, BeforeValidator(_number_to_str), AfterValidator(grammar.port)]
EnvMap = Annotated[dict[EnvName, ConfigValue], BeforeValidator(_text_values)]
BuildArgMap = Annotated[dict[EnvName, Text], BeforeValidator(_text_values)]
LabelMap = Annotated[dict[LabelKey, ConfigValue], BeforeValidator(_text_values)]


def _distinct_platforms(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise grammar.refuse(
            f"{value!r} names a platform twice",
            "list each platform once (linux/amd64, linux/arm64)",
        )
    return value


PlatformList = Annotated[list[Platform], Field(min_length=1), AfterValidator(_distinct_platforms)]


# --------------------------------------------------------------------------- project file


class Registry(Frozen):
    """A registry images are pushed to. Credentials come from env vars, never from the file."""

    url: RegistryUrl
    namespace: RegistryNamespace | None = None
    # in CI, the url and the namespace may come from these variables: a variable that is set
    # and not empty replaces the literal above (so one file serves a laptop and a GitLab job);
    # its value must fit the same grammar (spec/loader.py reads it; only names that cannot be
    # a secret's are accepted)
    url_env: RegistryUrlEnv | None = None
    namespace_env: RegistryNamespaceEnv | None = None
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    tls_verify: bool = True


class Retention(Frozen):
    """``retention:`` of an environment: what ``imagefactory gc`` may delete from its
    registries (and what the rendered ECR lifecycle policy may expire). A digest is deleted
    only when no rule keeps it: these two, and the ones no setting turns off (an alias of any
    environment names it, a GitOps overlay pins it, it is the parent of a kept digest, the
    catalog's current build, a yank or revocation still under ``hold_days``)."""

    keep_versions: int = Field(default=10, ge=1)  # the highest N versions of each MAJOR.MINOR line
    keep_days: int = Field(default=30, ge=0)  # everything younger than this
    hold_days: int = Field(default=365, ge=0)  # a yanked or revoked digest: kept this long after
    delete: bool = True  # false: nothing is ever deleted here (gc lists only)


#: The first environment's retention when it sets none; later ones delete nothing without one.
FIRST_ENVIRONMENT_RETENTION = Retention()


class Environment(Frozen):
    """One stage of the promotion chain (dev → preprod → prod)."""

    name: Identifier
    registries: list[Identifier] = Field(min_length=1)
    approval: bool = False  # a promotion into it needs an approver (in CI: its protected job)
    four_eyes: bool = False  # the approver must not be whoever pushed the digest
    # GitLab protects each image's own environment <name>/<image slug>: the generated pipeline's
    # jobs into this approval environment then deploy there, and only those approve. False: they
    # deploy to <name> itself, the one protected environment (a per-image name nobody protected
    # would let any developer approve)
    protected_per_image: bool = False
    # None: the first environment keeps FIRST_ENVIRONMENT_RETENTION, the others delete nothing
    retention: Retention | None = None


class ReleaseSettings(Frozen):
    """``release:`` in imagefactory.yaml: what the release gate demands."""

    require_tests: bool = True  # push only a digest with a passing test record (--force: audited)


class SigningSettings(Frozen):
    """``signing:``: the key every digest is signed and attested with (docs/supply-chain.md)."""

    public_key: ProjectPath  # the PEM public key, in the catalog repository (cosign.pub)
    # the private key: the PEM text itself, or the path of a file holding it (a GitLab CI
    # variable of type File); never in the repository
    private_key_env: EnvName = "IMAGEFACTORY_SIGNING_KEY"
    password_env: EnvName = "IMAGEFACTORY_SIGNING_KEY_PASSWORD"  # of an encrypted private key
    required: bool = True  # build, test, push and promote refuse to go on without the key
    # the builder ids verify trusts: one equal to an entry, or starting with an entry that ends
    # in "/" or ":"; empty: any builder that signed with the key
    builders: list[NonEmpty] = Field(default_factory=list)


Severity = Literal["critical", "high", "medium", "low", "unknown"]
#: How long a scan exception may be granted for, from its approval.
MAX_EXCEPTION_DAYS = 90


class ScanException(Frozen):
    """One accepted finding: which, where, why, who said so, until when."""

    id: NonEmpty  # the advisory: CVE-…, GHSA-…, DSA-…
    purl: NonEmpty | None = None  # a glob over the package URL; None: any package
    images: list[NonEmpty] = Field(default_factory=list)  # globs over image refs; empty: all
    reason: NonEmpty
    approver: NonEmpty
    approved: date
    expires: date
    ticket: Text | None = None

    @model_validator(mode="after")
    def _bounded(self) -> ScanException:
        if self.expires < self.approved:
            raise ValueError("expires is before approved")
        if (self.expires - self.approved).days > MAX_EXCEPTION_DAYS:
            raise ValueError(
                f"an exception lasts at most {MAX_EXCEPTION_DAYS} days from its approval "
                "(approve it again when it runs out)"
            )
        return self


class ScanSettings(Frozen):
    """``scan:``: the vulnerability gate's policy (docs/supply-chain.md)."""

    threshold: Severity = "high"  # a finding at this severity or above fails the gate
    thresholds: dict[Identifier, Severity] = Field(default_factory=dict)  # per environment
    ignore_unfixed: bool = False  # findings without a fixed version do not fail the gate
    max_db_age_days: int = Field(default=5, ge=0)  # a report from an older scanner DB fails
    require: list[Identifier] = Field(default_factory=list)  # environments that need a pass
    exceptions: list[ScanException] = Field(default_factory=list)
    scanner: Literal["trivy", "grype"] = "trivy"  # what the pipeline's scan job runs
    scanner_image: NonEmpty | None = None  # its image (a mirror of aquasec/trivy, anchore/grype)


class CiSettings(Frozen):
    """``ci:``: what ``imagefactory ci generate`` writes beyond the catalog's images."""

    #: the catalog image the jobs run in (docs/gitlab-ci.md, "The job image"): its version in
    #: the first environment is the pipeline's default job image, and the pipeline, which runs
    #: in it, does not build it
    job_image: ImageRef | None = None


class Proxy(Frozen):
    http: Url | None = None
    https: Url | None = None
    no_proxy: Text | None = None


class Mirrors(Frozen):
    debian: Url = "http://deb.debian.org/debian"
    debian_security: Url = "http://deb.debian.org/debian-security"
    pypi: Url | None = None


class BuildSettings(Frozen):
    """How images are built on every host: trust, proxy, package mirrors, reproducibility."""

    ca_bundle: NonEmpty | None = None
    proxy: Proxy = Field(default_factory=Proxy)
    mirrors: Mirrors = Field(default_factory=Mirrors)
    source_date_epoch: int = Field(default=1700000000, ge=0)


class ProjectSpec(Frozen):
    """``imagefactory.yaml``: what the whole catalog shares."""

    project: Identifier
    catalog: ProjectPath = "images"
    state: ProjectPath = ".imagefactory/state.json"
    registries: dict[Identifier, Registry] = Field(default_factory=dict)
    environments: list[Environment] = Field(default_factory=list)
    build: BuildSettings = Field(default_factory=BuildSettings)
    release: ReleaseSettings = Field(default_factory=ReleaseSettings)
    signing: SigningSettings | None = None  # None: nothing is signed, the gate reads state
    scan: ScanSettings = Field(default_factory=ScanSettings)
    ci: CiSettings = Field(default_factory=CiSettings)
    defaults: ImageLayer = Field(default_factory=lambda: ImageLayer())

    @field_validator("defaults")
    @classmethod
    def _defaults_have_no_parent(cls, value: ImageLayer) -> ImageLayer:
        if value.parent_set():
            raise ValueError("defaults cannot set from/bootstrap: each image names its own parent")
        if value.files or value.wheels:
            raise ValueError(
                "defaults cannot set files or wheels: they come from each image's own folder"
            )
        return value


# --------------------------------------------------------------------------- image file


class Bootstrap(Frozen):
    """A root filesystem made from Debian packages with mmdebstrap: a parent nobody can taint."""

    suite: Identifier = "bookworm"
    variant: Literal["essential", "apt", "required", "minbase", "important", "standard"] = "minbase"
    packages: list[DebianPackage] = Field(default_factory=list)
    components: list[Identifier] = Field(default_factory=lambda: ["main"])


class FileCopy(Frozen):
    """Copy ``src`` (inside the image folder) to ``dest`` in the image."""

    src: SourcePath
    dest: AbsolutePath
    mode: FileMode | None = None
    owner: Account = "root:root"


class UserAccount(Frozen):
    """A system account the image creates."""

    name: PosixName
    uid: int = Field(ge=1, le=2**31 - 2)
    gid: int | None = Field(default=None, ge=1, le=2**31 - 2)
    home: AbsolutePath | None = None
    shell: AbsolutePath = "/usr/sbin/nologin"


class BuildSecret(Frozen):
    """A build-time secret, by id only. Its value comes from an env var or a file at build time."""

    id: Identifier
    env: EnvName | None = None
    file: NonEmpty | None = None
    required: bool = True
    as_env: EnvName | None = Field(
        default=None, description="exported as this variable during install steps only"
    )

    @model_validator(mode="after")
    def _one_source(self) -> BuildSecret:
        if (self.env is None) == (self.file is None):
            raise ValueError("a build secret names exactly one source: env (a variable) or file")
        return self


class Healthcheck(Frozen):
    cmd: list[Annotated[MultiLine, StringConstraints(min_length=1)]] = Field(min_length=1)
    interval: Duration = "30s"
    timeout: Duration = "5s"
    start_period: Duration = "10s"
    retries: int = Field(default=3, ge=1, le=100)


class Deploy(Frozen):
    """``deploy:`` of an application image: how its Kubernetes workload runs (not part of the
    content hash: it changes no byte of the image)."""

    # the only paths the process writes (each an emptyDir; /tmp always is one): the root
    # filesystem is read-only in the Deployment and in the image's service tests
    writable_paths: list[AbsolutePath] = Field(default_factory=list)
    # a batch image (no ports) runs as a Job; with a schedule, as a CronJob
    schedule: CronSchedule | None = None

    def mounted_paths(self) -> list[str]:
        """Where the workload (and an application's test container) may write: /tmp, then
        each of ``writable_paths`` once."""
        return ["/tmp", *dict.fromkeys(p for p in self.writable_paths if p != "/tmp")]


# --- declarative tests (schema here; the test engine runs them)


class PackageChecks(Frozen):
    installed: list[NonEmpty] = Field(default_factory=list)
    absent: list[NonEmpty] = Field(default_factory=list)


class DebianPackageChecks(PackageChecks):
    installed: list[DebianPackageName] = Field(default_factory=list)
    absent: list[DebianPackageName] = Field(default_factory=list)


class FileCheck(Frozen):
    path: NonEmpty
    exists: bool = True
    type: Literal["file", "directory", "symlink"] | None = None
    mode: FileMode | None = None
    owner: NonEmpty | None = None
    group: NonEmpty | None = None
    contains: Regex | None = Field(default=None, description="a regular expression")
    executable: Literal["owner", "group", "other"] | bool | None = Field(
        default=None,
        description="true: an execute bit is set; owner, group or other: that one is; false: none",
    )


class UserCheck(Frozen):
    name: PosixName
    uid: int | None = None
    gid: int | None = None
    home: Text | None = None
    shell: Text | None = None


class CommandCheck(Frozen):
    name: NonEmpty
    run: list[Annotated[MultiLine, StringConstraints(min_length=1)]] = Field(min_length=1)
    exit_code: int = 0
    stdout: Regex | None = None
    stderr: Regex | None = None
    timeout: Duration = "30s"


class MetadataCheck(Frozen):
    env: EnvMap = Field(default_factory=dict)
    labels: dict[NonEmpty, Regex] = Field(default_factory=dict, description="values are regexes")
    entrypoint: ExecForm | None = None
    cmd: ExecForm | None = None
    workdir: Text | None = None
    user: Text | None = None
    exposed_ports: list[Port] = Field(default_factory=list)
    unexposed_ports: list[Port] = Field(default_factory=list)


class HttpProbe(Frozen):
    path: NonEmpty = "/"
    status: int = Field(default=200, ge=100, le=599)


class ServiceCheck(Frozen):
    name: NonEmpty
    port: int = Field(ge=1, le=65535)
    http: HttpProbe | None = None
    timeout: Duration = "30s"


class SizeBudget(Frozen):
    max_mb: float | None = Field(default=None, gt=0)
    max_growth_percent: float | None = Field(default=None, ge=0)


class ImageTests(Frozen):
    packages: DebianPackageChecks = Field(default_factory=DebianPackageChecks)
    pip: PackageChecks = Field(default_factory=PackageChecks)
    files: list[FileCheck] = Field(default_factory=list)
    users: list[UserCheck] = Field(default_factory=list)
    commands: list[CommandCheck] = Field(default_factory=list)
    metadata: MetadataCheck = Field(default_factory=MetadataCheck)
    services: list[ServiceCheck] = Field(default_factory=list)
    size: SizeBudget = Field(default_factory=SizeBudget)
    non_root: bool = False


def _switch(value: Any) -> Any:
    """``distroless: true`` is ``distroless: {}``; ``false`` is none."""
    if value is True:
        return {}
    return None if value is False else value


class Distroless(Frozen):
    """``distroless:``: the image ships as a shell-less final stage (a ``FROM scratch`` stage
    that copies only the runtime closure out of the image as built: docs/images.md)."""

    # Debian packages kept (with their dependencies) beyond what the closure finds on its own
    # (the Python runtime, the shared libraries of the venv and the files, CA certificates,
    # tzdata, base-files)
    keep_packages: list[DebianPackageName] = Field(default_factory=list)


class ImageLayer(Frozen):
    """Everything that shapes an image's bytes. Project defaults and variants are layers too."""

    parent: NonEmpty | None = Field(default=None, alias="from")
    bootstrap: Bootstrap | None = None
    packages: list[DebianPackage] = Field(default_factory=list)
    pip: list[PipRequirement] = Field(default_factory=list)
    venv: AbsolutePath = "/opt/venv"  # when no layer sets it: the catalog parent's (inheritance.py)
    files: list[FileCopy] = Field(default_factory=list)
    #: installed into the venv after ``pip:``, without their dependencies (``pip:`` lists
    #: them, so a lock pins them with hashes); ``pip check`` then proves nothing is missing
    wheels: list[WheelPattern] = Field(default_factory=list)
    create_users: list[UserAccount] = Field(default_factory=list)
    env: EnvMap = Field(default_factory=dict)
    user: Account | None = None  # None: the catalog parent's (inheritance.py)
    workdir: AbsolutePath | None = None
    ports: list[Port] = Field(default_factory=list)
    entrypoint: ExecForm | None = None
    cmd: ExecForm | None = None
    labels: LabelMap = Field(default_factory=dict)
    build_args: BuildArgMap = Field(default_factory=dict)
    secrets: list[BuildSecret] = Field(default_factory=list)
    healthcheck: Healthcheck | None = None
    playbooks: list[NonEmpty] = Field(default_factory=list)
    targets: list[Literal["docker", "packer"]] = Field(default_factory=list)
    distroless: Annotated[Distroless | None, BeforeValidator(_switch)] = None
    deploy: Deploy = Field(default_factory=Deploy)
    tests: ImageTests = Field(default_factory=ImageTests)
    #: None: the catalog parent's (inheritance.py); a chain's first image: the host's only.
    platforms: PlatformList | None = None

    def parent_set(self) -> bool:
        return self.parent is not None or self.bootstrap is not None


class ImageDocument(ImageLayer):
    """One ``image.yaml`` as written: a layer plus identity and a variant matrix."""

    name: ImageName
    version: SemVer
    description: Text = ""
    variants: dict[Identifier, dict[VariantValue, ImageLayer]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_parent(self) -> ImageDocument:
        overlays = [o for axis in self.variants.values() for o in axis.values()]
        if any(o.bootstrap is not None for o in overlays):
            raise ValueError("variants may change 'from' but not 'bootstrap'")
        if self.bootstrap is not None and (
            self.parent is not None or any(o.parent is not None for o in overlays)
        ):
            raise ValueError("set either 'from' or 'bootstrap', not both")
        every_variant_has_parent = any(
            values and all(o.parent is not None for o in values.values())
            for values in self.variants.values()
        )
        if self.bootstrap is None and self.parent is None and not every_variant_has_parent:
            raise ValueError(
                "an image needs a parent: 'from' (a catalog image or an external reference "
                "pinned by digest) or 'bootstrap' (a rootfs from Debian packages)"
            )
        for axis, values in self.variants.items():
            if not values:
                raise ValueError(f"variant axis '{axis}' lists no values")
        return self


class ImageSpec(ImageLayer):
    """One concrete image: a document with its variant chosen and project defaults merged, and
    ``venv`` and ``user`` inherited from its catalog parent where it sets none (inheritance.py)."""

    name: ImageName
    version: SemVer
    description: Text = ""
    variant: dict[Identifier, VariantValue] = Field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``name`` or ``name:variant`` — how the CLI, graph and state name this image."""
        return f"{self.name}:{'-'.join(self.variant.values())}" if self.variant else self.name


ProjectSpec.model_rebuild()
