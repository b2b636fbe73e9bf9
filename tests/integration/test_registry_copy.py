"""Image copies through the registry API against real registries (Debian's docker-registry with
htpasswd; B over TLS from the session's CA): within one registry every blob is mounted and no
blob byte moves; across registries each blob is streamed once and the manifest's bytes land as
they were (same digest); an index moves with each platform's manifest."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from imagefactory.registry.copy import Side, copy_image
from imagefactory.registry.http import RegistryHTTP
from imagefactory.spec.models import Registry as RegistrySpec

from .helpers.registry import Registry, registry_cleanup
from .helpers.services import docker, unique
from .helpers.tls_registry import TLSRegistry

INDEX = "application/vnd.oci.image.index.v1+json"


class Recording(RegistryHTTP):
    """The real client, recording each request's method and path (what moved, not how)."""

    sent: list[tuple[str, str]]

    def _send(self, method, path, headers, body, limit=None, sink=None):  # type: ignore[no-untyped-def]
        self.sent.append((method, path.partition("?")[0]))
        return super()._send(method, path, headers, body, limit, sink)


def _client(host: str, user: str, password: str, cafile: Path | None = None) -> Recording:
    spec = RegistrySpec(url=host, tls_verify=cafile is not None)
    client = Recording(spec, base64.b64encode(f"{user}:{password}".encode()).decode(), cafile)
    client.sent = []
    return client


def test_copies_mount_within_a_registry_and_stream_across(
    registry: Registry, registry_b: TLSRegistry, docker_config: Path, tiny_base: str
) -> None:
    prefix = unique("it-copy")
    source_repo = f"{prefix}/source"
    pushed = f"{registry.host}/{source_repo}:1"
    docker("tag", tiny_base, pushed)
    try:
        _copies(registry, registry_b, docker_config, pushed, prefix)
    finally:
        docker("rmi", pushed, check=False)
        registry_cleanup(registry, prefix)


def _copies(
    registry: Registry, registry_b: TLSRegistry, docker_config: Path, pushed: str, prefix: str
) -> None:
    source_repo = f"{prefix}/source"
    docker("push", pushed, docker_config=docker_config, timeout=300)
    a = _client(registry.host, registry.user, registry.password)
    digest = a.digest(source_repo, "1")
    assert digest is not None
    body, media_type = a.manifest(source_repo, digest) or (b"", "")
    layers = [layer["digest"] for layer in json.loads(body)["layers"]]

    a.sent.clear()
    target_repo = f"{prefix}/promoted"
    assert copy_image(Side(a, source_repo), digest, Side(a, target_repo), "1.0.0") == digest
    assert a.digest(target_repo, "1.0.0") == digest
    moved = [(m, p) for m, p in a.sent if "/blobs/" in p and m in ("GET", "PUT")]
    assert moved == []  # mounted: no blob read or written
    mounts = [p for m, p in a.sent if m == "POST" and p.endswith("/blobs/uploads/")]
    assert len(mounts) == len(layers) + 1  # each layer and the config, once
    assert ("PUT", f"/v2/{target_repo}/manifests/1.0.0") in a.sent

    b = _client(registry_b.host, registry_b.user, registry_b.password, registry_b.ca_cert)
    assert copy_image(Side(a, source_repo), digest, Side(b, "copied/tiny"), "1.0.0") == digest
    assert b.manifest("copied/tiny", "1.0.0") == (body, media_type)  # the same bytes
    reads = [p for m, p in a.sent if m == "GET" and "/blobs/" in p]
    assert sorted(reads) == sorted({p for p in reads})  # each blob read once
    assert len(reads) == len(layers) + 1
    b.sent.clear()
    copy_image(Side(a, source_repo), digest, Side(b, "copied/tiny"), "again")
    assert not [p for m, p in b.sent if m == "PUT" and "/blobs/" in p]  # held: skipped

    # an index: each platform's manifest by digest first, then the index's own bytes
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": INDEX,
            "manifests": [
                {
                    "mediaType": media_type,
                    "digest": digest,
                    "size": len(body),
                    "platform": {"architecture": "amd64", "os": "linux"},
                }
            ],
        }
    ).encode()
    index_digest = a.put_manifest(source_repo, "multi", index, INDEX)
    copied = copy_image(Side(a, source_repo), "multi", Side(b, "copied/multi"), "1.0.0")
    assert copied == index_digest
    assert b.manifest("copied/multi", digest) == (body, media_type)
    assert b.manifest("copied/multi", "1.0.0") == (index, INDEX)
