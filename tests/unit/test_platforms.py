"""Multi-arch, first slice (issue 20): ``platforms`` in the spec (grammar, inheritance, a child
a subset of its parent), per-platform content hashes, mmdebstrap per architecture, the
emulation preflight and the OCI index assembled from per-platform manifests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from imagefactory import tools
from imagefactory.build.emulation import check_emulation
from imagefactory.errors import SpecError, UserError
from imagefactory.project.hashing import content_inputs
from imagefactory.project.plan import make_plan
from imagefactory.project.recipe import mmdebstrap_argv, recipe_key
from imagefactory.project.state import ImageRecord, State
from imagefactory.registry.index import INDEX_TYPE, assemble_index, platform_digests
from imagefactory.spec.models import Bootstrap, BuildSettings
from imagefactory.spec.platforms import host_platform
from tests.unit.test_inheritance import BASE, PROJECT, write

PLATFORMS = ("linux/amd64", "linux/arm64")
BOTH = "platforms: [linux/amd64, linux/arm64]\n"
CHILD = "from: base/os\nlabels: {com.example.tier: app}\n"


def test_a_chain_without_platforms_builds_for_the_host_only(tmp_path: Path) -> None:
    catalog = write(tmp_path, {"base/os": BASE, "app/svc": CHILD})
    assert [image.spec.platforms for image in catalog.images.values()] == [None, None]
    inputs = content_inputs(catalog)
    assert all(i.platforms == "" and i.content_hash == i.shared_hash for i in inputs.values())


def test_a_child_takes_its_parents_platforms(tmp_path: Path) -> None:
    catalog = write(tmp_path, {"base/os": BASE + BOTH, "app/svc": CHILD})
    assert catalog.images["app/svc"].spec.platforms == ["linux/amd64", "linux/arm64"]


def test_the_defaults_platforms_are_replaced_whole_by_an_image(tmp_path: Path) -> None:
    project = PROJECT + "defaults:\n  " + BOTH
    narrow = CHILD + "platforms: [linux/arm64]\n"
    catalog = write(tmp_path, {"base/os": BASE, "app/svc": narrow}, project)
    assert catalog.images["base/os"].spec.platforms == ["linux/amd64", "linux/arm64"]
    assert catalog.images["app/svc"].spec.platforms == ["linux/arm64"]


def test_a_child_cannot_widen_its_parents_platforms(tmp_path: Path) -> None:
    base = BASE + "platforms: [linux/amd64]\n"
    with pytest.raises(SpecError) as caught:
        write(tmp_path, {"base/os": base, "app/svc": CHILD + BOTH})
    text = str(caught.value) + repr(caught.value.issues)
    assert "app/svc/image.yaml" in text and "platforms" in text
    assert "linux/arm64, which its parent 'base/os' is not" in text
    assert "add it to 'platforms' of 'base/os'" in text


def test_a_child_of_a_parent_without_platforms_may_name_the_host_only(tmp_path: Path) -> None:
    foreign = next(p for p in ("linux/arm64", "linux/amd64") if p != host_platform())
    with pytest.raises(SpecError, match=f"built for {foreign}, which its parent"):
        write(tmp_path, {"base/os": BASE, "app/svc": CHILD + f"platforms: [{foreign}]\n"})
    write(
        tmp_path / "ok", {"base/os": BASE, "app/svc": CHILD + f"platforms: [{host_platform()}]\n"}
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[linux/mips]", "is not a platform imagefactory builds"),
        ("[windows/amd64]", "is not a platform imagefactory builds"),
        ('["linux/amd64\\nRUN id"]', "is not a platform imagefactory builds"),
        ("[linux/arm64, linux/arm64]", "names a platform twice"),
        ("[]", "at least 1 item"),
    ],
)
def test_platforms_outside_the_allowlist_are_refused(
    tmp_path: Path, value: str, expected: str
) -> None:
    with pytest.raises(SpecError) as caught:
        write(tmp_path, {"base/os": BASE + f"platforms: {value}\n"})
    text = str(caught.value) + repr(caught.value.issues)
    assert expected in text and "platforms" in text


def test_a_platform_added_leaves_the_other_platforms_hashes_as_they_were(tmp_path: Path) -> None:
    one = content_inputs(
        write(tmp_path / "one", {"base/os": BASE + "platforms: [linux/amd64]\n", "app/svc": CHILD})
    )
    two = content_inputs(write(tmp_path / "two", {"base/os": BASE + BOTH, "app/svc": CHILD}))
    for ref in ("base/os", "app/svc"):
        assert one[ref].platform_hash("linux/amd64") == two[ref].platform_hash("linux/amd64")
        assert one[ref].content_hash != two[ref].content_hash  # the index's tag follows the list
        assert two[ref].platform_hash("linux/arm64") != two[ref].platform_hash("linux/amd64")
    assert two["base/os"].as_dict()["platforms"] == "linux/amd64,linux/arm64"


def test_a_change_to_the_parent_reaches_each_platform_of_the_child(tmp_path: Path) -> None:
    before = content_inputs(write(tmp_path / "a", {"base/os": BASE + BOTH, "app/svc": CHILD}))
    changed = BASE.replace("uid: 10001", "uid: 10002") + BOTH
    after = content_inputs(write(tmp_path / "b", {"base/os": changed, "app/svc": CHILD}))
    for platform in ("linux/amd64", "linux/arm64"):
        assert before["app/svc"].platform_hash(platform) != after["app/svc"].platform_hash(platform)


def test_mmdebstrap_is_told_the_architecture_and_the_cache_key_covers_it(tmp_path: Path) -> None:
    recipe, build = Bootstrap(), BuildSettings()
    host = mmdebstrap_argv(recipe, build, tmp_path / "r.tar", tmp_path / "r.releases")
    arm = mmdebstrap_argv(recipe, build, tmp_path / "r.tar", tmp_path / "r.releases", "arm64")
    assert not any(arg.startswith("--architectures") for arg in host)
    assert [arg for arg in arm if arg not in host] == ["--architectures=arm64"]
    keys = {recipe_key(recipe, build, "", arch) for arch in ("", "amd64", "arm64")}
    assert len(keys) == 3
    assert recipe_key(recipe, build) == recipe_key(recipe, build, "", "")


def _binfmt(tmp_path: Path, entries: dict[str, str], *, mounted: bool = True) -> Path:
    tmp_path.mkdir(exist_ok=True)
    if mounted:
        (tmp_path / "status").write_text("enabled\n")
    for name, state in entries.items():
        (tmp_path / name).write_text(
            f"{state}\ninterpreter /usr/libexec/qemu-binfmt/x\nflags: PF\n"
        )
    return tmp_path


FOREIGN = "linux/arm64" if host_platform() != "linux/arm64" else "linux/amd64"
QEMU = "qemu-aarch64" if FOREIGN == "linux/arm64" else "qemu-x86_64"


@pytest.mark.parametrize(
    ("entries", "mounted", "expected"),
    [
        ({}, False, "binfmt_misc is not mounted"),
        ({}, True, "is not registered"),
        ({QEMU: "disabled"}, True, "is disabled"),
    ],
)
def test_a_foreign_platform_without_emulation_says_how_to_enable_it(
    tmp_path: Path, entries: dict[str, str], mounted: bool, expected: str
) -> None:
    binfmt = _binfmt(tmp_path, entries, mounted=mounted)
    with pytest.raises(UserError, match=expected) as caught:
        check_emulation([FOREIGN], bootstrap=False, binfmt=binfmt)
    assert f"update-binfmts --enable {QEMU}" in str(caught.value.hint)
    assert "qemu-user-static" in str(caught.value.hint)


def test_the_hosts_platform_needs_no_emulation(tmp_path: Path) -> None:
    check_emulation([host_platform()], bootstrap=True, binfmt=tmp_path / "absent")


def test_an_enabled_emulator_passes_and_a_bootstrap_asks_arch_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binfmt = _binfmt(tmp_path, {QEMU: "enabled"})
    check_emulation([FOREIGN], bootstrap=False, binfmt=binfmt)
    asked: list[list[str]] = []

    def refusing(argv: list[str], **_: object) -> tools.Result:
        asked.append(argv)
        return tools.Result(argv, 1, "arm64: not supported on this machine/kernel")

    monkeypatch.setattr(tools, "require", lambda program, hint: program)
    monkeypatch.setattr(tools, "run", refusing)
    with pytest.raises(UserError, match=r"cannot bootstrap .* not supported"):
        check_emulation([FOREIGN], bootstrap=True, binfmt=binfmt)
    assert asked[0][0] == "arch-test"


class Store:
    """A registry's manifests, by repository and digest or tag."""

    def __init__(self) -> None:
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}

    def add(self, repository: str, document: dict[str, object], media_type: str) -> str:
        body = json.dumps(document).encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        self.manifests[repository, digest] = (body, media_type)
        return digest

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str] | None:
        return self.manifests.get((repository, reference))

    def put_manifest(self, repository: str, tag: str, body: bytes, media_type: str) -> str:
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        self.manifests[repository, tag] = self.manifests[repository, digest] = (body, media_type)
        return digest


