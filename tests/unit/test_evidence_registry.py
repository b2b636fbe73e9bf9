"""The registry API evidence moves through, against an in-process registry behind a bearer-token
realm (as GitLab's and Harbor's are; the integration tests run Basic auth against a real
``docker-registry``): blob uploads (skipped when there, mounted with a token for both
repositories, monolithic otherwise), manifests put and read back, bounded and digest-checked
reads, and a credential helper refused."""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from imagefactory.errors import UserError
from imagefactory.registry.client import RegistryClient
from imagefactory.registry.http import SMALL_BLOB, RegistryHTTP, RegistryRequestError
from imagefactory.spec.models import Registry
from tests.fakes.http_server import serving
from tests.unit.test_registry_http import _Replies

TOKEN_PREFIX = "token-for:"
MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Upstream:
    """Blobs by (repository, digest), manifests by (repository, reference); tokens carry their
    scopes, and a request is allowed only with a token whose scopes cover it."""

    blobs: dict[tuple[str, str], bytes] = field(default_factory=dict)
    manifests: dict[tuple[str, str], bytes] = field(default_factory=dict)
    token_scopes: list[list[str]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    corrupt: bool = False  # serve other bytes than the digest asked for
    url: str = ""


def actions(scopes: list[str]) -> dict[str, set[str]]:
    """``repository:NAME:ACTION,…`` scopes → NAME → its actions."""
    found: dict[str, set[str]] = {}
    for scope in scopes:
        _, name, granted = scope.split(":")
        found.setdefault(name, set()).update(granted.split(","))
    return found


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    state = Upstream()

    class Handler(_Replies):
        def allowed(self, needs: list[str]) -> bool:
            auth = self.headers.get("Authorization", "")
            if auth.startswith(f"Bearer {TOKEN_PREFIX}"):
                granted = actions(auth.removeprefix(f"Bearer {TOKEN_PREFIX}").split(" "))
                wanted = actions(needs)
                if all(wanted[name] <= granted.get(name, set()) for name in wanted):
                    return True
            challenge = f'Bearer realm="http://{state.url}/token",service="fake"'
            self.reply(401, headers={"WWW-Authenticate": challenge})
            return False

        def handle_any(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            state.requests.append((self.command, self.path))
            if url.path == "/token":
                if not self.headers.get("Authorization", "").startswith("Basic "):
                    self.reply(401)  # no anonymous tokens
                    return
                scopes = query["scope"]
                state.token_scopes.append(scopes)
                self.reply(200, json.dumps({"token": TOKEN_PREFIX + " ".join(scopes)}).encode())
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = url.path.removeprefix("/v2/")
            if "/blobs/uploads/" in path:
                repository, _, session = path.partition("/blobs/uploads/")
                needs = [f"repository:{repository}:pull,push"]
                if "mount" in query:
                    needs.append(f"repository:{query['from'][0]}:pull")
                if not self.allowed(needs):
                    return
                if self.command == "POST" and "mount" in query:
                    source = (query["from"][0], query["mount"][0])
                    if source in state.blobs:
                        state.blobs[(repository, source[1])] = state.blobs[source]
                        self.reply(201, headers={"Docker-Content-Digest": source[1]})
                        return
                if self.command == "POST":
                    location = f"http://{state.url}/v2/{repository}/blobs/uploads/u1?_state=abc"
                    self.reply(202, headers={"Location": location})
                    return
                assert session == "u1" and query["_state"] == ["abc"]
                digest = query["digest"][0]
                assert (
                    sha(body) == digest
                    and self.headers["Content-Type"] == "application/octet-stream"
                )
                state.blobs[(repository, digest)] = body
                self.reply(201, headers={"Docker-Content-Digest": digest})
                return
            if "/blobs/" in path:
                repository, _, digest = path.partition("/blobs/")
                if not self.allowed([f"repository:{repository}:pull"]):
                    return
                blob = state.blobs.get((repository, digest))
                if blob is None:
                    self.reply(404)
                    return
                self.reply(200, b"other bytes" if state.corrupt else blob)
                return
            repository, _, reference = path.partition("/manifests/")
            write = self.command == "PUT"
            if not self.allowed([f"repository:{repository}:pull" + (",push" if write else "")]):
                return
            if write:
                state.manifests[(repository, reference)] = body
                state.manifests[(repository, sha(body))] = body
                self.reply(201, headers={"Docker-Content-Digest": sha(body)})
                return
            found = state.manifests.get((repository, reference))
            if found is None:
                self.reply(404)
                return
            self.reply(200, found, {"Content-Type": f"{MEDIA_TYPE}; charset=utf-8"})

        do_GET = do_HEAD = do_POST = do_PUT = handle_any

    with serving(Handler) as address:
        state.url = address
        yield state


def api(upstream: Upstream) -> RegistryHTTP:
    return RegistryHTTP(Registry(url=upstream.url, tls_verify=False), "dXNlcjpwYXNz")


def test_upload_skip_and_mount(upstream: Upstream) -> None:
    client = api(upstream)
    digest = client.upload_blob("team/dev", b"evidence")
    assert upstream.blobs[("team/dev", digest)] == b"evidence"
    before = len(upstream.requests)
    assert client.upload_blob("team/dev", b"evidence") == digest  # small: sent, not asked about
    assert [m for m, _ in upstream.requests[before:]] == ["POST", "PUT"]
    large = b"x" * (SMALL_BLOB + 1)
    client.upload_blob("team/dev", large)
    before = len(upstream.requests)
    client.upload_blob("team/dev", large)  # there: one HEAD, nothing sent
    assert [m for m, _ in upstream.requests[before:]] == ["HEAD"]
    before = len(upstream.requests)
    assert client.upload_blob("team/prod", b"evidence", mount_from="team/dev") == digest
    asked = {m for m, path in upstream.requests[before:] if "/blobs/" in path}
    assert asked == {"POST"}  # the mount (again after the 401 that asked for a token) only
    assert upstream.blobs[("team/prod", digest)] == b"evidence"
    assert ["repository:team/prod:pull,push", "repository:team/dev:pull"] in upstream.token_scopes
    posts = [path for method, path in upstream.requests if method == "POST"]
    assert any("mount=" in path and "from=team%2Fdev" in path for path in posts)
    assert not any(method == "PUT" and "/team/prod/" in path for method, path in upstream.requests)


def test_a_mount_the_registry_cannot_do_is_an_upload(upstream: Upstream) -> None:
    client = api(upstream)
    digest = client.upload_blob("team/prod", b"not in dev", mount_from="team/dev")
    assert upstream.blobs[("team/prod", digest)] == b"not in dev"


def test_manifests_put_and_read(upstream: Upstream) -> None:
    client = api(upstream)
    body = json.dumps({"schemaVersion": 2, "layers": []}).encode()
    digest = client.put_manifest("team/dev", "sha256-x.sig", body, MEDIA_TYPE)
    assert digest == sha(body)
    assert client.manifest("team/dev", "sha256-x.sig") == (body, MEDIA_TYPE)
    assert client.manifest("team/dev", digest) == (body, MEDIA_TYPE)
    assert client.manifest("team/dev", "missing") is None
    upstream.manifests[("team/dev", "sha256:" + "0" * 64)] = body  # not the bytes of that digest
    with pytest.raises(RegistryRequestError, match="wrong digest"):
        client.manifest("team/dev", "sha256:" + "0" * 64)


def test_blob_reads_are_bounded_and_checked(upstream: Upstream) -> None:
    client = api(upstream)
    digest = client.upload_blob("team/dev", b"0123456789")
    assert client.blob("team/dev", digest, limit=10) == b"0123456789"
    with pytest.raises(RegistryRequestError, match="too large"):
        client.blob("team/dev", digest, limit=9)
    before = len(upstream.requests)
    assert client.blob("team/dev", digest, limit=10) == b"0123456789"  # kept: checked bytes
    assert upstream.requests[before:] == []
    upstream.corrupt = True
    with pytest.raises(RegistryRequestError, match="wrong digest"):
        api(upstream).blob("team/dev", digest, limit=100)


def test_a_credential_helper_is_refused_for_evidence(upstream: Upstream, tmp_path: Path) -> None:
    """No Basic entry imagefactory can read (a credential helper holds it), and the token realm
    gives no anonymous tokens: the evidence commands say what to configure."""
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "secretservice"}))
    client = RegistryClient(tmp_path)
    registry = Registry(url=upstream.url, tls_verify=False)
    with pytest.raises(UserError, match="credentials imagefactory cannot read") as refused:
        client.manifest(registry, f"{upstream.url}/team/dev", "sha256-x.sig")
    assert "username_env and password_env" in str(refused.value.hint)
