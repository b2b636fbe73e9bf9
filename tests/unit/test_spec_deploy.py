"""``deploy:`` of an image: its cron grammar, and that only applications have one."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from imagefactory.errors import SpecError
from imagefactory.project.hashing import content_inputs
from imagefactory.spec.loader import load_catalog
from imagefactory.spec.models import Deploy

from .conftest import Edit

APP = "images/app/rag-api/image.yaml"
RUNTIME = "images/runtime/llm/image.yaml"


@pytest.mark.parametrize(
    "schedule", ["0 2 * * *", "*/15 * * * *", "0 0 1,15 * MON-FRI", "30 4 * JAN-MAR 1/2", "@daily"]
)
def test_cron_schedules_are_taken(schedule: str) -> None:
    assert Deploy(schedule=schedule).schedule == schedule


@pytest.mark.parametrize(
    "schedule",
    [
        "0 2 * *",  # four fields
        "0 2 * * * *",  # six
        "0  2 * * *",  # two spaces
        "0 2 * * *; curl evil",
        "0 2 * * *\nkind: Secret",
        "$(id) * * * *",
        "@reboot",
        "",
    ],
)
def test_anything_else_is_refused(schedule: str) -> None:
    with pytest.raises(ValidationError, match="cron schedule"):
        Deploy(schedule=schedule)


def _issues(root: Path) -> dict[str, str]:
    with pytest.raises(SpecError) as caught:
        load_catalog(root)
    return {i.key_path: i.message for i in caught.value.issues}


def test_deploy_is_for_applications_only(catalog_dir: Path, edit: Edit) -> None:
    edit(RUNTIME, "name: runtime/llm\n", "name: runtime/llm\ndeploy:\n  schedule: '@daily'\n")
    assert _issues(catalog_dir) == {
        "deploy": "deploy is for applications; runtime/llm is not under app/"
    }


def test_a_scheduled_application_serves_no_ports(catalog_dir: Path, edit: Edit) -> None:
    edit(APP, "ports: [8080]\n", "ports: [8080]\ndeploy:\n  schedule: '0 2 * * *'\n")
    issues = _issues(catalog_dir)
    assert issues == {
        "deploy.schedule": "a scheduled image runs as a CronJob, which serves no ports"
    }


def test_deploy_is_not_part_of_the_content_hash(catalog_dir: Path, edit: Edit) -> None:
    before = content_inputs(load_catalog(catalog_dir))["app/rag-api"].content_hash
    edit(APP, "ports: [8080]\n", "ports: [8080]\ndeploy:\n  writable_paths: [/var/cache/rag]\n")
    catalog = load_catalog(catalog_dir)
    assert catalog.images["app/rag-api"].spec.deploy.writable_paths == ["/var/cache/rag"]
    assert content_inputs(catalog)["app/rag-api"].content_hash == before


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/", "it is the root filesystem"),
        ("/proc/self", "the kernel mounts it"),
        ("/dev", "the kernel mounts it"),
        ("/sys/fs", "the kernel mounts it"),
    ],
)
def test_a_writable_path_is_a_folder_of_the_image(
    catalog_dir: Path, edit: Edit, path: str, why: str
) -> None:
    edit(APP, "ports: [8080]\n", f"ports: [8080]\ndeploy:\n  writable_paths: [/var/x, {path}]\n")
    assert _issues(catalog_dir) == {
        "deploy.writable_paths[1]": f"'{path}' cannot be a writable volume: {why}"
    }


def test_writable_paths_that_merely_start_alike_are_taken(catalog_dir: Path, edit: Edit) -> None:
    edit(APP, "ports: [8080]\n", "ports: [8080]\ndeploy:\n  writable_paths: [/devices, /system]\n")
    assert load_catalog(catalog_dir).images["app/rag-api"].spec.deploy.writable_paths == [
        "/devices",
        "/system",
    ]
