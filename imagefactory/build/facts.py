"""What one build was made from and by whom: the SLSA facts (:class:`BuildFacts`) of its
provenance, read from the catalog's git checkout, the CI job's variables and the built image.

* **catalog**: the clone URL of the checkout's remote (``origin``, else the first one) with any
  user, password or token, query and fragment removed (GitLab's ``CI_REPOSITORY_URL`` carries
  the job token); scp-like ``git@host:path`` becomes ``ssh://host/path``; a checkout without a
  remote is named by its ``file://`` path. The ref is ``CI_COMMIT_REF_NAME`` in CI, else the
  branch checked out (``HEAD`` when detached); the commit is the one the build's revision label
  names (empty outside git; a tree that differs from it is recorded as ``catalog_dirty``).
* **dependencies**: the parent by digest (``provenance.predicate`` writes it); each Debian
  mirror's ``Release``/``InRelease`` file its bootstrap installed from (taken before mmdebstrap
  empties the lists: :func:`imagefactory.build.bootstrap.release_hashes`) or found in the
  image's ``/var/lib/apt/lists`` (SHA-256 of its bytes; absent when the build removed the lists,
  which the standard template does: never guessed, see docs/supply-chain.md); the pip
  requirements (SHA-256 of them one per line, the ``requirements.txt`` pip is given).
* **builder**: ``$CI_SERVER_URL/$CI_PROJECT_PATH/-/runners/$CI_RUNNER_ID`` in a GitLab job, else
  ``local:<user>@<host>``; the invocation is ``CI_JOB_URL``, else a UUID URN of the run.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import socket
import urllib.parse
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from imagefactory import __version__, ci_env, git
from imagefactory.render.dockerfile import ParentPin
from imagefactory.sbom.rootfs import RootFiles
from imagefactory.signing.provenance import BuildFacts, Dependency
from imagefactory.spec.catalog import Catalog, CatalogImage

LISTS = "var/lib/apt/lists"
_RELEASE = re.compile(rf"{LISTS}/[^/]+_(?:In)?Release")
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>.+)$")


@dataclass(frozen=True)
class RunFacts:
    """What every image of one build run shares: the catalog's URI, ref and commit, who
    builds and the invocation."""

    catalog_uri: str
    catalog_ref: str
    commit: str
    dirty: bool
    builder_id: str
    invocation_id: str

    @classmethod
    def of(cls, root: Path, revision: str | None) -> RunFacts:
        """The facts of a run in the checkout at ``root``; ``revision``: its revision label
        (``<sha>`` or ``<sha>-dirty``; None outside git)."""
        commit = (revision or "").removesuffix("-dirty")
        return cls(
            catalog_uri=catalog_uri(root),
            catalog_ref=catalog_ref(root),
            commit=commit,
            dirty=bool(revision and revision.endswith("-dirty")),
            builder_id=builder_id(),
            invocation_id=os.environ.get("CI_JOB_URL") or uuid.uuid4().urn,
        )


def build_facts(
    catalog: Catalog,
    image: CatalogImage,
    run: RunFacts,
    *,
    parent: ParentPin | None,
    root: RootFiles,
    started_on: datetime,
    finished_on: datetime,
    bootstrap_releases: Sequence[tuple[str, str]] = (),
    internal: Sequence[tuple[str, str]] = (),
) -> BuildFacts:
    """The provenance facts of ``image`` (as built) built on ``parent`` (None: bootstrapped),
    whose root filesystem is ``root``; ``bootstrap_releases``: (apt list file name, SHA-256) of
    the Release files its bootstrap installed from; ``internal``: more internal parameters."""
    parameters = [("imagefactory", __version__)]
    if run.dirty:
        parameters.append(("catalog_dirty", "true"))
    parameters += internal
    path = image.file.relative_to(catalog.root).as_posix()
    dependencies = [_release(name, digest) for name, digest in bootstrap_releases]
    dependencies += [d for d in debian_releases(root) if d not in dependencies]
    if image.spec.pip:
        text = "".join(f"{requirement}\n" for requirement in image.spec.pip)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        dependencies.append(
            Dependency("pip-requirements", f"file:{path}#pip", (("sha256", digest),))
        )
    pinned = parent is not None and parent.digest is not None
    return BuildFacts(
        catalog_uri=run.catalog_uri,
        catalog_ref=run.catalog_ref,
        catalog_path=path,
        catalog_commit=run.commit,
        spec=image.ref,
        variant="-".join(image.spec.variant.values()) or None,
        parent_repository=parent.reference.partition("@")[0] if pinned and parent else None,
        parent_digest=parent.digest if pinned and parent else None,
        builder_id=run.builder_id,
        invocation_id=run.invocation_id,
        started_on=started_on,
        finished_on=finished_on,
        internal=tuple(parameters),
        dependencies=tuple(dependencies),
    )


def debian_releases(root: RootFiles) -> list[Dependency]:
    """A ``debian-release`` dependency for each Release/InRelease file in the image's apt lists."""
    return [
        _release(path.rpartition("/")[2], hashlib.sha256(root.files[path]).hexdigest())
        for path in root.matching(_RELEASE)
    ]


def _release(name: str, sha256: str) -> Dependency:
    return Dependency("debian-release", f"file:///{LISTS}/{name}", (("sha256", sha256),))


def strip_credentials(url: str) -> str:
    """``url`` without a user, password or token, query or fragment; scp-like
    ``user@host:path`` as ``ssh://host/path``."""
    url = url.strip()
    if "://" not in url:
        match = _SCP_LIKE.match(url)
        if match is None:  # a local path
            return url
        return f"ssh://{match['host']}/{match['path'].lstrip('/')}"
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def catalog_uri(root: Path) -> str:
    """The catalog's clone URL (``origin``'s, else the first remote's; credentials stripped),
    or its ``file://`` path when it has no remote."""
    listed = git.run(root, "remote", check=False, separate_stderr=True)
    names = listed.output.split() if listed.returncode == 0 else []
    if names:
        name = "origin" if "origin" in names else names[0]
        result = git.run(root, "remote", "get-url", name, check=False, separate_stderr=True)
        if result.returncode == 0 and result.output.strip():
            return strip_credentials(result.output.strip())
    return root.resolve().as_uri()


def catalog_ref(root: Path) -> str:
    """``CI_COMMIT_REF_NAME``, else the branch checked out (``HEAD`` when detached or outside
    git)."""
    ref = os.environ.get("CI_COMMIT_REF_NAME")
    if ref:
        return ref
    result = git.run(
        root, "symbolic-ref", "--short", "-q", "HEAD", check=False, separate_stderr=True
    )
    return result.output.strip() if result.returncode == 0 and result.output.strip() else "HEAD"


def builder_id() -> str:
    """The GitLab runner's URL in CI, else ``local:<user>@<host>``."""
    server, project, runner = (
        os.environ.get(name) for name in ("CI_SERVER_URL", "CI_PROJECT_PATH", "CI_RUNNER_ID")
    )
    if ci_env.in_gitlab_ci() and server and project and runner:
        return f"{server.rstrip('/')}/{project}/-/runners/{runner}"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER
        user = "unknown"
    return f"local:{user}@{socket.gethostname()}"
