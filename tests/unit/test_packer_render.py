"""Packer templates: golden ``.pkr.hcl``, ``packer validate`` on every rendered template, VM
builder settings from ``packer.yaml``, and the bad inputs that must fail before anything runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import imagefactory.cli  # noqa: F401  (registers the commands)
from imagefactory.build.packer import packer_commands
from imagefactory.build.provision import check_playbooks, playbook_roles
from imagefactory.cli import app
from imagefactory.errors import UserError
from imagefactory.project.hashing import content_inputs
from imagefactory.render.catalog import Pins
from imagefactory.render.packer import (
    PLUGINS_FILE,
    UPLOADS,
    config_changes,
    load_settings,
    packer_images,
    render_packer,
    render_packer_images,
    render_plugins,
)
from imagefactory.spec.catalog import Catalog, ref_slug
from imagefactory.spec.loader import load_catalog

from .conftest import Edit

GOLDEN = Path(__file__).parent / "golden" / "packer"
REPO = Path(__file__).resolve().parents[2]
DIGESTS = {"base/debian12": "sha256:" + "b" * 64, "runtime/llm:cpu": "sha256:" + "c" * 64}
VM_SETTINGS = """\
targets: [vm]
qemu:
  iso_url: https://deb.example.internal/debian-12.iso
  iso_checksum: sha256:0123456789abcdef
  ssh_username: admin
  ssh_password_env: IMAGEFACTORY_VM_PASSWORD
  boot_command: ["<esc><wait>", "auto url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg<enter>"]
amazon_ebs:
  region: eu-west-1
  source_ami: ami-0123456789abcdef0
  instance_type: t3.small
  ssh_username: admin
