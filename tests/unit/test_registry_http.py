"""The registry HTTP client against an in-process registry that speaks the distribution API's
manifest endpoints and its bearer-token handshake (as GitLab's and Harbor's registries do; the
integration tests cover Basic auth against a real ``docker-registry``)."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

from imagefactory import tools
from imagefactory.errors import UserError
from imagefactory.parallel import at_once
from imagefactory.registry import http as registry_http
from imagefactory.registry.http import (
    NoCredentials,
    RegistryHTTP,
    RegistryRequestError,
    basic_auth,
)
from imagefactory.spec.models import Registry
from tests.fakes.http_server import serving

USER, PASSWORD = "ci", "s3cret-value"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
TOKEN = "token-for-ci"
MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": MEDIA_TYPE, "layers": []}).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


@dataclass
class FakeRegistry:
    """Manifests by (repository, tag or digest), blobs by digest, served behind Basic or
    bearer-token auth; blob downloads are redirected to a separate storage server, as registries
    backed by S3 do. Every request is logged as (method, path, Authorization)."""

    challenge: str = "bearer"  # or "basic"
    lie_about_digest: bool = False
    page_size: int = 2  # tags per page of a tag list (servers may cap what the client asks)
    deletes_enabled: bool = True  # distribution's storage.delete.enabled
    #: by method, how many of the next manifest requests are answered 500, as distribution
    #: answers a read of a tag another writer is rewriting
    server_errors: dict[str, int] = field(default_factory=dict)
    manifests: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)  # what each token was asked for
    storage_requests: list[tuple[str, str]] = field(default_factory=list)  # (path, auth)
    url: str = ""
    storage_url: str = ""


def digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


class _Replies(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    state = FakeRegistry(manifests={("team/app", DIGEST): (MANIFEST, MEDIA_TYPE)})

    class Storage(_Replies):
        def do_GET(self) -> None:
            state.storage_requests.append((self.path, self.headers.get("Authorization", "")))
            digest = urllib.parse.urlsplit(self.path).path.removeprefix("/signed/")
            self.reply(200, state.blobs[digest])

    class Registry_(_Replies):
        def _auth_ok(self) -> bool:
            auth = self.headers.get("Authorization", "")
            if auth == (f"Bearer {TOKEN}" if state.challenge == "bearer" else f"Basic {BASIC}"):
                return True
            if state.challenge == "bearer":
                value = f'Bearer realm="http://{state.url}/token",service="fake-registry"'
            else:
                value = 'Basic realm="fake"'
            self.reply(401, headers={"WWW-Authenticate": value})
            return False

        def _token(self) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            assert query["service"] == ["fake-registry"]
            assert re.fullmatch(r"repository:team/[a-z-]+:(pull(,push)?|delete)", query["scope"][0])
            state.scopes.append(query["scope"][0])
            if self.headers.get("Authorization") != f"Basic {BASIC}":
                self.reply(401)
            else:
                self.reply(200, json.dumps({"token": TOKEN}).encode())

        def _tags(self, repository: str, query: dict[str, list[str]]) -> None:
            tags = sorted(
                ref for repo, ref in state.manifests if repo == repository and ":" not in ref
            )
            if not tags:
                self.reply(404, b'{"errors": [{"code": "NAME_UNKNOWN"}]}')
                return
            after = [t for t in tags if t > query.get("last", [""])[0]]
            page, rest = after[: state.page_size], after[state.page_size :]
            headers = {}
            if rest:
                link = f"/v2/{repository}/tags/list?n={state.page_size}&last={page[-1]}"
                headers["Link"] = f'<{link}>; rel="next"'
            self.reply(200, json.dumps({"name": repository, "tags": page}).encode(), headers)

        def _server_error(self) -> bool:
            if state.server_errors.get(self.command, 0) <= 0:
                return False
            state.server_errors[self.command] -= 1
            self.reply(500, b'{"errors": [{"code": "UNKNOWN"}]}')
            return True

        def do_GET(self) -> None:
            state.requests.append((self.command, self.path, self.headers.get("Authorization", "")))
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/token":
                self._token()
                return
            if not self._auth_ok() or self._server_error():
                return
            path = url.path.removeprefix("/v2/")
            if path.endswith("/tags/list"):
                self._tags(path.removesuffix("/tags/list"), urllib.parse.parse_qs(url.query))
            elif "/blobs/" in path:
                digest = path.partition("/blobs/")[2]
                location = f"http://{state.storage_url}/signed/{digest}?signature=abc"
                self.reply(307, headers={"Location": location})
            else:
                repository, _, reference = path.partition("/manifests/")
                found = state.manifests.get((repository, reference))
                if found is None:
                    self.reply(404, b'{"errors": [{"code": "MANIFEST_UNKNOWN"}]}')
                    return
                body, media_type = found
                headers = {"Content-Type": media_type, "Docker-Content-Digest": digest_of(body)}
                self.reply(200, body, headers)

        do_HEAD = do_GET

        def do_PUT(self) -> None:
            state.requests.append((self.command, self.path, self.headers.get("Authorization", "")))
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if not self._auth_ok() or self._server_error():
                return
            repository, _, reference = self.path.removeprefix("/v2/").partition("/manifests/")
            state.manifests[(repository, reference)] = (body, self.headers["Content-Type"])
            answered = "sha256:0" if state.lie_about_digest else digest_of(body)
            self.reply(201, headers={"Docker-Content-Digest": answered})

        def do_DELETE(self) -> None:
            """distribution: the manifest by digest goes, and every tag that names it."""
            state.requests.append((self.command, self.path, self.headers.get("Authorization", "")))
            if not self._auth_ok():
                return
            if not state.deletes_enabled:
                self.reply(405, b'{"errors": [{"code": "UNSUPPORTED"}]}')
                return
            repository, _, digest = self.path.removeprefix("/v2/").partition("/manifests/")
            if (repository, digest) not in state.manifests:
                self.reply(404, b'{"errors": [{"code": "MANIFEST_UNKNOWN"}]}')
                return
            for key, (body, _) in list(state.manifests.items()):
                if key[0] == repository and digest_of(body) == digest:
                    del state.manifests[key]
            self.reply(202)

    with serving(Registry_) as address, serving(Storage) as storage:
        state.url, state.storage_url = address, storage
        yield state


def client(fake: FakeRegistry, basic: str | None = BASIC) -> RegistryHTTP:
    return RegistryHTTP(Registry(url=fake.url, tls_verify=False), basic)


def test_bearer_token_then_retag(fake: FakeRegistry) -> None:
    api = client(fake)
    api.retag("team/app", DIGEST, "1.2.3")
    api.retag("team/app", DIGEST, "latest")
    assert fake.manifests[("team/app", "1.2.3")] == (MANIFEST, MEDIA_TYPE)
    assert api.digest("team/app", "latest") == DIGEST
    tokens = [r for r in fake.requests if r[1].startswith("/token")]
    assert len(tokens) == 2  # one per scope (pull,push then pull), then reused
    assert all(auth == f"Basic {BASIC}" for _, _, auth in tokens)
    sent = [auth for _, path, auth in fake.requests if path.startswith("/v2/")]
    assert BASIC not in "".join(sent)  # the password goes to the token realm only
    source_reads = [
        r for r in fake.requests if r[:2] == ("GET", f"/v2/team/app/manifests/{DIGEST}")
    ]
    assert len(source_reads) == 2  # one 401, then the bytes once for both tags


def test_basic_challenge(fake: FakeRegistry) -> None:
    fake.challenge = "basic"
    api = client(fake)
    assert api.digest("team/app", DIGEST) == DIGEST
    assert api.digest("team/app", "missing") is None


def test_anonymous_client_asked_for_credentials(fake: FakeRegistry) -> None:
    with pytest.raises(NoCredentials):
        client(fake, basic=None).retag("team/app", DIGEST, "1.2.3")
    fake.challenge = "basic"
    with pytest.raises(NoCredentials):
        client(fake, basic=None).digest("team/app", DIGEST)


def test_wrong_password_is_a_registry_error(fake: FakeRegistry) -> None:
    wrong = base64.b64encode(b"ci:wrong").decode()
    with pytest.raises(RegistryRequestError, match="401"):
        client(fake, basic=wrong).digest("team/app", DIGEST)


def test_a_registry_that_answers_another_digest(fake: FakeRegistry) -> None:
    fake.lie_about_digest = True
    with pytest.raises(RegistryRequestError, match="wrong digest"):
        client(fake).retag("team/app", DIGEST, "1.2.3")


@pytest.fixture
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_http, "RETRY_PAUSES", (0.0, 0.0, 0.0))


@pytest.mark.usefixtures("no_pauses")
def test_a_read_answered_with_a_server_error_is_asked_again(fake: FakeRegistry) -> None:
    registry = client(fake)
    fake.server_errors["HEAD"] = 3
    assert registry.digest("team/app", DIGEST) == DIGEST
    heads = [r for r in fake.requests if r[0] == "HEAD" and r[2]]
    assert len(heads) == 4  # three answered 500, the fourth the digest
    fake.server_errors["GET"] = 4
    with pytest.raises(RegistryRequestError, match="failed: 500"):
        registry.manifest("team/app", DIGEST)


@pytest.mark.usefixtures("no_pauses")
def test_a_write_answered_with_a_server_error_is_not_repeated(fake: FakeRegistry) -> None:
    """The registry may have done it: a PUT is asked once."""
    registry = client(fake)
    fake.server_errors["PUT"] = 1
    with pytest.raises(RegistryRequestError, match="failed: 500"):
        registry.retag("team/app", DIGEST, "latest")
    assert [r[0] for r in fake.requests if r[2]].count("PUT") == 1
    assert ("team/app", "latest") not in fake.manifests


def test_a_missing_source_manifest(fake: FakeRegistry) -> None:
    with pytest.raises(RegistryRequestError, match="404"):
        client(fake).retag("team/app", "sha256:" + "0" * 64, "1.2.3")


def test_basic_auth_prefers_the_runs_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_config, own = tmp_path / "run", tmp_path / "own"
    for folder, value in ((run_config, "cnVuOnJ1bg=="), (own, "b3duLXVzZXI6b3duLXNlY3JldA==")):
        folder.mkdir()
        (folder / "config.json").write_text(
            json.dumps({"auths": {"r.example:5000": {"auth": value}}})
        )
    monkeypatch.setenv("DOCKER_CONFIG", str(own))
    registry = Registry(url="r.example:5000")
    assert basic_auth(registry, run_config) == "cnVuOnJ1bg=="
    assert basic_auth(registry, None) == "b3duLXVzZXI6b3duLXNlY3JldA=="
    assert basic_auth(Registry(url="other.example"), run_config) is None
    # the user's own login never shows in a message: token and password alike
    assert (
        tools.scrub("b3duLXVzZXI6b3duLXNlY3JldA== own-user:own-secret") == "****** own-user:******"
    )


def test_tags_follow_every_page(fake: FakeRegistry) -> None:
    for tag in ("1.0.0", "1.0.1", "1.1.0", "latest", "git-abc"):
        fake.manifests[("team/app", tag)] = (MANIFEST, MEDIA_TYPE)
    assert client(fake).tags("team/app") == ["1.0.0", "1.0.1", "1.1.0", "git-abc", "latest"]
    pages = [path for method, path, _ in fake.requests if "/tags/list" in path and method == "GET"]
    assert len([p for p in pages if "last=" in p]) == 2  # 2 + 2 + 1 tags


def test_tags_of_a_repository_that_does_not_exist(fake: FakeRegistry) -> None:
    assert client(fake).tags("team/nothing-here") == []


def image(labels: dict[str, str], fake: FakeRegistry) -> tuple[bytes, str]:
    """A manifest whose config blob (in ``fake``) carries ``labels``."""
    config = json.dumps({"architecture": "amd64", "config": {"Labels": labels}}).encode()
    fake.blobs[digest_of(config)] = config
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": MEDIA_TYPE, "config": {"digest": digest_of(config)}}
    ).encode()
    fake.manifests[("team/app", digest_of(body))] = (body, MEDIA_TYPE)
    return body, digest_of(body)


def test_labels_of_an_index_are_this_platforms(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry_http.platform, "machine", lambda: "x86_64")
    _, arm = image({"org.example.hash": "arm-build"}, fake)
    _, amd = image({"org.example.hash": "amd-build"}, fake)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"digest": arm, "platform": {"os": "linux", "architecture": "arm64"}},
                {"digest": amd, "platform": {"os": "linux", "architecture": "amd64"}},
            ],
        }
    ).encode()
    fake.manifests[("team/app", "1.0.0")] = (index, "application/vnd.oci.image.index.v1+json")
    assert client(fake).labels("team/app", "1.0.0") == {"org.example.hash": "amd-build"}
    # the config blob came from storage through the redirect, without the registry's token
    assert [auth for _, auth in fake.storage_requests] == [""]


def test_labels_of_an_image_that_is_not_there(fake: FakeRegistry) -> None:
    assert client(fake).labels("team/app", "9.9.9") is None


def test_delete_a_manifest_and_its_tags(fake: FakeRegistry) -> None:
    api = client(fake)
    api.retag("team/app", DIGEST, "1.2.3")
    assert api.delete_manifest("team/app", DIGEST) is True
    assert ("team/app", "1.2.3") not in fake.manifests
    assert api.digest("team/app", DIGEST) is None
    assert "repository:team/app:delete" in fake.scopes  # a token scoped to deleting
    assert api.delete_manifest("team/app", DIGEST) is False  # gone already: a re-run's answer


def test_a_registry_that_refuses_deletes(fake: FakeRegistry) -> None:
    fake.deletes_enabled = False
    with pytest.raises(UserError, match="refuses to delete") as raised:
        client(fake).delete_manifest("team/app", DIGEST)
    assert "storage.delete.enabled" in (raised.value.hint or "")
    assert ("team/app", DIGEST) in fake.manifests


def test_blobs_read_are_kept_up_to_the_limit(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry_http, "KEPT_BLOB_BYTES", 10)
    first, second = b"6 byte", b"other!"
    fake.blobs.update({digest_of(first): first, digest_of(second): second})
    api = client(fake)
    for _ in range(2):
        assert api.blob("team/app", digest_of(first), limit=100) == first
        assert api.blob("team/app", digest_of(second), limit=100) == second
    fetched = [urllib.parse.urlsplit(path).path for path, _ in fake.storage_requests]
    # the first is kept (6 of 10 bytes); the second would pass the limit: read each time
    assert fetched == [f"/signed/{digest_of(b)}" for b in (first, second, second)]


def test_the_kept_bytes_stay_within_the_limit_when_threads_read_at_once(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry_http, "KEPT_BLOB_BYTES", 20)
    blobs = [f"blob {n:03}".encode() for n in range(12)]  # 8 bytes each: two fit
    fake.blobs.update({digest_of(b): b for b in blobs})
    api = client(fake)
    api.digest("team/app", DIGEST)  # the token first: the threads then only read blobs
    reads = [partial(api.blob, "team/app", digest_of(b), limit=100) for b in blobs * 2]
    at_once(reads)
    kept = [b for b in blobs if api._blobs.get(("team/app", digest_of(b))) is not None]
    assert len(kept) == 2 and api._blobs.total == 16
