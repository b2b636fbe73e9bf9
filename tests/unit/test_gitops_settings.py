"""gitops.yaml: the example loads; mistakes are reported with file, line and key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from imagefactory.errors import SpecError, SpecIssue, UserError
from imagefactory.spec.gitops import load_settings
from imagefactory.spec.loader import load_catalog

from .conftest import REPO


@pytest.fixture
def root(catalog_dir: Path) -> Path:
    shutil.copy(REPO / "gitops.yaml", catalog_dir / "gitops.yaml")
    return catalog_dir


def test_the_example_loads(root: Path) -> None:
    settings = load_settings(load_catalog(root))
    assert list(settings.environments) == ["dev", "preprod", "prod"]
    assert settings.environments["prod"].mode == "merge_request"
    assert settings.environments["preprod"].replicas == 2
    assert settings.skip_ci is True
    with pytest.raises(UserError, match=r"no environment 'qa' in gitops\.yaml"):
        settings.environment("qa")


def _issues(root: Path, old: str, new: str) -> list[SpecIssue]:
    path = root / "gitops.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(SpecError) as caught:
        load_settings(load_catalog(root))
    return caught.value.issues


def _errors(root: Path, old: str, new: str) -> str:
    return str(SpecError(_issues(root, old, new)))


def test_an_unknown_key_names_file_line_and_a_hint(root: Path) -> None:
    message = _errors(root, "    replicas: 2\n", "    replica: 2\n")
    line = (root / "gitops.yaml").read_text().splitlines().index("    replica: 2") + 1
    assert f"gitops.yaml:{line}: environments.preprod.replica: unknown key 'replica'" in message
    assert "did you mean 'replicas'?" in message


def test_bad_values_are_all_reported(root: Path) -> None:
    path = root / "gitops.yaml"
    text = (
        path.read_text()
        .replace("mode: merge_request", "mode: pull")
        .replace("namespace: bank-ai-lab-dev", "namespace: Bank_Dev")
    )
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_settings(load_catalog(root))
    keys = {i.key_path for i in caught.value.issues}
    assert keys == {"environments.prod.mode", "environments.dev.namespace"}
    assert all(i.line is not None for i in caught.value.issues)


def test_an_environment_the_project_does_not_have(root: Path) -> None:
    message = _errors(root, "  preprod:\n", "  staging:\n")
    assert "environments.staging: 'staging' is not an environment of the project" in message


def test_merge_requests_need_gitlab_settings(root: Path) -> None:
    path = root / "gitops.yaml"
    text = path.read_text()
    start, end = text.index("gitlab:\n"), text.index("environments:\n")
    path.write_text(text[:start] + text[end:])
    with pytest.raises(SpecError, match="merge_request mode needs gitlab settings"):
        load_settings(load_catalog(root))


def test_a_missing_file_says_where_to_write_it(catalog_dir: Path) -> None:
    with pytest.raises(UserError, match=r"no gitops\.yaml in"):
        load_settings(load_catalog(catalog_dir))


def test_invalid_yaml_is_a_spec_error(root: Path) -> None:
    (root / "gitops.yaml").write_text("repo_url: [unclosed\n")
    with pytest.raises(SpecError, match="invalid YAML"):
        load_settings(load_catalog(root))


# --------------------------------------------------------------------------- hostile values (issue 13)

GITLAB_URL = "  url: https://gitlab.example-bank.internal\n"


@pytest.mark.parametrize("value", ["../elsewhere", "apps/../../x", "./apps", "apps//x", "/apps"])
def test_the_path_stays_inside_the_repository(root: Path, value: str) -> None:
    [issue] = _issues(root, "path: apps", f"path: {value}")
    assert issue.key_path == "path" and issue.line is not None and issue.hint


def test_the_gitlab_url_must_be_https(root: Path) -> None:
    [issue] = _issues(root, GITLAB_URL, "  url: http://gitlab.example-bank.internal\n")
    assert issue.key_path == "gitlab.url"
    assert "127.0.0.1" in (issue.hint or "")


def test_plain_http_to_loopback_is_allowed_for_tests(root: Path) -> None:
    path = root / "gitops.yaml"
    path.write_text(path.read_text().replace(GITLAB_URL, "  url: http://127.0.0.1:8929\n"))
    settings = load_settings(load_catalog(root))
    assert settings.gitlab is not None and settings.gitlab.url == "http://127.0.0.1:8929"
