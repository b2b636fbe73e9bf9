"""The catalog's GitLab CI pipeline: pure data from the catalog, then deterministic YAML text.

:func:`pipeline` turns a catalog into the pipeline as ordered Python data; :func:`render_pipeline`
writes it as YAML. The same catalog and options always give the same bytes: jobs in a fixed
order (stage, then the catalog's build order), every path relative to the repository, no
timestamps, and no YAML anchors, ``extends`` or ``include``: each job is complete on its own.

The jobs call the commands a developer runs (``imagefactory build/test/push/promote IMAGE``):

* ``catalog:validate`` (stage validate) runs ``imagefactory validate`` (and, in a catalog that
  has an ``image.lock``, ``imagefactory lock --all --check``). It has no rules, so a pipeline in
  which no image changed still holds one valid job and is never empty.
* ``catalog:outdated`` and ``catalog:refresh`` run only in scheduled pipelines
  (``$CI_PIPELINE_SOURCE == "schedule"``): ``imagefactory outdated`` reports the pending Debian
  updates of every image the build registry holds for the catalog's content, then
  ``imagefactory build --refresh --all --merge-request`` records them in refresh.yaml, builds
  exactly the images they rebuild and proposes the file in one merge request
  (:mod:`imagefactory.gitops.refresh_mr`); that merge request's pipeline tests them (their
  builds reused by content tag), and merged, the default branch's pushes them. Every other
  job's first rule keeps it out of a scheduled pipeline, which has no push for
  ``rules:changes`` to compare with (GitLab then takes every change as true and would rebuild
  and release everything).
* ``build:<ref>`` and ``test:<ref>`` (one each per concrete image). A build job needs the build
  job of the image's catalog parent (``optional``: the parent is only in the pipeline when it
  changed too) so an image waits for its base job, not for every build.
* ``push:<ref>`` puts the tested digest into the first environment (dev) automatically, on the
  default branch and on tags; ``promote:<env>:<ref>`` copies it one environment further, as a
  manual job (or automatic for the environments named in ``auto``). An environment with
  ``approval: true`` is always manual: the protected environment's manual job is the approval.
  Each image deploys to GitLab environments of its own, ``<env>/<image slug>``
  (``ci_env.image_environment``), in resource groups of its own (``push-<slug>``,
  ``promote-<env>-<slug>``): two promotions of one image into prod never overlap, and with
  "prevent outdated deployment jobs" a newer pipeline of image B never makes an older
  pipeline's pending prod promotion of image A outdated. An environment with ``approval`` keeps
  the one environment ``<env>`` unless it sets ``protected_per_image`` (the team protected each
  ``<env>/<slug>`` in GitLab, which has no wildcard protection): the gate takes a job's
  environment as the approval, so a per-image name nobody protected must not be one.
* The push and promote jobs keep their artifacts ``RELEASE_ARTIFACTS_EXPIRE_IN``: the next
  environment's manual job takes the state file from them, and GitLab refuses to run a job
  whose needed artifacts expired (its instance default is 30 days).

State travels along each image's own chain of jobs: build → test → push → promote, each job
taking the artifacts of exactly one job (the one before it), so no two state files ever meet in
one job. A build job takes no state at all: ``imagefactory build`` finds the image's ancestors
in the build registry by their content tags (one registry lookup each) and records them itself.
Every artifact lies in imagefactory's work folder (the state file, the audit log, the JUnit
report), which a release leaves out when it asks whether the checkout is clean: the push job
gets all of the test job's artifacts, and one outside that folder (an untracked
``junit-*.xml`` at the root) would make the CI push refuse its checkout as uncommitted.

* ``scan:<ref>`` (stage ``scan``, only when ``scan.scanner_image`` is set) runs in that image,
  after the image's test job (whose state names the digest): ``imagefactory gate --reference``
  gives the reference to scan, trivy or grype (``scan.scanner``) writes its JSON report, and
  ``imagefactory gate`` judges it (and attests the verdict when signing is configured). The
  scanner image must hold imagefactory as well (docs/supply-chain.md); the scanner logs in to
  the build registry with its login variables.

* ``ci.job_image`` (the catalog's tools image) is the jobs' default ``IMAGEFACTORY_CI_IMAGE``
  (top-level ``variables``: :func:`default_job_image`) and has no jobs of its own: a pipeline
  cannot build the image it runs in (its wheel is built outside: docs/gitlab-ci.md, "The job
  image"), so the refresh job leaves it out too (``--exclude``).

``rules:changes`` per image: its folder and its catalog ancestors' folders, the Ansible
playbooks they apply, the standard Dockerfile templates when they live in the repository, a CA
bundle kept in the repository, and the project file. Branch pipelines other than the default
branch compare with the default branch (``compare_to``); the default branch compares with the
previous push (comparing it with itself would find nothing); tag pipelines build everything.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from imagefactory.ci_env import image_environment
from imagefactory.errors import UserError
from imagefactory.project.naming import build_registry, repository, variant_suffix
from imagefactory.render.blockyaml import BlockYaml
from imagefactory.render.gitlab_rules import (
    RepoPlace,
    change_paths,
    image_rules,
    in_repo,
    release_rules,
    schedule_rules,
)
from imagefactory.spec.catalog import Catalog, CatalogImage, ref_slug
from imagefactory.spec.gitops import GITOPS_FILE, read_settings
from imagefactory.spec.models import Environment
from imagefactory.spec.platforms import PLATFORMS

#: How build and test jobs reach an engine: a Docker-in-Docker service (``dind``), the same
#: service whose daemon, and so its BuildKit, runs as an unprivileged user (``rootless``), or
#: whatever the runner has (``host``: a shell runner, or gitlab-ci-local in the integration
#: test; no job image, no service). Builds and tests both go through the Docker API, since tests
#: start containers; a standalone BuildKit daemon cannot.
BUILDERS = ("dind", "rootless", "host")
REFUSED_BUILDERS = {
    "kaniko": "kaniko is archived and not supported",
    "buildkit": (
        "a standalone BuildKit daemon cannot start the containers image tests need; "
        "'rootless' runs BuildKit inside a rootless Docker engine"
    ),
}

STAGES = ("validate", "build", "test", "push", "promote")
#: A runner tag ``--runner-tag`` accepts (GitLab allows more; a catalog needs no more).
RUNNER_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: The stage of the vulnerability scan jobs, after test (only with scan.scanner_image).
SCAN_STAGE = "scan"
VALIDATE_JOB = "catalog:validate"
#: Scheduled pipelines only: every built image's Debian packages against the mirror now.
OUTDATED_JOB = "catalog:outdated"
#: Scheduled pipelines only, after it: refresh.yaml recorded, built and proposed.
REFRESH_JOB = "catalog:refresh"

#: The job image: imagefactory with the Docker CLI, skopeo and mmdebstrap; set it as a CI/CD
#: variable (as the registry credentials are), the pipeline does not name one.
JOB_IMAGE = "$IMAGEFACTORY_CI_IMAGE"
#: The engine service of each builder; 27 still serves API 1.41, which Debian 12's CLI speaks.
#: The default of ``ENGINE_IMAGE_VARIABLE``, which a CI/CD variable overrides (e.g. to pin the
#: image by digest: ``docker:27-dind@sha256:…``).
ENGINE_IMAGES = {"dind": "docker:27-dind", "rootless": "docker:27-dind-rootless"}
ENGINE_IMAGE_VARIABLE = "IMAGEFACTORY_DIND_IMAGE"
#: How long push and promote jobs keep their artifacts: the next environment's manual job needs
#: them, however old its pipeline is (an expired dependency fails the job).
RELEASE_ARTIFACTS_EXPIRE_IN = "1 year"
DIND_VARIABLES = {
    "DOCKER_HOST": "tcp://docker:2376",
    "DOCKER_TLS_CERTDIR": "/certs",
    "DOCKER_CERT_PATH": "/certs/client",
    "DOCKER_TLS_VERIFY": "1",
}


@dataclass(frozen=True)
class PipelineOptions:
    """What the pipeline is generated for, besides the catalog.

    ``prefix``: the catalog's folder inside the git repository ("" when the catalog is the
    repository root); jobs then run ``imagefactory -C <prefix>`` and paths carry the prefix.
    ``templates``: the standard templates' folder inside the repository, or None when they
    ship with the installed imagefactory (then a template change arrives with a new job image).
    ``command``: how the generator was called, for the header. ``runner_tags``: (platform,
    runner tag) pairs: the build jobs of that platform run on runners with those tags (native
    arm64 runners, say); a platform without runs on the pipeline's runners, emulated.
    """

    builder: str = "dind"
    auto: tuple[str, ...] = ()
    runner_tags: tuple[tuple[str, str], ...] = ()
    prefix: str = ""
    templates: str | None = None
    command: str = "imagefactory ci generate"


def check_options(catalog: Catalog, options: PipelineOptions) -> None:
    """Refuse what cannot make a sound pipeline, before anything is rendered or written."""
    if options.builder not in BUILDERS:
        refused = REFUSED_BUILDERS.get(options.builder)
        raise UserError(
            f"unknown builder '{options.builder}'",
            hint=f"{refused + '; ' if refused else ''}choose one of: {', '.join(BUILDERS)}",
        )
    build_registry(catalog.project)  # no environments: builds would have no registry
    for platform, tag in options.runner_tags:
        if platform not in PLATFORMS:
            raise UserError(
                f"--runner-tag {platform}={tag}: '{platform}' is not a platform",
                hint=f"platforms: {', '.join(PLATFORMS)}",
            )
        if not RUNNER_TAG.fullmatch(tag):
            raise UserError(
                f"--runner-tag {platform}={tag}: '{tag}' is not a runner tag",
                hint="letters, digits and . _ - (at most 64), e.g. arm64",
            )
    environments = catalog.project.environments
    names = [env.name for env in environments]
    for name in options.auto:
        if name not in names:
            raise UserError(
                f"no environment '{name}'",
                hint=f"environments in promotion order: {' → '.join(names)}",
            )
        env = environments[names.index(name)]
        if name == names[0]:
            raise UserError(
                f"{name} is the first environment: its push job is automatic already",
                hint="name an environment it is promoted to",
            )
        if env.approval:
            raise UserError(
                f"promotion to {name} needs an approval, so its job is always manual",
                hint="the protected environment's manual job is the approval",
            )


def pipeline(catalog: Catalog, options: PipelineOptions) -> dict[str, Any]:
    """The pipeline as ordered data: ``stages``, then every job (see the module docstring)."""
    check_options(catalog, options)
    job_image = catalog.project.ci.job_image
    images = [i for i in catalog.in_build_order() if i.ref != job_image]  # it runs the jobs
    environments = catalog.project.environments
    jobs: dict[str, Any] = {"stages": stages(catalog)}
    default = default_job_image(catalog)
    if default is not None and options.builder != "host":
        jobs["variables"] = {JOB_IMAGE.removeprefix("$"): default}
    # A catalog that locks its packages (any image.lock) keeps every lock current: the check
    # reads the files only (no engine, no mirror).
    locks = [_command(options, "lock", "--all", "--check")] if catalog.locks else []
    jobs[VALIDATE_JOB] = _job(
        "validate", options, engine=False, script=[_command(options, "validate"), *locks]
    )
    jobs[OUTDATED_JOB] = _job(
        "validate",
        options,
        engine=True,
        needs=[_need(VALIDATE_JOB, artifacts=False)],
        rules=schedule_rules(),
        script=[_command(options, "outdated")],
    )
    jobs[REFRESH_JOB] = _job(
        "build",
        options,
        engine=True,
        needs=[_need(OUTDATED_JOB, artifacts=False)],
        rules=schedule_rules(),
        script=[
            _command(
                options,
                "build",
                "--refresh",
                "--all",
                *(["--exclude", job_image] if job_image else []),  # its jobs build no wheel
                "--merge-request",
            )
        ],
        interruptible=True,
    )
    paths = change_paths(catalog, _place(options))
    for image in images:
        needs = [_need(VALIDATE_JOB, artifacts=False)]
        if image.parent_ref is not None:
            needs.append(_need(f"build:{image.parent_ref}", artifacts=False, optional=True))
        for platform in image.spec.platforms or []:
            job = _platform_job(catalog, options, image, platform, paths[image.ref])
            jobs[f"build:{image.ref}:{platform}"] = job
            needs.append(_need(f"build:{image.ref}:{platform}", artifacts=False))
        jobs[f"build:{image.ref}"] = _job(
            "build",
            options,
            engine=True,
            needs=needs,
            rules=image_rules(paths[image.ref]),
            script=[_command(options, "build", image.ref)],
            artifacts={"paths": [_state_path(catalog, options)]},
            interruptible=True,
        )
    for image in images:
        junit = _work_path(catalog, options, f"junit-{ref_slug(image.ref)}.xml")
        jobs[f"test:{image.ref}"] = _job(
            "test",
            options,
            engine=True,
            needs=[_need(f"build:{image.ref}", artifacts=True)],
            rules=image_rules(paths[image.ref]),
            script=[_command(options, "test", image.ref, "--junit", junit)],
            artifacts={
                "when": "always",
                "paths": [_state_path(catalog, options), junit],
                "reports": {"junit": junit},
            },
            interruptible=True,
        )
    if catalog.project.scan.scanner_image is not None:
        for image in images:
            jobs[f"scan:{image.ref}"] = _scan_job(catalog, options, image.ref, paths[image.ref])
    release_paths = [_state_path(catalog, options), _work_path(catalog, options, "audit.jsonl")]
    first = environments[0]  # check_options: there is one
    for image in images:
        needs = [_need(f"test:{image.ref}", artifacts=True)]
        if image.parent_ref is not None:
            needs.append(_need(f"push:{image.parent_ref}", artifacts=False, optional=True))
        jobs[f"push:{image.ref}"] = _job(
            "push",
            options,
            engine=False,
            needs=needs,
            rules=release_rules(paths[image.ref], manual=False),
            script=[_command(options, "push", image.ref)],
            artifacts=_release_artifacts(release_paths),
            environment={
                "name": _environment_name(first, image.ref),
                "deployment_tier": _tier(0, len(environments)),
            },
            resource_group=f"push-{ref_slug(image.ref)}",
            interruptible=False,
        )
    for position, env in enumerate(environments[1:], start=1):
        manual = env.name not in options.auto
        before = environments[position - 1].name
        for image in images:
            previous = f"push:{image.ref}" if position == 1 else f"promote:{before}:{image.ref}"
            jobs[f"promote:{env.name}:{image.ref}"] = _job(
                "promote",
                options,
                engine=False,
                needs=[_need(previous, artifacts=True)],
                rules=release_rules(paths[image.ref], manual=manual),
                script=[_command(options, "promote", image.ref, "--to", env.name)],
                artifacts=_release_artifacts(release_paths),
                environment={
                    "name": _environment_name(env, image.ref),
                    "deployment_tier": _tier(position, len(environments)),
                },
                resource_group=f"promote-{env.name}-{ref_slug(image.ref)}",
                interruptible=False,
            )
    return jobs


def default_job_image(catalog: Catalog) -> str | None:
    """``ci.job_image``'s version tag in the first environment (where its push lands), its
    registry and namespace as the jobs see them: a ``url_env`` / ``namespace_env`` variable
    where the project names one (the repository's pipeline passes them), else the literal. A
    CI/CD variable of the same name replaces it (e.g. the image pinned by digest)."""
    ref = catalog.project.ci.job_image
    if ref is None:
        return None
    image = catalog.images[ref]  # the loader checked the name
    registry = build_registry(catalog.project)
    as_seen = registry.model_copy(
        update={
            "url": f"${{{registry.url_env}}}" if registry.url_env else registry.url,
            "namespace": f"${{{registry.namespace_env}}}"
            if registry.namespace_env
            else registry.namespace,
        }
    )
    tag = f"{image.spec.version}{variant_suffix(image.spec.variant)}"
    return f"{repository(as_seen, image.spec.name)}:{tag}"


def stages(catalog: Catalog) -> list[str]:
    """The pipeline's stages: ``STAGES``, with ``scan`` after ``test`` when the project names a
    scanner image."""
    if catalog.project.scan.scanner_image is None:
        return list(STAGES)
    at = STAGES.index("test") + 1
    return [*STAGES[:at], SCAN_STAGE, *STAGES[at:]]


def render_pipeline(catalog: Catalog, options: PipelineOptions) -> str:
    """The pipeline as YAML text: a header comment, then one block per top-level key."""
    data = pipeline(catalog, options)
    blocks = [_header(catalog, options)]
    blocks += BlockYaml(_dump).each(data)  # PyYAML's bytes; each distinct scalar written once
    return "\n".join(blocks)


def job_names(text: str) -> list[str]:
    """The jobs of a rendered pipeline, in file order: its top-level keys, each read from its own
    line (a rendered pipeline starts them at column 0 and indents everything else), so a
    pipeline of megabytes is not parsed whole."""
    keys = [
        key
        for line in text.splitlines()
        if line[:1] not in ("", " ", "#", "-")
        for key in yaml.load(line, Loader=_LOADER)
    ]
    return [key for key in keys if key not in ("stages", "variables")]


# --------------------------------------------------------------------------- jobs


def _job(
    stage: str,
    options: PipelineOptions,
    *,
    engine: bool,
    script: list[str],
    needs: list[dict[str, Any]] | None = None,
    rules: list[dict[str, Any]] | None = None,
    artifacts: dict[str, Any] | None = None,
    environment: dict[str, str] | None = None,
    resource_group: str | None = None,
    interruptible: bool | None = None,
) -> dict[str, Any]:
    job: dict[str, Any] = {"stage": stage}
    if options.builder != "host":
        job["image"] = JOB_IMAGE
    if engine:
        job.update(_engine(options.builder))
    if needs is not None:
        job["needs"] = needs
    if rules is not None:
        job["rules"] = rules
    job["script"] = script
    if artifacts is not None:
        job["artifacts"] = artifacts
    if environment is not None:
        job["environment"] = environment
    if resource_group is not None:
        job["resource_group"] = resource_group
    if interruptible is not None:
        job["interruptible"] = interruptible
    return job


def _platform_job(
    catalog: Catalog,
    options: PipelineOptions,
    image: CatalogImage,
    platform: str,
    paths: list[str],
) -> dict[str, Any]:
    """The build job of one platform of an image built per platform (``build --platform``:
    that platform's image, no index), after its parent's job of the same platform; the image's
    ``build:`` job then assembles the index from what these pushed."""
    needs = [_need(VALIDATE_JOB, artifacts=False)]
    parent = catalog.images.get(image.parent_ref) if image.parent_ref is not None else None
    if parent is not None:
        upstream = (
            f"build:{parent.ref}:{platform}" if parent.spec.platforms else f"build:{parent.ref}"
        )
        needs.append(_need(upstream, artifacts=False, optional=True))
    job = _job(
        "build",
        options,
        engine=True,
        needs=needs,
        rules=image_rules(paths),
        script=[_command(options, "build", image.ref, "--platform", platform)],
        interruptible=True,
    )
    tags = [tag for named, tag in options.runner_tags if named == platform]
    return {**job, "tags": tags} if tags else job


def _environment_name(env: Environment, ref: str) -> str:
    """The GitLab environment of ``ref``'s deployments into ``env``: its own (``<env>/<slug>``),
    except in an approval environment whose per-image environments GitLab does not protect
    (``protected_per_image`` false): there ``<env>`` itself, the one protected environment,
    whose jobs alone approve."""
    if env.approval and not env.protected_per_image:
        return env.name
    return image_environment(env.name, ref_slug(ref))


def _scan_job(
    catalog: Catalog, options: PipelineOptions, ref: str, paths: list[str]
) -> dict[str, Any]:
    """``scan:<ref>``: the scanner's JSON report of the tested digest, judged by the gate."""
    scan = catalog.project.scan
    slug = ref_slug(ref)
    report = _work_path(catalog, options, f"scan-{slug}.json")
    gate = ["gate", ref, "--report", report]
    script = [f'REF="$({_command(options, "gate", ref, "--reference")})"']
    artifacts = [report]
    if scan.scanner == "trivy":
        info = _work_path(catalog, options, f"scanner-{slug}.json")
        script += [
            f"trivy version --format json > {shlex.quote(info)}",
            f'trivy image --format json --output {shlex.quote(report)} "$REF"',
        ]
        gate += ["--scanner-info", info]
        artifacts.append(info)
    else:
        script.append(f'grype "registry:$REF" -o json --file {shlex.quote(report)}')
    script.append(_command(options, *gate))
    job = _job(
        SCAN_STAGE,
        options,
        engine=False,
        needs=[_need(f"test:{ref}", artifacts=True)],
        rules=image_rules(paths),
        script=script,
        artifacts={"when": "always", "paths": artifacts},
        interruptible=True,
    )
    if "image" in job:
        job["image"] = {"name": scan.scanner_image, "entrypoint": [""]}
    login = _scanner_login(catalog)
    if login:
        job["variables"] = login
    return job


def _scanner_login(catalog: Catalog) -> dict[str, str]:
    """The variables that log the scanner in to the build registry (its login variables'
    values, expanded by GitLab), and let it speak plain HTTP where the registry does."""
    registry = build_registry(catalog.project)
    scanner = catalog.project.scan.scanner
    variables: dict[str, str] = {}
    if registry.username_env and registry.password_env:
        prefix = "TRIVY_" if scanner == "trivy" else "GRYPE_REGISTRY_AUTH_"
        if scanner == "grype":
            variables["GRYPE_REGISTRY_AUTH_AUTHORITY"] = registry.url
        variables[f"{prefix}USERNAME"] = f"${registry.username_env}"
        variables[f"{prefix}PASSWORD"] = f"${registry.password_env}"
    if not registry.tls_verify:
        insecure = "TRIVY_INSECURE" if scanner == "trivy" else "GRYPE_REGISTRY_INSECURE_USE_HTTP"
        variables[insecure] = "true"
    return variables


def _release_artifacts(paths: list[str]) -> dict[str, Any]:
    return {"paths": list(paths), "expire_in": RELEASE_ARTIFACTS_EXPIRE_IN}


def _engine(builder: str) -> dict[str, Any]:
    """Services and variables that give a build or test job its engine: the service image is
    ``$IMAGEFACTORY_DIND_IMAGE``, defined in the job (a CI/CD variable of the project wins)."""
    if builder == "host":
        return {}
    return {
        "services": [{"name": f"${ENGINE_IMAGE_VARIABLE}", "alias": "docker"}],
        "variables": {ENGINE_IMAGE_VARIABLE: ENGINE_IMAGES[builder], **DIND_VARIABLES},
    }


def _need(job: str, *, artifacts: bool, optional: bool = False) -> dict[str, Any]:
    need: dict[str, Any] = {"job": job, "artifacts": artifacts}
    if optional:
        need["optional"] = True
    return need


def _place(options: PipelineOptions) -> RepoPlace:
    return RepoPlace(options.prefix, options.templates)


def _tier(position: int, count: int) -> str:
    if position == count - 1 and count > 1:
        return "production"
    return "development" if position == 0 else "staging"


def _command(options: PipelineOptions, *args: str) -> str:
    prefix = ["-C", options.prefix] if options.prefix else []
    return shlex.join(["imagefactory", *prefix, *args])


def _state_path(catalog: Catalog, options: PipelineOptions) -> str:
    return in_repo(_place(options), posixpath.normpath(catalog.project.state))


def _work_path(catalog: Catalog, options: PipelineOptions, name: str) -> str:
    """``name`` in imagefactory's work folder (the state file's), relative to the repository."""
    state = posixpath.normpath(catalog.project.state)
    return in_repo(_place(options), posixpath.join(posixpath.dirname(state), name))


# --------------------------------------------------------------------------- YAML


def _header(catalog: Catalog, options: PipelineOptions) -> str:
    lines = [
        f"GitLab CI pipeline of the imagefactory catalog '{catalog.project.project}'.",
        f"Generated by `{options.command}`: do not edit.",
        f"Stages: {' → '.join(stages(catalog))}; builder: {options.builder}.",
    ]
    variables = ci_variables(catalog, options)
    if variables:
        lines.append("CI/CD variables the jobs read (Settings → CI/CD → Variables):")
        lines += [f"  {v.name}{' (masked)' if v.masked else ''}: {v.what}" for v in variables]
    files = _secret_uses(catalog, "file")
    if files:
        lines.append("Files the build jobs read (build secrets by file; relative to the catalog):")
        lines += [f"  {path}: {what}" for path, what in files.items()]
    if options.builder == "dind":
        lines.append(
            "Docker-in-Docker needs a privileged runner sharing /certs/client with services."
        )
    if options.builder == "rootless":
        lines += [
            "Rootless Docker-in-Docker: the daemon and its BuildKit run as uid 1000; the runner",
            "  must still be privileged and share /certs/client (writable by uid 1000).",
        ]
    tagged = {platform for platform, _ in options.runner_tags}
    emulated = sorted({p for i in catalog.images.values() for p in i.spec.platforms or []} - tagged)
    if emulated:
        lines += [
            f"Built per platform on the pipeline's runners: {', '.join(emulated)}; a foreign one",
            "  runs under QEMU: the runner's host needs binfmt_misc with qemu-user-static",
            "  (docs/multiarch.md), or give it runners of its own with --runner-tag.",
        ]
    return "".join(f"# {line}\n" for line in lines)


@dataclass(frozen=True)
class CiVariable:
    """A CI/CD variable the generated jobs read (several names that serve together: one)."""

    name: str
    what: str
    masked: bool


def ci_variables(catalog: Catalog, options: PipelineOptions) -> list[CiVariable]:
    """Every CI/CD variable the jobs read: the job image and the engine service image, the
    registry logins, each build secret given by ``env`` (a build job reads it from its
    environment: build/run.py) and the GitLab token of GitOps merge requests."""
    variables: list[CiVariable] = []
    if options.builder != "host":
        job_image = catalog.project.ci.job_image
        variables.append(
            CiVariable(
                JOB_IMAGE.removeprefix("$"),
                "the job image (imagefactory, the Docker CLI, skopeo, mmdebstrap)"
                if job_image is None
                else f"optional, the job image (default: the catalog's {job_image} in "
                f"{catalog.project.environments[0].name}, which this pipeline does not build; "
                "pin it by digest)",
                masked=False,
            )
        )
        variables.append(
            CiVariable(
                ENGINE_IMAGE_VARIABLE,
                f"optional, the engine service (default {ENGINE_IMAGES[options.builder]}; "
                "pin it by digest)",
                masked=False,
            )
        )
    logins = _registry_variables(catalog, "username_env", "password_env")
    if logins:
        variables.append(CiVariable(", ".join(logins), "registry logins", masked=True))
    places = _registry_variables(catalog, "url_env", "namespace_env")
    if places:
        variables.append(
            CiVariable(
                ", ".join(places),
                "optional, registry hosts and namespaces (replace url / namespace)",
                masked=False,
            )
        )
    variables += [
        CiVariable(name, what, masked=True) for name, what in _secret_uses(catalog, "env").items()
    ]
    token = _gitops_token(catalog)
    if token is not None:
        variables.append(CiVariable(token, "GitOps merge requests (promote jobs)", masked=True))
    return variables


@dataclass(frozen=True)
class BuildSecretUse:
    """An image that declares a build secret, and whether its build needs the value."""

    ref: str
    required: bool


def _registry_variables(catalog: Catalog, *fields: str) -> list[str]:
    """The variables the registries name in ``fields`` (e.g. their logins), sorted, once each."""
    return sorted(
        {
            name
            for registry in catalog.project.registries.values()
            for field in fields
            if (name := getattr(registry, field)) is not None
        }
    )


def _secret_uses(catalog: Catalog, source: Literal["env", "file"]) -> dict[str, str]:
    """Each variable (or file) build secrets read, sorted, with the secrets and the images that
    declare them: ``build secret hf-token (app/a, app/b)``; optional where no image requires it."""
    uses: dict[str, dict[str, list[BuildSecretUse]]] = {}
    for image in catalog.in_build_order():
        for secret in image.spec.secrets:
            where = getattr(secret, source)
            if where is not None:
                uses.setdefault(where, {}).setdefault(secret.id, []).append(
                    BuildSecretUse(image.ref, secret.required)
                )
    return {
        where: "; ".join(
            f"build secret {secret_id} ({_refs(catalog, [u.ref for u in declared])})"
            + ("" if any(u.required for u in declared) else ", optional")
            for secret_id, declared in sorted(uses[where].items())
        )
        for where in sorted(uses)
    }


def _refs(catalog: Catalog, refs: list[str]) -> str:
    if len(refs) == len(catalog.images) > 1:
        return "every image"
    shown = ", ".join(refs[:3])
    return shown if len(refs) <= 3 else f"{shown} and {len(refs) - 3} more"


def _gitops_token(catalog: Catalog) -> str | None:
    """The token variable of gitops.yaml when an environment is deployed by merge request:
    promote jobs pin the digest there, and only merge requests need the token."""
    path = catalog.root / GITOPS_FILE
    if not path.is_file():
        return None
    settings = read_settings(path)
    merge_requests = any(env.mode == "merge_request" for env in settings.environments.values())
    return settings.gitlab.token_env if settings.gitlab and merge_requests else None


#: libyaml's parser when PyYAML has it (job names are read back from the rendered text).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Dumper(yaml.SafeDumper):
    """Block style, indented lists, and never an anchor or alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _dump(data: Mapping[str, Any]) -> str:
    text = yaml.dump(
        dict(data),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=10_000,
        indent=2,
    )
    assert isinstance(text, str)
    return text
