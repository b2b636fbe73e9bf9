"""Registry A: the authenticated loopback registry that ``scripts/services.sh`` runs."""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

REGISTRY_USER = "imagefactory"
CATALOG_PAGES = 100  # of 1000 repositories each


@dataclass(frozen=True)
class Registry:
    """The authenticated loopback registry. ``password`` must never be printed or logged."""

    host: str  # "127.0.0.1:5000"
    user: str
    password: str

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    def request(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        password: str | None = None,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        timeout: float = 10,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """HTTP request to the registry (loopback only, proxies ignored); returns status,
        headers and body without raising on 4xx/5xx."""
        req = urllib.request.Request(self.base_url + path, method=method, data=data)
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        if auth:
            token = f"{self.user}:{password if password is not None else self.password}"
            req.add_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode())
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers.items()), exc.read()

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Best-effort clean-up of a pushed manifest (the registry has deletes enabled)."""
        self.request("DELETE", f"/v2/{repository}/manifests/{digest}")


def registry_cleanup(registry: Registry, prefix: str) -> None:
    """Best effort: delete every manifest in the repositories under ``prefix/``."""
    accept = (  # indexes too: an image built per platform is tagged with one
        "application/vnd.docker.distribution.manifest.v2+json, "
        "application/vnd.oci.image.manifest.v1+json, "
        "application/vnd.oci.image.index.v1+json, "
        "application/vnd.docker.distribution.manifest.list.v2+json"
    )
    try:
        repositories: list[str] = []
        page: str | None = "/v2/_catalog?n=1000"
        for _ in range(CATALOG_PAGES):  # bounded: a registry's Link header could loop
            if page is None:
                break
            status, headers, body = registry.request("GET", page, timeout=10)
            if status != 200:
                return
            repositories += [
                r for r in json.loads(body)["repositories"] if r.startswith(prefix + "/")
            ]
            link = {k.lower(): v for k, v in headers.items()}.get("link", "")
            match = re.match(r"<([^>]+)>", link)
            page = match.group(1) if match else None
        for repository in repositories:
            status, _, body = registry.request("GET", f"/v2/{repository}/tags/list", timeout=10)
            tags = (json.loads(body).get("tags") or []) if status == 200 else []
            digests = set()
            for tag in tags:
                status, headers, _ = registry.request(
                    "HEAD", f"/v2/{repository}/manifests/{tag}", headers={"Accept": accept}
                )
                digest = {k.lower(): v for k, v in headers.items()}.get("docker-content-digest")
                if status == 200 and digest:
                    digests.add(digest)
            for digest in digests:
                registry.delete_manifest(repository, digest)
    except (OSError, ValueError, KeyError):
        pass
