"""``imagefactory build --engine packer``: images that target packer are built by ``packer build``.

The run is :mod:`imagefactory.build.run`'s (DAG order, reuse by content hash, push to the content
tag, state after each image); only the build step of an image whose ``targets`` include
``packer`` differs: its template is rendered (:mod:`imagefactory.render.packer`) into
``.imagefactory/packer/<image>/`` FROM the parent's digest of this run and built with Packer's
docker builder, which pulls the parent with the run's registry credentials. Other images (the
bootstrapped base, images that target only docker) are built by the Docker engine as usual.

Only the docker source runs unless more are named (``build --only amazon-ebs.vm``): a VM or cloud
builder (an EC2 instance wherever AWS credentials exist) never starts by default. Packer >= 1.7
first installs the plugins the folder's ``plugins.pkr.hcl`` requires (``packer init``) and builds
the folder; Packer 1.6.6 (Debian, plugins bundled) builds the template alone.

Unlike the Docker path, the image gets no ``org.opencontainers.image.created``/``revision``
labels (Packer's commit sets only the labels of the spec).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from imagefactory import tools
from imagefactory.build.provision import ansible_programs, check_playbooks
from imagefactory.build.publish import Published
from imagefactory.build.run import BuildOptions, BuildRun
from imagefactory.build.schedule import BuildReporter
from imagefactory.errors import UserError
from imagefactory.project.hashing import ContentInputs
from imagefactory.project.paths import work_dir
from imagefactory.registry.client import RegistryClient
from imagefactory.render.catalog import Pins
from imagefactory.render.packer import (
    packer_sources,
    render_packer,
    render_plugins,
    uses_packer,
    write_packer_folder,
)
from imagefactory.spec.catalog import Catalog, CatalogImage, ref_slug
from imagefactory.spec.packer import DOCKER_SOURCE

PACKER_TIMEOUT = 3600.0


def packer_cli() -> str:
    return tools.require("packer", hint="install Debian's packer (scripts/setup.sh)")


def packer_version(cli: str) -> tuple[int, int]:
    """``packer version``'s major and minor number."""
    output = tools.run(
        [cli, "version"], env={"CHECKPOINT_DISABLE": "1"}, timeout=60, hint="packer version failed"
    ).output
    found = re.search(r"Packer v(\d+)\.(\d+)", output)
    if found is None:
        raise UserError(
            f"cannot read Packer's version from {output[:200]!r}",
            hint="install Debian's packer (scripts/setup.sh) or a HashiCorp release",
        )
    return int(found[1]), int(found[2])


def packer_commands(
    cli: str, version: tuple[int, int], template: Path, sources: Sequence[str]
) -> list[list[str]]:
    """What runs in the template's folder: Packer >= 1.7 installs the required plugins
    (``plugins.pkr.hcl``) and builds the folder; 1.6.6 builds the template alone (it refuses
    ``required_plugins`` and bundles the builders). Only ``sources`` are built."""
    build = [cli, "build", "-color=false", f"-only={','.join(sources)}", "-var", "pull=true"]
    if version >= (1, 7):
        return [[cli, "init", "."], [*build, "."]]
    return [[*build, template.name]]


class PackerRun(BuildRun):
    def __init__(
        self,
        catalog: Catalog,
        client: RegistryClient,
        options: BuildOptions,
        reporter: BuildReporter,
        inputs: dict[str, ContentInputs] | None = None,
        sources: Sequence[str] = (DOCKER_SOURCE,),
    ) -> None:
        """``sources``: the template sources to build (checked by :func:`check_packer_build`)."""
        super().__init__(catalog, client, options, reporter, inputs)
        self.sources = tuple(sources)
        self.version = packer_version(packer_cli())

    def _build(
        self, image: CatalogImage, inputs: ContentInputs, tag: str, started: float
    ) -> Published:
        if not uses_packer(image):
            return super()._build(image, inputs, tag, started)
        catalog, image = self.as_built(image)
        folder = work_dir(catalog) / "packer" / ref_slug(image.ref)
        text = render_packer(catalog, image, self.pins, folder)
        plugins = render_plugins(catalog, image)
        template = write_packer_folder(catalog, image, text, plugins, folder)
        sources = [s for s in self.sources if s in packer_sources(image)]
        with self.engine.child_env() as env:  # its docker builder runs `docker` from PATH
            for argv in packer_commands(packer_cli(), self.version, template, sources):
                tools.run(
                    argv,
                    cwd=template.parent,
                    env={**env, **packer_env(folder)},
                    timeout=PACKER_TIMEOUT,
                    on_line=lambda line: self.reporter.log(image.ref, line),
                    hint=f"packer {argv[1]} of {template} failed",
                )
        return self._finish(image, inputs, tag, started)


def packer_env(folder: Path) -> dict[str, str]:
    """Packer's own config and temporary files stay in the build folder (``docker`` and
    ansible-playbook come from :meth:`Engine.child_env`'s PATH)."""
    config = folder / ".packer"
    config.mkdir(exist_ok=True)
    return {
        "CHECKPOINT_DISABLE": "1",
        "PACKER_CONFIG_DIR": str(config),
    }


def check_packer_build(
    catalog: Catalog,
    images: list[CatalogImage],
    inputs: Mapping[str, ContentInputs],
    sources: Sequence[str] = (DOCKER_SOURCE,),
) -> None:
    """Refuse, before anything runs, what :class:`PackerRun` could not build: no packer, a
    playbook naming a missing role, a template that does not render, ``sources`` without the
    docker source or naming one no template has."""
    packer_cli()  # without packer: the UserError saying how to install it, before any work
    if DOCKER_SOURCE not in sources:
        raise UserError(
            f"--only must include {DOCKER_SOURCE}: the build pushes and records the docker image",
            hint=f"e.g. --only {DOCKER_SOURCE} --only amazon-ebs.vm",
        )
    known = {s for image in filter(uses_packer, images) for s in packer_sources(image)}
    unknown = [s for s in sources if s != DOCKER_SOURCE and s not in known]
    if unknown:
        raise UserError(
            f"no Packer template of this build has the source {', '.join(unknown)}",
            hint=f"the sources are: {', '.join(sorted(known))} (VM sources come from packer.yaml)",
        )
    # Every template renders (settings, secrets, healthcheck, playbooks) before anything runs.
    pins = Pins(catalog.project, inputs, {})
    for image in filter(uses_packer, images):
        if image.spec.playbooks:
            check_playbooks(catalog, image)
            ansible_programs("ansible-playbook")  # its provisioner runs ansible-playbook
        render_packer(catalog, image, pins, work_dir(catalog) / "packer" / ref_slug(image.ref))
        render_plugins(catalog, image)
