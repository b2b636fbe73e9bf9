"""Freshness without a daemon: dpkg's version ordering over Packages indexes, the InRelease
hashes that decide what is cached and what is refused (a mirror on loopback, served by
http.server from files laid out as a Debian mirror), and which installed packages are pending."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import lzma
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagefactory.errors import UserError
from imagefactory.freshness.indexes import (
    Available,
    Dist,
    IndexCache,
    dists,
    merged,
    newest,
    release_entry,
)
from imagefactory.freshness.outdated import Installed, installed_debian, pending_updates
from imagefactory.spec.models import BuildSettings, Mirrors

MAIN = """\
Package: libexpat1
Version: 2.5.0-1+deb12u1
Architecture: amd64

Package: tzdata
Version: 2024a-0+deb12u1
Architecture: all

Package: epoch
Version: 9.0-1
Architecture: amd64

Package: epoch
Version: 1:1.0-1
Architecture: amd64

Package: tilde
Version: 1.0-1
Architecture: amd64

Package: tilde
Version: 1.0~rc1-1
Architecture: amd64
"""
SECURITY = """\
Package: libexpat1
Version: 2.5.0-1+deb12u2
Architecture: amd64

Package: tzdata
Version: 2025b-0+deb12u1
Architecture: all
"""
UPDATES = """\
Package: tzdata
Version: 2025b-0+deb12u1
Architecture: all
"""


def test_the_newest_version_wins_by_dpkgs_ordering() -> None:
    assert newest(MAIN) == {
        "libexpat1": "2.5.0-1+deb12u1",
        "tzdata": "2024a-0+deb12u1",
        "epoch": "1:1.0-1",  # an epoch outranks any upstream version
        "tilde": "1.0-1",  # ~ sorts before the release
    }


def test_of_equal_versions_the_security_dist_is_named() -> None:
    own, updates, security = dists("bookworm", BuildSettings())
    assert (own.name, updates.name, security.name) == (
        "bookworm",
        "bookworm-updates",
        "bookworm-security",
    )
    assert security.mirror == "http://deb.debian.org/debian-security" and security.security
    available = merged(
        [(own, newest(MAIN)), (updates, newest(UPDATES)), (security, newest(SECURITY))]
    )
    assert available["tzdata"] == Available("2025b-0+deb12u1", "bookworm-security", True)
    assert available["libexpat1"] == Available("2.5.0-1+deb12u2", "bookworm-security", True)
    assert available["epoch"] == Available("1:1.0-1", "bookworm", False)
    assert [d.name for d in dists("sid", BuildSettings())] == ["sid"]
    # two indexes of one dist (components, architectures): the newer version stays
    both = merged([(own, {"tool": "2.0-1"}), (own, {"tool": "1.0-1"})])
    assert both["tool"] == Available("2.0-1", "bookworm", False)


def test_pending_updates_are_the_installed_packages_with_a_newer_version() -> None:
    available = {
        "libexpat1": Available("2.5.0-1+deb12u2", "bookworm-security", True),
        "tzdata": Available("2025b-0+deb12u1", "bookworm-updates", False),
        "libc6": Available("2.36-9+deb12u10", "bookworm", False),
    }
    installed = [
        Installed("tzdata", "2024a-0+deb12u1", "all"),
        Installed("libexpat1", "2.5.0-1+deb12u1", "amd64"),
        Installed("libc6", "2.36-9+deb12u10", "amd64"),  # current
        Installed("local-only", "1.0", "amd64"),  # not in the mirror
    ]
    pending = pending_updates(installed, available)
    assert [(p.package, p.installed, p.available, p.security) for p in pending] == [
        ("libexpat1", "2.5.0-1+deb12u1", "2.5.0-1+deb12u2", True),
        ("tzdata", "2024a-0+deb12u1", "2025b-0+deb12u1", False),
    ]


def test_installed_packages_come_from_the_sboms_deb_purls() -> None:
    sbom = {
        "bomFormat": "CycloneDX",
        "components": [
            {"name": "libc6", "purl": "pkg:deb/debian/libc6@2.36-9%2Bdeb12u10?arch=amd64"},
            {"name": "tzdata", "purl": "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all"},
            {"name": "numpy", "purl": "pkg:pypi/numpy@2.2.6"},
            {"name": "rag_api", "type": "file"},
            {"name": "broken", "purl": "pkg:deb/"},
        ],
    }
    assert installed_debian(json.dumps(sbom)) == [
        Installed("libc6", "2.36-9+deb12u10", "amd64"),
        Installed("tzdata", "2024a-0+deb12u1", "all"),
    ]
    with pytest.raises(UserError, match="not a CycloneDX document"):
        installed_debian("{}")


def test_release_entry_reads_the_sha256_section() -> None:
    release = (
        "Origin: Debian\nMD5Sum:\n 0123 10 main/binary-amd64/Packages.xz\n"
        "SHA256:\n 1111 20 main/binary-arm64/Packages.xz\n 2222 30 main/binary-amd64/Packages.xz\n"
    )
    assert release_entry(release, "main/binary-amd64/Packages.xz") == ("2222", 30)
    assert release_entry(release, "contrib/binary-amd64/Packages.xz") is None


# ------------------------------------------------------------------ a mirror on loopback


def _publish(root: Path, dist: str, text: str, *, lie: bool = False) -> None:
    """dists/<dist>/main/binary-amd64/Packages.xz and an InRelease listing its hash (or, with
    ``lie``, another file's)."""
    folder = root / "dists" / dist / "main" / "binary-amd64"
    folder.mkdir(parents=True, exist_ok=True)
    body = lzma.compress(text.encode())
    (folder / "Packages.xz").write_bytes(body)
    digest = hashlib.sha256(b"other" if lie else body).hexdigest()
    (root / "dists" / dist / "InRelease").write_text(
        f"Suite: {dist}\nSHA256:\n {digest} {len(body)} main/binary-amd64/Packages.xz\n"
    )


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def _mirror(root: Path) -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _cache(tmp_path: Path, url: str) -> tuple[IndexCache, Dist]:
    build = BuildSettings(mirrors=Mirrors(debian=url, debian_security=url))
    return IndexCache(tmp_path / "cache", build), dists("bookworm", build)[0]


def test_an_index_is_downloaded_once_and_kept_while_its_inrelease_names_it(
    tmp_path: Path,
) -> None:
    root = tmp_path / "mirror"
    _publish(root, "bookworm", MAIN)
    with _mirror(root) as url:
        cache, dist = _cache(tmp_path, url)
        first, how = cache.read(dist, "main", "amd64")
        assert (first["tzdata"], how.source) == ("2024a-0+deb12u1", "mirror")
        assert cache.read(dist, "main", "amd64")[1].source == "cache"
        _publish(root, "bookworm", SECURITY)  # the mirror moved on: a new InRelease
        changed, how = cache.read(dist, "main", "amd64")
        assert (changed["tzdata"], how.source) == ("2025b-0+deb12u1", "mirror")
        assert len(list((tmp_path / "cache").glob("*.json"))) == 1  # the old one is gone
    # the mirror is gone: the last index read is used, and the answer says so
    kept, how = cache.read(dist, "main", "amd64")
    assert (kept["tzdata"], how.source) == ("2025b-0+deb12u1", "stale")
    assert "cannot reach" in how.note


def test_an_index_that_does_not_match_its_inrelease_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "mirror"
    _publish(root, "bookworm", MAIN, lie=True)
    with _mirror(root) as url:
        cache, dist = _cache(tmp_path, url)
        with pytest.raises(UserError, match="does not match the SHA-256 and size"):
            cache.read(dist, "main", "amd64")
        with pytest.raises(UserError, match=r"lists no contrib/binary-amd64/Packages\.xz"):
            cache.read(dist, "contrib", "amd64")
    assert not list((tmp_path / "cache").glob("*.json"))


def test_an_unreachable_mirror_without_a_cache_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "mirror"
    root.mkdir()
    with _mirror(root) as url:
        cache, dist = _cache(tmp_path, url)
        with pytest.raises(UserError, match="HTTP 404") as caught:
            cache.read(dist, "main", "amd64")
    assert caught.value.hint is not None and "build.mirrors" in caught.value.hint
