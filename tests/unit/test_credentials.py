"""Registry credentials from the variables the project file names: a private temporary Docker
config in the run's private folder, redacted from every message, gone afterwards, the variables
inherited by no child; a missing variable is a clear error that knows about GitLab's protected
variables."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from imagefactory import scratch, tools
from imagefactory.errors import UserError
from imagefactory.registry.credentials import docker_config, login_entry
from imagefactory.spec.models import Registry

REGISTRY = Registry(
    url="registry.example:5000", username_env="TEST_REG_USER", password_env="TEST_REG_PASSWORD"
)
PASSWORD = "pw-" + "7c1e9a55d0"


def test_a_temporary_private_config_that_is_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_REG_USER", "ci-bot")
    monkeypatch.setenv("TEST_REG_PASSWORD", PASSWORD)
    with docker_config([REGISTRY, Registry(url="anonymous.example")]) as folder:
        assert folder is not None
        config = folder / "config.json"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        auths = json.loads(config.read_text())["auths"]
        assert list(auths) == ["registry.example:5000"]  # the anonymous one needs no entry
        assert (
            base64.b64decode(auths["registry.example:5000"]["auth"])
            == f"ci-bot:{PASSWORD}".encode()
        )
        token = auths["registry.example:5000"]["auth"]
        assert PASSWORD not in tools.scrub(f"login with {PASSWORD} as {token}")
        assert token not in tools.scrub(f"login with {PASSWORD} as {token}")
    assert not folder.exists()


def test_the_config_is_in_the_runs_private_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On tmpfs where there is one, in a folder only this user can enter, that a later run
    finds (and removes, if this one is killed) by its name."""
    monkeypatch.setattr(scratch, "SHM", tmp_path)
    monkeypatch.setattr(scratch, "_folder", None)
    monkeypatch.setenv("TEST_REG_USER", "ci-bot")
    monkeypatch.setenv("TEST_REG_PASSWORD", PASSWORD)
    with docker_config([REGISTRY]) as folder:
        assert folder is not None
        run = folder.parent
        assert run.parent == tmp_path
        assert run.name.startswith(f"imagefactory-run-{os.getpid()}-")
        assert stat.S_IMODE(run.stat().st_mode) == stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_no_child_inherits_the_credential_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_REG_USER", "ci-bot")
    monkeypatch.setenv("TEST_REG_PASSWORD", PASSWORD)
    with docker_config([REGISTRY]):
        names = [sys.executable, "-c", "import os; print(' '.join(sorted(os.environ)))"]
        inherited = tools.run(names).output.split()
    assert "PATH" in inherited
    assert {"TEST_REG_USER", "TEST_REG_PASSWORD"}.isdisjoint(inherited)


def test_no_variables_named_means_the_users_own_login() -> None:
    with docker_config([Registry(url="anonymous.example")]) as folder:
        assert folder is None


@pytest.mark.parametrize(
    ("gitlab", "hint"),
    [
        (False, "export both variables"),
        (True, "GitLab passes protected CI/CD variables only to jobs on protected branches"),
    ],
)
def test_a_missing_variable(monkeypatch: pytest.MonkeyPatch, gitlab: bool, hint: str) -> None:
    monkeypatch.setenv("TEST_REG_USER", "ci-bot")
    monkeypatch.setenv("TEST_REG_PASSWORD", "")  # how GitLab hands a protected one to a branch
    monkeypatch.setenv("CI", "true" if gitlab else "")
    monkeypatch.setenv("GITLAB_CI", "true" if gitlab else "")
    with pytest.raises(UserError) as caught:
        login_entry(REGISTRY)
    assert caught.value.message == (
        "registry registry.example:5000 needs credentials from TEST_REG_USER and "
        "TEST_REG_PASSWORD, but TEST_REG_PASSWORD is not set"
    )
    assert hint in (caught.value.hint or "")
