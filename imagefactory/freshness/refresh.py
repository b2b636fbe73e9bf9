"""``imagefactory build --refresh [IMAGE…]``: record the mirror's newer Debian versions in
``refresh.yaml``, then build — exactly the refreshed images and their descendants rebuild.

1. ``outdated`` runs over the images the build would build (the selected ones and their
   ancestors): each built image's installed packages against the mirror's current indexes.
2. Each pending update is recorded under the image that *installed* the package: the one
   nearest the root of the chain that holds it at the installed version. A libc6 update found
   in app/rag-api is the base's (the app holds libc6 from it), a python3.11 update is the
   runtime's: rebuilding the base gives every descendant the new libc6 through its parent, and
   rebuilding the app alone would not (its layers install nothing of libc6).
3. An update of a package the image's own image.yaml installs at a version
   (``libexpat1=2.5.0-1``) is not recorded: the author chose that version; it is reported.
   ``refresh.yaml`` gets, per image and package, the newest version the mirror has (a version
   it records already stays when it is newer). It is written before the build (a failed build
   leaves it for the next run and for review), and only when it changes.
4. The build runs on the catalog with the new records: they are an input of the images'
   content hashes (:mod:`imagefactory.project.hashing`), so the recorded images build again
   (their rootfs bootstrapped again, their package layers not from the cache), their
   descendants with them, and the build checks that dpkg holds each recorded version or a
   later one. Everything else is reused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from debian.debian_support import version_compare

from imagefactory.atomic import write_atomically
from imagefactory.build.catalog import BuildRequest, build_images, build_plan
from imagefactory.build.schedule import BuildReporter, Outcome, images_to_build
from imagefactory.freshness.outdated import Freshness, Installed, OutdatedReport, outdated
from imagefactory.project.plan import PlanEntry
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.refresh import REFRESH_FILE, Refreshed, refresh_text


@dataclass(frozen=True)
class Update:
    """One newer version, recorded under ``image``: the image that installed ``package``."""

    image: str
    package: str
    installed: str
    version: str  # the newest the mirror has: what refresh.yaml records
    dist: str
    security: bool
    seen_in: tuple[str, ...]  # the images ``outdated`` found it pending in

    def as_dict(self) -> dict[str, object]:
        return {
            "image": self.image,
            "package": self.package,
            "installed": self.installed,
            "version": self.version,
            "dist": self.dist,
            "security": self.security,
            "seen_in": list(self.seen_in),
        }


@dataclass(frozen=True)
class RefreshPlan:
    updates: tuple[Update, ...]
    pinned: tuple[Update, ...]  # not recorded: image.yaml installs the package at a version
    refreshed: Refreshed  # refresh.yaml's records with the updates
    changed: bool  # the records differ from the file's
    report: OutdatedReport


@dataclass(frozen=True)
class RefreshResult:
    plan: RefreshPlan
    outcomes: tuple[Outcome, ...] = ()  # none on a dry run
    build_plan: tuple[PlanEntry, ...] = ()  # a dry run's plan with the new records


def refresh_build(
    catalog: Catalog, request: BuildRequest, reporter: BuildReporter | None
) -> RefreshResult:
    """Record the pending updates of what ``request`` builds, then build it; with no
    ``reporter``, a dry run: write and build nothing, say what would be recorded and the plan
    it would give."""
    plan = plan_refresh(catalog, request)
    refreshed = replace(catalog, refreshed=plan.refreshed)
    if reporter is None:
        return RefreshResult(plan, build_plan=tuple(build_plan(refreshed, request)))
    if plan.changed:
        write_atomically(catalog.root / REFRESH_FILE, refresh_text(plan.refreshed).encode())
    return RefreshResult(plan, tuple(build_images(refreshed, request, reporter)))


def plan_refresh(catalog: Catalog, request: BuildRequest) -> RefreshPlan:
    """The updates pending in the images ``request`` would build, each under the image that
    installed its package, and refresh.yaml's records with them."""
    chain = images_to_build(catalog, request.selected(catalog))
    report = outdated(catalog, [image.ref for image in chain], missing_ok=True)
    found = attribute(catalog, report.images)
    pinned = tuple(u for u in found if u.package in _pinned(catalog.images[u.image].spec.packages))
    updates = tuple(u for u in found if u not in pinned)
    records = {ref: dict(versions) for ref, versions in catalog.refreshed.items()}
    for update in updates:
        wanted = records.setdefault(update.image, {})
        held = wanted.get(update.package)
        if held is None or version_compare(update.version, held) > 0:
            wanted[update.package] = update.version
    changed = records != {ref: dict(v) for ref, v in catalog.refreshed.items()}
    return RefreshPlan(updates, pinned, records, changed, report)


def _pinned(packages: list[str]) -> set[str]:
    """The names ``packages`` (image.yaml's) install at a version: ``name[:arch]=version``."""
    return {p.partition("=")[0].partition(":")[0] for p in packages if "=" in p}


def attribute(catalog: Catalog, images: tuple[Freshness, ...]) -> tuple[Update, ...]:
    """Each pending update once, under the image nearest the root of its chain that holds the
    package at the installed version (an ancestor not in ``images``, not built, is passed
    over), with the images it was found pending in."""
    holds: dict[str, set[Installed]] = {one.image: set(one.installed) for one in images}
    found: dict[tuple[str, str], tuple[Update, list[str]]] = {}
    for one in images:
        held = {p.name: p for p in one.installed}
        lineage = [i.ref for i in reversed(catalog.lineage(one.image))]  # root first
        for pending in one.pending:
            package = held[pending.package]
            owner = next(
                ref for ref in lineage if ref == one.image or package in holds.get(ref, ())
            )
            key = (owner, pending.package)
            if key not in found:
                update = Update(
                    owner,
                    pending.package,
                    pending.installed,
                    pending.available,
                    pending.dist,
                    pending.security,
                    (),
                )
                found[key] = (update, [])
            found[key][1].append(one.image)
    return tuple(
        replace(update, seen_in=tuple(sorted(seen)))
        for (_, _), (update, seen) in sorted(found.items())
    )
