"""The Debian mirror's current package versions: its ``Packages`` indexes, fetched and cached.

For a suite (``bookworm``) the indexes are the suite's own, ``-updates`` and ``-security`` (the
mirrors of ``build.mirrors``, as the bootstrap's apt sources name them; a rolling suite has only
its own), per component and architecture: ``dists/<dist>/<component>/binary-<arch>/Packages.xz``.
Each run reads the dist's ``InRelease`` (a few hundred KB): the SHA-256 and size it lists for
an index decide whether the copy kept under the work folder is current, and a downloaded index
must match them (a mirror mid-update or a tampered download is refused). A warm cache costs one
``InRelease`` per dist (mirrors and CDNs often send no ``ETag`` to ask with). When the mirror
cannot be reached, a cached index is used and the answer says so; with none cached, the
command fails naming the URL. (The ``InRelease`` signature is not checked here: apt checks it
at build time, and this report decides no build input by itself.)

Parsing reads only the ``Package`` and ``Version`` fields of each paragraph (an index of the
main component is ~60,000 of them); the newest version of each name wins, by dpkg's ordering.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from debian.debian_support import version_compare

from imagefactory.atomic import read_regular, write_atomically
from imagefactory.errors import UserError
from imagefactory.project.recipe import ROLLING_SUITES
from imagefactory.spec.models import BuildSettings

TIMEOUT = 60
#: The most bytes of one compressed index (bookworm's main/amd64 is ~9 MB) and of its text.
INDEX_LIMIT = 64 * 1024 * 1024
TEXT_LIMIT = 512 * 1024 * 1024
RELEASE_LIMIT = 4 * 1024 * 1024


@dataclass(frozen=True)
class Dist:
    """One apt source of a suite: the mirror URL, the dist and whether it is the security one."""

    mirror: str
    name: str  # bookworm, bookworm-updates, bookworm-security
    security: bool = False


@dataclass(frozen=True)
class Available:
    version: str
    dist: str  # where the newest version is
    security: bool


@dataclass(frozen=True)
class Fetched:
    url: str
    source: str  # "mirror" (downloaded now), "cache" (unchanged: 304) or "stale" (unreachable)
    note: str = ""


def dists(suite: str, build: BuildSettings) -> list[Dist]:
    """The dists of ``suite``, as the bootstrap's apt sources list them."""
    own = Dist(build.mirrors.debian.rstrip("/"), suite)
    if suite in ROLLING_SUITES:
        return [own]
    return [
        own,
        Dist(build.mirrors.debian.rstrip("/"), f"{suite}-updates"),
        Dist(build.mirrors.debian_security.rstrip("/"), f"{suite}-security", security=True),
    ]


def index_url(dist: Dist, component: str, arch: str) -> str:
    return f"{dist.mirror}/dists/{dist.name}/{component}/binary-{arch}/Packages.xz"


def newest(text: str) -> dict[str, str]:
    """Package name → its newest version in one ``Packages`` index's text."""
    found: dict[str, str] = {}
    name = version = ""
    for line in text.splitlines():
        if not line:
            if name and version:
                _keep_newest(found, name, version)
            name = version = ""
        elif line.startswith("Package:"):
            name = line[8:].strip()
        elif line.startswith("Version:"):
            version = line[8:].strip()
    if name and version:
        _keep_newest(found, name, version)
    return found


def _keep_newest(found: dict[str, str], name: str, version: str) -> None:
    known = found.get(name)
    if known is None or version_compare(version, known) > 0:
        found[name] = version


def merged(per_dist: Iterable[tuple[Dist, dict[str, str]]]) -> dict[str, Available]:
    """Package name → the newest version over the dists, and where it is; of equal versions,
    the security dist's (it is the one that fixed it)."""
    result: dict[str, Available] = {}
    for dist, versions in per_dist:
        for name, version in versions.items():
            known = result.get(name)
            order = 1 if known is None else version_compare(version, known.version)
            if order > 0 or (order == 0 and dist.security and known is not None):
                result[name] = Available(version, dist.name, dist.security)
    return result


