"""The loader: the example catalog loads, and every kind of mistake is reported — all at once."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel

from imagefactory.errors import SpecError, SpecIssue, UserError
from imagefactory.spec.loader import find_project_root, load_catalog
from imagefactory.spec.models import ImageDocument, ProjectSpec
from imagefactory.spec.parents import BootstrapParent, CatalogParent

from .conftest import REPO, Edit, without_shell_less

RUNTIME = "images/runtime/llm/image.yaml"
APP = "images/app/rag-api/image.yaml"
BASE = "images/base/debian12/image.yaml"


def issues_of(root: Path) -> list[SpecIssue]:
    with pytest.raises(SpecError) as caught:
        load_catalog(root)
    return caught.value.issues


def only(issues: list[SpecIssue], key: str) -> SpecIssue:
    matching = [i for i in issues if i.key_path == key]
    assert len(matching) == 1, f"expected one issue at {key}, got {issues}"
    return matching[0]


def test_example_catalog_expands_variants_and_resolves_parents(catalog_dir: Path) -> None:
    catalog = load_catalog(catalog_dir)
    assert list(catalog.images) == [
        "app/rag-api",
        "app/rag-api-distroless",
        "base/debian12",
        "runtime/llm:cpu",
        "runtime/llm:cuda",
        "tools/ci",
    ]
    assert isinstance(catalog.images["base/debian12"].parent, BootstrapParent)
    assert catalog.images["app/rag-api"].parent == CatalogParent("runtime/llm", "cpu")
    cuda = catalog.images["runtime/llm:cuda"].spec
    assert cuda.variant == {"accelerator": "cuda"}
    assert "onnxruntime-gpu==1.22.0" in cuda.pip and "onnxruntime==1.22.0" not in cuda.pip
    assert cuda.env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert cuda.env["TZ"] == "UTC"  # from the project defaults


def test_reports_every_error_of_every_file_in_one_run(catalog_dir: Path, edit: Edit) -> None:
    edit(RUNTIME, "packages: [python3", "pakages: [python3")
    edit(RUNTIME, "version: 1.0.0", "version: 1.0")
    edit(APP, 'mode: "0644"\n    owner', 'mode: "0999"\n    owner')
    edit("imagefactory.yaml", "catalog: images", "catalog: images\nregistres: {}")
    issues = issues_of(catalog_dir)
    typo = only(issues, "pakages")
    assert typo.hint == "did you mean 'packages'?"
    assert typo.file == catalog_dir / RUNTIME
    assert typo.line == 8
    assert "semantic version" in only(issues, "version").message
    assert "octal" in only(issues, "files[0].mode").message
    assert only(issues, "registres").hint == "did you mean 'registries'?"


def test_nested_unknown_key_gets_a_hint_from_its_own_model(catalog_dir: Path, edit: Edit) -> None:
    edit(BASE, "    uid: 10001\n    gid", "    uidd: 10001\n    gid")
    issue = only(issues_of(catalog_dir), "create_users[0].uidd")
    assert issue.hint == "did you mean 'uid'?"


def test_salvaged_document_still_gets_its_other_checks(catalog_dir: Path, edit: Edit) -> None:
    edit(RUNTIME, "version: 1.0.0", "version: one")
    edit(RUNTIME, "from: base/debian12", "from: base/debian13")
    edit(
        RUNTIME,
        "labels:\n  com.example-bank.image.tier",
        "build_args:\n  HF_TOKEN: x\nlabels:\n  com.example-bank.image.tier",
    )
    issues = issues_of(catalog_dir)
    assert {i.key_path for i in issues} == {"version", "from", "build_args.HF_TOKEN"}
    assert only(issues, "from").hint == "did you mean 'base/debian12'?"


def test_secret_looking_build_arg_points_to_build_secrets(catalog_dir: Path, edit: Edit) -> None:
    edit(
        APP,
        "env:\n  PYTHONPATH",
        "build_args:\n  PIP_INDEX_PASSWORD: hunter2\n  PIP_INDEX_URL: http://x\nenv:\n  PYTHONPATH",
    )
    issue = only(issues_of(catalog_dir), "build_args.PIP_INDEX_PASSWORD")
    assert "secrets" in (issue.hint or "") and "--mount=type=secret" in (issue.hint or "")
    assert "hunter2" not in issue.render()


def test_missing_parent_and_unknown_variant(catalog_dir: Path, edit: Edit) -> None:
    edit(APP, "from: runtime/llm:cpu", "from: runtime/llm:gpu")
    issue = only(issues_of(catalog_dir), "from")
    assert "no variant 'gpu'" in issue.message and "cpu, cuda" in issue.message


def test_parent_with_variants_must_name_one(catalog_dir: Path, edit: Edit) -> None:
    edit(APP, "from: runtime/llm:cpu", "from: runtime/llm")
    issue = only(issues_of(catalog_dir), "from")
    assert "has variants" in issue.message and "runtime/llm:cpu" in (issue.hint or "")


def test_variant_of_an_image_without_variants(catalog_dir: Path, edit: Edit) -> None:
    edit(RUNTIME, "from: base/debian12", "from: base/debian12:slim")
    assert "no variant 'slim'" in only(issues_of(catalog_dir), "from").message


def test_external_parent_must_be_pinned_by_digest(catalog_dir: Path, edit: Edit) -> None:
    without_shell_less(catalog_dir)  # a shell-less image needs a bootstrapped chain
    edit(RUNTIME, "from: base/debian12", "from: registry.example.com/python:3.11")
    assert "not pinned by digest" in only(issues_of(catalog_dir), "from").message
    edit(RUNTIME, "python:3.11", "python:3.11@sha256:abc")
    assert "not a sha256 digest" in only(issues_of(catalog_dir), "from").message
    edit(RUNTIME, "sha256:abc", "sha256:" + "a" * 64)
    image = load_catalog(catalog_dir).images["runtime/llm:cpu"]
    assert image.parent_ref is None


def test_duplicate_names_name_both_files(catalog_dir: Path) -> None:
    copy = catalog_dir / "images/base/debian12-copy"
    copy.mkdir()
    (copy / "image.yaml").write_text((catalog_dir / BASE).read_text())
    issues = [i for i in issues_of(catalog_dir) if i.key_path == "name"]
    assert len(issues) == 2
    assert all("debian12-copy" in i.message and "debian12/image.yaml" in i.message for i in issues)


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("../../base", "leaves the image folder"),
        ("/etc/passwd", "absolute path"),
        ("nothere", "does not exist"),
    ],
)
def test_file_sources_stay_in_the_image_folder(
    catalog_dir: Path, edit: Edit, src: str, expected: str
) -> None:
    edit(APP, "src: app/rag_api", f"src: {src}")
    assert expected in only(issues_of(catalog_dir), "files[0].src").message


def test_symlink_pointing_outside_is_refused(catalog_dir: Path) -> None:
    (catalog_dir / "images/app/rag-api/app/rag_api/escape").symlink_to("/etc")
    issue = only(issues_of(catalog_dir), "files[0].src")
    assert "symlink pointing outside" in issue.message and "escape" in issue.message


def test_cycle_is_reported_as_a_chain(catalog_dir: Path, edit: Edit) -> None:
    edit(
        BASE,
        "bootstrap:\n  suite: bookworm\n  variant: apt\n  packages: [ca-certificates, tzdata, passwd]\n",
        "from: app/rag-api\n",
    )
    [issue] = [i for i in issues_of(catalog_dir) if "cycle" in i.message]
    chain = issue.message.split(": ", 1)[1].split(" => ")
    assert chain[0] == chain[-1]
    assert set(chain) == {"app/rag-api", "base/debian12", "runtime/llm:cpu"}


def test_image_needs_exactly_one_parent(catalog_dir: Path, edit: Edit) -> None:
    edit(RUNTIME, "from: base/debian12\n", "")
    assert "needs a parent" in only(issues_of(catalog_dir), "").message


def test_yaml_syntax_error_does_not_hide_other_files(catalog_dir: Path, edit: Edit) -> None:
    edit(BASE, "suite: bookworm", "suite: [bookworm")
    edit(APP, "ports: [8080]", "ports: [http]")
    issues = issues_of(catalog_dir)
    assert any(i.file.name == "image.yaml" and "invalid YAML" in i.message for i in issues)
    assert any(i.key_path == "ports[0]" for i in issues)


def test_project_file_checks(catalog_dir: Path, edit: Edit) -> None:
    edit("imagefactory.yaml", "registries: [prod]", "registries: [production]")
    edit(
        "imagefactory.yaml",
        "ca_bundle: /etc/ssl/certs/ca-certificates.crt",
        "ca_bundle: certs/missing.pem",
    )
    issues = issues_of(catalog_dir)
    assert only(issues, "environments[2].registries[0]").message == "unknown registry 'production'"
    assert "not a file" in only(issues, "build.ca_bundle").message


def test_defaults_may_not_set_a_parent(catalog_dir: Path, edit: Edit) -> None:
    edit("imagefactory.yaml", "defaults:\n", "defaults:\n  from: base/debian12\n")
    assert "defaults cannot set" in only(issues_of(catalog_dir), "defaults").message


def test_empty_catalog_folder(tmp_path: Path) -> None:
    (tmp_path / "imagefactory.yaml").write_text("project: p\n")
    assert "no image.yaml found" in only(issues_of(tmp_path), "catalog").message


def test_find_project_root_walks_up(catalog_dir: Path, tmp_path: Path) -> None:
    assert find_project_root(catalog_dir / "images/app/rag-api") == catalog_dir.resolve()
    with pytest.raises(UserError, match=r"no imagefactory\.yaml"):
        find_project_root(Path("/"))


def test_select_by_name_ref_and_near_miss(catalog_dir: Path) -> None:
    catalog = load_catalog(catalog_dir)
    assert [i.ref for i in catalog.select(["runtime/llm"])] == [
        "runtime/llm:cpu",
        "runtime/llm:cuda",
    ]
    assert [i.ref for i in catalog.select(["runtime/llm:cuda"])] == ["runtime/llm:cuda"]
    with pytest.raises(UserError) as caught:
        catalog.select(["app/rag-apu"])
    assert caught.value.hint == "did you mean 'app/rag-api'?"


def test_multi_axis_variants_expand_to_the_cross_product(tmp_path: Path) -> None:
    (tmp_path / "imagefactory.yaml").write_text("project: p\n")
    folder = tmp_path / "images/rt"
    folder.mkdir(parents=True)
    (folder / "image.yaml").write_text(
        "name: rt\nversion: 1.0.0\n"
        "variants:\n"
        "  accel:\n    cpu: {from: 'r.example.com/a@sha256:" + "a" * 64 + "'}\n"
        "    cuda: {from: 'r.example.com/b@sha256:" + "b" * 64 + "', packages: [cuda]}\n"
        "  py:\n    py311: {packages: [python3.11]}\n    py312: {packages: [python3.12]}\n"
    )
    catalog = load_catalog(tmp_path)
    assert list(catalog.images) == [
        "rt:cpu-py311",
        "rt:cpu-py312",
        "rt:cuda-py311",
        "rt:cuda-py312",
    ]
    assert catalog.images["rt:cuda-py312"].spec.packages == ["cuda", "python3.12"]


def test_unquoted_file_mode_is_refused_with_the_quoted_form(catalog_dir: Path, edit: Edit) -> None:
    edit(APP, 'mode: "0644"\n    owner', "mode: 644\n    owner")
    issue = only(issues_of(catalog_dir), "files[0].mode")
    assert "must be quoted" in issue.message and '"0644"' in issue.message


def test_variant_values_cannot_contain_the_ref_separator(catalog_dir: Path, edit: Edit) -> None:
    edit(RUNTIME, "    cuda:\n", "    cuda-12:\n")
    assert {i.key_path for i in issues_of(catalog_dir)} == {"variants.accelerator.cuda-12"}


def test_broken_variant_does_not_blame_the_children(catalog_dir: Path, edit: Edit) -> None:
    edit(
        RUNTIME,
        "      pip: [onnxruntime==1.22.0]",
        "      pip: [onnxruntime==1.22.0]\n      colour: red",
    )
    issues = issues_of(catalog_dir)
    assert [i.key_path for i in issues] == ["variants.accelerator.cpu.colour"]


def test_variant_cannot_give_a_bootstrapped_image_a_parent(catalog_dir: Path, edit: Edit) -> None:
    edit(BASE, "user: app\n", "user: app\nvariants:\n  flavour:\n    slim: {from: base/other}\n")
    assert "either 'from' or 'bootstrap'" in only(issues_of(catalog_dir), "").message


def test_defaults_get_the_same_checks_as_images(catalog_dir: Path, edit: Edit) -> None:
    edit(
        "imagefactory.yaml",
        "  targets: [docker]",
        "  targets: [docker]\n  build_args:\n    NPM_TOKEN: x",
    )
    assert only(issues_of(catalog_dir), "defaults.build_args.NPM_TOKEN").hint
    edit(
        "imagefactory.yaml",
        "    NPM_TOKEN: x",
        "    NPM_REGISTRY: x\n  files: [{src: a, dest: /a}]",
    )
    assert "defaults cannot set files" in only(issues_of(catalog_dir), "defaults").message


def test_duplicate_key_does_not_hide_the_other_errors_of_its_file(
    catalog_dir: Path, edit: Edit
) -> None:
    edit(APP, "user: app\n", "user: app\nuser: root\nworkdirr: /x\n")
    issues = issues_of(catalog_dir)
    assert "duplicate key" in only(issues, "user").message
    assert only(issues, "workdirr").hint == "did you mean 'workdir'?"


def test_port_range_and_duplicate_secret_ids(catalog_dir: Path, edit: Edit) -> None:
    edit(
        APP,
        "ports: [8080]",
        "ports: [99999]\nsecrets:\n  - {id: pip-index, env: A}\n  - {id: pip-index, env: B}",
    )
    issues = issues_of(catalog_dir)
    assert "not a port" in only(issues, "ports[0]").message
    assert "declared twice" in only(issues, "secrets[1].id").message


def test_image_names_never_read_as_registry_hosts(catalog_dir: Path, edit: Edit) -> None:
    edit(APP, "name: app/rag-api", "name: app.v2/rag-api")
    assert only(issues_of(catalog_dir), "name").hint is not None


def _keys(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    """Every key a file of ``model`` may hold, nested models included (by their YAML names)."""
    if model in seen:
        return set()
    seen.add(model)
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        keys.add(field.alias or name)
        pending = [field.annotation]
        while pending:
            annotation = pending.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                keys |= _keys(annotation, seen)
            pending += list(get_args(annotation))
    return keys


@pytest.mark.parametrize("model", [ProjectSpec, ImageDocument])
def test_docs_catalog_lists_every_key(model: type[BaseModel]) -> None:
    """docs/catalog.md has a table row for every key imagefactory.yaml and image.yaml take
    (secrets[].as_env, release.require_tests and environments[].four_eyes were missing)."""
    text = (REPO / "docs" / "catalog.md").read_text()
    missing = sorted(key for key in _keys(model, set()) if f"| `{key}` |" not in text)
    assert not missing, f"docs/catalog.md has no row for: {', '.join(missing)}"
