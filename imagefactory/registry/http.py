"""The registry HTTP API (distribution v2): a manifest's digest, a repository's tags, an image's
labels, a manifest the registry holds put under another tag, and the small artifacts evidence
lives in (cosign's ``.sig``/``.att`` manifests and their blobs): manifests read and put, blobs read
(bounded, digest checked) and uploaded (monolithic POST + PUT, skipped when the blob is there,
mounted from another repository of the same registry), and what an image copy needs
(``copy.py``): blob mounts, blobs streamed in (into a :class:`Sink`, size-bounded, hashed) and
out (an :class:`Upload` from a file). A few requests in-process instead of a skopeo process.

Credentials are the Basic ``auth`` entry
of the run's Docker config (the temporary one ``credentials.py`` writes, else the user's own);
registries that want a bearer token get one from the realm they name, scoped to the repositories
the request touches (``pull``, and ``push`` for writes). ``NoCredentials`` means the registry asked
for credentials this module cannot read (a credential helper): the caller falls back to skopeo,
or refuses where skopeo cannot help. TLS is verified against the project's CA bundle; a registry
with ``tls_verify: false`` is tried over unverified HTTPS, then HTTP, as skopeo does.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import io
import json
import os
import platform
import re
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from functools import cached_property
from pathlib import Path
from typing import IO, Any

from imagefactory import tools
from imagefactory.errors import ImageFactoryError, UserError
from imagefactory.spec.models import Registry

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
TIMEOUT = 60
PAGE = 1000  # tags per page of a tag list
MAX_PAGES = 100
#: The most bytes a manifest may have (distribution refuses larger ones).
MANIFEST_LIMIT = 4 * 1024 * 1024
BLOB_MEDIA_TYPE = "application/octet-stream"
ANY_SCOPE = "*"  # where Basic credentials are kept: they hold for every repository
#: Blobs read are kept (by repository and digest: content-addressed, checked) up to this many
#: bytes in all: a promotion reads a digest's evidence to verify it and again to copy it.
KEPT_BLOB_BYTES = 16 * 1024 * 1024
#: A blob up to this size is uploaded without asking first whether the registry has it: the
#: question costs a request (and a credential check) as the upload does.
SMALL_BLOB = 64 * 1024
#: A read (GET, HEAD) a registry answered as failing (``transient``) is asked again after each of
#: these pauses: distribution answers 500 while another writer rewrites the tag it reads (its
#: storage rewrites the tag's link file in place), proxies in front of registries answer 502-504
#: on a restart, and 429 asks for patience. Writes are not repeated here: an image copy
#: (``copy.retried``) repeats its own steps, which it knows to be idempotent.
RETRY_PAUSES = (0.1, 0.3, 1.0)
READS = frozenset({"GET", "HEAD"})
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryRequestError(ImageFactoryError):
    """A registry answered a request with an error (exit 3): what was asked and what it said."""

    def __init__(
        self,
        method: str,
        url: str,
        status: int | str,
        body: str,
        hint: str = "is the registry running, and are its credentials right?",
    ) -> None:
        self.method, self.url, self.status, self.body = method, url, status, body
        super().__init__(
            f"{method} {url} failed: {status} {tools.scrub(body)[:500]}".rstrip(), hint=hint
        )


class RegistryAuthError(RegistryRequestError, UserError):
    """The registry refused the credentials it was sent (401, 403): the user's to fix (exit 1)."""