IMAGE_TYPE = "application/vnd.oci.image.manifest.v1+json"
DOCKER_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def test_the_index_names_each_platforms_manifest_with_its_platform() -> None:
    store = Store()
    amd = store.add("app", {"schemaVersion": 2, "config": {"digest": "sha256:1"}}, DOCKER_TYPE)
    arm = store.add("app", {"schemaVersion": 2, "config": {"digest": "sha256:2"}}, IMAGE_TYPE)
    digest = assemble_index(store, "app", "c0ffee", {"linux/amd64": amd, "linux/arm64": arm})
    body, media_type = store.manifests["app", "c0ffee"]
    assert media_type == INDEX_TYPE and digest == "sha256:" + hashlib.sha256(body).hexdigest()
    index = json.loads(body)
    assert index["mediaType"] == INDEX_TYPE
    assert [(m["digest"], m["mediaType"], m["platform"]) for m in index["manifests"]] == [
        (amd, DOCKER_TYPE, {"architecture": "amd64", "os": "linux"}),
        (arm, IMAGE_TYPE, {"architecture": "arm64", "os": "linux"}),
    ]
    assert index["manifests"][0]["size"] == len(store.manifests["app", amd][0])
    again = assemble_index(store, "app", "c0ffee", {"linux/amd64": amd, "linux/arm64": arm})
    assert again == digest


