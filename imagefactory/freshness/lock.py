"""``imagefactory lock [IMAGE…]``: resolve what each image installs, exactly, into its image.lock.

The resolvers are the installers themselves, run where the build runs them: a throw-away
container of the image's parent (the local build of its current content; host network, the
project's mirrors and CA bundle, as a build has them):

* apt: ``apt-get update && apt-get install -s --no-install-recommends PACKAGES`` — every
  ``Inst NAME [OLD] (VERSION … [ARCH])`` line is a package the image's layer installs or
  upgrades: the whole closure, at the versions apt chose;
* pip: the packages installed for real (the venv may need python3-venv), the venv made as the
  build makes it, then ``pip install --dry-run --quiet --report - REQUIREMENTS`` — each
  distribution pip would install, its version and the SHA-256 of the file it chose for this
  architecture and Python (``download_info.archive_info``). Not ``--ignore-installed``: the lock
  holds what this image's layer adds to its parent's venv; pinning the parent's distributions
  again would make the child reinstall (and could downgrade) what the parent locked.

What comes back is read by the lock file's own grammar (:class:`ImageLock`): a parent image
cannot write anything into a lock that the loader would refuse.

``--check`` needs no engine: each image that installs packages has a lock, the lock names each
of its ``packages:`` and ``pip:`` requirements (at the version a requirement pins), and it holds
nothing for what the image no longer installs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pydantic import ValidationError

from imagefactory.atomic import write_atomically
from imagefactory.build.docker import Engine
from imagefactory.errors import UserError
from imagefactory.project.hashing import content_inputs
from imagefactory.project.paths import ca_bundle_path
from imagefactory.render.dockerfile import CA_TARGET
from imagefactory.spec.catalog import Catalog, CatalogImage
from imagefactory.spec.lock import LOCK_FILE, ImageLock, lock_text
from imagefactory.spec.parents import CatalogParent, ExternalParent

APT_MARK = "--- imagefactory: apt"
PIP_MARK = "--- imagefactory: pip"
#: $1 the venv, $2 how many of the next words are Debian packages, then pip's requirements.
RESOLVE = f"""set -euo pipefail
venv="$1"; count="$2"; shift 2
packages=("${{@:1:$count}}"); shift "$count"
options=()
if [ -f {CA_TARGET} ]; then options=(-o Acquire::https::CaInfo={CA_TARGET}); fi
dpkg --print-architecture
echo '{APT_MARK}'
if [ "$count" -gt 0 ]; then
  apt-get update "${{options[@]}}" >&2
  apt-get install -s --no-install-recommends "${{options[@]}}" "${{packages[@]}}"
fi
echo '{PIP_MARK}'
if [ "$#" -gt 0 ]; then
  if [ "$count" -gt 0 ]; then
    apt-get install -y --no-install-recommends "${{options[@]}}" "${{packages[@]}}" >&2
  fi
  test -x "$venv/bin/python" || python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --disable-pip-version-check --quiet --dry-run --report - "$@"
fi
"""
#: ``Inst libgomp1 (12.2.0-14 Debian:12.12/stable [amd64])``; an upgrade shows ``[OLD]`` first
INST = re.compile(r"Inst (\S+) (?:\[\S+\] )?\((\S+) .*\)")


@dataclass(frozen=True)
class Locked:
    """One image's lock: what it was, what it is now, whether the file changes."""

    image: str
    before: ImageLock | None
    after: ImageLock

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def differences(self) -> dict[str, list[str]]:
        """What the new lock adds, removes and updates (another version) against the one it
        replaces."""
        old, new = _entries(self.before), _entries(self.after)
        return {
            "added": sorted(k for k in new if k not in old),
            "removed": sorted(k for k in old if k not in new),
            "updated": sorted(
                f"{k}: {old[k]} -> {new[k]}" for k in new if old.get(k, new[k]) != new[k]
            ),
        }

    def as_dict(self) -> dict[str, object]:
        return {
            "image": self.image,
            "changed": self.changed,
            "lock": self.after.model_dump(mode="json"),
            **self.differences,
        }


