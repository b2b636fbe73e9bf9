"""The SBOM of an image's root filesystem (imagefactory.sbom): packages found as syft finds
them, purls as syft writes them, a valid CycloneDX 1.6 document, the same bytes for the same
image whether read from a folder or from its layers, and the diff of two SBOMs.

The fixture filesystem is written by the tests: a dpkg status with three installed packages
(one whose Source differs from its name, with a source version; one of ``Architecture: all``)
and a removed one, a DEP-5 copyright, a free-form one, two dist-info folders, and a later layer
whose whiteouts remove one of them.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import tarfile
import uuid
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from imagefactory.errors import UserError
from imagefactory.sbom import catalog, document, rootfs
from imagefactory.sbom.diff import Change, Entry, diff

TIME = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
IMAGE = document.ImageIdentity("registry.test:5000/app/rag-api", "1.4.0", "sha256:" + "a" * 64)
PARENT = document.ParentImage("registry.test:5000/runtime/python:3.11", "sha256:" + "b" * 64)

OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'
STATUS = b"""\
Package: bsdutils
Essential: yes
Status: install ok installed
Priority: required
Architecture: amd64
Source: util-linux (2.38.1-5)
Version: 1:2.38.1-5+b1
Installed-Size: 214
Description: basic utilities from 4.4BSD-Lite
 This package contains the bare minimum of BSD utilities.

Package: libpam-runtime
Status: install ok installed
Architecture: all
Source: pam
Version: 1.5.2-6+deb12u1
Description: Runtime support for the PAM library

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.0.15-1~deb12u1

Package: removed-thing
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
"""
DEP5 = b"""\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: Linux-PAM

Files: *
Copyright: 1995-2023 The Linux-PAM authors
License: GPL-2+ or BSD-3-clause