class _RedirectWithoutCredentials(urllib.request.HTTPRedirectHandler):
    """A registry may send a blob download to its storage (S3, GCS) with a signed URL: the
    registry's credentials must not follow to another host."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        same_host = (
            urllib.parse.urlsplit(newurl).netloc == urllib.parse.urlsplit(req.full_url).netloc
        )
        if new is not None and not same_host:
            new.remove_header("Authorization")
        return new


class _KeptBlobs:
    """Blobs read, by (repository, digest), up to KEPT_BLOB_BYTES in all: the running total
    and the dict change together under a lock (a copy reads blobs in threads)."""

    def __init__(self) -> None:
        self._blobs: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()
        self.total = 0  # the bytes kept

    def get(self, key: tuple[str, str]) -> bytes | None:
        return self._blobs.get(key)

    def keep(self, key: tuple[str, str], data: bytes) -> None:
        """``data`` kept under ``key`` unless it is there already or would pass the limit."""
        with self._lock:
            if key not in self._blobs and self.total + len(data) <= KEPT_BLOB_BYTES:
                self._blobs[key] = data
                self.total += len(data)


class NoCredentials(Exception):
    """The registry wants credentials this module has none for (not an error for the user)."""


@dataclass(frozen=True)
class Answer:
    url: str
    status: int
    headers: Message
    body: bytes


@dataclass(frozen=True)
class Upload:
    """A request body streamed from a file of ``size`` bytes."""

    file: IO[bytes]
    size: int


class Sink:
    """Where a streamed answer goes: at most ``size`` bytes into ``file``, hashed on the way;
    more is refused. ``digest`` is the SHA-256 of what was written."""

    CHUNK = 1024 * 1024

    def __init__(self, file: IO[bytes], size: int) -> None:
        self.file, self.size, self.written = file, size, 0
        self._sha = hashlib.sha256()

    def take(self, stream: IO[bytes], method: str, url: str) -> None:
        self.file.seek(0)
        self.file.truncate()
        self.written, self._sha = 0, hashlib.sha256()
        while chunk := stream.read(self.CHUNK):
            self.written += len(chunk)
            if self.written > self.size:
                raise RegistryRequestError(method, url, "too large", f"more than {self.size} bytes")
            self._sha.update(chunk)
            self.file.write(chunk)

    @property
    def digest(self) -> str:
        return "sha256:" + self._sha.hexdigest()


@dataclass
class RegistryHTTP:
    registry: Registry
    basic: str | None  # base64 "user:password", or None for anonymous
    cafile: Path | None = None
    _scheme: str | None = None
    _tokens: dict[str, str] = field(default_factory=dict)  # scope → bearer token
    _manifests: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    _blobs: _KeptBlobs = field(default_factory=_KeptBlobs)

    def digest(self, repository: str, reference: str) -> str | None:
        """The digest of the manifest ``reference`` (a tag or a digest); None when not there."""
        scope = f"repository:{repository}:pull"
        path = f"/v2/{repository}/manifests/{reference}"
        answer = self._call("HEAD", path, scope, accept=True, missing=(404,))
        if answer.status == 404:
            return None
        digest = answer.headers.get("Docker-Content-Digest")
        if digest is None:  # not every registry names it on HEAD: hash the bytes
            body = self._call("GET", path, scope, accept=True).body
            digest = _digest(body)
        return str(digest)

    def tags(self, repository: str) -> list[str]:
        """Every tag of ``repository`` (all pages); empty when the repository does not exist."""
        scope = f"repository:{repository}:pull"
        path: str | None = f"/v2/{repository}/tags/list?n={PAGE}"
        found: list[str] = []
        for _ in range(MAX_PAGES):
            if path is None:
                break
            answer = self._call("GET", path, scope, missing=(404,))
            if answer.status == 404:
                return []
            found += _json(answer).get("tags") or []
            path = _next_page(answer.headers.get("Link"))
        return sorted(found)

    def labels(self, repository: str, reference: str) -> dict[str, str] | None:
        """The labels of the image at ``reference`` (of an index: this machine's platform, as
        skopeo picks it); None when the registry does not have it."""
        scope = f"repository:{repository}:pull"
        path = f"/v2/{repository}/manifests/{reference}"
        answer = self._call("GET", path, scope, accept=True, missing=(404,))
        if answer.status == 404:
            return None
        manifest = _json(answer)
        if "manifests" in manifest:
            entry = _this_platform(manifest["manifests"])
            path = f"/v2/{repository}/manifests/{entry['digest']}"
            manifest = _json(self._call("GET", path, scope, accept=True))
        blob = self._call("GET", f"/v2/{repository}/blobs/{manifest['config']['digest']}", scope)
        labels = (_json(blob).get("config") or {}).get("Labels") or {}
        return {str(k): str(v) for k, v in labels.items()}

    def retag(self, repository: str, digest: str, tag: str) -> None:
        """Put the manifest ``repository@digest`` under ``tag``; the registry's answer must
        name the same digest."""
        scope = _push_scope(repository)
        self._put(repository, digest, tag, scope, self._manifest_bytes(repository, digest, scope))

    def tag_once(self, repository: str, digest: str, tag: str) -> str | None:
        """Put ``repository@digest`` under ``tag`` unless ``tag`` exists (a write-once tag);
        the digest ``tag`` holds afterwards, read back: ``digest``, or what another writer put
        there first. The manifest is read before the check, so one request lies between the
        check and the write (the registry API has no conditional write; a registry with
        immutable tags refuses a write that lost that race, and the winner is read back)."""
        scope = _push_scope(repository)
        manifest = self._manifest_bytes(repository, digest, scope)
        held = self.digest(repository, tag)
        if held is None:
            try:
                self._put(repository, digest, tag, scope, manifest)
            except RegistryAuthError:
                raise
            except RegistryRequestError:
                if self.digest(repository, tag) is None:
                    raise  # refused for another reason
            held = self.digest(repository, tag)
        return held

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str] | None:
        """The bytes and media type of the manifest ``reference`` (a tag or a digest, whose
        bytes are checked against it); None when the registry does not have it."""
        return self._read_manifest(repository, reference, f"repository:{repository}:pull")

    def put_manifest(self, repository: str, tag: str, body: bytes, media_type: str) -> str:
        """Put the manifest ``body`` under ``tag`` (its blobs must be there); its digest, which
        the registry's answer must name too."""
        digest = _digest(body)
        self._put(repository, digest, tag, _push_scope(repository), (body, media_type))
        return digest

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """Delete the manifest ``repository@digest`` and every tag on it (distribution's
        ``DELETE /v2/<name>/manifests/<digest>``); False when it was not there (already
        deleted: a re-run of an interrupted deletion). A registry that does not delete
        (distribution without ``storage.delete.enabled``: 405) is a UserError."""
        scope = f"repository:{repository}:delete"
        path = f"/v2/{repository}/manifests/{digest}"
        answer = self._call("DELETE", path, scope, missing=(404, 405))
        if answer.status == 405:
            raise UserError(
                f"{self.registry.url} refuses to delete manifests ({repository}@{digest})",
                hint="enable deletes in the registry (distribution: storage.delete.enabled: true "
                "in its config.yml; ECR: the ecr:BatchDeleteImage permission), or let the "
                "registry's own lifecycle rules expire images",
            )
        self._manifests.pop((repository, digest), None)
        return answer.status != 404

    def blob(self, repository: str, digest: str, *, limit: int) -> bytes:
        """The blob ``digest`` of ``repository``: at most ``limit`` bytes, checked against the
        digest (a registry error when it is missing, larger, or other bytes)."""
        kept = self._blobs.get((repository, digest))
        if kept is not None and len(kept) <= limit:
            return kept
        scope = f"repository:{repository}:pull"
        answer = self._call("GET", f"/v2/{repository}/blobs/{digest}", scope, limit=limit)
        if _digest(answer.body) != digest:
            raise RegistryRequestError(
                "GET", answer.url, "wrong digest", "the bytes hash otherwise"
            )
        self._blobs.keep((repository, digest), answer.body)
        return answer.body

    def upload_blob(self, repository: str, data: bytes, *, mount_from: str | None = None) -> str:
        """Upload ``data`` as a blob of ``repository`` unless the registry has it there; mounted
        from ``mount_from`` (another repository of this registry that holds it) when given, else
        one monolithic POST + PUT. Its digest. A mount needs no question first (it answers
        whether the blob is there), nor does a small blob (sent again, it changes nothing)."""
        digest = _digest(data)
        if mount_from not in (None, repository) and self.mount_blob(repository, digest, mount_from):
            return digest
        if len(data) > SMALL_BLOB and self.has_blob(repository, digest):
            return digest
        self.put_blob(repository, digest, Upload(io.BytesIO(data), len(data)))
        return digest

    def has_blob(self, repository: str, digest: str) -> bool:
        """Whether ``repository`` holds the blob (asked with push rights: the writer asks)."""
        path = f"/v2/{repository}/blobs/{digest}"
        return self._call("HEAD", path, _push_scope(repository), missing=(404,)).status != 404

    def mount_blob(self, repository: str, digest: str, source: str) -> bool:
        """Mount the blob ``digest`` of ``source`` (a repository of this registry) into
        ``repository``: no bytes move. False when the registry would not (it opened an upload
        session instead, which is cancelled)."""
        scope = f"{_push_scope(repository)} repository:{source}:pull"
        query = urllib.parse.urlencode({"mount": digest, "from": source})
        answer = self._call("POST", f"/v2/{repository}/blobs/uploads/?{query}", scope, body=b"")
        if answer.status == 201:
            return True
        location = answer.headers.get("Location")
        if location:
            session = urllib.parse.urlsplit(location)._replace(scheme="", netloc="").geturl()
            with contextlib.suppress(RegistryRequestError):
                self._call("DELETE", session, scope, missing=(404, 405))
        return False

    def read_blob(self, repository: str, digest: str, sink: Sink) -> None:
        """The blob ``digest`` of ``repository`` streamed into ``sink``, checked against the
        digest and the size the sink allows."""
        path = f"/v2/{repository}/blobs/{digest}"
        answer = self._call("GET", path, f"repository:{repository}:pull", sink=sink)
        if sink.digest != digest:
            raise RegistryRequestError(
                "GET", answer.url, "wrong digest", "the bytes hash otherwise"
            )

    def put_blob(self, repository: str, digest: str, upload: Upload) -> None:
        """The bytes of ``upload`` (whose digest is ``digest``) as a blob of ``repository``: one
        POST for an upload session, one PUT of the file, streamed."""
        scope = _push_scope(repository)
        answer = self._call("POST", f"/v2/{repository}/blobs/uploads/", scope, body=b"")
        location = answer.headers.get("Location")
        if not location:
            raise RegistryRequestError("POST", answer.url, answer.status, "no upload Location")
        target = urllib.parse.urlsplit(location)._replace(scheme="", netloc="").geturl()
        separator = "&" if "?" in target else "?"
        put = self._call(
            "PUT",
            f"{target}{separator}{urllib.parse.urlencode({'digest': digest})}",
            scope,
            body=upload,
            content_type=BLOB_MEDIA_TYPE,
        )
        answered = put.headers.get("Docker-Content-Digest")
        if answered is not None and answered != digest:
            raise RegistryRequestError("PUT", put.url, "wrong digest", f"answered {answered}")

    def _put(
        self, repository: str, digest: str, tag: str, scope: str, manifest: tuple[bytes, str]
    ) -> None:
        body, content_type = manifest
        put = self._call(
            "PUT", f"/v2/{repository}/manifests/{tag}", scope, body=body, content_type=content_type
        )
        answered = put.headers.get("Docker-Content-Digest")
        if answered is not None and answered != digest:
            raise RegistryRequestError("PUT", put.url, "wrong digest", f"answered {answered}")

    def _manifest_bytes(self, repository: str, digest: str, scope: str) -> tuple[bytes, str]:
        """The bytes and media type of ``repository@digest``: read once per run (content
        addressed, so they cannot change), checked against the digest."""
        key = (repository, digest)
        if key not in self._manifests:
            found = self._read_manifest(repository, digest, scope)
            if found is None:
                raise RegistryRequestError(
                    "GET", f"{repository}@{digest}", 404, "the registry does not have it"
                )
            self._manifests[key] = found
        return self._manifests[key]

    def _read_manifest(
        self, repository: str, reference: str, scope: str
    ) -> tuple[bytes, str] | None:
        path = f"/v2/{repository}/manifests/{reference}"
        got = self._call("GET", path, scope, accept=True, missing=(404,), limit=MANIFEST_LIMIT)
        if got.status == 404:
            return None
        if reference.startswith("sha256:") and _digest(got.body) != reference:
            raise RegistryRequestError("GET", got.url, "wrong digest", "the bytes hash otherwise")
        media_type = got.headers.get("Content-Type") or MANIFEST_TYPES[-1]
        return got.body, media_type.partition(";")[0].strip()

    def _call(
        self,
        method: str,
        path: str,
        scope: str,
        *,
        accept: bool = False,
        body: bytes | Upload | None = None,
        content_type: str | None = None,
        missing: tuple[int, ...] = (),
        limit: int | None = None,
        sink: Sink | None = None,
    ) -> Answer:
        """``method path`` with the credentials ``scope`` (one or more scopes, space-separated)
        needs; an answer of at most ``limit`` bytes (with ``sink``, a successful answer's body
        goes there, streamed, and the answer's ``body`` is empty); ``body`` an Upload: its file
        streamed, from its start on each attempt."""
        headers = {"Accept": ", ".join(MANIFEST_TYPES)} if accept else {}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if isinstance(body, Upload):
            headers["Content-Length"] = str(body.size)
        answer = self._authorized(method, path, scope, headers, body, limit, sink)
        pauses = iter(RETRY_PAUSES if method in READS else ())
        while transient(answer.status) and (pause := next(pauses, None)) is not None:
            time.sleep(pause)
            answer = self._authorized(method, path, scope, headers, body, limit, sink)
        if answer.status >= 300 and answer.status not in missing:
            text = answer.body.decode(errors="replace")
            if answer.status in (401, 403) and "Authorization" in headers:
                raise RegistryAuthError(method, answer.url, answer.status, text, self._refused())
            raise RegistryRequestError(method, answer.url, answer.status, text)
        return answer

    def _authorized(
        self,
        method: str,
        path: str,
        scope: str,
        headers: dict[str, str],
        body: bytes | Upload | None,
        limit: int | None,
        sink: Sink | None,
    ) -> Answer:
        """One request, asked again with the credentials a 401 asks for (``headers`` keeps
        them)."""
        for attempt in range(2):  # the second after the credentials a 401 asked for
            known = self._tokens.get(scope) or self._tokens.get(ANY_SCOPE)
            if known is not None:
                headers["Authorization"] = known
            if isinstance(body, Upload):
                body.file.seek(0)
            data = body.file if isinstance(body, Upload) else body
            answer = self._send(method, path, headers, data, limit, sink)
            if answer.status != 401 or attempt == 1:
                break
            authorization = self._authorization(answer, scope)
            basic = authorization.startswith("Basic ")  # Basic holds for every repository
            self._tokens[ANY_SCOPE if basic else scope] = authorization
        return answer

    def _refused(self) -> str:
        """The hint for credentials the registry refused: where they come from."""
        names = [n for n in (self.registry.username_env, self.registry.password_env) if n]
        where = "/".join(names) if names else f"your docker login for {self.registry.url}"
        return (
            f"check {where}: the registry refused these credentials (a wrong or expired "
            "password, or no pull/push right on that repository)"
        )

    def _authorization(self, answer: Answer, scope: str) -> str:
        challenge = answer.headers.get("WWW-Authenticate", "")
        kind, _, rest = challenge.partition(" ")
        if kind.lower() == "basic":
            if self.basic is None:
                raise NoCredentials(self.registry.url)
            return f"Basic {self.basic}"
        if kind.lower() != "bearer":
            raise NoCredentials(self.registry.url)
        params = dict(_CHALLENGE_PARAM.findall(rest))
        query = [("scope", part) for part in scope.split()]
        if "service" in params:
            query.append(("service", params["service"]))
        url = f"{params.get('realm', '')}?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url)
        if self.basic is not None:
            request.add_header("Authorization", f"Basic {self.basic}")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT, context=self._context) as got:
                document = json.loads(got.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 401 and self.basic is None:
                raise NoCredentials(self.registry.url) from exc
            text = exc.read().decode(errors="replace")
            if exc.code in (401, 403) and self.basic is not None:
                raise RegistryAuthError("GET", url, exc.code, text, self._refused()) from exc
            raise RegistryRequestError("GET", url, exc.code, text) from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RegistryRequestError("GET", url, "no answer", str(exc)) from exc
        token = document.get("token") or document.get("access_token")
        if not token:
            raise RegistryRequestError("GET", url, "no token", "")
        tools.redact(token)
        return f"Bearer {token}"

    def _send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes | IO[bytes] | None,
        limit: int | None = None,
        sink: Sink | None = None,
    ) -> Answer:
        if self._scheme is not None:
            schemes = [self._scheme]
        else:  # like skopeo: a registry without TLS verification may also speak plain HTTP
            schemes = ["https"] if self.registry.tls_verify else ["https", "http"]
        for scheme in schemes:
            url = f"{scheme}://{self.registry.url}{path}"
            request = urllib.request.Request(url, data=body, headers=headers, method=method)
            handlers: list[urllib.request.BaseHandler] = [_RedirectWithoutCredentials()]
            if scheme == "https":
                handlers.append(urllib.request.HTTPSHandler(context=self._context))
            try:
                with urllib.request.build_opener(*handlers).open(request, timeout=TIMEOUT) as got:
                    self._scheme = scheme
                    if sink is not None:
                        sink.take(got, method, url)
                        return Answer(url, got.status, got.headers, b"")
                    return Answer(url, got.status, got.headers, _read(got, method, url, limit))
            except urllib.error.HTTPError as exc:
                self._scheme = scheme
                return Answer(url, exc.code, exc.headers, exc.read())
            except (urllib.error.URLError, OSError) as exc:
                if scheme == schemes[-1]:
                    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                    if isinstance(reason, ssl.SSLCertVerificationError):
                        hint = "add the CA that signed its certificate to build.ca_bundle"
                        raise RegistryRequestError(method, url, "TLS:", str(reason), hint) from exc
                    raise RegistryRequestError(method, url, "no answer:", str(reason)) from exc
        raise AssertionError("unreachable: the loop returns or raises")

    @cached_property
    def _context(self) -> ssl.SSLContext:
        """Built once: the CA bundle is read once per run, not once per request."""
        if not self.registry.tls_verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        return ssl.create_default_context(cafile=str(self.cafile) if self.cafile else None)


