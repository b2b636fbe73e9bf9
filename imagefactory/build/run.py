"""Build the catalog: DAG order, parents by digest, unchanged images reused, state after each.

For every selected image and the ancestors it needs, in build order (independent images in
parallel up to ``jobs``):

1. its content hash names an immutable tag in the build registry (the first registry of the
   first environment); if that tag exists there, or an image with the hash label exists
   locally, the image is reused, not rebuilt (``--no-cache`` forces a build); a local image is
   pushed under that tag, and where the project signs, described there like a build when the
   repository holds no evidence of it (a cache hit: :mod:`imagefactory.build.evidence`);
2. otherwise its Dockerfile is rendered FROM the exact digest its parent got in this run and
   built with BuildKit (secrets mounted, proxy as build args only), then published under that
   tag, which is write-once (:mod:`imagefactory.build.publish`): when the tag holds another
   digest already, that one stays, and the build is reported as not reproducible;
3. the state file records the digest the tag holds at once (atomically), so an interrupted
   build keeps what finished.

An image whose chain starts at an external image and writes no ``user`` runs as the user that
image's config names, read when it is built; when that is root, its build is refused
(:mod:`imagefactory.build.users`). The OCI revision label names the commit, ``<sha>-dirty``
when the catalog's files differ from it.

A failed image stops its descendants; independent images still build. The run then fails.
"""

from __future__ import annotations

import datetime
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from imagefactory import git, scratch, tools
from imagefactory.build.bootstrap import release_hashes, releases_label, rootfs_tar
from imagefactory.build.docker import BuiltImage, Engine
from imagefactory.build.evidence import BuildEvidence
from imagefactory.build.publish import ManifestsOn, Published, publish, publish_index
from imagefactory.build.schedule import BuildReporter, Outcome, Status, run_in_dag_order
from imagefactory.build.users import external_user, with_user
from imagefactory.errors import (
    EXIT_INTERNAL,
    EXIT_USER_ERROR,
    ImageFactoryError,
    ToolError,
    UserError,
)
from imagefactory.project.hashing import ContentInputs, content_inputs
from imagefactory.project.naming import REVISION_LABEL
from imagefactory.project.paths import state_file, work_dir
from imagefactory.project.plan import rebuild_reasons
from imagefactory.project.state import (
    ImageRecord,
    TestRecord,
    load_state,
    locked_state,
    with_record,
)
from imagefactory.registry.client import RegistryClient
from imagefactory.registry.index import platform_digests
from imagefactory.render.catalog import Pins
from imagefactory.spec.catalog import Catalog, CatalogImage, ref_slug
from imagefactory.spec.models import BuildSecret
from imagefactory.spec.parents import BootstrapParent
from imagefactory.spec.platforms import host_platform


@dataclass(frozen=True)
class BuildOptions:
    """``platform``: build only this platform of the images built per platform, and no index
    (a pipeline's per-platform job; a build without it then assembles the index)."""

    jobs: int = 1
    no_cache: bool = False
    platform: str | None = None


class BuildFailed(ImageFactoryError):
    def __init__(self, outcomes: list[Outcome]) -> None:
        failed = [o for o in outcomes if o.status == "failed"]
        self.outcomes = outcomes
        self.exit_code = (
            EXIT_INTERNAL
            if any(isinstance(o.error, ToolError) for o in failed)
            else EXIT_USER_ERROR
        )
        lines = [f"{len(failed)} image{'s' if len(failed) != 1 else ''} failed to build:"]
        for outcome in failed:
            lines.append(f"  {outcome.ref}: {outcome.detail}")
            lines += [f"    {line}" for line in str(outcome.error).splitlines()]
        skipped = [o.ref for o in outcomes if o.status == "skipped"]
        if skipped:
            lines.append(f"  not built because a parent failed: {', '.join(skipped)}")
        super().__init__("\n".join(lines), hint=failed[0].error.hint if failed[0].error else None)


def execute(run: BuildRun, images: list[CatalogImage]) -> list[Outcome]:
    """Build or reuse ``images`` (in build order) with ``run``; BuildFailed if any failed."""
    run.engine.check()  # an unreachable daemon is one clear error, before anything runs
    if not run.options.no_cache:
        run.look_up_registry(images)
    outcomes = run_in_dag_order(images, run.options.jobs, run.one, run.reporter)
    if any(o.status == "failed" for o in outcomes):
        raise BuildFailed(outcomes)
    return outcomes