@dataclass(frozen=True)
class Stale:
    """Why an image's lock does not cover what it installs."""

    image: str
    problems: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {"image": self.image, "problems": list(self.problems)}


def lockable(catalog: Catalog, images: Sequence[CatalogImage]) -> list[CatalogImage]:
    """The images of ``images`` that install packages (a lock has something to hold), in build
    order."""
    chosen = {image.ref for image in images}
    return [
        image
        for image in catalog.in_build_order()
        if image.ref in chosen and (image.spec.packages or image.spec.pip)
    ]


def lock_images(
    catalog: Catalog, images: Sequence[CatalogImage], engine: Engine, *, write: bool
) -> list[Locked]:
    """Resolve each image of ``images`` that installs packages; with ``write``, each changed
    lock is written to the image.lock beside its image.yaml (a dry run writes nothing)."""
    results = [
        Locked(image.ref, catalog.locks.get(image.ref), resolve(catalog, image, engine))
        for image in lockable(catalog, images)
    ]
    if write:
        write_locks(catalog, {r.image: r.after for r in results if r.changed})
    return results


def write_locks(catalog: Catalog, changed: Mapping[str, ImageLock]) -> None:
    """Write the image.lock of each folder an image of ``changed`` lives in: its other
    images' locks as they are, ``changed``'s new ones."""
    folders = {catalog.images[ref].folder for ref in changed}
    for folder in sorted(folders):
        locks = {**catalog.locks, **changed}
        mine = {ref: lock for ref, lock in locks.items() if catalog.images[ref].folder == folder}
        write_atomically(folder / LOCK_FILE, lock_text(mine).encode())


def resolve(catalog: Catalog, image: CatalogImage, engine: Engine) -> ImageLock:
    """The lock of ``image``: its packages and pip requirements resolved in its parent."""
    spec = image.spec
    build = catalog.project.build
    env = {"PIP_INDEX_URL": build.mirrors.pypi} if build.mirrors.pypi else {}
    bundle = ca_bundle_path(catalog)
    if bundle is not None:
        env["PIP_CERT"] = CA_TARGET
    result = engine.run_script(
        parent_reference(catalog, image, engine),
        RESOLVE,
        [spec.venv, str(len(spec.packages)), *spec.packages, *spec.pip],
        hint=f"apt or pip could not resolve what {image.ref} installs (the output above says why)",
        files={bundle: CA_TARGET} if bundle is not None else None,
        env=env,
    )
    return parse_resolution(image.ref, result.output)


def parent_reference(catalog: Catalog, image: CatalogImage, engine: Engine) -> str:
    """What the resolvers run in: the local build of the parent's current content."""
    parent = image.parent
    if isinstance(parent, ExternalParent):
        return f"{parent.reference}@{parent.digest}" if parent.digest else parent.reference
    if not isinstance(parent, CatalogParent):
        raise UserError(
            f"{image.ref} is bootstrapped: its packages come from mmdebstrap, not from a parent "
            "image apt could resolve them in",
            hint="list them in bootstrap.packages (the recipe and the mirror state decide them)",
        )
    content_hash = content_inputs(catalog)[parent.ref].content_hash
    local = engine.local_image(content_hash)
    if local is None:
        raise UserError(
            f"{parent.ref}, the parent of {image.ref}, is not built here at its current content "
            f"({content_hash[:19]}…): the lock is resolved in it",
            hint=f"run 'imagefactory build {parent.ref}' (a lock of the parent changes it too), "
            f"then 'imagefactory lock {image.ref}'",
        )
    return local.image_id


