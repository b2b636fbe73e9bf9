"""A registry's url and namespace from CI variables: which names may be used, what a value must
look like, and that the literals stay when the variables are not set."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagefactory.errors import SpecError
from imagefactory.project.naming import repository
from imagefactory.spec.loader import load_catalog

from .conftest import Edit

PROJECT = "imagefactory.yaml"
DEV = "    url_env: IMAGEFACTORY_CATALOG_REGISTRY"


@pytest.fixture(autouse=True)
def _unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("IMAGEFACTORY_CATALOG_REGISTRY", "IMAGEFACTORY_DEV_NAMESPACE", "CI_REGISTRY"):
        monkeypatch.delenv(name, raising=False)


def _issues(root: Path) -> dict[str, str]:
    with pytest.raises(SpecError) as caught:
        load_catalog(root)
    return {i.key_path: i.message for i in caught.value.issues}


def test_without_the_variables_the_literals_hold(catalog_dir: Path) -> None:
    dev = load_catalog(catalog_dir).project.registries["dev"]
    assert (dev.url, dev.namespace, dev.tls_verify) == ("127.0.0.1:5000", "bank-ai-lab/dev", False)


def test_set_variables_replace_url_and_namespace(
    catalog_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEFACTORY_CATALOG_REGISTRY", "registry.gitlab.example.com")
    monkeypatch.setenv("IMAGEFACTORY_DEV_NAMESPACE", "platform/catalog/dev")
    registries = load_catalog(catalog_dir).project.registries
    dev, prod = registries["dev"], registries["prod"]
    assert (
        repository(dev, "app/rag-api")
        == "registry.gitlab.example.com/platform/catalog/dev/app/rag-api"
    )
    # a host the runner names is always verified; the unset namespace keeps its literal
    assert dev.tls_verify and prod.tls_verify
    assert prod.namespace == "bank-ai-lab/prod"


def test_an_empty_variable_is_unset(catalog_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEFACTORY_CATALOG_REGISTRY", "")
    assert load_catalog(catalog_dir).project.registries["dev"].url == "127.0.0.1:5000"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("IMAGEFACTORY_CATALOG_REGISTRY", "evil.example.com/other", "HOST[:PORT]"),
        ("IMAGEFACTORY_CATALOG_REGISTRY", "user@evil.example.com", "HOST[:PORT]"),
        ("IMAGEFACTORY_CATALOG_REGISTRY", "https://registry.example.com", "HOST[:PORT]"),
        ("IMAGEFACTORY_DEV_NAMESPACE", "../prod", "lowercase path segments"),
        ("IMAGEFACTORY_DEV_NAMESPACE", "Group/Project", "lowercase path segments"),
    ],
)
def test_a_value_that_does_not_fit_is_refused_with_its_key(
    catalog_dir: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    found = _issues(catalog_dir)
    key = "registries.dev.url_env" if "REGISTRY" in variable else "registries.dev.namespace_env"
    assert expected in found[key] and f"${variable} holds {value!r}" in found[key]


@pytest.mark.parametrize(
    "name",
    [
        "IMAGEFACTORY_REGISTRY_PASSWORD",
        "GITLAB_TOKEN",
        "CI_JOB_TOKEN",
        "HOME",
        "IMAGEFACTORY_SIGNING_KEY",
    ],
)
def test_only_names_that_cannot_be_a_secrets_are_accepted(
    catalog_dir: Path, edit: Edit, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "registry.example.com")  # host-like: it would be used if allowed
    edit(PROJECT, DEV, f"    url_env: {name}")
    found = _issues(catalog_dir)
    assert "a variable a registry host may come from" in found["registries.dev.url_env"]


def test_ci_registry_is_accepted(
    catalog_dir: Path, edit: Edit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_REGISTRY", "registry.gitlab.example.com:5050")
    edit(PROJECT, DEV, "    url_env: CI_REGISTRY")
    assert load_catalog(catalog_dir).project.registries["dev"].url == (
        "registry.gitlab.example.com:5050"
    )
