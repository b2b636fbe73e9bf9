"""Writes and reads stay in their place: a symlink committed in the GitOps repository, a
symlinked folder in a checkout, ``path: ../…`` or an absolute ``path`` given past validation,
a symlinked state file, and special files named as a CA bundle are all refused (UserError, exit
1) before anything outside is read or written."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

from imagefactory.atomic import read_inside, read_regular, write_atomically
from imagefactory.errors import UserError
from imagefactory.gitops import scaffold
from imagefactory.gitops.pin import pin_digest
from imagefactory.project.state import State, save_state
from imagefactory.registry.client import cert_dir
from imagefactory.spec.gitops import GitopsSettings, load_settings
from imagefactory.spec.loader import load_catalog

from .test_gitops_repo import (
    DIGEST,
    OVERLAY,
    cli,
    commits,
    git,
    make_remote,
    pin,
    show,
    write_settings,
)

DEV = OVERLAY.format(env="dev")


@pytest.fixture
def setup(catalog_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    write_settings(catalog_dir, tmp_path / "deployments.git")
    return catalog_dir, make_remote(catalog_dir, tmp_path)


def commit_link(remote: Path, where: Path, relative: str, target: Path) -> None:
    """Replace ``relative`` in the remote's main branch with a symlink to ``target``."""
    work = where / "linking"
    git("clone", "--quiet", remote, work)
    path = work / relative
    git("rm", "--quiet", "-r", relative, cwd=work)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)
    git("add", "--all", cwd=work)
    git("commit", "--quiet", "-m", "a link", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)


def update_dev(root: Path) -> tuple[int, str]:
    """The pin gitops update makes once the release gate let the digest through."""
    try:
        pin(root, "dev", DIGEST)
    except UserError as exc:
        return 1, str(exc)
    return 0, ""


def test_update_refuses_a_symlinked_kustomization(setup: tuple[Path, Path], tmp_path: Path) -> None:
    root, remote = setup
    victim = tmp_path / "victim.yaml"  # any file on the runner; an overlay's text to be edited
    victim.write_text(show(remote, DEV))
    before = victim.read_text()
    commit_link(remote, tmp_path, DEV, victim)
    head = commits(remote)
    code, stderr = update_dev(root)
    assert code == 1
    assert f"{DEV} is a symlink" in stderr and "Traceback" not in stderr
    assert victim.read_text() == before
    assert commits(remote) == head


def test_update_refuses_a_symlinked_overlay_folder(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    root, remote = setup
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "kustomization.yaml").write_text(show(remote, DEV))
    before = (elsewhere / "kustomization.yaml").read_text()
    commit_link(remote, tmp_path, "apps/rag-api/overlays/dev", elsewhere)
    code, stderr = update_dev(root)
    assert code == 1
    assert "apps/rag-api/overlays/dev is a symlink" in stderr
    assert (elsewhere / "kustomization.yaml").read_text() == before


def test_diff_does_not_read_through_a_symlink(setup: tuple[Path, Path], tmp_path: Path) -> None:
    root, remote = setup
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", remote, checkout)
    outside = tmp_path / "outside.yaml"
    outside.write_text(show(remote, DEV))
    (checkout / DEV).unlink()
    (checkout / DEV).symlink_to(outside)
    result = cli("-C", root, "gitops", "diff", "--env", "dev", "--repo-dir", checkout)
    assert result.exit_code == 1
    assert "is a symlink" in result.stderr


def test_update_refuses_a_path_outside_the_clone(
    setup: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, remote = setup
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(
        tempfile, "tempdir", str(temp)
    )  # the clone: temp/imagefactory-gitops-*/repo
    catalog = load_catalog(root)
    settings = load_settings(catalog).model_copy(update={"path": "../../../outside"})  # unchecked
    target = tmp_path / "outside/rag-api/overlays/dev/kustomization.yaml"
    target.parent.mkdir(parents=True)
    target.write_text(show(remote, DEV))
    before = target.read_text()
    with pytest.raises(UserError, match="is outside"):
        pin_digest(
            catalog, "app/rag-api", "dev", DIGEST, version="0.3.0", audit_id=None, settings=settings
        )
    assert target.read_text() == before


@pytest.mark.parametrize("absolute", [False, True])
def test_init_refuses_a_path_outside_its_folder(
    catalog_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, absolute: bool
) -> None:
    write_settings(catalog_dir, tmp_path / "r.git")
    catalog = load_catalog(catalog_dir)
    escape = tmp_path / "x"  # what ../x is from tmp_path/out
    path = str(escape) if absolute else "../x"
    settings = GitopsSettings.model_construct(**{**dict(load_settings(catalog)), "path": path})
    monkeypatch.setattr(scaffold, "load_settings", lambda _: settings)
    with pytest.raises(UserError, match="is outside"):
        scaffold.write_layout(catalog, tmp_path / "out", force=False)
    assert not escape.exists()


def test_init_refuses_a_symlinked_folder_in_the_checkout(catalog_dir: Path, tmp_path: Path) -> None:
    write_settings(catalog_dir, tmp_path / "r.git")
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "apps").symlink_to(elsewhere)
    result = cli("-C", catalog_dir, "gitops", "init", out)
    assert result.exit_code == 1
    assert f"{out / 'apps'} is a symlink" in result.stderr
    assert list(elsewhere.iterdir()) == []


