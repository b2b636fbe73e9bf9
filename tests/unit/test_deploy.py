"""release.deploy without a registry: what is refused before the registry
is asked (and so writes nothing), and the pin a recorded push or promotion makes in the GitOps
repository (a real bare git remote on disk): under the push's (or promotion's) lock, which a
yank takes too, and not for a version yanked by then. The registry side of ``gitops update`` (the
digest held under a version tag, the gate's refusals, the audit record) is
tests/integration/test_gitops.py's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from imagefactory.errors import UserError
from imagefactory.evidence.store import Location
from imagefactory.gitops.pin import PinResult
from imagefactory.project.paths import audit_log, state_file
from imagefactory.project.state import EnvironmentRecord, YankRecord, load_state
from imagefactory.release import deploy as deploy_module
from imagefactory.release import promote, push
from imagefactory.release import yank as yank_module
from imagefactory.release.deploy import deploy, pin_release
from imagefactory.release.record import Release
from imagefactory.signing.keys import VerificationError
from imagefactory.spec.loader import load_catalog

from .helpers import REF, build, lines, recorded, run, serve
from .test_gitops_repo import DIGEST, OVERLAY, commits, git, make_remote, show, write_settings
from .test_write_tags import DEV, PREPROD, MemoryRegistry


@pytest.fixture
def setup(catalog_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    write_settings(catalog_dir, tmp_path / "deployments.git")
    return catalog_dir, make_remote(catalog_dir, tmp_path)


@pytest.mark.parametrize(
    ("ref", "env", "digest", "message"),
    [
        ("app/rag-api", "dev", "sha256:" + "0" * 64, "is the all-zero placeholder"),
        ("app/rag-api", "dev", "sha256:12", "is not an image digest"),
        ("app/rag-api", "qa", DIGEST, "no environment 'qa'"),
        ("runtime/llm:cpu", "dev", DIGEST, "runtime/llm:cpu is not an application"),
    ],
)
def test_what_is_refused_before_the_registry_is_asked_writes_nothing(
    setup: tuple[Path, Path], ref: str, env: str, digest: str, message: str
) -> None:
    root, remote = setup
    head = commits(remote)
    catalog = load_catalog(root)
    with pytest.raises(UserError, match=message):
        deploy(catalog, ref, env, digest, approve=False, approver=None)
    assert not audit_log(catalog).exists()
    assert commits(remote) == head


def test_an_environment_gitops_yaml_does_not_deploy_is_refused(
    setup: tuple[Path, Path],
) -> None:
    root, _ = setup
    path = root / "gitops.yaml"
    text = path.read_text()
    start, end = text.index("  preprod:\n"), text.index("  prod:\n")
    path.write_text(text[:start] + text[end:])
    with pytest.raises(UserError, match=r"no environment 'preprod' in gitops\.yaml"):
        deploy(load_catalog(root), "app/rag-api", "preprod", DIGEST, approve=False, approver=None)


def _release(audit_id: str | None, ref: str = "app/rag-api") -> Release:
    return Release(ref, "0.3.1", DIGEST, "as written in image.yaml", (), audit_id=audit_id)


def test_a_push_pins_its_digest_in_the_first_environment(setup: tuple[Path, Path]) -> None:
    root, remote = setup
    result = pin_release(load_catalog(root), _release("a-42"), "dev", done="pushed").gitops
    assert result is not None and result.action == "pushed" and result.previous is None
    assert f"digest: {DIGEST}" in show(remote, OVERLAY.format(env="dev"))
    message = git("--git-dir", remote, "log", "-1", "--format=%B", "main").splitlines()
    assert message[0] == f"dev: pin app/rag-api 0.3.1 {DIGEST[:19]} [skip ci]"
    assert "audit: a-42" in message and "version: 0.3.1" in message


def test_nothing_is_pinned_when_nothing_was_recorded_or_nothing_is_deployed(
    setup: tuple[Path, Path],
) -> None:
    root, remote = setup
    head = commits(remote)
    catalog = load_catalog(root)
    assert pin_release(catalog, _release(None), "dev", done="pushed").gitops is None  # dry run
    not_an_app = _release("a-1", ref="runtime/llm:cpu")
    assert pin_release(catalog, not_an_app, "dev", done="pushed").gitops is None
    (root / "gitops.yaml").unlink()
    assert pin_release(load_catalog(root), _release("a-1"), "dev", done="pushed").gitops is None
    assert commits(remote) == head


def test_a_pin_that_fails_says_the_release_is_recorded_and_how_to_pin_again(
    catalog_dir: Path, tmp_path: Path
) -> None:
    write_settings(catalog_dir, tmp_path / "missing.git")
    with pytest.raises(UserError) as caught:
        pin_release(load_catalog(catalog_dir), _release("a-42"), "dev", done="pushed")
    assert caught.value.message.startswith(
        "app/rag-api 0.3.1 was pushed to dev (audit record a-42), but pinning it in the GitOps "
        "repo failed: cannot clone branch 'main'"
    )
    assert (
        caught.value.hint
        == f"fix that, then: imagefactory gitops update --env dev app/rag-api@{DIGEST}"
    )


@pytest.mark.parametrize("tested", [True, False])
def test_a_push_pins_dev_only_a_tested_digest(
    setup: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tested: bool
) -> None:
    """A forced push of an untested digest is recorded but not pinned: ``gitops update`` of
    that digest would be refused (it needs a passing test), and so is the push's pin."""
    root, remote = setup
    head = commits(remote)
    memory = serve(monkeypatch, MemoryRegistry(), push)
    build(root, memory, DIGEST, tested=tested)

    result = run(root, "push", REF, *(() if tested else ("--force",)))

    assert result.exit_code == 0, result.output
    assert memory.held[f"{DEV}:0.3.0"] == DIGEST
    intent, done = lines(root)
    assert (done["phase"], done["action"]) == ("done", "push")
    assert intent["overrides"] == ([] if tested else ["untested"])
    if tested:
        assert "gitops: pushed" in result.stdout
        assert f"digest: {DIGEST}" in show(remote, OVERLAY.format(env="dev"))
    else:
        assert "not pinned in GitOps: untested (gitops update needs a passing test)" in (
            result.stdout
        )
        assert commits(remote) == head
        document = json.loads(run(root, "push", REF, "--force", "--json").stdout)
        assert document["images"][0]["gitops_not_pinned"] is None  # nothing to do: no push


