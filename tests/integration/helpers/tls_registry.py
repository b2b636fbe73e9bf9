"""A second registry for promotion tests and benchmarks: "registry B", over TLS, with htpasswd.

Debian's ``docker-registry`` (distribution 2.8), the same binary ``scripts/services.sh`` runs as
registry A, started on a free port of 127.0.0.1 with

* a CA generated here (openssl: CA key + self-signed CA certificate) and a server certificate
  for ``127.0.0.1`` (``subjectAltName = IP:127.0.0.1``) signed by it;
* htpasswd authentication (bcrypt, via ``htpasswd -niB``: the password goes through stdin,
  never on a command line);
* its own storage folder, so storage growth can be measured (``storage_bytes``).

Used by ``tests/integration/test_release.py`` (fixture ``registry_b``) and by
``bench/promote_bench.py``. The process runs in its own session; :meth:`TLSRegistry.stop`
ends it (SIGTERM, bounded wait, SIGKILL) and :meth:`TLSRegistry.start` brings it back on the
same port with the same storage, so tests can take the registry away in the middle of a copy.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REGISTRY_BINARY = "/usr/bin/docker-registry"
HOST_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
USER = "promoter"
START_TIMEOUT = 30.0
STOP_GRACE = 10.0


def free_port() -> int:
    """A TCP port nobody listens on at this instant on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stderr[-2000:]}")


def make_ca_and_server_cert(folder: Path, ip: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """(ca.crt, server.crt, server.key) in ``folder``: a fresh CA and a certificate for ``ip``."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.crt",
        "-subj", "/CN=imagefactory test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-sha256",
        "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={ip}",
        cwd=folder,
    )  # fmt: skip
    (folder / "server.ext").write_text(
        f"subjectAltName = IP:{ip}\n"
        "basicConstraints = CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-sha256", "-extfile", "server.ext", "-out", "server.crt",
        cwd=folder,
    )  # fmt: skip
    for name in ("ca.key", "server.key"):
        (folder / name).chmod(0o600)
    return folder / "ca.crt", folder / "server.crt", folder / "server.key"


def make_client_cert(folder: Path) -> tuple[Path, Path]:
    """(client.crt, client.key) in ``folder``, signed by the CA ``make_ca_and_server_cert`` made
    there: what a Docker client presents to a daemon started with ``--tlsverify``."""
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-sha256",
        "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=imagefactory tests",
        cwd=folder,
    )  # fmt: skip
    (folder / "client.ext").write_text("extendedKeyUsage = clientAuth\n")
    _openssl(
        "x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-sha256", "-extfile", "client.ext", "-out", "client.crt",
        cwd=folder,
    )  # fmt: skip
    (folder / "client.key").chmod(0o600)
    return folder / "client.crt", folder / "client.key"


def write_bundle(target: Path, *parts: Path) -> Path:
    """``target`` holding every PEM file of ``parts`` one after the other."""
    text = "".join(p.read_text().rstrip("\n") + "\n" for p in parts)
    target.write_text(text)
    return target


@dataclass
class TLSRegistry:
    """Registry B. ``password`` must never be printed or logged."""

    root: Path
    port: int
    user: str = USER
    password: str = field(default_factory=lambda: secrets.token_hex(20), repr=False)
    bcrypt_cost: int = 6  # every request verifies bcrypt; 10 costs ~70 ms a request (A is 6 too)
    tls_from: Path | None = None  # reuse this folder's CA and server certificate (any port)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ca_cert(self) -> Path:
        return self.root / "tls" / "ca.crt"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "registry.log"

    # ------------------------------------------------------------------ set-up

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        if self.tls_from is not None:
            shutil.copytree(self.tls_from, self.root / "tls")
            cert, key = self.root / "tls" / "server.crt", self.root / "tls" / "server.key"
        else:
            _, cert, key = make_ca_and_server_cert(self.root / "tls")
        htpasswd = self.root / "htpasswd"
        proc = subprocess.run(
            ["htpasswd", "-niB", "-C", str(self.bcrypt_cost), self.user],
            input=self.password + "\n",
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"htpasswd failed: {proc.stderr.strip()}")
        htpasswd.write_text("".join(line + "\n" for line in proc.stdout.splitlines() if line))
        htpasswd.chmod(0o600)
        self.data_dir.mkdir(exist_ok=True)
        config = self.root / "config.yml"
        config.write_text(
            f"""\
# registry B for imagefactory promotion tests (tests/integration/helpers/tls_registry.py)
version: 0.1
log:
  level: info
  fields:
    service: registry-b
storage:
  filesystem:
    rootdirectory: {self.data_dir}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:{self.port}
  secret: {secrets.token_hex(24)}
  tls:
    certificate: {cert}
    key: {key}
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: imagefactory-registry-b
    path: {htpasswd}
"""
        )
        config.chmod(0o600)

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the registry (again) and wait, bounded, until GET /v2/ answers 401 over TLS."""
        if self.process is not None and self.process.poll() is None:
            return
        with self.log_file.open("ab") as log:
            log.write(f"=== start {time.strftime('%FT%TZ', time.gmtime())}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [REGISTRY_BINARY, "serve", str(self.root / "config.yml")],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"registry B exited with {self.process.returncode} during start-up:\n"
                    + self.log_tail()
                )
            try:
                status, _, _ = self.request("GET", "/v2/", auth=False, timeout=2)
            except OSError:
                time.sleep(0.1)
                continue
            if status == 401:
                return
            raise RuntimeError(f"registry B answered {status} without credentials, expected 401")
        self.stop()
        raise RuntimeError(f"registry B did not answer within {timeout}s:\n" + self.log_tail())

    def stop(self, *, kill: bool = False) -> None:
        """End the registry process: SIGKILL at once with ``kill``, else SIGTERM, bounded wait."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_GRACE)

    def log_tail(self, lines: int = 25) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    # ------------------------------------------------------------------ use

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def request(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        timeout: float = 10,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """HTTPS request verified against the generated CA (proxies ignored); never raises on
        4xx/5xx."""
        req = urllib.request.Request(f"https://{self.host}{path}", method=method, data=data)
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        if auth:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            req.add_header("Authorization", "Basic " + token)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self.ssl_context())
        )
        try:
            with opener.open(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers.items()), exc.read()

    def storage_bytes(self) -> int:
        """Bytes stored (blobs, manifests, links): what pushes added is the growth of this."""
        total = 0
        for dirpath, _, files in os.walk(self.data_dir):
            for name in files:
                with contextlib.suppress(OSError):
                    total += (Path(dirpath) / name).stat().st_size
        return total


@contextlib.contextmanager
def running_registry(
    root: Path, *, port: int | None = None, tls_from: Path | None = None, bcrypt_cost: int = 6
) -> Iterator[TLSRegistry]:
    """Registry B in ``root`` for the duration of the block; stopped and its files removed
    afterwards. ``tls_from``: a folder of :func:`make_ca_and_server_cert` to reuse."""
    registry = TLSRegistry(
        root=root, port=port or free_port(), bcrypt_cost=bcrypt_cost, tls_from=tls_from
    )
    registry.prepare()
    try:
        registry.start()
        yield registry
    finally:
        registry.stop()
        shutil.rmtree(root, ignore_errors=True)
