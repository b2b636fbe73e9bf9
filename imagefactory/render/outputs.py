"""The one entry of every render: what to render, where, and whether to write or only check.

``render`` (Dockerfiles and build contexts), ``render packer`` (Packer templates), ``render
terraform`` (each environment's tfvars) and ``ci generate`` (the GitLab CI pipeline) all call
:func:`render_outputs` and get a :class:`RenderReport` back: what was written, or, for a check,
what would be written and what differs from it on disk. A check writes nothing the user sees:
images are rendered into a temporary folder beside the real one (the same depth, so the same
relative paths in the templates) and compared; files are compared byte for byte.
"""

from __future__ import annotations

import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from imagefactory.atomic import write_atomically
from imagefactory.project.hashing import content_inputs
from imagefactory.project.paths import state_file, templates_dir
from imagefactory.project.state import load_state
from imagefactory.spec.catalog import Catalog

# Each kind's renderer is imported where that kind is rendered: ``ci generate`` of a big
# catalog runs in about a second, and the Jinja environment and the Packer and Terraform
# renderers would be a tenth of it (bench/ci_bench.py).

Kind = Literal["dockerfile", "packer", "terraform", "pipeline"]
#: Where each kind writes when no folder is named, relative to the project root (a pipeline
#: without a file is printed).
DEFAULT_OUT: dict[Kind, Path] = {
    "dockerfile": Path("rendered"),
    "packer": Path("rendered/packer"),
    "terraform": Path("terraform/environments"),
}


@dataclass(frozen=True)
class RenderRequest:
    """What to render, where, and whether to only compare with what is there.

    ``images``: names or refs, for dockerfile and packer (none: the kind's default set).
    ``out``: relative to the project root (None: :data:`DEFAULT_OUT`). ``builder`` and
    ``auto``, ``runner_tags``: the pipeline's options
    (:class:`imagefactory.render.gitlab_ci.PipelineOptions`).
    """

    kind: Kind
    images: tuple[str, ...] = ()
    out: Path | None = None
    check: bool = False
    builder: str = "dind"
    auto: tuple[str, ...] = ()
    runner_tags: tuple[tuple[str, str], ...] = ()

    @property
    def shown_out(self) -> Path | None:
        """The output as the user would name it again."""
        return DEFAULT_OUT.get(self.kind) if self.out is None else self.out


@dataclass(frozen=True)
class Output:
    """One thing a render writes: ``path`` is the file a reader opens (the Dockerfile, the
    template, the tfvars file, the pipeline), ``name`` what a check reports it under (the image
    ref, the template's folder, the environment, the pipeline file); a tfvars file also says
    how many ``repositories`` it declares."""

    name: str
    path: Path
    repositories: int = 0


@dataclass(frozen=True)
class RenderReport:
    """What :func:`render_outputs` did. ``outputs``: written, or for a check of images or a
    pipeline what a render would write; ``stale``: a check's differences by output name (empty: up to date, or written);
    ``skipped``: images left out; ``text`` and ``jobs``: a pipeline printed, not written;
    ``command``: how to render the same outputs again (for a stale check's hint)."""

    request: RenderRequest
    target: Path | None
    outputs: tuple[Output, ...]
    command: str
    stale: dict[str, list[str]] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()
    text: str | None = None
    jobs: tuple[str, ...] = ()


def render_outputs(catalog: Catalog, request: RenderRequest) -> RenderReport:
    """Render what ``request`` asks for, write it or (``check``) compare it with what is there."""
    out = request.shown_out
    target = None if out is None else (out if out.is_absolute() else catalog.root / out)
    if target is None or request.kind == "pipeline":  # only a pipeline has no default file
        return _pipeline(catalog, request, target)
    words = [] if request.kind == "dockerfile" else [request.kind]
    command = shlex.join(["imagefactory", "render", *words])
    if request.kind == "terraform":
        return _terraform(catalog, request, target, command)
    return _images(catalog, request, target, command)


def _images(catalog: Catalog, request: RenderRequest, target: Path, command: str) -> RenderReport:
    from imagefactory.render.catalog import Pins, pinned_digests, render_images, stale_folders
    from imagefactory.render.packer import packer_images, render_packer_images

    selected = catalog.select(list(request.images))
    skipped: list[str] = []
    if request.kind == "packer":
        chosen, left_out = packer_images(catalog, selected if request.images else [])
        selected, skipped = chosen, [image.ref for image in left_out]
    inputs = content_inputs(catalog)
    pins = Pins(catalog.project, inputs, pinned_digests(load_state(state_file(catalog)), inputs))

    def write(folder: Path) -> list[Output]:
        if request.kind == "packer":
            templates = render_packer_images(catalog, selected, pins, folder)
            return [Output(path.parent.name, path) for path in templates]
        rendered = render_images(catalog, selected, pins, folder)
        return [Output(r.ref, r.folder / "Dockerfile") for r in rendered]

    if not request.check:
        return RenderReport(request, target, tuple(write(target)), command, skipped=tuple(skipped))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as temp:
        fresh = Path(temp)
        written = write(fresh)
        stale = stale_folders({o.name: o.path.parent for o in written}, target)
    outputs = tuple(Output(o.name, target / o.path.relative_to(fresh)) for o in written)
    return RenderReport(request, target, outputs, command, stale, tuple(skipped))


def _terraform(
    catalog: Catalog, request: RenderRequest, target: Path, command: str
) -> RenderReport:
    from imagefactory.render.terraform import stale_tfvars, write_tfvars

    if not request.check:
        written = tuple(
            Output(w.environment, w.path, w.repositories) for w in write_tfvars(catalog, target)
        )
        return RenderReport(request, target, written, command)
    return RenderReport(request, target, (), command, stale_tfvars(catalog, target))


def _pipeline(catalog: Catalog, request: RenderRequest, target: Path | None) -> RenderReport:
    from imagefactory.render.gitlab_ci import PipelineOptions, job_names, render_pipeline

    repository = _repository_root(catalog.root)
    shown = None if target is None else _shown(target, catalog.root)
    argv = ["imagefactory", "ci", "generate", "--builder", request.builder]
    for name in request.auto:
        argv += ["--auto", name]
    for platform, tag in request.runner_tags:
        argv += ["--runner-tag", f"{platform}={tag}"]
    command = shlex.join(argv if shown is None else [*argv, "--out", shown])
    templates = templates_dir()
    options = PipelineOptions(
        builder=request.builder,
        auto=request.auto,
        runner_tags=request.runner_tags,
        prefix=_shown(catalog.root, repository) if catalog.root != repository else "",
        templates=_shown(templates, repository) if templates.is_relative_to(repository) else None,
        command=command,
    )
    text = render_pipeline(catalog, options)  # refuses bad options before anything is written
    jobs = tuple(job_names(text))
    if target is None:
        return RenderReport(request, None, (), command, text=text, jobs=jobs)
    output, data = Output(target.name, target), text.encode()
    if not request.check:
        write_atomically(target, data, mode=0o644)
        return RenderReport(request, target, (output,), command, jobs=jobs)
    from imagefactory.render.catalog import MISSING

    current = target.read_bytes() if target.is_file() else None  # bytes: not UTF-8 is stale
    stale = {} if current == data else {target.name: [MISSING if current is None else target.name]}
    return RenderReport(request, target, (output,), command, stale, jobs=jobs)


def _repository_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding ``.git``; ``start`` when there is none."""
    for folder in [start, *start.parents]:
        if (folder / ".git").exists():
            return folder
    return start


def _shown(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