@pytest.mark.parametrize(("env", "approve"), [("dev", ""), ("prod", " --approve")])
def test_the_hint_of_a_failed_pin_is_a_gitops_update_the_environment_accepts(
    catalog_dir: Path, tmp_path: Path, env: str, approve: str
) -> None:
    """``gitops update`` into prod is refused without --approve: the hint after a failed pin
    there says it (one into dev does not)."""
    write_settings(catalog_dir, tmp_path / "missing.git")
    with pytest.raises(UserError) as caught:
        pin_release(load_catalog(catalog_dir), _release("a-42"), env, done="promoted")
    assert caught.value.hint == (
        f"fix that, then: imagefactory gitops update --env {env} app/rag-api@{DIGEST}{approve}"
    )


def test_a_version_yanked_by_the_time_of_its_pin_is_not_pinned(
    setup: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate's yank is read again right before the pin: a recorded release whose version
    is yanked by then is not pinned (``gitops update`` would refuse it), and says why."""
    root, remote = setup
    head = commits(remote)
    build(root, MemoryRegistry(), DIGEST, tested=True)
    yank = YankRecord(version="0.3.1", digest=DIGEST, reason="CVE-2026-1234", by="Ann", at="now")
    recorded(root, yanked={"0.3.1": yank})

    shipped = pin_release(load_catalog(root), _release("a-42"), "dev", done="pushed")

    assert shipped.gitops is None
    assert shipped.not_pinned == "yanked since: CVE-2026-1234 (by Ann)"
    assert commits(remote) == head


def _yank_during_the_pin(monkeypatch: pytest.MonkeyPatch, root: Path) -> list[Result]:
    """Each pin push and promote make runs ``imagefactory yank`` of app/rag-api 0.3.0 first
    (another terminal, at that very moment); its results."""
    real = deploy_module.pin_if_deployed
    yanks = []

    def yank_first(*args: Any, **kwargs: Any) -> PinResult | None:
        yanks.append(run(root, "yank", REF, "0.3.0", "--reason", "CVE-2026-1234"))
        return real(*args, **kwargs)

    monkeypatch.setattr(deploy_module, "pin_if_deployed", yank_first)
    return yanks


def test_no_yank_lands_between_a_push_and_its_pin(
    setup: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pin is made under the push's lock, which a yank takes too: a yank that would land
    between the push and its pin (and leave a yanked digest pinned) waits for it instead."""
    root, remote = setup
    memory = serve(monkeypatch, MemoryRegistry(), push, yank_module)
    build(root, memory, DIGEST, tested=True)
    yanks = _yank_during_the_pin(monkeypatch, root)

    result = run(root, "push", REF)

    assert result.exit_code == 0, result.output
    [yanked] = yanks
    assert yanked.exit_code == 1, yanked.output
    assert f"another push of {REF} is in progress" in yanked.stderr
    assert f"digest: {DIGEST}" in show(remote, OVERLAY.format(env="dev"))
    assert load_state(state_file(load_catalog(root))).images[REF].yanked == {}


def test_no_yank_lands_between_a_promotion_and_its_pin(
    setup: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, remote = setup
    memory = serve(monkeypatch, MemoryRegistry(), promote, yank_module)
    build(root, memory, DIGEST, tested=True)
    pushed = ["0", "0.3", "0.3.0", "latest"]
    memory.held.update({f"{DEV}:{tag}": DIGEST for tag in pushed})
    dev = EnvironmentRecord(
        version="0.3.0", digest=DIGEST, tags=pushed, registries=["dev"], at="then"
    )
    recorded(root, environments={"dev": dev})
    yanks = _yank_during_the_pin(monkeypatch, root)

    result = run(root, "promote", REF, "--to", "preprod")

    assert result.exit_code == 0, result.output
    assert memory.held[f"{PREPROD}:0.3.0"] == DIGEST
    [yanked] = yanks
    assert yanked.exit_code == 1, yanked.output
    assert f"another promotion of {REF} is in progress" in yanked.stderr
    assert f"digest: {DIGEST}" in show(remote, OVERLAY.format(env="preprod"))


def _revoked_parent(calls: list[tuple[str, str, str]]) -> Any:
    """``verified_chain`` as a chain whose base is revoked refuses it (what it does for real:
    tests/unit/test_evidence_store.py), recording each (registry url, repository, digest)."""

    def refuse(
        catalog: object, client: object, origin: Location, digest: str, listed: object
    ) -> None:
        calls.append((origin.registry.url, origin.repository, digest))
        raise VerificationError(
            f"{origin.repository}@{digest}: in its chain of parents, base@sha256:… is revoked"
        )

    return refuse


def test_a_push_verifies_the_chain_of_parents_and_a_revoked_base_blocks_it(
    setup: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails before the fix: push checked the digest's own revocation only, so a child built on
    a revoked base was pushed (and pinned)."""
    root, remote = setup
    head = commits(remote)
    memory = serve(monkeypatch, MemoryRegistry(), push)
    build(root, memory, DIGEST, tested=True)
    calls: list[tuple[str, str, str]] = []
    monkeypatch.setattr(push, "verified_chain", _revoked_parent(calls))

    result = run(root, "push", REF)

    assert result.exit_code == 1, result.output
    assert "in its chain of parents" in result.output and "is revoked" in result.output
    catalog = load_catalog(root)
    record = load_state(state_file(catalog)).images[REF]
    build_registry = catalog.project.registries[catalog.project.environments[0].registries[0]]
    assert calls == [(build_registry.url, record.repository, DIGEST)]
    assert f"{DEV}:0.3.0" not in memory.held  # nothing pushed
    assert commits(remote) == head  # nothing pinned


def test_gitops_update_verifies_the_chain_of_parents_and_a_revoked_base_blocks_it(
    setup: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails before the fix: gitops update checked the digest's own revocation only."""
    root, remote = setup
    memory = serve(monkeypatch, MemoryRegistry(), deploy_module)
    build(root, memory, DIGEST, tested=True)
    held = deploy_module._Held("dev", "0.3.0", "0.3.0")  # dev holds it under 0.3.0
    monkeypatch.setattr(deploy_module, "_held", lambda *args: held)
    head = commits(remote)
    calls: list[tuple[str, str, str]] = []
    monkeypatch.setattr(deploy_module, "verified_chain", _revoked_parent(calls))

    result = run(root, "gitops", "update", "--env", "dev", f"{REF}@{DIGEST}")

    assert result.exit_code == 1, result.output
    assert "in its chain of parents" in result.output
    assert [(repo, digest) for _, repo, digest in calls] == [(DEV, DIGEST)]
    assert commits(remote) == head