class BuildRun:
    def __init__(
        self,
        catalog: Catalog,
        client: RegistryClient,
        options: BuildOptions,
        reporter: BuildReporter,
        inputs: dict[str, ContentInputs] | None = None,
    ) -> None:
        """``inputs``: the catalog's content inputs when the caller has them already."""
        tools.secret_names(*_secret_variables(catalog))  # before any child starts
        self.catalog = catalog
        self.client = client
        self.options = options
        self.reporter = reporter
        self.inputs = content_inputs(catalog) if inputs is None else inputs
        self.state_path = state_file(catalog)
        self.state = load_state(self.state_path)
        self.digests: dict[str, str] = {}
        self.platform_digests: dict[str, dict[str, str]] = {}  # ref → platform → digest
        self.lock = threading.Lock()
        self.users: dict[str, str] = {}  # ref → the user its external parent names (_read_user)
        self.pins = Pins(catalog.project, self.inputs, self.digests, self.platform_digests)
        self.registry = self.pins.registry  # resolved once per run
        self.revision_labels = _revision_labels(catalog.root, work_dir(catalog))
        self.known_remote: dict[str, str | None] = {}
        #: (content tag, digest) → why the evidence of that reused digest left it unsigned (None:
        #: signed), checked by look_up_registry.
        self.reused_evidence: dict[tuple[str, str], str | None] = {}
        self.unsigned: dict[str, str] = {}  # ref → why the digest it reused is not signed
        self.evidence = BuildEvidence(catalog, client, self.registry, self.revision_labels)

    @cached_property
    def engine(self) -> Engine:
        """The Docker engine, logged in with the run's credentials."""
        return Engine(self.client.config_dir)

    def tag_of(self, image: CatalogImage) -> str:
        return self.pins.tagged(image.spec.name, image.ref)

    def look_up_registry(self, images: list[CatalogImage]) -> None:
        """Ask the registry about every content tag at once, then check (and sign) the evidence
        of every digest it holds at once: a no-op build is two rounds of requests, not one per
        image in build order."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            tags = [self.tag_of(image) for image in images]
            for tag, digest in zip(
                tags,
                pool.map(lambda t: self.client.digest(self.registry, t), tags),
                strict=True,
            ):
                self.known_remote[tag] = digest
            held = [(tag, digest) for tag, digest in self.known_remote.items() if digest]
            for (tag, digest), why in zip(
                held, pool.map(lambda found: self.evidence.reused(*found), held), strict=True
            ):
                self.reused_evidence[tag, digest] = why

    def one(self, image: CatalogImage) -> Outcome:
        started = time.monotonic()
        inputs = self.inputs[image.ref]
        tag = self.tag_of(image)
        try:
            if image.spec.platforms:
                return self._per_platform(image, inputs, tag, started)
            if not self.options.no_cache:
                reused = self._reuse(image, inputs, tag, started)
                if reused is not None:
                    return Outcome(
                        image.ref,
                        "reused",
                        time.monotonic() - started,
                        reused[0],
                        self._noted(image.ref, reused[1]),
                        size_bytes=self._recorded_size(image.ref, reused[0]),
                    )
            self.reporter.started(image.ref, self._why(image.ref, inputs))
            self._read_user(image)
            published = self._build(image, inputs, tag, started)
            return Outcome(
                image.ref,
                "built" if published.reproducible else "unreproducible",
                time.monotonic() - started,
                published.digest,
                self._noted(image.ref, published.detail),
                size_bytes=self._recorded_size(image.ref, published.digest),
            )
        except ImageFactoryError as exc:
            return Outcome(
                image.ref, "failed", time.monotonic() - started, detail=_step_of(exc), error=exc
            )

    def _recorded_size(self, ref: str, digest: str) -> int | None:
        """The size state records for ``digest`` of ``ref`` (None: not built by this checkout)."""
        with self.lock:
            record = self.state.images.get(ref)
        return record.size_bytes if record is not None and record.digest == digest else None

    def _why(self, ref: str, inputs: ContentInputs) -> str:
        """What ``plan`` says (its words), or why an unchanged image is built anyway."""
        if self.options.no_cache:
            return "--no-cache"
        reasons = rebuild_reasons(inputs, self.state.images.get(ref))
        return ", ".join(reasons) or "not found in the registry"

    def _reuse(
        self, image: CatalogImage, inputs: ContentInputs, tag: str, started: float
    ) -> tuple[str, str] | None:
        """(digest, where) of an existing image with this content, pushed if it was only local:
        a local image that the content tag now names is described as a build when the build
        repository holds no evidence of it (:meth:`BuildEvidence.reused_local`)."""
        digest = (
            self.known_remote[tag]
            if tag in self.known_remote
            else self.client.digest(self.registry, tag)
        )
        if digest is not None:
            self._record(image, inputs, tag, digest, None)
            self._sign_reused(image, tag, digest)
            return digest, "reused from the registry"
        local = self.engine.local_image(inputs.content_hash)
        if local is None:
            return None
        self.engine.tag(local.image_id, tag)
        published = self._publish(tag)
        self._record(image, inputs, tag, published.digest, None)
        if not published.reproducible:  # the content tag holds another build's digest
            self._sign_reused(image, tag, published.digest)
            return published.digest, published.detail
        why = self.evidence.reused_local(
            self.engine,
            image,
            tag,
            published.digest,
            local.image_id,
            self.pins.parent(image),
            started,
        )
        self._not_signed(image, tag, published.digest, why)
        return published.digest, "reused the local image, pushed"

    def _sign_reused(self, image: CatalogImage, tag: str, digest: str) -> None:
        """Sign a digest this run did not build, if a signed build made it
        (:meth:`BuildEvidence.reused`; checked already when look_up_registry found it)."""
        found = (tag, digest)
        why = (
            self.reused_evidence[found]
            if found in self.reused_evidence
            else self.evidence.reused(tag, digest)
        )
        self._not_signed(image, tag, digest, why)

    def _not_signed(self, image: CatalogImage, tag: str, digest: str, why: str | None) -> None:
        """A warning, in the log and the outcome, when ``digest`` was left unsigned (``why``)."""
        if why is not None:
            self.reporter.log(image.ref, f"warning: {tag}@{digest}: {why}")
            with self.lock:
                self.unsigned[image.ref] = why

    def _noted(self, ref: str, detail: str) -> str:
        """``detail``, and why the digest is not signed where it is not."""
        why = self.unsigned.get(ref)
        return detail if why is None else f"{detail}; {why}" if detail else why

    def _read_user(self, image: CatalogImage) -> None:
        """The user an image whose chain writes none runs as (:func:`external_user`)."""
        user = external_user(self.engine, self.catalog, image)
        if user is not None:
            with self.lock:
                self.users[image.ref] = user

    def as_built(self, image: CatalogImage) -> tuple[Catalog, CatalogImage]:
        """The catalog and ``image`` as this run renders them (:func:`with_user`)."""
        return with_user(self.catalog, image, self.users.get(image.ref))

    def _publish(self, tag: str) -> Published:
        """Push the local ``tag`` to the build registry under its write-once content tag."""
        return publish(self.engine, self.client, self.registry, tag, tag)

    def _finish(
        self,
        image: CatalogImage,
        inputs: ContentInputs,
        tag: str,
        started: float,
    ) -> Published:
        """Publish the built local ``tag`` and record what the content tag holds: this build
        (its image id, size and time) or, not reproducible, the registry's image."""
        published = self._publish(tag)
        if not published.reproducible:
            self._record(image, inputs, tag, published.digest, None)
            self._sign_reused(image, tag, published.digest)
            return published
        built = self.engine.image(tag)
        self._record(
            image,
            inputs,
            tag,
            published.digest,
            built.image_id,
            built.size_bytes,
            time.monotonic() - started,
        )
        self.evidence.built(
            self.engine, image, tag, published.digest, self.pins.parent(image), started
        )
        return published

    def _build(
        self, image: CatalogImage, inputs: ContentInputs, tag: str, started: float
    ) -> Published:
        self._build_local(image, inputs, tag)
        return self._finish(image, inputs, tag, started)

    def _build_local(
        self, image: CatalogImage, inputs: ContentInputs, tag: str, platform: str | None = None
    ) -> None:
        """Build ``image`` as the local ``tag``, for ``platform`` (None: an image without
        ``platforms``, for the engine's own), FROM its parent's digest (of that platform)."""
        # What renders and provisions is imported by a build, not by a no-op (which builds
        # nothing: start-up is most of it, bench/build_bench.py).
        from imagefactory.build.provision import provision
        from imagefactory.render.dockerfile import render_dockerfile, write_build_context

        catalog, image = self.as_built(image)
        pin = self.pins.parent(image, platform)
        hashed = inputs.content_hash if platform is None else inputs.platform_hash(platform)
        dockerfile = render_dockerfile(catalog, image, hashed, pin)
        rootfs = None
        if isinstance(image.parent, BootstrapParent):
            rootfs = rootfs_tar(
                image.parent.bootstrap,
                self.catalog.project.build,
                work_dir(self.catalog) / "cache",
                refresh=inputs.refresh,
                platform=platform,
                on_line=lambda line: self.reporter.log(image.ref, line),
            )
        folder = ref_slug(image.ref) + (f"-{ref_slug(platform)}" if platform else "")
        context = write_build_context(
            catalog, image, dockerfile, work_dir(self.catalog) / "build" / folder, rootfs=rootfs
        )
        labels = self.revision_labels
        if rootfs is not None:  # the Release files it installed from, for a later reuse
            labels = {**labels, **releases_label(release_hashes(rootfs))}
        with _secret_files(self.catalog.root, image.spec.secrets) as secrets:
            self.engine.build(
                context,
                tag,
                labels=labels,
                build_args=self._proxy_args(),
                secrets=secrets,
                no_cache=self.options.no_cache,
                platform=platform,
                on_line=lambda line: self.reporter.log(image.ref, line),
            )
        if image.spec.playbooks:  # applied to the built image, committed with its metadata
            provision(
                catalog,
                image,
                tag,
                tag,
                hashed,
                pin,
                engine=self.engine,
                on_line=lambda line: self.reporter.log(image.ref, line),
            )

    def _per_platform(
        self, image: CatalogImage, inputs: ContentInputs, tag: str, started: float
    ) -> Outcome:
        """An image with ``platforms``: its content tag's index when the registry holds it;
        else each platform reused (its own content tag, from the platform's hash) or built FROM
        the parent's digest of that platform, and their index given the content tag
        (write-once, :func:`publish_index`). Where the project signs, each platform's digest is
        described like any build, and the index is signed when every platform's digest is."""
        if self.options.platform is not None:
            return self._one_platform(image, inputs, self.options.platform, started)
        held = None if self.options.no_cache else self._remote(tag)
        if held is not None:
            return self._reused_index(image, inputs, tag, held, started)
        self.reporter.started(image.ref, self._why(image.ref, inputs))
        self._read_user(image)
        platforms: dict[str, str] = {}
        unsigned: list[str] = []
        built: dict[str, BuiltImage] = {}  # what this run built, by platform
        for platform in image.spec.platforms or []:
            platforms[platform], why, local = self._platform(image, inputs, platform, started)
            unsigned += [why] if why else []
            if local is not None:
                built[platform] = local
        index = publish_index(self.client, self.registry, tag, platforms)
        if not index.reproducible:  # another build's index holds the content tag: its platforms
            platforms = self._index_platforms(image, tag, index.digest)
        # the state's image id and size: of the platform that runs here, where it was built
        local = built.get(host_platform()) or next(iter(built.values()), None)
        self._record(
            image,
            inputs,
            tag,
            index.digest,
            local.image_id if local and index.reproducible else None,
            local.size_bytes if local else None,
            time.monotonic() - started,
            platforms=platforms,
        )
        if index.reproducible:
            parent = self.pins.parent(self.as_built(image)[1])
            why = self.evidence.index(
                image, tag, index.digest, platforms, parent, started, unsigned
            )
            self._not_signed(image, tag, index.digest, why)
        else:
            self._sign_reused(image, tag, index.digest)
        status: Status = "built" if index.reproducible else "unreproducible"
        return self._outcome(image, status, started, index.digest, index.detail)

    def _platform(
        self, image: CatalogImage, inputs: ContentInputs, platform: str, started: float
    ) -> tuple[str, str | None, BuiltImage | None]:
        """(digest, why it is not signed or None, the local image when built now) of
        ``image``'s ``platform``: reused from its platform content tag, or built and published
        under it (described like any build)."""
        platform_tag = self.pins.platform_tagged(image, platform)
        digest = None if self.options.no_cache else self._remote(platform_tag)
        if digest is not None:
            self.reporter.log(image.ref, f"{platform}: reused {digest}")
            return digest, self.evidence.reused(platform_tag, digest), None
        self.reporter.log(image.ref, f"{platform}: building")
        self._build_local(image, inputs, platform_tag, platform)
        published = self._publish(platform_tag)
        if not published.reproducible:
            self.reporter.log(image.ref, f"{platform}: {published.detail}")
            return published.digest, self.evidence.reused(platform_tag, published.digest), None
        pin = self.pins.parent(self.as_built(image)[1], platform)
        self.evidence.built(
            self.engine, image, platform_tag, published.digest, pin, started, platform
        )
        return published.digest, None, self.engine.image(platform_tag)

    def _one_platform(
        self, image: CatalogImage, inputs: ContentInputs, platform: str, started: float
    ) -> Outcome:
        """``build --platform``: ``image``'s image of ``platform`` only, reused or built; no
        index and nothing in state (a build without ``--platform`` assembles and records the
        index, reusing this), the digest kept for the children of this run."""
        platform_tag = self.pins.platform_tagged(image, platform)
        if self.options.no_cache or self._remote(platform_tag) is None:
            self.reporter.started(image.ref, f"{platform}: {self._why(image.ref, inputs)}")
            self._read_user(image)
        digest, why, local = self._platform(image, inputs, platform, started)
        self._not_signed(image, platform_tag, digest, why)
        with self.lock:
            self.platform_digests[image.ref] = {platform: digest}
        return Outcome(
            image.ref,
            "reused" if local is None else "built",
            time.monotonic() - started,
            digest,
            self._noted(image.ref, f"{platform} only: a build without --platform makes the index"),
            size_bytes=local.size_bytes if local is not None else None,
            platforms={platform: digest},
        )

    def _reused_index(
        self, image: CatalogImage, inputs: ContentInputs, tag: str, digest: str, started: float
    ) -> Outcome:
        """The index the content tag of an image built per platform holds: recorded with its
        platforms' digests; signed, as each platform's digest, where its evidence verifies
        (:meth:`_sign_reused`)."""
        platforms = self._index_platforms(image, tag, digest)
        self._record(image, inputs, tag, digest, None, platforms=platforms)
        for platform, platform_digest in platforms.items():
            platform_tag = self.pins.platform_tagged(image, platform)
            why = self.evidence.reused(platform_tag, platform_digest)
            self._not_signed(image, platform_tag, platform_digest, why)
        self._sign_reused(image, tag, digest)
        return self._outcome(image, "reused", started, digest, "reused from the registry")

    def _index_platforms(self, image: CatalogImage, tag: str, digest: str) -> dict[str, str]:
        """Each platform's digest in the index ``digest`` that ``tag`` holds."""
        store = ManifestsOn(self.client, self.registry)
        return platform_digests(store, tag.rpartition(":")[0], digest, image.spec.platforms or [])

    def _remote(self, tag: str) -> str | None:
        """The digest ``tag`` holds in the build registry (asked once per run)."""
        if tag not in self.known_remote:
            self.known_remote[tag] = self.client.digest(self.registry, tag)
        return self.known_remote[tag]

    def _outcome(
        self, image: CatalogImage, status: Status, started: float, digest: str, detail: str
    ) -> Outcome:
        """The outcome of an image built per platform, as state records it now."""
        return Outcome(
            image.ref,
            status,
            time.monotonic() - started,
            digest,
            self._noted(image.ref, detail),
            size_bytes=self._recorded_size(image.ref, digest),
            platforms=dict(self.platform_digests.get(image.ref, {})),
        )

    def _proxy_args(self) -> dict[str, str]:
        """Docker's predefined proxy args: used by RUN steps, never stored in the image, and
        on no argv (:meth:`Engine.build` hands the values to the CLI in its environment)."""
        proxy = self.catalog.project.build.proxy
        args = {}
        for name, value in (
            ("HTTP_PROXY", proxy.http),
            ("HTTPS_PROXY", proxy.https),
            ("NO_PROXY", proxy.no_proxy),
        ):
            if value:
                args[name] = args[name.lower()] = value
        return args

    def _record(
        self,
        image: CatalogImage,
        inputs: ContentInputs,
        tag: str,
        digest: str,
        image_id: str | None,
        size: int | None = None,
        seconds: float | None = None,
        *,
        platforms: dict[str, str] | None = None,
    ) -> None:
        """Record the build in state (``platforms``: each platform's digest, for an image
        built per platform: ``digest`` is then its index's), under the state's lock and from the image's record as
        state holds it now: what another command recorded meanwhile (a test run, a push, a
        yank) is kept, never overwritten by the record this run started from."""
        with self.lock, locked_state(self.state_path, root=self.catalog.root) as save:
            self.state = load_state(self.state_path)
            previous = self.state.images.get(image.ref)
            kept = (
                previous
                if previous is not None and previous.content_hash == inputs.content_hash
                else None
            )
            fields: dict[str, object] = {
                **(kept.model_dump() if kept else {}),
                # what was released, tested or yanked stays on record whatever the new content is:
                # by version and by digest (a digest of the old content may run somewhere)
                "versions": previous.versions if previous else {},
                "environments": previous.environments if previous else {},
                "yanked": previous.yanked if previous else {},
                "tests": None,
                "test_runs": _test_runs(previous),
                "content_hash": inputs.content_hash,
                "inputs": inputs.as_dict(),
                "version": image.spec.version,
                "name": image.spec.name,
                "variant": image.spec.variant,
                "repository": tag.rsplit(":", 1)[0],
                "tag": tag.rsplit(":", 1)[1],
                "digest": digest,
                "platforms": platforms or {},
                "previous_size_bytes": kept.previous_size_bytes
                if kept
                else (previous.size_bytes if previous else None),
            }
            if image_id is not None:  # built now, not reused
                fields.update(
                    image_id=image_id,
                    size_bytes=size,
                    build_seconds=round(seconds or 0, 1),
                    built_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                )
            record = ImageRecord.model_validate(fields)
            self.digests[image.ref] = digest
            if platforms:
                self.platform_digests[image.ref] = dict(platforms)
            if previous != record:  # a no-op build writes nothing
                self.state = with_record(self.state, image.ref, record)
                save(self.state)