@dataclass(frozen=True)
class IndexCache:
    """Fetches indexes through the project's proxy and CA bundle into ``folder``."""

    folder: Path
    build: BuildSettings
    ca_bundle: Path | None = None

    def read(self, dist: Dist, component: str, arch: str) -> tuple[dict[str, str], Fetched]:
        """Package name → newest version in ``dist``'s index of ``component``/``arch``, and how
        it was had. What is kept is the parsed index, named by the SHA-256 of the index file."""
        url = index_url(dist, component, arch)
        pointer = self.folder / f"{hashlib.sha256(url.encode()).hexdigest()[:32]}.current"
        try:
            release = self._get(f"{dist.mirror}/dists/{dist.name}/InRelease", RELEASE_LIMIT)
        except UserError as exc:
            kept = self._kept(pointer)
            if kept is None:
                raise
            return kept, Fetched(url, "stale", exc.message)
        path = f"{component}/binary-{arch}/Packages.xz"
        expected = release_entry(release.decode("utf-8", "replace"), path)
        if expected is None:
            raise UserError(
                f"{dist.mirror}/dists/{dist.name}/InRelease lists no {path}",
                hint="check the suite's components and build.mirrors in imagefactory.yaml",
            )
        parsed = self.folder / f"{expected[0]}.json"
        if parsed.is_file():
            kept = self._load(parsed)
            if kept is not None:
                write_atomically(pointer, expected[0].encode())
                return kept, Fetched(url, "cache")
        body = self._get(url, INDEX_LIMIT)
        if (hashlib.sha256(body).hexdigest(), len(body)) != expected:
            raise UserError(
                f"{url} does not match the SHA-256 and size its InRelease lists",
                hint="the mirror is being updated (try again in a few minutes) or tampered with",
            )
        try:
            text = lzma.decompress(body, memlimit=TEXT_LIMIT).decode("utf-8", "replace")
        except lzma.LZMAError as exc:
            raise UserError(f"{url} is not an xz-compressed index: {exc}") from exc
        versions = newest(text)
        replaced = self._named(pointer)
        write_atomically(parsed, json.dumps(versions, sort_keys=True).encode())
        write_atomically(pointer, expected[0].encode())
        if replaced not in (None, expected[0]):
            (self.folder / f"{replaced}.json").unlink(missing_ok=True)  # the index before
        return versions, Fetched(url, "mirror")

    def _named(self, pointer: Path) -> str | None:
        """The SHA-256 of the index ``pointer`` names (the last one read), if any."""
        try:
            name = read_regular(pointer, what="index cache pointer", limit=128).decode().strip()
        except (UserError, OSError, UnicodeDecodeError):
            return None
        return name if re.fullmatch(r"[0-9a-f]{64}", name) else None

    def _kept(self, pointer: Path) -> dict[str, str] | None:
        """The parsed index ``pointer`` names (the last one read), if any."""
        name = self._named(pointer)
        return None if name is None else self._load(self.folder / f"{name}.json")

    @staticmethod
    def _load(path: Path) -> dict[str, str] | None:
        try:
            loaded = json.loads(read_regular(path, what="parsed index", limit=TEXT_LIMIT))
        except (UserError, OSError, ValueError):
            return None
        if not isinstance(loaded, dict):
            return None
        return {str(k): str(v) for k, v in loaded.items()}

    def _get(self, url: str, limit: int) -> bytes:
        try:
            with self._opener().open(url, timeout=TIMEOUT) as got:
                body: bytes = got.read(limit + 1)
        except urllib.error.HTTPError as exc:
            raise UserError(
                f"cannot fetch {url}: HTTP {exc.code}",
                hint="check build.mirrors in imagefactory.yaml and the suite's name",
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise UserError(
                f"cannot reach {url}: {getattr(exc, 'reason', exc)}",
                hint="check build.mirrors and build.proxy in imagefactory.yaml",
            ) from exc
        if len(body) > limit:
            raise UserError(f"{url} is larger than {limit} bytes")
        return body

    def _opener(self) -> urllib.request.OpenerDirector:
        proxy = self.build.proxy
        proxies = {k: v for k, v in (("http", proxy.http), ("https", proxy.https)) if v}
        context = ssl.create_default_context(
            cafile=str(self.ca_bundle) if self.ca_bundle is not None else None
        )
        return urllib.request.build_opener(
            urllib.request.ProxyHandler(proxies), urllib.request.HTTPSHandler(context=context)
        )


def release_entry(release: str, path: str) -> tuple[str, int] | None:
    """(SHA-256, size) the ``SHA256:`` section of a Release/InRelease text lists for ``path``."""
    in_section = False
    for line in release.splitlines():
        if not line.startswith(" "):
            in_section = line.strip() == "SHA256:"
            continue
        fields = line.split()
        if in_section and len(fields) == 3 and fields[2] == path and fields[1].isdigit():
            return fields[0], int(fields[1])
    return None
