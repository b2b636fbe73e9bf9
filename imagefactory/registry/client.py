"""Registries: copy images by digest (no rebuild), look up digests, tags and labels and give a
held manifest another tag, through the HTTP API (``registry_http``), with skopeo as the
fallback when the credentials sit in a credential helper that only it can read. Evidence
(signatures, attestations) is read and written through the HTTP API only: manifests and blobs
by digest, which skopeo does not offer; a credential helper there is a UserError.

Copies put the manifest's exact bytes, so what lands is byte-for-byte the manifest that was
tested, across repositories and registries (the same registry mounts blobs instead of uploading
them again: ``registry/copy.py``). Credentials come from the run's temporary DOCKER_CONFIG; TLS
registries are verified against the project's CA bundle when one is configured.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from imagefactory import tools
from imagefactory.atomic import read_regular
from imagefactory.errors import ToolError, UserError
from imagefactory.project.naming import build_registry
from imagefactory.project.paths import ca_bundle_path
from imagefactory.registry.copy import Progress, Side, copy_image
from imagefactory.registry.credentials import docker_config
from imagefactory.registry.http import (
    NoCredentials,
    RegistryAuthError,
    RegistryHTTP,
    RegistryRequestError,
    basic_auth,
)
from imagefactory.registry.layout import Entry, LayoutReader, LayoutWriter, export_image
from imagefactory.spec.catalog import Catalog
from imagefactory.spec.models import Registry

RETRIES = 3
# How skopeo reports "not there" (registry error codes, and distribution's status for an unknown
# repository's tag list); generic words like "404" could also be part of a host or a path.
MANIFEST_MISSING = ("manifest unknown", "name unknown", "repository name not known")
TAGS_MISSING = (*MANIFEST_MISSING, "invalid status code from registry 404")


@dataclass(frozen=True)
class RegistryClient:
    config_dir: Path | None = None
    cert_dir: Path | None = None  # holds ca.crt: the project's CA bundle
    _apis: dict[str, RegistryHTTP] = field(default_factory=dict, compare=False, repr=False)

    def _tls(self, registry: Registry, side: str = "") -> list[str | Path]:
        flags: list[str | Path] = [
            f"--{side}tls-verify={'true' if registry.tls_verify else 'false'}"
        ]
        if registry.tls_verify and self.cert_dir is not None:
            flags += [f"--{side}cert-dir", self.cert_dir]
        return flags

    def _auth(self, prefix: str = "") -> list[str | Path]:
        if self.config_dir is None:
            return []
        return [f"--{prefix}authfile", self.config_dir / "config.json"]

    def digest(self, registry: Registry, reference: str) -> str | None:
        """The manifest digest ``reference`` has, or None when the registry does not have it."""
        repository, name = _split(registry, reference)
        try:
            return self._api(registry).digest(repository, name)
        except NoCredentials:
            return self._inspect_digest(registry, reference)

    def _inspect_digest(self, registry: Registry, reference: str) -> str | None:
        argv = [
            "skopeo",
            "inspect",
            "--no-tags",
            "--format={{.Digest}}",
            *self._tls(registry),
            *self._auth(),
            f"docker://{reference}",
        ]
        result = tools.run(argv, check=False, timeout=120, hint="install skopeo (scripts/setup.sh)")
        if result.returncode != 0:
            if any(marker in result.output.lower() for marker in MANIFEST_MISSING):
                return None
            raise ToolError(
                result.argv,
                result.returncode,
                result.output[-2000:],
                hint=f"is {registry.url} running, and are its credentials right?",
            )
        digests = [line for line in result.output.splitlines() if line.startswith("sha256:")]
        if not digests:
            raise ToolError(result.argv, result.returncode, result.output[-2000:])
        return digests[-1]

    def label(self, registry: Registry, reference: str, name: str) -> str | None:
        """One label of the image at ``reference`` (None when absent or not there)."""
        try:
            labels = self._api(registry).labels(*_split(registry, reference))
        except NoCredentials:
            return self._inspect_label(registry, reference, name)
        return None if labels is None else labels.get(name) or None

    def _inspect_label(self, registry: Registry, reference: str, name: str) -> str | None:
        argv = [
            "skopeo",
            "inspect",
            "--no-tags",
            f'--format={{{{index .Labels "{name}"}}}}',
            *self._tls(registry),
            *self._auth(),
            f"docker://{reference}",
        ]
        result = tools.run(argv, check=False, timeout=120, separate_stderr=True)
        value = result.output.strip()
        return value if result.returncode == 0 and value and value != "<no value>" else None

    def tags(self, registry: Registry, repository: str) -> list[str]:
        """Every tag of ``repository``; empty when the repository does not exist yet."""
        try:
            return self._api(registry).tags(_path(registry, repository))
        except NoCredentials:
            return self._list_tags(registry, repository)

    def _list_tags(self, registry: Registry, repository: str) -> list[str]:
        argv = [
            "skopeo",
            "list-tags",
            *self._tls(registry),
            *self._auth(),
            f"docker://{repository}",
        ]
        result = tools.run(argv, check=False, timeout=120, separate_stderr=True)
        if result.returncode != 0:
            if any(marker in result.stderr.lower() for marker in TAGS_MISSING):
                return []
            raise ToolError(
                result.argv,
                result.returncode,
                result.stderr[-2000:],
                hint=f"is {registry.url} running, and are its credentials right?",
            )
        tags: list[str] = json.loads(result.output).get("Tags") or []
        return sorted(tags)

    def copy(self, source: Registry, source_ref: str, target: Registry, target_ref: str) -> None:
        """Copy by digest, every platform, digests preserved: through the registry API
        (:mod:`imagefactory.registry.copy`: blobs mounted within a registry, streamed across),
        else, when the credentials sit in a credential helper, by skopeo."""
        (from_repository, reference), (to_repository, tag) = (
            _split(source, source_ref),
            _split(target, target_ref),
        )
        try:
            copy_image(
                Side(self._api(source), from_repository),
                reference,
                Side(self._api(target), to_repository),
                tag,
            )
        except NoCredentials:
            self._skopeo_copy(source, source_ref, target, target_ref)
        except RegistryAuthError:
            raise
        except RegistryRequestError as exc:
            raise RegistryRequestError(
                exc.method,
                exc.url,
                exc.status,
                exc.body,
                hint=f"could not copy to {target.url}; nothing was recorded",
            ) from exc

    def _skopeo_copy(
        self, source: Registry, source_ref: str, target: Registry, target_ref: str
    ) -> None:
        """``skopeo copy --all --preserve-digests``, retried a bounded number of times."""
        argv = [
            "skopeo",
            "copy",
            "--all",
            "--preserve-digests",
            f"--retry-times={RETRIES}",
            *self._tls(source, "src-"),
            *self._tls(target, "dest-"),
            *self._auth("src-"),
            *self._auth("dest-"),
            f"docker://{source_ref}",
            f"docker://{target_ref}",
        ]
        tools.run(argv, timeout=3600, hint=f"could not copy to {target.url}; nothing was recorded")

    def tag(self, registry: Registry, repository: str, digest: str, tag: str) -> None:
        """Give the manifest ``repository@digest`` (already in that repository) one more tag:
        its bytes put again under ``tag``, digest checked; skopeo when credentials are only
        reachable through a credential helper."""
        try:
            self._api(registry).retag(_path(registry, repository), digest, tag)
        except NoCredentials:
            self.copy(registry, f"{repository}@{digest}", registry, f"{repository}:{tag}")

    def tag_once(self, registry: Registry, repository: str, digest: str, tag: str) -> str:
        """Give ``repository@digest`` (already in that repository) the tag ``tag`` unless the
        tag exists: a write-once tag is never moved. The digest ``tag`` holds afterwards, read
        back from the registry: ``digest``, or the one another writer put there first."""
        reference = f"{repository}:{tag}"
        try:
            held = self._api(registry).tag_once(_path(registry, repository), digest, tag)
        except NoCredentials:
            held = self._inspect_digest(registry, reference)
            if held is None:
                self.copy(registry, f"{repository}@{digest}", registry, reference)
                held = self._inspect_digest(registry, reference)
        if held is None:
            raise UserError(
                f"{registry.url} does not hold {reference} right after it was written",
                hint="the registry lost a tag it accepted: check its storage",
            )
        return held

    def manifest(
        self, registry: Registry, repository: str, reference: str
    ) -> tuple[bytes, str] | None:
        """The bytes and media type of ``repository`` (``HOST/PATH``) ``:tag`` or ``@digest``
        (``reference``); None when the registry does not have it."""
        with _api_only(registry):
            return self._api(registry).manifest(_path(registry, repository), reference)

    def blob(self, registry: Registry, repository: str, digest: str, *, limit: int) -> bytes:
        """The blob ``digest`` of ``repository``, at most ``limit`` bytes, digest checked."""
        with _api_only(registry):
            return self._api(registry).blob(_path(registry, repository), digest, limit=limit)

    def upload_blob(
        self, registry: Registry, repository: str, data: bytes, *, mount_from: str | None = None
    ) -> str:
        """``data`` as a blob of ``repository`` (skipped when it is there; mounted from the
        repository ``mount_from`` of the same registry when given); its digest."""
        source = None if mount_from is None else _path(registry, mount_from)
        with _api_only(registry):
            return self._api(registry).upload_blob(
                _path(registry, repository), data, mount_from=source
            )

    def put_manifest(
        self, registry: Registry, repository: str, tag: str, body: bytes, media_type: str
    ) -> str:
        """The manifest ``body`` put under ``repository:tag``; its digest (the registry's
        answer checked against the bytes)."""
        with _api_only(registry):
            return self._api(registry).put_manifest(
                _path(registry, repository), tag, body, media_type
            )

    def export_image(
        self,
        registry: Registry,
        repository: str,
        reference: str,
        writer: LayoutWriter,
        name: str,
        progress: Progress,
    ) -> tuple[Entry, Entry]:
        """The manifest ``repository:reference`` and what it names written into the OCI
        layout ``writer``, streamed: its entry, and the entry to list under ``name``
        (``layout.export_image``)."""
        side = Side(self._api(registry), _path(registry, repository))
        with _api_only(registry):
            return export_image(writer, side, reference, name, progress)

    def push_layout(
        self,
        reader: LayoutReader,
        entry: Entry,
        registry: Registry,
        repository: str,
        tag: str,
        progress: Progress,
    ) -> str:
        """The manifest ``entry`` of the OCI layout ``reader`` pushed to ``repository:tag``
        with what it names, streamed, the digest preserved; the digest."""
        side = Side(self._api(registry), _path(registry, repository))
        with _api_only(registry):
            return reader.push(entry, side, tag, progress)

    def delete(self, registry: Registry, repository: str, digest: str) -> bool:
        """Delete ``repository@digest`` (``HOST/PATH``) with every tag on it; False when the
        registry did not have it."""
        with _api_only(registry):
            return self._api(registry).delete_manifest(_path(registry, repository), digest)

    def _api(self, registry: Registry) -> RegistryHTTP:
        api = self._apis.get(registry.url)
        if api is None:
            cafile = self.cert_dir / "ca.crt" if self.cert_dir is not None else None
            api = RegistryHTTP(registry, basic_auth(registry, self.config_dir), cafile)
            self._apis[registry.url] = api
        return api


@contextmanager
def _api_only(registry: Registry) -> Iterator[None]:
    """Where only the HTTP API can do the work: credentials it cannot read are the user's to
    fix."""
    try:
        yield
    except NoCredentials as exc:
        raise UserError(
            f"{registry.url} asks for credentials imagefactory cannot read (a credential helper)",
            hint="signatures and attestations are read and written through the registry API: "
            "name username_env and password_env for this registry in imagefactory.yaml, or "
            "docker login without a credential helper",
        ) from exc


def _path(registry: Registry, repository: str) -> str:
    """``HOST/PATH`` of ``registry`` → ``PATH``."""
    return repository.removeprefix(f"{registry.url}/")


def _split(registry: Registry, reference: str) -> tuple[str, str]:
    """``HOST/REPO:TAG`` or ``HOST/REPO@DIGEST`` of ``registry`` → (REPO, TAG or DIGEST)."""
    path = reference.removeprefix(f"{registry.url}/")
    if "@" in path:
        repository, _, name = path.partition("@")
        return repository, name
    head, _, last = path.rpartition("/")
    name_part, _, tag = last.partition(":")
    return (f"{head}/{name_part}" if head else name_part), tag or "latest"


@contextmanager
def cert_dir(ca_bundle: Path | None) -> Iterator[Path | None]:
    """A temporary folder holding the project's CA bundle as ``ca.crt``, as skopeo expects."""
    if ca_bundle is None:
        yield None
        return
    bundle = read_regular(ca_bundle, what="build.ca_bundle")  # a FIFO or a device: refused
    folder = Path(tempfile.mkdtemp(prefix="imagefactory-certs-"))
    try:
        (folder / "ca.crt").write_bytes(bundle)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def registry_session(catalog: Catalog, registries: list[Registry]) -> Iterator[RegistryClient]:
    """Credentials (the build registry's and ``registries``') and the project's CA, for the
    duration of one command; nothing of them outlives it."""
    build = build_registry(catalog.project)
    unique = {r.url: r for r in [build, *registries]}
    with docker_config(unique.values()) as config, cert_dir(ca_bundle_path(catalog)) as certs:
        yield RegistryClient(config, certs)
