"""The registry HTTP client against an in-process registry that speaks the distribution API's
manifest endpoints and its bearer-token handshake (as GitLab's and Harbor's registries do; the
integration tests cover Basic auth against a real ``docker-registry``)."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from imagefactory.registry_http import (
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
    """Manifests by repository and reference; every request logged as (method, path, auth)."""

    challenge: str = "bearer"  # or "basic"
    lie_about_digest: bool = False
    manifests: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    state = FakeRegistry(manifests={("team/app", DIGEST): (MANIFEST, MEDIA_TYPE)})

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _auth_ok(self) -> bool:
            auth = self.headers.get("Authorization", "")
            self_url = f"http://{state.url}"
            if state.challenge == "bearer" and auth == f"Bearer {TOKEN}":
                return True
            if state.challenge == "basic" and auth == f"Basic {BASIC}":
                return True
            self.send_response(401)
            if state.challenge == "bearer":
                value = f'Bearer realm="{self_url}/token",service="fake-registry"'
            else:
                value = 'Basic realm="fake"'
            self.send_header("WWW-Authenticate", value)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False

        def _manifest(self, head: bool) -> None:
            state.requests.append((self.command, self.path, self.headers.get("Authorization", "")))
            if self.path.startswith("/token"):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                assert query["service"] == ["fake-registry"]
                assert query["scope"][0].startswith("repository:team/app:pull")
                if self.headers.get("Authorization") != f"Basic {BASIC}":
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"token": TOKEN}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if not self._auth_ok():
                return
            repository, _, reference = self.path.removeprefix("/v2/").partition("/manifests/")
            found = state.manifests.get((repository, reference))
            if found is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body, media_type = found
            self.send_response(200)
            self.send_header("Content-Type", media_type)
            self.send_header("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self._manifest(head=True)

        def do_GET(self) -> None:
            self._manifest(head=False)

        def do_PUT(self) -> None:
            state.requests.append((self.command, self.path, self.headers.get("Authorization", "")))
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if not self._auth_ok():
                return
            repository, _, reference = self.path.removeprefix("/v2/").partition("/manifests/")
            state.manifests[(repository, reference)] = (body, self.headers["Content-Type"])
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            self.send_response(201)
            self.send_header(
                "Docker-Content-Digest", "sha256:0" if state.lie_about_digest else digest
            )
            self.send_header("Content-Length", "0")
            self.end_headers()

    with serving(Handler) as address:
        state.url = address
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


def test_a_missing_source_manifest(fake: FakeRegistry) -> None:
    with pytest.raises(RegistryRequestError, match="404"):
        client(fake).retag("team/app", "sha256:" + "0" * 64, "1.2.3")


def test_basic_auth_prefers_the_runs_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_config, own = tmp_path / "run", tmp_path / "own"
    for folder, value in ((run_config, "cnVuOnJ1bg=="), (own, "b3duOm93bg==")):
        folder.mkdir()
        (folder / "config.json").write_text(
            json.dumps({"auths": {"r.example:5000": {"auth": value}}})
        )
    monkeypatch.setenv("DOCKER_CONFIG", str(own))
    registry = Registry(url="r.example:5000")
    assert basic_auth(registry, run_config) == "cnVuOnJ1bg=="
    assert basic_auth(registry, None) == "b3duOm93bg=="
    assert basic_auth(Registry(url="other.example"), run_config) is None
