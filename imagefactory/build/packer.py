"""``imagefactory build --engine packer``: images that target packer are built by ``packer build``.

The run is :mod:`imagefactory.build.run`'s (DAG order, reuse by content hash, push to the content
tag, state after each image); only the build step of an image whose ``targets`` include
``packer`` differs: its template is rendered (:mod:`imagefactory.render.packer`) into
``.imagefactory/packer/<image>/`` FROM the parent's digest of this run and built with Packer's
docker builder, which pulls the parent with the run's registry credentials. Other images (the
bootstrapped base, images that target only docker) are built by the Docker engine as usual.

Unlike the Docker path, the image gets no ``org.opencontainers.image.created``/``revision``
labels (Packer's commit sets only the labels of the spec).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from imagefactory import tools
from imagefactory.build.provision import ansible_programs, check_playbooks
from imagefactory.build.publish import Published
from imagefactory.build.run import BuildRun
from imagefactory.project.hashing import ContentInputs
from imagefactory.project.paths import work_dir
from imagefactory.render.catalog import Pins
from imagefactory.render.packer import render_packer, uses_packer, write_packer_folder
from imagefactory.spec.catalog import Catalog, CatalogImage, ref_slug

PACKER_TIMEOUT = 3600.0


def packer_cli() -> str:
    return tools.require("packer", hint="install Debian's packer (scripts/setup.sh)")


class PackerRun(BuildRun):
    def _build(
        self, image: CatalogImage, inputs: ContentInputs, tag: str, started: float
    ) -> Published:
        if not uses_packer(image):
            return super()._build(image, inputs, tag, started)
        catalog, image = self.as_built(image)
        folder = work_dir(catalog) / "packer" / ref_slug(image.ref)
        text = render_packer(catalog, image, self.pins, folder)
        template = write_packer_folder(catalog, image, text, folder)
        with self.engine.child_env() as env:  # its docker builder runs `docker` from PATH
            tools.run(
                [packer_cli(), "build", "-color=false", "-var", "pull=true", template.name],
                cwd=template.parent,
                env={**env, **packer_env(folder)},
                timeout=PACKER_TIMEOUT,
                on_line=lambda line: self.reporter.log(image.ref, line),
                hint=f"packer build of {template} failed",
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
    catalog: Catalog, images: list[CatalogImage], inputs: Mapping[str, ContentInputs]
) -> None:
    """Refuse, before anything runs, what :class:`PackerRun` could not build: no packer, a
    playbook naming a missing role, a template that does not render."""
    packer_cli()  # without packer: the UserError saying how to install it, before any work
    # Every template renders (settings, secrets, healthcheck, playbooks) before anything runs.
    pins = Pins(catalog.project, inputs, {})
    for image in filter(uses_packer, images):
        if image.spec.playbooks:
            check_playbooks(catalog, image)
            ansible_programs("ansible-playbook")  # its provisioner runs ansible-playbook
        render_packer(catalog, image, pins, work_dir(catalog) / "packer" / ref_slug(image.ref))