def _test_runs(previous: ImageRecord | None) -> dict[str, TestRecord]:
    """Every digest's latest test run on ``previous`` (its one record of before per-digest runs
    too, unless a newer run of that digest replaced it)."""
    if previous is None:
        return {}
    legacy = {previous.tests.digest: previous.tests} if previous.tests is not None else {}
    return {**legacy, **previous.test_runs}


def _step_of(error: ImageFactoryError) -> str:
    """The BuildKit step a failed build was at, from the tail of its log."""
    if isinstance(error, ToolError):
        steps = [
            line for line in error.output_tail.splitlines() if "] " in line and line.startswith("#")
        ]
        if steps:
            return "failed at " + steps[-1].split(" ", 1)[1][:160]
    return error.message.splitlines()[0][:160]


def _secret_variables(catalog: Catalog) -> list[str]:
    """The variables the catalog's build secrets read: no child inherits them."""
    return [s.env for image in catalog.images.values() for s in image.spec.secrets if s.env]


@contextmanager
def _secret_files(root: Path, secrets: list[BuildSecret]) -> Iterator[dict[str, Path]]:
    """Secret values as files BuildKit can mount: env values go to a folder in the run's
    private folder (``scratch``: 0700, on tmpfs where there is one), removed afterwards."""
    with scratch.private_folder("secrets-") as folder:
        files: dict[str, Path] = {}
        for secret in secrets:
            if secret.env is not None:
                value = os.environ.get(secret.env)
                if value is None:
                    if secret.required:
                        raise UserError(
                            f"build secret '{secret.id}' reads ${secret.env}, which is not set",
                            hint=f"export {secret.env}, or mark the secret required: false",
                        )
                    continue
                tools.redact(value)
                path = folder / secret.id
                path.touch(mode=0o600)
                path.write_text(value, encoding="utf-8")
                files[secret.id] = path
            elif secret.file is not None:
                path = (root / Path(secret.file).expanduser()).resolve()
                if path.is_file():
                    files[secret.id] = path
                elif secret.required:
                    raise UserError(f"build secret '{secret.id}' reads {path}, which is not a file")
        yield files


def _revision_labels(root: Path, work: Path) -> dict[str, str]:
    """OCI revision and created labels from git (the commit, and its time: reproducible). A
    catalog whose files differ from the commit (imagefactory's ``work`` folder aside) is not
    that commit: its revision is ``<sha>-dirty``."""
    commit = git.head(root)
    if commit is None:
        return {}
    dirty = git.dirty(root, ignore=[work])
    return {
        REVISION_LABEL: f"{commit.sha}-dirty" if dirty else commit.sha,
        "org.opencontainers.image.created": commit.committed,
    }
