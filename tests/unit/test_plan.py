"""The plan: content hashes and the reasons an image would be rebuilt, against a state file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagefactory.errors import ImageFactoryError, UserError
from imagefactory.project import hashing, paths
from imagefactory.project.plan import PlanEntry, make_plan
from imagefactory.project.state import State, load_state
from imagefactory.spec.loader import load_catalog

from .conftest import Edit


def plan(root: Path, templates: Path, state: State | None = None) -> dict[str, PlanEntry]:
    """The plan with ``templates`` as the standard template set (the ``templates`` fixture)."""
    entries = make_plan(load_catalog(root), state or State())
    return {e.ref: e for e in entries}


def recorded(entries: dict[str, PlanEntry]) -> State:
    """The state a build of these entries would leave behind."""
    images = {
        ref: {
            "content_hash": e.inputs.content_hash,
            "inputs": e.inputs.as_dict(),
            "version": e.version,
        }
        for ref, e in entries.items()
    }
    return State.model_validate({"images": images})


@pytest.fixture
def templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A standard template set of the test's own, in place of the package's."""
    folder = tmp_path / "templates"
    (folder / "dockerfile").mkdir(parents=True)
    (folder / "dockerfile" / "Dockerfile.j2").write_text("FROM {{ parent }}\n")
    monkeypatch.setattr(paths, "_TEMPLATES", folder)
    return folder


def test_a_missing_template_set_is_an_error_not_an_empty_hash_input(
    catalog_dir: Path, templates: Path
) -> None:
    (templates / "dockerfile" / "Dockerfile.j2").unlink()
    with pytest.raises(ImageFactoryError, match="standard templates are missing") as caught:
        plan(catalog_dir, templates)
    assert caught.value.hint is not None and "reinstall" in caught.value.hint


def test_without_state_everything_is_new_in_build_order(catalog_dir: Path, templates: Path) -> None:
    entries = plan(catalog_dir, templates)
    assert list(entries) == [
        "base/debian12",
        "runtime/llm:cpu",
        "runtime/llm:cuda",
        "tools/ci",
        "app/rag-api",
        "app/rag-api-distroless",
    ]
    assert all(e.reasons == ("new",) and e.action == "build" for e in entries.values())


def test_unchanged_catalog_is_up_to_date(catalog_dir: Path, templates: Path) -> None:
    state = recorded(plan(catalog_dir, templates))
    assert all(e.action == "skip" for e in plan(catalog_dir, templates, state).values())


def test_base_change_reaches_every_descendant(
    catalog_dir: Path, templates: Path, edit: Edit
) -> None:
    state = recorded(plan(catalog_dir, templates))
    edit(
        "images/base/debian12/image.yaml",
        "packages: [ca-certificates, tzdata, passwd]",
        "packages: [ca-certificates]",
    )
    entries = plan(catalog_dir, templates, state)
    assert entries["base/debian12"].reasons == ("spec changed",)
    for ref in ["runtime/llm:cpu", "runtime/llm:cuda", "app/rag-api", "app/rag-api-distroless"]:
        assert entries[ref].reasons == ("parent changed",)


def test_app_change_rebuilds_only_the_app(catalog_dir: Path, templates: Path, edit: Edit) -> None:
    state = recorded(plan(catalog_dir, templates))
    main = catalog_dir / "images/app/rag-api/app/rag_api/main.py"
    main.write_text(main.read_text() + "\n# changed\n")
    entries = plan(catalog_dir, templates, state)
    assert entries["app/rag-api"].reasons == ("file changed",)
    assert entries["app/rag-api-distroless"].reasons == ("parent changed",)  # built on it
    assert [r for r, e in entries.items() if e.action == "build"] == [
        "app/rag-api",
        "app/rag-api-distroless",
    ]


def test_variant_overlay_change_rebuilds_only_that_variant(
    catalog_dir: Path, templates: Path, edit: Edit
) -> None:
    state = recorded(plan(catalog_dir, templates))
    edit(
        "images/runtime/llm/image.yaml",
        "NVIDIA_VISIBLE_DEVICES: all",
        "NVIDIA_VISIBLE_DEVICES: '0'",
    )
    building = [r for r, e in plan(catalog_dir, templates, state).items() if e.action == "build"]
    assert building == ["runtime/llm:cuda"]


