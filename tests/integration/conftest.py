"""Fixtures for tests that need the real host services started by ``scripts/services.sh``; the
helper library they are built from is the ``helpers`` package beside this file.

When the services are not running, the fixtures FAIL (not skip) with a message saying how to
start them: CI starts them before the tests, so a missing service is a broken host.

Every test module of this folder is marked ``integration``. A bare ``pytest`` collects
``tests/unit`` only (``testpaths`` in pyproject.toml); ``scripts/test.sh`` and CI name both
folders, and ``pytest tests/integration`` asks for these tests explicitly.

Fixtures are session-scoped where they are expensive: the example catalog is built (and each of
its images pushed) once per run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers.example import (
    ExampleBuild,
    build_example,
    copy_built_example,
    prepare_example_catalog,
    remove_session_images,
)
from .helpers.registry import Registry, registry_cleanup
from .helpers.services import HostServices, docker, import_tiny_base, require_host_services
from .helpers.tls_registry import TLSRegistry, running_registry

INTEGRATION_TESTS = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this folder's test modules ``integration`` (the helpers' own tests,
    which need no service, stay unmarked)."""
    for item in items:
        if item.path.parent == INTEGRATION_TESTS:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def host_services() -> HostServices:
    """Fail clearly unless dockerd and the authenticated registry are up."""
    return require_host_services()


@pytest.fixture(scope="session")
def registry(host_services: HostServices) -> Registry:
    return host_services.registry


@pytest.fixture(scope="session")
def docker_config(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private DOCKER_CONFIG dir logged in to the local registry (password via stdin).

    skopeo reads the same credentials with ``--authfile <dir>/config.json``.
    """
    config_dir = tmp_path_factory.mktemp("docker-config")
    config_dir.chmod(0o700)
    docker(
        "login",
        registry.host,
        "--username",
        registry.user,
        "--password-stdin",
        docker_config=config_dir,
        input_text=registry.password + "\n",
        timeout=60,
    )
    yield config_dir
    docker("logout", registry.host, docker_config=config_dir, check=False)
    shutil.rmtree(config_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_base(
    host_services: HostServices, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A ~2 MB base image imported from a static busybox (nothing can be pulled here).

    Yields the local reference ``imagefactory-test/tiny:<unique>``; removed at session end.
    """
    ref = import_tiny_base(tmp_path_factory.mktemp("tiny-base"))
    yield ref
    docker("rmi", "--force", ref, check=False)


@pytest.fixture(scope="session")
def test_session_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def registry_env(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The process environment plus the credential variables the example catalog names, and
    its signing key's: the path of the session's private key (``example_build`` makes it)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IMAGEFACTORY_REGISTRY_", "IMAGEFACTORY_SIGNING_KEY"))
        # nor where a CI job would point the registries (url_env / namespace_env)
        and not (k.startswith("IMAGEFACTORY_") and k.endswith(("_REGISTRY", "_NAMESPACE")))
    }
    env["IMAGEFACTORY_SIGNING_KEY"] = str(tmp_path_factory.mktemp("signing") / "signing.key")
    env.pop("DOCKER_HOST", None)
    env["IMAGEFACTORY_REGISTRY_USER"] = registry.user
    env["IMAGEFACTORY_REGISTRY_PASSWORD"] = registry.password
    env["DOCKER_BUILDKIT"] = "1"
    return env


@pytest.fixture(scope="session")
def example_build(
    registry: Registry,
    registry_env: dict[str, str],
    test_session_id: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ExampleBuild]:
    """The example catalog (without runtime/llm:cuda) built and pushed ONCE per session.

    At the end every local image carrying this session's label and every manifest under
    ``it-<session>/`` in the registry are removed.
    """
    session = test_session_id
    root = prepare_example_catalog(
        tmp_path_factory.mktemp("example") / "catalog",
        session,
        Path(registry_env["IMAGEFACTORY_SIGNING_KEY"]),
    )
    try:
        yield build_example(root, session, registry, registry_env)
    finally:
        remove_session_images(session)
        registry_cleanup(registry, f"it-{session}")


@pytest.fixture
def example_copy(example_build: ExampleBuild, tmp_path: Path) -> Path:
    """A private, changeable copy of the built catalog (see ``copy_built_example``)."""
    return copy_built_example(example_build, tmp_path / "catalog")


@pytest.fixture(scope="session")
def registry_b(
    host_services: HostServices, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TLSRegistry]:
    """Registry B (``helpers/tls_registry.py``): a second registry over TLS from a CA generated
    for the session, with htpasswd; Debian's docker-registry on a free loopback port. Started
    once per session; stopped and its storage removed at the end."""
    with running_registry(tmp_path_factory.mktemp("registry-b") / "b") as started:
        yield started