def test_init_refuses_to_replace_a_symlinked_overlay(catalog_dir: Path, tmp_path: Path) -> None:
    write_settings(catalog_dir, tmp_path / "r.git")
    out = tmp_path / "out"
    assert cli("-C", catalog_dir, "gitops", "init", out).exit_code == 0
    overlay, victim = out / OVERLAY.format(env="prod"), tmp_path / "victim"
    victim.write_text("mine\n")
    overlay.unlink()
    overlay.symlink_to(victim)
    result = cli("-C", catalog_dir, "gitops", "init", out, "--force")
    assert result.exit_code == 1 and "is a symlink" in result.stderr
    assert overlay.is_symlink() and victim.read_text() == "mine\n"


def test_a_symlinked_state_file_is_not_replaced(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text("{}")
    state = tmp_path / "project/.imagefactory/state.json"
    state.parent.mkdir(parents=True)
    state.symlink_to(elsewhere)
    with pytest.raises(UserError, match=r"state\.json is a symlink"):
        save_state(state, State())
    assert state.is_symlink() and elsewhere.read_text() == "{}"


def test_writes_below_a_root_refuse_symlinked_folders_but_the_root_may_be_one(
    tmp_path: Path,
) -> None:
    real, root = tmp_path / "real", tmp_path / "root"
    real.mkdir()
    root.symlink_to(real)  # like /tmp on some systems: the root as given is trusted
    write_atomically(root / "a/b.txt", b"1", root=root)
    assert (real / "a/b.txt").read_bytes() == b"1"
    assert read_inside(root, "a/b.txt") == b"1"
    assert read_inside(root, "a/missing.txt") is None
    assert read_inside(root, "missing/b.txt") is None
    (real / "link").symlink_to(tmp_path)
    for relative in ("link/c.txt", "link/a/c.txt"):
        with pytest.raises(UserError, match=re.escape(f"{root / 'link'} is a symlink")):
            write_atomically(root / relative, b"2", root=root)
        with pytest.raises(UserError, match="is a symlink"):
            read_inside(root, relative)
    assert not (tmp_path / "c.txt").exists() and not (tmp_path / "a/c.txt").exists()
    with pytest.raises(UserError, match="is outside"):
        write_atomically(root / "../c.txt", b"2", root=root)
    (real / "file").write_text("x")
    with pytest.raises(UserError, match="is not a folder"):
        write_atomically(root / "file/c.txt", b"2", root=root)


def test_a_folder_swapped_for_a_symlink_mid_write_cannot_redirect_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename is relative to the folder opened link-free, not to its path: swapping that
    folder for a symlink (to a place holding a copy of the temp file) after the checks lands
    the file in the folder that was checked, and nothing outside the root is written."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    fsync = os.fsync

    def swap_then_fsync(handle: int) -> None:
        fsync(handle)
        (temp,) = (root / "sub").glob(".*.tmp")
        (outside / temp.name).write_bytes(b"attacker")
        (root / "sub").rename(root / "moved")
        (root / "sub").symlink_to(outside)

    monkeypatch.setattr(os, "fsync", swap_then_fsync)
    write_atomically(root / "sub" / "state.json", b"mine", root=root)
    assert not (outside / "state.json").exists()
    assert (root / "moved" / "state.json").read_bytes() == b"mine"


def test_special_files_are_never_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes
    with pytest.raises(UserError, match="is not a regular file"):
        read_regular(fifo, what="build.ca_bundle")
    with pytest.raises(UserError, match="is not a regular file"):
        read_inside(tmp_path, "fifo")
    with pytest.raises(UserError, match="/dev/zero is not a regular file"):
        read_regular(Path("/dev/zero"), what="build.ca_bundle")
    with pytest.raises(UserError, match=r"cannot read build\.ca_bundle"):
        read_regular(tmp_path / "missing.pem", what="build.ca_bundle")
    big = tmp_path / "big.pem"
    big.write_bytes(b"x" * 11)
    with pytest.raises(UserError, match="is larger than"):
        read_regular(big, what="build.ca_bundle", limit=10)
    assert read_regular(big, what="build.ca_bundle", limit=11) == b"x" * 11


def test_the_ca_bundle_for_skopeo_must_be_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "ca.pem"
    os.mkfifo(fifo)
    with (
        pytest.raises(UserError, match=r"build\.ca_bundle .* is not a regular file"),
        cert_dir(fifo),
    ):
        pass
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("PEM\n")
    with cert_dir(bundle) as folder:
        assert folder is not None and (folder / "ca.crt").read_text() == "PEM\n"