def test_template_change_and_image_override(catalog_dir: Path, templates: Path) -> None:
    state = recorded(plan(catalog_dir, templates))
    (templates / "dockerfile" / "Dockerfile.j2").write_text("FROM {{ parent }}\nRUN true\n")
    assert {e.reasons[0] for e in plan(catalog_dir, templates, state).values()} == {
        "template changed"
    }
    state = recorded(plan(catalog_dir, templates))
    (catalog_dir / "images/app/rag-api/Dockerfile.j2").write_text("{% extends 'Dockerfile.j2' %}\n")
    assert plan(catalog_dir, templates, state)["app/rag-api"].reasons == ("template changed",)


def test_tests_and_targets_do_not_change_the_hash(
    catalog_dir: Path, templates: Path, edit: Edit
) -> None:
    before = plan(catalog_dir, templates)
    edit("images/app/rag-api/image.yaml", "timeout: 60s", "timeout: 90s")
    edit("images/app/rag-api/image.yaml", "targets: [docker]", "targets: [docker, packer]")
    assert plan(catalog_dir, templates)["app/rag-api"].inputs == before["app/rag-api"].inputs


def test_project_build_settings_change_every_hash(
    catalog_dir: Path, templates: Path, edit: Edit
) -> None:
    state = recorded(plan(catalog_dir, templates))
    edit("imagefactory.yaml", "source_date_epoch: 1700000000", "source_date_epoch: 1700000001")
    assert all("spec changed" in e.reasons for e in plan(catalog_dir, templates, state).values())


def test_a_new_bootstrap_recipe_version_rebuilds_the_bootstrapped_chain(
    catalog_dir: Path, templates: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change to how rootfs tars are made (mmdebstrap options) must not reuse old images."""
    state = recorded(plan(catalog_dir, templates))
    monkeypatch.setattr(hashing, "RECIPE_VERSION", hashing.RECIPE_VERSION + 1)
    entries = plan(catalog_dir, templates, state)
    assert entries["base/debian12"].reasons == ("parent changed",)
    for ref in ["runtime/llm:cpu", "runtime/llm:cuda", "app/rag-api", "app/rag-api-distroless"]:
        assert entries[ref].reasons == ("parent changed",)


def test_state_file_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert load_state(path) == State()
    path.write_text(
        json.dumps(
            {
                "schema": 1,
                "images": {
                    "a": {
                        "content_hash": "h",
                        "inputs": {},
                        "version": "1.0.0",
                        "ticket": "CHG-1234",
                    }
                },
            }
        )
    )
    record = load_state(path).images["a"]
    assert record.content_hash == "h" and record.model_extra == {"ticket": "CHG-1234"}
    path.write_text("{not json")
    with pytest.raises(UserError, match="cannot read the state file"):
        load_state(path)
    path.write_text(json.dumps({"schema": 99, "images": {}}))
    with pytest.raises(UserError, match="schema 99"):
        load_state(path)


def test_symlinked_files_and_playbooks_are_hashed_by_content(
    catalog_dir: Path, templates: Path, edit: Edit
) -> None:
    target = catalog_dir / "images/app/rag-api/real.txt"
    target.write_text("one")
    (catalog_dir / "images/app/rag-api/linked.txt").symlink_to("real.txt")
    (catalog_dir / "ansible").mkdir()
    (catalog_dir / "ansible/app.yml").write_text("- hosts: all\n")
    edit(
        "images/app/rag-api/image.yaml",
        "files:\n",
        "playbooks: [ansible/app.yml]\nfiles:\n  - {src: linked.txt, dest: /etc/linked.txt}\n",
    )
    state = recorded(plan(catalog_dir, templates))
    target.write_text("two")
    assert plan(catalog_dir, templates, state)["app/rag-api"].reasons == ("file changed",)
    state = recorded(plan(catalog_dir, templates))
    (catalog_dir / "ansible/app.yml").write_text("- hosts: all\n  roles: [hardening]\n")
    assert plan(catalog_dir, templates, state)["app/rag-api"].reasons == ("file changed",)
    state = recorded(plan(catalog_dir, templates))
    (catalog_dir / "ansible/roles/hardening/tasks").mkdir(parents=True)
    (catalog_dir / "ansible/roles/hardening/tasks/main.yml").write_text("- debug: {msg: hi}\n")
    assert plan(catalog_dir, templates, state)["app/rag-api"].reasons == ("file changed",)
