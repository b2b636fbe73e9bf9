"""What the GitOps repository pins vs what state says each environment holds; every digest
it pins (what ``revoke`` reports as still deployed and ``gc`` never deletes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imagefactory.gitops import repo
from imagefactory.gitops.manifests import applications, overlay_file
from imagefactory.gitops.update import read_overlay, read_pins
from imagefactory.project.paths import state_file
from imagefactory.project.state import load_state
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.gitops import GITOPS_FILE, GitopsSettings, remote_url


@dataclass(frozen=True)
class Drift:
    """One application in one environment: what the GitOps repository pins and what state says
    the environment holds.

    ``status``: ``in-sync`` (both name the same digest); ``drift`` (they name different
    digests); ``unpinned`` (state says the environment holds a digest, and the overlay pins
    none: its entry was removed, or it pins a tag; drift too); ``not-deployed`` (neither state
    nor the overlay names a digest: the image was never released there); ``not-in-state`` (the
    overlay pins a digest this checkout's state knows nothing of: state is a cache, so it is not
    drift). ``gitops diff --check`` fails on ``drift`` and ``unpinned``.
    """

    image: str
    pinned: str | None
    state: str | None
    status: str  # in-sync | drift | unpinned | not-deployed | not-in-state

    @property
    def drifted(self) -> bool:
        return self.status in ("drift", "unpinned")

    def as_dict(self) -> dict[str, object]:
        return {
            "image": self.image,
            "pinned": self.pinned,
            "state": self.state,
            "status": self.status,
            "drift": self.drifted,
        }


def drift(catalog: Catalog, env: str, checkout: Path | None = None) -> list[Drift]:
    """Per application, what the GitOps repository pins in ``env`` and what state says ``env``
    holds: read in ``checkout``, else in a fresh clone of gitops.yaml's ``repo_url``."""
    settings = repo.settings_for_run(catalog)
    settings.environment(env)
    if checkout is not None:
        return _compare(catalog, settings, env, checkout)
    with repo.clone(remote_url(catalog.root, settings.repo_url), settings.branch) as workdir:
        return _compare(catalog, settings, env, workdir)


def _compare(catalog: Catalog, settings: GitopsSettings, env: str, checkout: Path) -> list[Drift]:
    state = load_state(state_file(catalog))
    rows = []
    for image in sorted(applications(catalog), key=lambda i: i.ref):
        record = state.images.get(image.ref)
        held = record.environments.get(env) if record else None
        want = held.digest if held else None
        text = read_overlay(checkout, overlay_file(settings, image, env))
        pinned = read_pins(text).get(image.spec.name) if text is not None else None
        rows.append(Drift(image.ref, pinned, want, _status(pinned, want)))
    return rows


def _status(pinned: str | None, want: str | None) -> str:
    if pinned is None:
        return "not-deployed" if want is None else "unpinned"
    if want is None:
        return "not-in-state"
    return "in-sync" if pinned == want else "drift"


@dataclass(frozen=True)
class Pinned:
    """A digest an environment's overlay of the GitOps repository pins for an application."""

    env: str
    image: str  # the catalog ref
    digest: str


def pinned_digests(catalog: Catalog) -> list[Pinned]:
    """Every digest the overlays pin: per application, per environment of gitops.yaml, read in
    a fresh clone of its ``repo_url``; none without a gitops.yaml. A repository that cannot be
    cloned is the error ``repo.clone`` raises (callers that must know every pin stop there)."""
    if not (catalog.root / GITOPS_FILE).exists():
        return []
    settings = repo.settings_for_run(catalog)
    found = []
    with repo.clone(remote_url(catalog.root, settings.repo_url), settings.branch) as checkout:
        for image in sorted(applications(catalog), key=lambda i: i.ref):
            for env in settings.environments:
                text = read_overlay(checkout, overlay_file(settings, image, env))
                digest = read_pins(text).get(image.spec.name) if text is not None else None
                if digest is not None:
                    found.append(Pinned(env, image.ref, digest))
    return found