def test_a_pushed_index_contributes_its_entry_for_the_platform() -> None:
    store = Store()
    image = store.add("app", {"schemaVersion": 2}, IMAGE_TYPE)
    entry = {"mediaType": IMAGE_TYPE, "digest": image, "size": 17}
    attestation = {
        **entry,
        "digest": "sha256:" + "9" * 64,
        "platform": {"architecture": "unknown", "os": "unknown"},
    }
    arm = {**entry, "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}}
    pushed = store.add("app", {"schemaVersion": 2, "manifests": [attestation, arm]}, INDEX_TYPE)
    assemble_index(store, "app", "t", {"linux/arm/v7": pushed})
    index = json.loads(store.manifests["app", "t"][0])
    assert index["manifests"] == [
        {**arm, "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}}
    ]
    with pytest.raises(UserError, match="has no manifest for linux/arm64"):
        assemble_index(store, "app", "t", {"linux/arm64": pushed})


def test_a_platform_not_pushed_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"app@sha256:0+ \(linux/arm64\) is not in the registry"):
        assemble_index(Store(), "app", "t", {"linux/arm64": "sha256:" + "0" * 64})


def test_the_plan_shows_each_platform_and_says_when_the_list_changed(tmp_path: Path) -> None:
    one = write(tmp_path / "one", {"base/os": BASE + "platforms: [linux/amd64]\n"})
    built = content_inputs(one)["base/os"]
    record = ImageRecord(content_hash=built.content_hash, inputs=built.as_dict(), version="1.0.0")
    two = write(tmp_path / "two", {"base/os": BASE + BOTH})
    [entry] = make_plan(two, State(images={"base/os": record}))
    assert entry.reasons == ("platforms changed",)
    shown = entry.as_dict()["platforms"]
    assert shown == {p: content_inputs(two)["base/os"].platform_hash(p) for p in PLATFORMS}
    assert shown["linux/amd64"] == built.platform_hash("linux/amd64")


def test_a_single_platform_plan_has_no_platforms_key(tmp_path: Path) -> None:
    [entry] = make_plan(write(tmp_path, {"base/os": BASE}), State())
    assert "platforms" not in entry.as_dict() and entry.reasons == ("new",)


def test_platform_digests_reads_each_platform_of_an_index_and_refuses_a_missing_one() -> None:
    store = Store()
    amd = store.add("app", {"schemaVersion": 2, "config": {"digest": "sha256:1"}}, DOCKER_TYPE)
    arm = store.add("app", {"schemaVersion": 2, "config": {"digest": "sha256:2"}}, IMAGE_TYPE)
    index = assemble_index(store, "app", "t", {"linux/amd64": amd, "linux/arm64": arm})
    assert platform_digests(store, "app", index, ["linux/arm64", "linux/amd64"]) == {
        "linux/arm64": arm,
        "linux/amd64": amd,
    }
    with pytest.raises(UserError, match="has no manifest for linux/arm/v7") as caught:
        platform_digests(store, "app", index, ["linux/amd64", "linux/arm/v7"])
    assert "delete that tag" in (caught.value.hint or "")
    with pytest.raises(UserError, match="is not an index of linux/amd64"):
        platform_digests(store, "app", amd, ["linux/amd64"])  # an image, not an index


def test_a_packer_build_of_an_image_with_platforms_is_refused(tmp_path: Path) -> None:
    from imagefactory.build.catalog import check_platforms

    catalog = write(tmp_path, {"base/os": BASE + f"platforms: [{host_platform()}]\n"})
    with pytest.raises(UserError, match="base/os is built per platform, which Packer") as caught:
        check_platforms(catalog, list(catalog.images.values()), "packer")
    assert caught.value.message.startswith("images/base/os/image.yaml: platforms:")
    check_platforms(catalog, list(catalog.images.values()), "docker")  # the host's: no emulation


def test_playbooks_on_a_foreign_platform_are_refused_before_anything_runs(tmp_path: Path) -> None:
    """build_images refuses before it opens a registry session or reaches the engine."""
    from imagefactory.build.catalog import BuildRequest, build_images

    foreign = next(p for p in PLATFORMS if p != host_platform())
    child = CHILD + "playbooks: [ansible/site.yml]\n"
    (tmp_path / "ansible").mkdir(parents=True)
    (tmp_path / "ansible" / "site.yml").write_text("- hosts: all\n  tasks: []\n")
    catalog = write(tmp_path, {"base/os": BASE + BOTH, "app/svc": child})
    with pytest.raises(UserError) as caught:
        build_images(catalog, BuildRequest(images=("app/svc",)), reporter=None)  # type: ignore[arg-type]
    assert caught.value.message.startswith("images/app/svc/image.yaml: platforms: app/svc ")
    assert f"not on {foreign}" in caught.value.message


def test_build_platform_refuses_an_image_not_built_for_that_platform(tmp_path: Path) -> None:
    from imagefactory.build.catalog import check_platforms

    foreign = next(p for p in PLATFORMS if p != host_platform())
    catalog = write(
        tmp_path, {"base/os": BASE + BOTH, "app/svc": CHILD + f"platforms: [{host_platform()}]\n"}
    )
    images = list(catalog.images.values())
    with pytest.raises(UserError, match=f"app/svc is not built for {foreign}") as caught:
        check_platforms(catalog, images, "docker", foreign)
    assert caught.value.message.startswith("images/app/svc/image.yaml: platforms:")
    check_platforms(catalog, images, "docker", host_platform())  # both name the host's
    plain = write(tmp_path / "plain", {"base/os": BASE})  # no platforms: the host's only
    with pytest.raises(UserError, match=f"base/os is not built for {foreign}"):
        check_platforms(plain, list(plain.images.values()), "docker", foreign)


def test_the_sbom_of_an_index_is_its_platforms_and_says_so(tmp_path: Path) -> None:
    """An index has no filesystem: ``imagefactory sbom IMAGE`` of an image built per platform
    gives the SBOM of the host's platform (cached by its digest here), with a note."""
    from imagefactory.build.sbom_lookup import image_sbom
    from imagefactory.project.paths import sbom_file, state_file
    from imagefactory.project.state import save_state

    catalog = write(tmp_path, {"base/os": BASE + BOTH})
    index, amd, arm = ("sha256:" + c * 64 for c in "abc")
    mine = {"linux/amd64": amd, "linux/arm64": arm}[host_platform()]
    record = ImageRecord(
        content_hash="h",
        inputs={},
        version="1.0.0",
        digest=index,
        platforms={"linux/amd64": amd, "linux/arm64": arm},
    )
    save_state(state_file(catalog), State(images={"base/os": record}))
    cached = sbom_file(catalog, mine)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text('{"bomFormat": "CycloneDX"}\n')
    found = image_sbom(catalog, "base/os", client=object())  # type: ignore[arg-type]
    assert (found.digest, found.source) == (mine, "cache")
    assert found.note is not None and f"is an index: this is the SBOM of its {host_platform()}" in (
        found.note
    )
    named = image_sbom(catalog, f"base/os@{mine}", client=object())  # type: ignore[arg-type]
    assert named.digest == mine and named.note is None