def parse_resolution(ref: str, output: str) -> ImageLock:
    """The lock in the resolvers' ``output``: the architecture, apt's ``Inst`` lines, pip's
    report; refused (with what was wrong) when it is not what the script writes."""
    head, apt_mark, rest = output.partition(APT_MARK + "\n")
    apt_text, pip_mark, report = rest.partition(PIP_MARK + "\n")
    if not (apt_mark and pip_mark):
        raise UserError(
            f"the resolvers' output for {ref} is not what they write",
            hint="does the parent image have bash, dpkg and apt?",
        )
    apt = {}
    for line in apt_text.splitlines():
        found = INST.fullmatch(line.strip())
        if found:
            apt[found[1]] = found[2]
    data = {
        "arch": head.strip().splitlines()[-1] if head.strip() else "",
        "apt": apt,
        "pip": pip_pins(ref, report) if report.strip() else {},
    }
    try:
        return ImageLock.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserError(
            f"what apt or pip resolved for {ref} is not a lock: "
            f"{'.'.join(map(str, first['loc']))}: {first['msg']}",
            hint="the parent image's apt or pip answered something unexpected",
        ) from exc


def pip_pins(ref: str, report: str) -> dict[str, dict[str, str]]:
    """name → {version, hash} of each distribution in pip's installation report."""
    try:
        items = json.loads(report)["install"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"pip's installation report for {ref} is not JSON with an 'install' list",
            hint="pip 22.2 or later writes it (pip install --dry-run --report)",
        ) from exc
    pins: dict[str, dict[str, str]] = {}
    for item in items:
        name = canonicalize_name(str(item["metadata"]["name"]))
        archive = item.get("download_info", {}).get("archive_info")
        digest = _sha256(archive) if isinstance(archive, Mapping) else None
        if digest is None:
            raise UserError(
                f"pip installs {name} for {ref} from {item.get('download_info', {}).get('url')}, "
                "not from an archive with a SHA-256",
                hint="lock only index or archive requirements (no VCS or folder requirements)",
            )
        pins[name] = {"version": str(item["metadata"]["version"]), "hash": digest}
    return pins


def _sha256(archive: Mapping[str, Any]) -> str | None:
    """``archive_info``'s SHA-256: ``hashes`` (pip >= 23), else the older ``hash`` string."""
    hashes = archive.get("hashes")
    if isinstance(hashes, Mapping) and "sha256" in hashes:
        return f"sha256:{hashes['sha256']}"
    algorithm, _, value = str(archive.get("hash", "")).partition("=")
    return f"sha256:{value}" if algorithm == "sha256" else None


def check_locks(catalog: Catalog, images: Sequence[CatalogImage]) -> list[Stale]:
    """The images of ``images`` whose lock is missing or does not cover what they install,
    and those with a lock although they install nothing; no engine, no network."""
    stale = []
    for image in images:
        lock = catalog.locks.get(image.ref)
        installs = bool(image.spec.packages or image.spec.pip)
        if lock is None:
            problems = ["no lock: run 'imagefactory lock'"] if installs else []
        elif not installs:
            problems = [f"locked, but installs no packages: remove its entry from {LOCK_FILE}"]
        else:
            problems = lock_problems(image, lock)
        if problems:
            stale.append(Stale(image.ref, tuple(problems)))
    return stale


def lock_problems(image: CatalogImage, lock: ImageLock) -> list[str]:
    """What of the image's ``packages:`` and ``pip:`` ``lock`` does not hold as asked, and the
    kinds it holds the image no longer installs."""
    problems = []
    for package in image.spec.packages:
        name, _, version = package.partition("=")
        locked = lock.apt.get(name, lock.apt.get(name.partition(":")[0]))
        if locked is None:
            problems.append(f"package {name} is not locked")
        elif version and locked != version:
            problems.append(f"package {name} is locked at {locked}, image.yaml asks for {version}")
    for line in image.spec.pip:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        pin = lock.pip.get(name)
        if pin is None:
            problems.append(f"pip requirement {name} is not locked")
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"pip {name} is locked at {pin.version}, image.yaml asks for {line}")
    if lock.apt and not image.spec.packages:
        problems.append("Debian packages locked, but image.yaml installs none")
    if lock.pip and not image.spec.pip:
        problems.append("pip distributions locked, but image.yaml installs none")
    return problems


def _entries(lock: ImageLock | None) -> dict[str, str]:
    if lock is None:
        return {}
    return {
        **{f"apt {n}": v for n, v in lock.apt.items()},
        **{f"pip {n}": p.version for n, p in lock.pip.items()},
    }