def transient(status: int | str) -> bool:
    """Whether a request's outcome (a status, or what stood for one: ``no answer: …``) says the
    registry is gone or failing for now, so that asking again later may succeed."""
    if isinstance(status, int):
        return status == 429 or status >= 500
    return status.startswith("no answer")


def asked_again(error: RegistryRequestError) -> bool:
    """Whether the request that failed with ``error`` was asked again already, here: a read
    answered as failing (a caller's own tries would only repeat these)."""
    return error.method in READS and isinstance(error.status, int) and transient(error.status)


def _read(stream: IO[bytes], method: str, url: str, limit: int | None) -> bytes:
    """The body of an answer, refused when it holds more than ``limit`` bytes."""
    if limit is None:
        return stream.read()
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise RegistryRequestError(
            method,
            url,
            "too large",
            f"more than {limit} bytes",
            hint="nothing this large is read as a manifest or evidence: is it the artifact meant?",
        )
    return body


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def _json(answer: Answer) -> dict[str, Any]:
    try:
        document = json.loads(answer.body)
    except ValueError as exc:
        raise RegistryRequestError("GET", answer.url, "not JSON", str(exc)) from exc
    if not isinstance(document, dict):
        raise RegistryRequestError("GET", answer.url, "not a JSON object", "")
    return document


def _next_page(link: str | None) -> str | None:
    """The path of the next page from a ``Link: </v2/…?last=…>; rel="next"`` header."""
    match = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', link or "")
    if match is None:
        return None
    return urllib.parse.urlsplit(match[1])._replace(scheme="", netloc="").geturl()


def _this_platform(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The index entry for this machine (linux and its architecture), else the first."""
    wanted = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    for entry in entries:
        found = entry.get("platform") or {}
        if found.get("os") == "linux" and found.get("architecture") == wanted:
            return entry
    return entries[0]


def basic_auth(registry: Registry, config_dir: Path | None) -> str | None:
    """The Basic ``auth`` entry for ``registry`` in the run's Docker config, else the user's."""
    folders = [config_dir] if config_dir is not None else []
    folders.append(Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker"))
    for folder in folders:
        try:
            document = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        auths = document.get("auths") if isinstance(document, dict) else None
        entry = auths.get(registry.url) if isinstance(auths, dict) else None
        if isinstance(entry, dict) and isinstance(entry.get("auth"), str):
            auth = str(entry["auth"])
            tools.redact(auth)  # the user's own login: never in a message either
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                tools.redact(base64.b64decode(auth).decode().partition(":")[2])
            return auth
    return None
