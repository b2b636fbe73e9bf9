"""``imagefactory build``'s one entry: the selected images and the ancestors they need, built
by the Docker engine (:mod:`imagefactory.build.run`) or, with ``engine="packer"``, by Packer for
the images that target it (:mod:`imagefactory.build.packer`); and ``--dry-run``'s plan of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import PurePosixPath
from typing import Literal

from imagefactory.build.emulation import check_emulation
from imagefactory.build.run import BuildOptions, BuildRun, execute
from imagefactory.build.schedule import BuildReporter, Outcome, images_to_build
from imagefactory.errors import UserError
from imagefactory.project.hashing import content_inputs
from imagefactory.project.plan import PlanEntry, plan_images
from imagefactory.registry.client import registry_session
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.packer import DOCKER_SOURCE
from imagefactory.spec.platforms import host_platform
from imagefactory.spec.wheels import wheel_problems

Builder = Literal["docker", "packer"]


@dataclass(frozen=True)
class BuildRequest:
    """What to build: ``images`` by name or ref (none: every image of the catalog) less
    ``exclude``, with which ``engine`` (packer: which template ``sources``; only docker's by
    default), and how (``options``: parallel jobs, no cache)."""

    images: tuple[str, ...] = ()
    options: BuildOptions = field(default_factory=BuildOptions)
    engine: Builder = "docker"
    sources: tuple[str, ...] = (DOCKER_SOURCE,)
    exclude: tuple[str, ...] = ()  # left out of the selection (ancestors the rest need stay)

    def selected(self, catalog: Catalog) -> list[CatalogImage]:
        """The images asked for: ``images`` (every image when none), less ``exclude``."""
        left_out = {image.ref for image in catalog.select(self.exclude)} if self.exclude else set()
        return [i for i in catalog.select(list(self.images)) if i.ref not in left_out]


def build_plan(catalog: Catalog, request: BuildRequest) -> list[PlanEntry]:
    """What the build would do: the plan of every image it would build or reuse; with
    ``no_cache``, as if none had been built."""
    selected = images_to_build(catalog, request.selected(catalog))
    return plan_images(catalog, selected, rebuild_all=request.options.no_cache)


def build_images(catalog: Catalog, request: BuildRequest, reporter: BuildReporter) -> list[Outcome]:
    """Build or reuse the requested images and their ancestors, in DAG order."""
    selected = request.selected(catalog)
    images = images_to_build(catalog, selected)
    check_platforms(catalog, images, request.engine, request.options.platform)
    check_wheels(catalog, images)
    run_type: Callable[..., BuildRun] = BuildRun
    inputs = None  # the run hashes the catalog itself
    if request.engine == "packer":
        not_packer = [i.ref for i in selected if "packer" not in i.spec.targets]
        if request.images and not_packer:
            raise UserError(
                f"--engine packer builds images that target packer; not: {', '.join(not_packer)}",
                hint="add 'packer' to their targets, or build them with --engine docker",
            )
        inputs = content_inputs(catalog)  # hashed once: for the check, then for the run
        from imagefactory.build.packer import PackerRun, check_packer_build  # Packer builds only

        check_packer_build(catalog, images, inputs, request.sources)
        run_type = partial(PackerRun, sources=request.sources)
    with registry_session(catalog, []) as client:
        return execute(run_type(catalog, client, request.options, reporter, inputs), images)


def check_wheels(catalog: Catalog, images: list[CatalogImage]) -> None:
    """Before anything is built: a UserError for an image whose ``wheels:`` match no file or
    two files of one distribution (``validate`` takes both: a clean checkout has no wheel)."""
    for image in images:
        problems = wheel_problems(image.folder, list(image.spec.wheels))
        if problems:
            first = PurePosixPath(image.spec.wheels[0]).parent  # where the wheels go
            folder = (image.folder.relative_to(catalog.root) / first).as_posix()
            raise UserError(
                f"{image.file.relative_to(catalog.root).as_posix()}: {image.ref}: "
                + "; ".join(problems),
                hint=f"build the wheel into {folder} first, e.g. for imagefactory itself: "
                f"pip wheel --no-deps --wheel-dir {folder} .",
            )


def check_platforms(
    catalog: Catalog, images: list[CatalogImage], engine: Builder, only: str | None = None
) -> None:
    """Before anything is built: a UserError for what is not built per platform (Packer
    builds; Ansible playbooks on a foreign platform; with ``only``, ``build --platform``'s
    platform, an image not built for it), and the emulation preflight of every foreign
    platform the build makes (:func:`check_emulation`; a bootstrap checks ``arch-test`` too)."""
    host = host_platform()
    for image in images:
        foreign = [p for p in image.spec.platforms or [] if p != host]
        where = image.file.relative_to(catalog.root).as_posix()
        named = image.spec.platforms or [host]
        if only is not None and only not in named:
            raise UserError(
                f"{where}: platforms: {image.ref} is not built for {only} (it is built for "
                f"{', '.join(named)})",
                hint="build --platform makes one platform of images built for it: select "
                "images whose platforms name it",
            )
        if image.spec.platforms and engine == "packer":
            raise UserError(
                f"{where}: platforms: {image.ref} is built per platform, which Packer builds "
                "do not do",
                hint="build it with --engine docker, or leave platforms out",
            )
        if foreign and image.spec.playbooks:
            raise UserError(
                f"{where}: platforms: {image.ref} applies Ansible playbooks, which are applied "
                f"on the host's platform ({host}) only, not on {', '.join(foreign)}",
                hint="install with packages/pip/files for the other platforms, or name only "
                f"{host}",
            )
    made = {p for image in images for p in image.spec.platforms or []}
    check_emulation(sorted(made if only is None else {only}), bootstrap=False)