"""


def run_cli(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def packer_catalog(pinned_catalog_dir: Path, edit: Edit) -> Path:
    """The example catalog with the repository's Ansible playbooks, runtime/llm provisioned by
    ansible/runtime.yml and built for VMs too (packer.yaml), app/rag-api without healthcheck."""
    shutil.copytree(REPO / "ansible", pinned_catalog_dir / "ansible")
    edit(
        "images/runtime/llm/image.yaml",
        "user: app\n",
        "user: app\nplaybooks: [ansible/runtime.yml]\n",
    )
    (pinned_catalog_dir / "images/runtime/llm/packer.yaml").write_text(VM_SETTINGS)
    rag = pinned_catalog_dir / "images/app/rag-api/image.yaml"
    text = rag.read_text()
    start = text.index("healthcheck:")
    end = text.index("labels:", start)
    rag.write_text(text[:start] + text[end:])
    return pinned_catalog_dir


def render(catalog: Catalog, ref: str, digests: dict[str, str] | None = None) -> str:
    pins = Pins(catalog.project, content_inputs(catalog), DIGESTS if digests is None else digests)
    folder = catalog.root / "rendered" / "packer" / ref_slug(ref)
    return render_packer(catalog, catalog.images[ref], pins, folder)


@pytest.mark.parametrize("ref", ["runtime/llm:cpu", "app/rag-api"])
def test_packer_templates_match_golden(
    packer_catalog: Path, golden: Callable[[Path, str], None], ref: str
) -> None:
    catalog = load_catalog(packer_catalog)
    text = render(catalog, ref)
    golden(GOLDEN / f"{ref_slug(ref)}.pkr.hcl", text)
    assert render(load_catalog(packer_catalog), ref) == text  # byte-identical again


def test_required_plugins_beside_the_template_at_existing_versions(
    packer_catalog: Path, golden: Callable[[Path, str], None]
) -> None:
    """Current Packer releases bundle no builders: plugins.pkr.hcl requires each one the
    template uses; the template itself has no ``packer`` block (Packer 1.6.6 refuses
    ``required_plugins``, see test_packer_1_6_refuses_required_plugins)."""
    catalog = load_catalog(packer_catalog)
    pins = Pins(catalog.project, content_inputs(catalog), DIGESTS)
    vm = render_plugins(catalog, catalog.images["runtime/llm:cpu"])
    golden(GOLDEN / "runtime_llm_cpu.plugins.pkr.hcl", vm)
    for plugin in ("docker", "qemu", "amazon", "ansible"):
        assert f'source  = "github.com/hashicorp/{plugin}"' in vm
    assert "packer {" not in render(catalog, "runtime/llm:cpu")
    docker_only = render_plugins(catalog, catalog.images["app/rag-api"])
    assert 'source  = "github.com/hashicorp/docker"' in docker_only
    assert "qemu" not in docker_only and "amazon" not in docker_only
    (template,) = render_packer_images(
        catalog, [catalog.images["app/rag-api"]], pins, packer_catalog / "rendered"
    )
    assert (template.parent / PLUGINS_FILE).read_text() == docker_only


@pytest.mark.skipif(
    shutil.which("packer") is None, reason="packer is not installed (scripts/setup.sh)"
)
def test_packer_1_6_refuses_required_plugins(packer_catalog: Path) -> None:
    """Why the block has its own file: the machine's Packer (1.6.6) rejects it, so a template
    holding it would not validate there. On Packer >= 1.7 the folder validates as a whole."""
    catalog = load_catalog(packer_catalog)
    pins = Pins(catalog.project, content_inputs(catalog), DIGESTS)
    (template,) = render_packer_images(
        catalog, [catalog.images["app/rag-api"]], pins, packer_catalog / "rendered"
    )
    plugins = template.parent / PLUGINS_FILE
    result = packer_validate(plugins)
    version = subprocess.run(["packer", "version"], capture_output=True, text=True, check=False)
    if "Packer v1.6." in version.stdout:
        assert result.returncode != 0 and "required_plugins" in result.stdout + result.stderr
    else:  # a current Packer: the folder (template and plugins) is one configuration
        folder = subprocess.run(
            ["packer", "validate", "."], cwd=template.parent, capture_output=True, check=False
        )
        assert folder.returncode == 0, folder


def test_uploads_go_where_the_ssh_user_may_write_then_root_moves_them(
    packer_catalog: Path,
) -> None:
    """The file provisioner uploads as the ssh user on a VM: into UPLOADS, which that user
    creates (no sudo), never into a folder a root step made; root steps put things in place."""
    (packer_catalog / "images/app/rag-api/packer.yaml").write_text(VM_SETTINGS)
    text = render(load_catalog(packer_catalog), "app/rag-api")
    destinations = re.findall(r'destination = "([^"]*)"', text)
    assert destinations and all(d.startswith(f"{UPLOADS}/") for d in destinations)
    assert f'destination = "{UPLOADS}/ca-bundle.pem"' in text
    first_upload = text.index('provisioner "file"')
    folder_step = text.rindex('provisioner "shell"', 0, first_upload)
    assert text.index(f"mkdir -m 0700 {UPLOADS}") > folder_step
    made_by_user = text[folder_step:first_upload]
    assert "sudo" not in made_by_user  # the ssh user's own folder
    assert f"install -D -m 0644 {UPLOADS}/ca-bundle.pem /run/imagefactory/ca.pem" in text
    assert f"cp -R --preserve=mode {UPLOADS}/files/0/rag_api/. /opt/rag-api/rag_api/" in text
    later = text[text.index("install -D -m 0644") :]
    assert later.count("sudo -E") >= 1  # root steps on VMs
    assert f"rm -rf {UPLOADS}" in text


def test_a_childs_vm_image_carries_the_provisioning_of_the_whole_chain(
    packer_catalog: Path, golden: Callable[[Path, str], None]
) -> None:
    """A VM starts from an ISO or AMI, not from runtime/llm's image: on the VM sources,
    app/rag-api's template first applies base/debian12's and runtime/llm's steps (users,
    packages, pip, files, playbooks); the docker source, started from the parent, does not."""
    (packer_catalog / "images/app/rag-api/packer.yaml").write_text(VM_SETTINGS)
    catalog = load_catalog(packer_catalog)
    text = render(catalog, "app/rag-api")
    golden(GOLDEN / "app_rag-api.vm.pkr.hcl", text)
    vm_only = r'only += \["qemu\.vm", "amazon-ebs\.vm"\]'
    own = text.index("# upload folder", text.index("playbook_file"))  # app/rag-api's own steps
    chain = text[:own]
    assert "useradd --system --uid 10001" in chain  # base/debian12's user
    # runtime/llm's pip: its image.lock's distributions, by hash, from its own uploaded file
    assert "${path.root}/chain/runtime_llm_cpu/requirements.lock" in chain
    assert (
        "--no-compile --require-hashes --no-deps -r /tmp/imagefactory-upload/requirements.lock"
        in chain
    )
    assert "ansible/runtime.yml" in chain  # runtime/llm's playbook, VM sources only
    steps = chain[chain.index("build {") :].split("provisioner ")[1:]
    assert steps and all(re.search(vm_only, step) for step in steps)
    assert "useradd" not in text[own:]
    pins = Pins(catalog.project, content_inputs(catalog), DIGESTS)
    (template,) = render_packer_images(
        catalog, [catalog.images["app/rag-api"]], pins, packer_catalog / "rendered"
    )
    lock = (template.parent / "chain/runtime_llm_cpu/requirements.lock").read_text()
    assert lock.startswith("certifi==") and " --hash=sha256:" in lock
    if shutil.which("packer") is not None:
        result = packer_validate(template)
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


@pytest.mark.skipif(
    shutil.which("packer") is None, reason="packer is not installed (scripts/setup.sh)"
)
def test_the_vm_sources_upload_the_ancestors_files_from_the_folder(
    packer_catalog: Path, edit: Edit
) -> None:
    (packer_catalog / "images/app/rag-api/packer.yaml").write_text(VM_SETTINGS)
    (packer_catalog / "images/runtime/llm/motd.txt").write_text("runtime\n")
    edit(
        "images/runtime/llm/image.yaml",
        "user: app\n",
        "user: app\nfiles:\n  - src: motd.txt\n    dest: /etc/motd\n    owner: root:root\n",
    )
    catalog = load_catalog(packer_catalog)
    pins = Pins(catalog.project, content_inputs(catalog), DIGESTS)
    (template,) = render_packer_images(
        catalog, [catalog.images["app/rag-api"]], pins, packer_catalog / "rendered"
    )
    staged = template.parent / "chain/runtime_llm_cpu/files/0/motd.txt"
    assert staged.read_text() == "runtime\n"
    assert '"${path.root}/chain/runtime_llm_cpu/files/0/motd.txt"' in template.read_text()
    result = packer_validate(template)  # it checks that every uploaded file is there
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


def test_packer_builds_only_the_named_sources() -> None:
    template = Path("/w/app_tiny/app_tiny.pkr.hcl")
    assert packer_commands("packer", (1, 6), template, ["docker.image"]) == [
        ["packer", "build", "-color=false", "-only=docker.image", "-var", "pull=true",
         "app_tiny.pkr.hcl"]
    ]  # fmt: skip
    assert packer_commands("packer", (1, 11), template, ["docker.image", "amazon-ebs.vm"]) == [
        ["packer", "init", "."],
        ["packer", "build", "-color=false", "-only=docker.image,amazon-ebs.vm", "-var",
         "pull=true", "."],
    ]  # fmt: skip


def test_docker_source_is_the_parent_digest_and_config_is_restored(packer_catalog: Path) -> None:
    catalog = load_catalog(packer_catalog)
    text = render(catalog, "app/rag-api")
    assert (
        f'image       = "127.0.0.1:5000/bank-ai-lab/dev/runtime/llm@{DIGESTS["runtime/llm:cpu"]}"'
        in text
    )
    for change in (
        "ENV PYTHONPATH=",
        "WORKDIR /opt/rag-api",
        "ENTRYPOINT [",
        "EXPOSE 8080",
        "USER 10001:10001",
    ):
        assert f'"{change}' in text
    assert 'LABEL org.imagefactory.ref=\\"app/rag-api\\"' in text
    assert 'post-processor "docker-tag"' in text
    assert '"127.0.0.1:5000/bank-ai-lab/dev/app/rag-api"' in text
    # the same steps as the Dockerfile path: pip into the root-owned venv, files with their mode
    assert "/opt/venv/bin/pip install --no-cache-dir" in text
    assert '"${path.root}/files/0/rag_api/"' in text
    # no VM builders without packer.yaml
    assert 'source "qemu"' not in text and 'source "amazon-ebs"' not in text


def test_vm_builders_share_the_provisioners(packer_catalog: Path) -> None:
    text = render(load_catalog(packer_catalog), "runtime/llm:cpu")
    assert 'sources = ["source.docker.image", "source.qemu.vm", "source.amazon-ebs.vm"]' in text
    assert (
        'provisioner "ansible"' in text and 'only            = ["qemu.vm", "amazon-ebs.vm"]' in text
    )
    assert "community.docker.docker" in text
    assert 'env("IMAGEFACTORY_VM_PASSWORD")' in text and "sensitive = true" in text


def test_config_changes_mirror_the_dockerfile_config(packer_catalog: Path) -> None:
    catalog = load_catalog(packer_catalog)
    pins = Pins(catalog.project, content_inputs(catalog), DIGESTS)
    image = catalog.images["runtime/llm:cpu"]
    changes = config_changes(catalog, image, pins.content_hash(image), pins.parent(image))
    assert changes[-1] == "USER 10001:10001"
    assert "WORKDIR /home/app" in changes  # inherited from base/debian12
    assert 'ENV PYTHONUNBUFFERED="1"' in changes


def packer_validate(template: Path) -> subprocess.CompletedProcess[str]:
    # the ansible provisioner checks for ansible-playbook, which this environment provides
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["packer", "validate", template.name],
        cwd=template.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(
    shutil.which("packer") is None, reason="packer is not installed (scripts/setup.sh)"
)
def test_packer_validate_passes_for_every_rendered_template(packer_catalog: Path) -> None:
    catalog = load_catalog(packer_catalog)
    _, skipped = packer_images(catalog, [])
    assert [i.ref for i in skipped] == ["base/debian12"]
    everything = [
        i
        for i in catalog.images.values()
        if i.ref != "base/debian12" and i.spec.distroless is None  # shell-less: no Packer
    ]
    pins = Pins(catalog.project, content_inputs(catalog), DIGESTS)
    out = packer_catalog / "rendered" / "packer"
    written = render_packer_images(catalog, everything, pins, out)
    assert len(written) == 4
    for template in written:
        result = packer_validate(template)
        assert result.returncode == 0, f"{template}:\n{result.stdout}\n{result.stderr}"


@pytest.mark.skipif(
    shutil.which("packer") is None, reason="packer is not installed (scripts/setup.sh)"
)
def test_a_hostile_playbook_name_is_an_hcl_path_for_ansible_and_a_shell_word_for_shell_local(
    packer_catalog: Path, edit: Edit
) -> None:
    """The ansible provisioner's playbook_file is an HCL string, not a shell line: the path
    must arrive as written (packer validate checks that the file is there)."""
    name = 'ansible/it\'s ${x} "q" $(id).yml'
    (packer_catalog / name).write_text((packer_catalog / "ansible/runtime.yml").read_text())
    edit(
        "images/runtime/llm/image.yaml",
        "playbooks: [ansible/runtime.yml]",
        f"playbooks: ['{name}']".replace("it's", "it''s"),
    )
    catalog = load_catalog(packer_catalog)
    assert catalog.images["runtime/llm:cpu"].spec.playbooks == [name]
    pins = Pins(catalog.project, content_inputs(catalog), DIGESTS)
    (template,) = render_packer_images(
        catalog, [catalog.images["runtime/llm:cpu"]], pins, packer_catalog / "rendered"
    )
    text = template.read_text()
    assert (
        'playbook_file   = "${path.root}/${var.project_root}/ansible/it\'s $${x} \\"q\\" $(id).yml"'
        in text
    )
    # the shell-local line still quotes it as one shell word ('it'"'"'s …', JSON-escaped)
    assert "'/'ansible/it'\\\"'\\\"'s $${x} \\\"q\\\" $(id).yml'\"]" in text
    result = packer_validate(template)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


def test_render_packer_cli_writes_templates_and_check_detects_staleness(
    packer_catalog: Path,
) -> None:
    result = run_cli("-C", packer_catalog, "render", "packer", "runtime/llm", "app/rag-api")
    assert result.exit_code == 0, result.output
    template = packer_catalog / "rendered/packer/app_rag-api/app_rag-api.pkr.hcl"
    assert template.is_file()
    assert (template.parent / "files/0/rag_api/main.py").is_file()
    assert (template.parent / "ca-bundle.pem").is_file()
    checked = run_cli(
        "-C", packer_catalog, "render", "packer", "runtime/llm", "app/rag-api", "--check"
    )
    assert checked.exit_code == 0, checked.output
    template.write_text(template.read_text() + "# edited\n")
    stale = run_cli("-C", packer_catalog, "render", "packer", "app/rag-api", "--check")
    assert stale.exit_code == 1
    assert "app_rag-api.pkr.hcl" in stale.output
    as_json = run_cli("-C", packer_catalog, "render", "packer", "app/rag-api", "--check", "--json")
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)  # one document, the error in it
    assert report["ok"] is False and "render packer" in report["hint"]
    assert report["stale"] == {"app_rag-api": ["app_rag-api.pkr.hcl"]}


def test_render_packer_without_names_skips_bootstrapped_images(packer_catalog: Path) -> None:
    result = run_cli("-C", packer_catalog, "render", "packer")
    assert result.exit_code == 0, result.output
    assert "base/debian12: skipped" in result.output
    assert not (packer_catalog / "rendered/packer/base_debian12").exists()


# --- bad input: clear errors before anything runs ---------------------------------------------


def test_vm_target_without_builder_settings_is_refused(packer_catalog: Path) -> None:
    (packer_catalog / "images/runtime/llm/packer.yaml").write_text("targets: [vm]\n")
    catalog = load_catalog(packer_catalog)
    with pytest.raises(UserError, match="targets include 'vm' but no VM builder is configured"):
        load_settings(catalog.images["runtime/llm:cpu"].folder)
    result = run_cli("-C", packer_catalog, "render", "packer", "runtime/llm:cpu")
    assert result.exit_code == 1
    assert "packer.yaml:1: invalid Packer settings" in result.output
    assert not (packer_catalog / "rendered/packer").exists()  # nothing written


def test_unknown_packer_setting_is_refused(packer_catalog: Path) -> None:
    (packer_catalog / "images/runtime/llm/packer.yaml").write_text(
        VM_SETTINGS.replace("instance_type:", "instance_typ:")
    )
    with pytest.raises(
        UserError,
        match=r"amazon_ebs\.instance_typ: invalid Packer settings: unknown key 'instance_typ'",
    ):
        load_settings(load_catalog(packer_catalog).images["runtime/llm:cpu"].folder)


def test_bootstrapped_image_named_explicitly_is_refused(packer_catalog: Path) -> None:
    result = run_cli("-C", packer_catalog, "render", "packer", "base/debian12")
    assert result.exit_code == 1
    assert "needs a parent image" in result.output


def test_healthcheck_is_refused_for_packer(pinned_catalog_dir: Path) -> None:
    with pytest.raises(UserError, match="cannot set HEALTHCHECK"):
        render(load_catalog(pinned_catalog_dir), "app/rag-api")


def test_missing_role_is_a_clear_error(packer_catalog: Path) -> None:
    playbook = packer_catalog / "ansible" / "runtime.yml"
    playbook.write_text(playbook.read_text().replace("role: llm_runtime", "role: llm_runtim"))
    catalog = load_catalog(packer_catalog)
    assert "llm_runtim" in playbook_roles(playbook)
    with pytest.raises(
        UserError, match=r"role 'llm_runtim' does not exist \(did you mean 'llm_runtime'\?\)"
    ):
        check_playbooks(catalog, catalog.images["runtime/llm:cpu"])


def test_roles_named_by_include_role_are_checked(packer_catalog: Path) -> None:
    playbook = packer_catalog / "ansible" / "extra.yml"
    playbook.write_text(
        "- hosts: all\n  tasks:\n    - name: x\n      ansible.builtin.include_role:\n"
        "        name: nosuchrole\n"
    )
    assert playbook_roles(playbook) == ["nosuchrole"]


def test_repository_playbooks_name_only_existing_roles(packer_catalog: Path) -> None:
    catalog = load_catalog(packer_catalog)
    assert check_playbooks(catalog, catalog.images["runtime/llm:cpu"]) == [
        packer_catalog / "ansible" / "runtime.yml"
    ]
    for playbook in ("base.yml", "runtime.yml", "app.yml"):
        assert playbook_roles(REPO / "ansible" / playbook)


def test_build_engine_must_be_docker_or_packer(packer_catalog: Path) -> None:
    result = run_cli("-C", packer_catalog, "build", "app/rag-api", "--engine", "podman")
    assert result.exit_code == 2
    assert "'podman' is not docker or packer" in result.output


def test_build_engine_packer_refuses_images_that_do_not_target_packer(
    packer_catalog: Path,
) -> None:
    result = run_cli("-C", packer_catalog, "build", "app/rag-api", "--engine", "packer")
    assert result.exit_code == 1
    assert "--engine packer builds images that target packer; not: app/rag-api" in result.output


def test_build_engine_packer_checks_vm_settings_before_anything_runs(
    packer_catalog: Path, edit: Edit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # nothing may run
    edit("images/runtime/llm/image.yaml", "user: app\n", "user: app\ntargets: [packer]\n")
    (packer_catalog / "images/runtime/llm/packer.yaml").write_text("targets: [vm]\n")
    result = run_cli("-C", packer_catalog, "build", "runtime/llm:cpu", "--engine", "packer")
    assert result.exit_code == 1
    assert "targets include 'vm' but no VM builder is configured" in result.output


def test_build_only_needs_the_packer_engine(packer_catalog: Path) -> None:
    result = run_cli("-C", packer_catalog, "build", "app/rag-api", "--only", "amazon-ebs.vm")
    assert result.exit_code == 2
    assert "use it with --engine packer" in result.output


@pytest.mark.parametrize(
    ("only", "message"),
    [
        (["amazon-ebs.vm"], "--only must include docker.image"),
        (["docker.image", "amazon-ebs.x"], "has the source amazon-ebs.x"),
    ],
)
def test_build_only_names_the_docker_source_and_existing_ones(
    packer_catalog: Path,
    edit: Edit,
    monkeypatch: pytest.MonkeyPatch,
    only: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # nothing may run
    edit("images/runtime/llm/image.yaml", "user: app\n", "user: app\ntargets: [packer]\n")
    flags = [word for name in only for word in ("--only", name)]
    result = run_cli("-C", packer_catalog, "build", "runtime/llm:cpu", "--engine", "packer", *flags)
    assert result.exit_code == 1
    assert message in result.output
