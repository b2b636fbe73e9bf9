"""Write the GitOps repository layout into a checkout (``imagefactory gitops init``): every
file ``manifests`` renders, each overlay pinned by the digest state records for its
environment. An overlay that exists is kept (it holds the pins) unless forced. Every file lands
inside the checkout, never through a symlink."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imagefactory.atomic import inside, write_atomically
from imagefactory.gitops.manifests import Pinned, render_repository
from imagefactory.project.paths import state_file
from imagefactory.project.state import load_state
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.gitops import load_settings


@dataclass(frozen=True)
class Scaffold:
    written: list[str]  # paths relative to the checkout
    kept: list[str]  # existing overlays left as they are


def write_layout(catalog: Catalog, directory: Path, *, force: bool) -> Scaffold:
    settings = load_settings(catalog)
    state = load_state(state_file(catalog))
    pins = {
        (ref, env): Pinned(held.digest, held.version)
        for ref, record in state.images.items()
        for env, held in record.environments.items()
    }
    written, kept = [], []
    for relative, text in render_repository(catalog, settings, pins).items():
        path = inside(directory, relative)
        if "/overlays/" in relative and path.exists() and not force:
            kept.append(relative)
            continue
        write_atomically(path, text.encode("utf-8"), mode=0o644, root=directory)
        written.append(relative)
    return Scaffold(written, kept)