Files: modules/pam_unix/*
License: GPL-2+

Files: libpam/*
License: BSD-3-clause
 Redistribution and use in source and binary forms are permitted.
 On Debian systems, see /usr/share/common-licenses/GPL-2.

Files: debian/*
License: none
"""
FREE_FORM = b"This is Debian's prepackaged version of OpenSSL.\nLicense: Apache-2.0\n"
SITE = "usr/lib/python3/dist-packages"


def _metadata(name: str, version: str, license_: str) -> bytes:
    return (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nLicense: {license_}\n\n"
        "A long description.\n"
    ).encode()


#: The base layer, as path → bytes (a str is a symlink's target).
BASE: dict[str, bytes | str] = {
    "usr/lib/os-release": OS_RELEASE,
    "etc/os-release": "../usr/lib/os-release",
    "var/lib/dpkg/status": STATUS,
    "usr/share/doc/libpam-runtime/copyright": DEP5,
    "usr/share/doc/libssl3/copyright": FREE_FORM,
    f"{SITE}/Jinja2_Ext.Tools-3.1.4.dist-info/METADATA": _metadata(
        "Jinja2_Ext.Tools", "3.1.4", "BSD-3-Clause"
    ),
    f"{SITE}/requests-2.32.3.dist-info/METADATA": _metadata("requests", "2.32.3", "Apache-2.0"),
    f"{SITE}/requests-2.32.3.dist-info/RECORD": (
        b"requests/__init__.py,sha256=abc,4900\nrequests/api.py,sha256=def,6100\n"
        b"requests/__pycache__/api.cpython-311.pyc,,\nrequests-2.32.3.dist-info/RECORD,,\n"
    ),
}


def _write_tree(root: Path, entries: dict[str, bytes | str]) -> None:
    for name, content in entries.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.symlink_to(content)
        else:
            path.write_bytes(content)


def _write_layer(path: Path, entries: dict[str, bytes | str], *, gzip: bool = False) -> Path:
    with tarfile.open(path, "w:gz" if gzip else "w") as archive:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return path


def _sbom(root: rootfs.RootFiles, serial: uuid.UUID | None = None) -> str:
    return document.sbom_json(root, IMAGE, timestamp=TIME, parent=PARENT, serial=serial)


@pytest.fixture
def tree(tmp_path: Path) -> rootfs.RootFiles:
    _write_tree(tmp_path / "root", BASE)
    return rootfs.from_directory(tmp_path / "root")


def test_debian_packages_as_syft_finds_them(tree: rootfs.RootFiles) -> None:
    found = {p.name: p for p in catalog.packages(tree) if p.kind == "deb"}
    assert sorted(found) == ["bsdutils", "libpam-runtime", "libssl3"]  # the removed one skipped
    bsdutils = found["bsdutils"]
    assert (bsdutils.source, bsdutils.source_version, bsdutils.arch) == (
        "util-linux",
        "2.38.1-5",
        "amd64",
    )
    # DEP-5: each License word, "X or Y" summaries and "none" skipped, common-licenses refs kept
    assert found["libpam-runtime"].licenses == ("BSD-3-clause", "GPL-2", "GPL-2+")
    # not machine-readable (no Format header): no license, as syft
    assert found["libssl3"].licenses == ()


def test_each_package_knows_the_bytes_it_takes(tree: rootfs.RootFiles) -> None:
    """dpkg's Installed-Size (KiB) and the sizes a wheel's RECORD lists (files without one,
    the RECORD itself and bytecode, count nothing); None where the image does not say."""
    sizes = {(p.kind, p.name): p.size_bytes for p in catalog.packages(tree)}
    assert sizes[("deb", "bsdutils")] == 214 * 1024
    assert sizes[("deb", "libssl3")] is None
    assert sizes[("pypi", "requests")] == 4900 + 6100
    assert sizes[("pypi", "Jinja2_Ext.Tools")] is None  # no RECORD


def test_a_packages_size_is_its_listed_files_as_they_are_in_the_image(tmp_path: Path) -> None:
    """What dpkg lists and the image holds: a path-exclude kept the man page out (so dpkg's
    Installed-Size over-counts), /sbin is merged into /usr, a hard link's bytes count once;
    the same from the unpacked tree and from the layers."""
    status = b"Package: tool\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n"
    entries: dict[str, bytes | str] = {
        "usr/lib/os-release": OS_RELEASE,
        "var/lib/dpkg/status": status + b"Installed-Size: 900\n",
        "var/lib/dpkg/info/tool.list": b"/.\n/usr\n/usr/sbin\n/sbin/tool\n/usr/sbin/tool-b\n"
        b"/usr/share/man/man8/tool.8.gz\n/usr/lib/tool.so\n",
        "sbin": "usr/sbin",
        "usr/sbin/tool": b"x" * 1000,
        "usr/lib/tool.so": b"y" * 300,
    }
    _write_tree(tmp_path / "root", entries)
    os.link(tmp_path / "root/usr/sbin/tool", tmp_path / "root/usr/sbin/tool-b")
    [from_tree] = catalog.packages(rootfs.from_directory(tmp_path / "root"))
    assert from_tree.size_bytes == 1300  # not 900 KiB, not 2300
    layer = tmp_path / "layer.tar"
    with tarfile.open(layer, "w") as archive:
        archive.add(tmp_path / "root", arcname=".")
    [from_layer] = catalog.packages(rootfs.from_layers([layer]))
    assert from_layer.size_bytes == 1300


def test_purls_are_syfts_character_for_character(tree: rootfs.RootFiles) -> None:
    """Against what syft writes. Sources (read through the code index):

    * anchore/syft syft/pkg/cataloger/debian/package_test.go ``Test_packageURL``: the expected
      ``pkg:deb/debian/p@v?distro=debian-11&upstream=s%402.3`` and
      ``pkg:deb/ubuntu/p@v?arch=a&distro=ubuntu-16.04`` (qualifiers sorted by key, the source
      version joined with ``@`` and encoded);
    * a public repository's assertion on real syft 1.54.0 scans of its fixtures:
      ``pkg:deb/debian/busybox@1%3A1.35.0-4%2Bb3?arch=arm64&distro=debian-12``,
      ``pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=arm64&distro=debian-12``,
      ``pkg:pypi/alpha-fixture@1.2.3`` (the epoch's ``:`` and the ``+`` encoded, ``~`` not).
    """
    syft = catalog.syft_purl
    assert syft("deb", "debian", "p", "v", {"distro": "debian-11", "upstream": "s@2.3"}) == (
        "pkg:deb/debian/p@v?distro=debian-11&upstream=s%402.3"
    )
    assert syft("deb", "ubuntu", "p", "v", {"arch": "a", "distro": "ubuntu-16.04"}) == (
        "pkg:deb/ubuntu/p@v?arch=a&distro=ubuntu-16.04"
    )
    assert syft(
        "deb", "debian", "busybox", "1:1.35.0-4+b3", {"arch": "arm64", "distro": "debian-12"}
    ) == ("pkg:deb/debian/busybox@1%3A1.35.0-4%2Bb3?arch=arm64&distro=debian-12")
    assert syft(
        "deb", "debian", "libssl3", "3.0.11-1~deb12u2", {"arch": "arm64", "distro": "debian-12"}
    ) == ("pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=arm64&distro=debian-12")
    assert syft("pypi", "", "alpha-fixture", "1.2.3", {}) == "pkg:pypi/alpha-fixture@1.2.3"

    # the fixture's packages, read from the image the way syft reads them
    purls = sorted(p.purl for p in catalog.packages(tree))
    assert purls == [
        "pkg:deb/debian/bsdutils@1%3A2.38.1-5%2Bb1?arch=amd64&distro=debian-12&upstream=util-linux%402.38.1-5",
        "pkg:deb/debian/libpam-runtime@1.5.2-6%2Bdeb12u1?arch=all&distro=debian-12&upstream=pam",
        "pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&distro=debian-12&upstream=openssl",
        "pkg:pypi/jinja2-ext-tools@3.1.4",  # Jinja2_Ext.Tools, PEP 503-normalised
        "pkg:pypi/requests@2.32.3",
    ]
    # and the document carries that text, not packageurl-python's re-encoding
    components = json.loads(_sbom(tree))["components"]
    assert sorted(c["purl"] for c in components if c["type"] == "library") == purls
    assert all(c["bom-ref"] == c["purl"] for c in components if c["type"] == "library")


def test_no_purl_without_a_debian_os_release(tmp_path: Path) -> None:
    """syft writes no deb purl unless os-release's ID or ID_LIKE is debian."""
    _write_tree(tmp_path, {"var/lib/dpkg/status": STATUS, "etc/os-release": b"ID=alpine\n"})
    assert [p.purl for p in catalog.packages(rootfs.from_directory(tmp_path))] == ["", "", ""]
    _write_tree(
        tmp_path / "u",
        {
            "var/lib/dpkg/status": STATUS,
            "etc/os-release": b'ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n',
        },
    )
    ubuntu = catalog.packages(rootfs.from_directory(tmp_path / "u"))
    assert ubuntu[0].purl.startswith("pkg:deb/ubuntu/bsdutils@") and ubuntu[0].purl.endswith(
        "distro=ubuntu-24.04&upstream=util-linux%402.38.1-5"
    )


def test_distroless_status_d(tmp_path: Path) -> None:
    """Shell-less images keep one paragraph per file in status.d/ (syft's distroless glob);
    its md5sums files beside them hold no paragraph with a Package."""
    _write_tree(
        tmp_path,
        {
            "etc/os-release": OS_RELEASE,
            "var/lib/dpkg/status.d/libssl3": (
                b"Package: libssl3\nArchitecture: arm64\nSource: openssl\nVersion: 3.0.15-1~deb12u1\n"
            ),
            "var/lib/dpkg/status.d/libssl3.md5sums": b"0123abcd  usr/lib/libssl.so.3\n",
        },
    )
    (found,) = catalog.packages(rootfs.from_directory(tmp_path))
    assert (
        found.purl
        == "pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=arm64&distro=debian-12&upstream=openssl"
    )
    assert found.location == "var/lib/dpkg/status.d/libssl3"


def test_the_document_is_strictly_valid_cyclonedx_1_6(tree: rootfs.RootFiles) -> None:
    text = _sbom(tree)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    document.validate(text)
    bom = json.loads(text)
    assert (bom["bomFormat"], bom["specVersion"]) == ("CycloneDX", "1.6")
    subject = bom["metadata"]["component"]
    # the version is the digest, as syft writes it (its CycloneDX reader takes it for the
    # manifest digest); the semver version is a property
    assert (subject["type"], subject["name"], subject["version"]) == (
        "container",
        IMAGE.name,
        IMAGE.digest,
    )
    assert {"name": "imagefactory:version", "value": "1.4.0"} in subject["properties"]
    assert subject["hashes"] == [{"alg": "SHA-256", "content": "a" * 64}]
    (parent,) = [c for c in bom["components"] if c["type"] == "container"]
    assert (parent["name"], parent["version"]) == (PARENT.reference, PARENT.digest)
    assert {"name": "imagefactory:role", "value": "parent"} in parent["properties"]
    pam = next(c for c in bom["components"] if c["name"] == "libpam-runtime")
    # an SPDX id where the Debian name is one (case fixed), the Debian name where it is not
    assert pam["licenses"] == [
        {"license": {"id": "BSD-3-Clause"}},
        {"license": {"name": "GPL-2"}},
        {"license": {"name": "GPL-2+"}},
    ]
    requests = next(c for c in bom["components"] if c["name"] == "requests")
    assert requests["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    (root_dependency,) = [d for d in bom["dependencies"] if d["ref"] == subject["bom-ref"]]
    assert len(root_dependency["dependsOn"]) == 6  # the parent and five packages


def test_an_invalid_document_is_refused() -> None:
    with pytest.raises(UserError, match=r"not valid CycloneDX 1\.6"):
        document.validate('{"bomFormat": "CycloneDX", "specVersion": "1.6", "extra": 1}')


def test_layers_with_whiteouts_give_the_folders_bytes(tmp_path: Path) -> None:
    """The image's layers, streamed in order: a later layer's whiteout removes a dist-info
    folder, and an opaque folder hides what the base put in it; the result is the same SBOM,
    byte for byte, as the folder holding the final tree."""
    base = _write_layer(tmp_path / "base.tar", BASE, gzip=True)
    extra_site = "usr/local/lib/python3.11/site-packages"
    top = _write_layer(
        tmp_path / "top.tar",
        {
            f"{SITE}/.wh.requests-2.32.3.dist-info": b"",
            f"{extra_site}/.wh..wh..opq": b"",
            f"{extra_site}/urllib3-2.2.3.dist-info/METADATA": _metadata("urllib3", "2.2.3", "MIT"),
        },
    )
    lower_only = _write_layer(
        tmp_path / "mid.tar",
        {f"{extra_site}/hidden-1.0.dist-info/METADATA": _metadata("hidden", "1.0", "MIT")},
    )
    layered = rootfs.from_layers([base, lower_only, top])
    names = sorted(p.name for p in catalog.packages(layered) if p.kind == "pypi")
    assert names == ["Jinja2_Ext.Tools", "urllib3"]  # requests whited out, hidden made opaque

    final = dict(BASE)
    del final[f"{SITE}/requests-2.32.3.dist-info/METADATA"]
    del final[f"{SITE}/requests-2.32.3.dist-info/RECORD"]
    final[f"{extra_site}/urllib3-2.2.3.dist-info/METADATA"] = _metadata("urllib3", "2.2.3", "MIT")
    _write_tree(tmp_path / "final", final)
    assert _sbom(layered) == _sbom(rootfs.from_directory(tmp_path / "final"))


def test_a_file_replaced_by_a_later_layer(tmp_path: Path) -> None:
    upgraded = STATUS.replace(b"3.0.15-1~deb12u1", b"3.0.17-1~deb12u2")
    layers = [
        _write_layer(tmp_path / "1.tar", BASE),
        _write_layer(tmp_path / "2.tar", {"var/lib/dpkg/status": upgraded}),
    ]
    found = {p.name: p.version for p in catalog.packages(rootfs.from_layers(layers))}
    assert found["libssl3"] == "3.0.17-1~deb12u2"


def test_symlinks_resolve_inside_the_image(tmp_path: Path) -> None:
    """An absolute link is the image's /, not the host's; ``..`` stops at the image's root."""
    root = rootfs.RootFiles(
        files={"usr/lib/os-release": OS_RELEASE},
        links={"etc/os-release": "/../../usr/lib/os-release", "etc/loop": "loop"},
    )
    assert root.read("etc/os-release") == OS_RELEASE
    with pytest.raises(UserError, match="too many levels of symlinks"):
        root.read("etc/loop")
    # a folder's absolute link names the image's file, never the host's
    _write_tree(
        tmp_path, {"etc/os-release": "/usr/lib/os-release", "etc/passwd-link": "/etc/passwd"}
    )
    folder = rootfs.from_directory(tmp_path)
    assert folder.read("etc/os-release") is None
    assert folder.resolve("etc/passwd-link") == "etc/passwd"
    assert "etc/passwd" not in folder.files


def test_a_layer_that_is_not_a_tarball_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "layer.tar"
    bad.write_bytes(b"not a tar archive at all")
    with pytest.raises(UserError, match="cannot read the layer"):
        rootfs.from_layers([bad])


def test_the_same_image_gives_the_same_bytes(tmp_path: Path, tree: rootfs.RootFiles) -> None:
    first = _sbom(tree)
    _write_tree(tmp_path / "again", dict(reversed(list(BASE.items()))))
    assert _sbom(rootfs.from_directory(tmp_path / "again")) == first
    bom = json.loads(first)
    assert bom["metadata"]["timestamp"] == "2026-12-01T12:00:00+00:00"
    assert bom["serialNumber"] == f"urn:uuid:{uuid.uuid5(document.SERIAL_NAMESPACE, IMAGE.digest)}"
    order = [(c["type"], c["name"]) for c in bom["components"]]
    assert order == sorted(order)  # the library's sorted set: by type, then name
    given = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert json.loads(_sbom(tree, serial=given))["serialNumber"] == f"urn:uuid:{given}"


def test_a_timestamp_without_a_zone_and_a_bad_digest_are_refused(tree: rootfs.RootFiles) -> None:
    with pytest.raises(UserError, match="time zone"):
        document.sbom_json(tree, IMAGE, timestamp=datetime.datetime(2026, 1, 1))
    with pytest.raises(UserError, match="not a manifest digest"):
        document.ImageIdentity("app", "1.0.0", "latest")


def test_diff_lists_added_removed_and_changed(tmp_path: Path, tree: rootfs.RootFiles) -> None:
    newer = dict(BASE)
    newer["var/lib/dpkg/status"] = STATUS.replace(b"3.0.15-1~deb12u1", b"3.0.17-1~deb12u2")
    del newer[f"{SITE}/requests-2.32.3.dist-info/METADATA"]
    newer[f"{SITE}/idna-3.10.dist-info/METADATA"] = _metadata("idna", "3.10", "BSD-3-Clause")
    _write_tree(tmp_path / "newer", newer)
    before, after = _sbom(tree), _sbom(rootfs.from_directory(tmp_path / "newer"))

    result = diff(before, after)
    assert result.added == (Entry("pkg:pypi/idna", "idna", "3.10"),)
    assert result.removed == (Entry("pkg:pypi/requests", "requests", "2.32.3"),)
    assert result.changed == (
        Change(
            "pkg:deb/debian/libssl3?arch=amd64", "libssl3", "3.0.15-1~deb12u1", "3.0.17-1~deb12u2"
        ),
    )
    assert diff(before, before).empty


def test_diff_reads_a_syft_document_and_refuses_what_is_not_cyclonedx() -> None:
    """A syft-shaped document (distro of another point release): same package, new version."""
    ours = {
        "bomFormat": "CycloneDX",
        "components": [
            {
                "name": "libssl3",
                "version": "3.0.11-1~deb12u2",
                "purl": "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=arm64&distro=debian-12",
            }
        ],
    }
    syft = {
        "bomFormat": "CycloneDX",
        "components": [
            {
                "name": "libssl3",
                "version": "3.0.15-1~deb12u1",
                "purl": "pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=arm64&upstream=openssl&distro=debian-12.8",
            }
        ],
    }
    (change,) = diff(json.dumps(ours), json.dumps(syft)).changed
    assert (change.before, change.after) == ("3.0.11-1~deb12u2", "3.0.15-1~deb12u1")
    with pytest.raises(UserError, match="not a CycloneDX document"):
        diff("{}", json.dumps(ours))
    with pytest.raises(UserError, match="not JSON"):
        diff("{", json.dumps(ours))
