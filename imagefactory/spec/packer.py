"""``packer.yaml`` beside an ``image.yaml``: the extra Packer targets of an image and their VM
builder settings (``image.yaml`` cannot name a ``vm`` target)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from imagefactory.errors import SpecError, SpecIssue
from imagefactory.spec.issues import format_key_path, issues_from_validation
from imagefactory.spec.models import Frozen
from imagefactory.spec.yamldoc import read_yaml

#: The Packer source that builds the image in Docker: every Packer build includes it (it pushes
#: and records the image).
DOCKER_SOURCE = "docker.image"

SETTINGS_FILE = "packer.yaml"
HINT = "see docs/packer.md for the keys of packer.yaml"


class QemuSettings(Frozen):
    """A qemu VM built from an installer ISO (boot and SSH settings as Packer names them)."""

    iso_url: str = Field(min_length=1)
    iso_checksum: str = Field(pattern=r"^(sha256|sha512):[0-9a-f]+$")
    ssh_username: str = Field(min_length=1)
    ssh_password_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    ssh_private_key_file: str | None = None
    ssh_timeout: str = "30m"
    disk_size: str = "10G"
    memory: int = Field(default=2048, ge=256)
    cpus: int = Field(default=2, ge=1)
    accelerator: Literal["kvm", "tcg", "none"] = "kvm"
    http_directory: str | None = None
    boot_wait: str = "5s"
    boot_command: list[str] = Field(default_factory=list)
    shutdown_command: str = "sudo shutdown -P now"

    @model_validator(mode="after")
    def _one_credential(self) -> QemuSettings:
        if (self.ssh_password_env is None) == (self.ssh_private_key_file is None):
            raise ValueError("set exactly one of ssh_password_env and ssh_private_key_file")
        return self


class AmazonEbsSettings(Frozen):
    """An AMI built on EC2 (credentials come from the usual AWS variables, never this file)."""

    region: str = Field(min_length=1)
    source_ami: str = Field(pattern=r"^ami-[0-9a-f]+$")
    instance_type: str = Field(min_length=1)
    ssh_username: str = Field(min_length=1)
    subnet_id: str | None = None


class PackerSettings(Frozen):
    """``<image folder>/packer.yaml``: extra Packer targets and their VM builder settings."""

    targets: list[Literal["vm"]] = Field(default_factory=list)
    qemu: QemuSettings | None = None
    amazon_ebs: AmazonEbsSettings | None = None

    @model_validator(mode="after")
    def _builders_match_targets(self) -> PackerSettings:
        has_builder = self.qemu is not None or self.amazon_ebs is not None
        if "vm" in self.targets and not has_builder:
            raise ValueError(
                "targets include 'vm' but no VM builder is configured: add 'qemu' or 'amazon_ebs'"
            )
        if has_builder and "vm" not in self.targets:
            raise ValueError("VM builder settings are given but targets do not include 'vm'")
        return self


def load_settings(folder: Path) -> PackerSettings:
    """The image's ``packer.yaml`` (docker only when there is none). SpecError when invalid:
    read as every catalog file is (regular files only, size, alias and depth limits), each
    problem with its line and key."""
    path = folder / SETTINGS_FILE
    if not (path.exists() or path.is_symlink()):  # a FIFO or a dangling link: read_yaml says so
        return PackerSettings()
    doc = read_yaml(path)
    issues = [
        SpecIssue(path, format_key_path(p.key_path), p.message, p.line, p.hint)
        for p in doc.problems
    ]
    data = {} if doc.data is None else doc.data
    if issues or not isinstance(data, dict):
        raise SpecError(issues or [SpecIssue(path, "", "the file is not a mapping", 1, HINT)])
    try:
        return PackerSettings.model_validate(data)
    except ValidationError as exc:
        found = issues_from_validation(exc, doc, PackerSettings)
        raise SpecError(
            [
                replace(i, message=f"invalid Packer settings: {i.message}", hint=i.hint or HINT)
                for i in found
            ]
        ) from exc
