"""A local HTTP fake of the GitLab REST API v4 endpoints python-gitlab uses for merge requests.

Endpoints (as GitLab answers them):

* ``GET  /api/v4/projects/:id``  — ``:id`` a number or the URL-encoded ``namespace/path``
* ``GET  /api/v4/projects/:id/repository/branches/:branch`` — from ``branches()``, e.g. the
  refs of a bare git repository on disk
* ``GET  /api/v4/projects/:id/merge_requests`` — filters ``state``, ``source_branch``,
  ``target_branch``
* ``POST /api/v4/projects/:id/merge_requests`` — ``source_branch``, ``target_branch`` and
  ``title`` required (400 otherwise); 409 when an open MR from that source branch exists
* ``GET|PUT /api/v4/projects/:id/merge_requests/:iid``
* ``GET  /api/v4/projects/:id/repository/files/:path/raw?ref=B`` — the file's bytes (text/plain)
  from ``repository`` (branch → path → text); 404 for a missing branch or file
* ``POST /api/v4/projects/:id/repository/commits`` — ``branch``, ``commit_message``,
  ``actions`` (create, update, delete: 400 for a file that is there / not there), optional
  ``start_branch`` (a new branch starts there) and ``force`` (the branch is reset to
  ``start_branch`` first); applied to ``repository``, recorded in ``commits``

Every request needs the ``PRIVATE-TOKEN`` header (401 otherwise). Each request is recorded
(method, path, query, JSON body, headers) so tests assert what python-gitlab actually sent.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.http_server import serving


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class FakeGitlab:
    token: str
    project_path: str
    branches: Callable[[], set[str]] = lambda: {"main"}
    project_id: int = 42
    requests: list[Recorded] = field(default_factory=list)
    merge_requests: list[dict[str, Any]] = field(default_factory=list)
    repository: dict[str, dict[str, str]] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def project(self) -> dict[str, Any]:
        return {
            "id": self.project_id,
            "path_with_namespace": self.project_path,
            "default_branch": "main",
            "web_url": f"{self.url}/{self.project_path}",
        }

    def calls(self, method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if method is None or r.method == method]


def _handler(fake: FakeGitlab) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def _serve(self, method: str) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parsed.query))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: Any = None
            if raw:
                kind = self.headers.get("Content-Type", "")
                body = (
                    json.loads(raw)
                    if "json" in kind
                    else dict(urllib.parse.parse_qsl(raw.decode()))
                )
            with fake.lock:
                fake.requests.append(
                    Recorded(method, parsed.path, query, body, dict(self.headers.items()))
                )
                status, document = self._route(method, parsed.path, query, body or {})
            raw_file = isinstance(document, bytes)
            data = document if isinstance(document, bytes) else json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if raw_file else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(
            self, method: str, path: str, query: dict[str, str], body: dict[str, Any]
        ) -> tuple[int, Any]:
            if self.headers.get("PRIVATE-TOKEN") != fake.token:
                return 401, {"message": "401 Unauthorized"}
            prefix = "/api/v4/projects/"
            if not path.startswith(prefix):
                return 404, {"error": "404 Not Found"}
            rest = path[len(prefix) :]
            ident, _, tail = rest.partition("/")
            ident = urllib.parse.unquote(ident)
            if ident not in (str(fake.project_id), fake.project_path):
                return 404, {"message": "404 Project Not Found"}
            if not tail and method == "GET":
                return 200, fake.project()
            if tail.startswith("repository/branches/") and method == "GET":
                name = urllib.parse.unquote(tail[len("repository/branches/") :])
                if name in fake.branches():
                    return 200, {"name": name, "merged": False, "protected": False}
                return 404, {"message": "404 Branch Not Found"}
            if tail.startswith("repository/files/") and tail.endswith("/raw") and method == "GET":
                name = urllib.parse.unquote(tail[len("repository/files/") : -len("/raw")])
                text = fake.repository.get(query.get("ref", ""), {}).get(name)
                if text is None:
                    return 404, {"message": "404 File Not Found"}
                return 200, text.encode()
            if tail == "repository/commits" and method == "POST":
                return self._commit(body)
            if tail == "merge_requests" and method == "GET":
                found = [
                    mr
                    for mr in fake.merge_requests
                    if all(
                        query.get(key) in (None, mr[key])
                        for key in ("state", "source_branch", "target_branch")
                    )
                ]
                return 200, found
            if tail == "merge_requests" and method == "POST":
                return self._create(body)
            if tail.startswith("merge_requests/"):
                iid = tail.split("/", 1)[1]
                mr = next((m for m in fake.merge_requests if str(m["iid"]) == iid), None)
                if mr is None:
                    return 404, {"message": "404 Not found"}
                if method == "GET":
                    return 200, mr
                if method == "PUT":
                    for key in ("title", "description", "target_branch", "state_event"):
                        if key in body:
                            mr[key] = body[key]
                    if body.get("state_event") == "close":
                        mr["state"] = "closed"
                    return 200, mr
            return 405, {"error": "405 Method Not Allowed"}

        def _commit(self, body: dict[str, Any]) -> tuple[int, Any]:
            branch, start = body.get("branch"), body.get("start_branch")
            if not branch or not body.get("commit_message") or not body.get("actions"):
                return 400, {"error": "branch, commit_message, actions are missing"}
            if start is not None and start not in fake.repository:
                return 400, {"message": "Invalid start branch"}
            if branch in fake.repository and not (body.get("force") and start):
                files = dict(fake.repository[branch])
            elif start is not None:
                files = dict(fake.repository[start])
            else:
                return 400, {
                    "message": "You can only create or edit files when you are on a branch"
                }
            for action in body["actions"]:
                path, kind = action["file_path"], action["action"]
                if kind == "create" and path in files:
                    return 400, {"message": "A file with this name already exists"}
                if kind in ("update", "delete") and path not in files:
                    return 400, {"message": "A file with this name doesn't exist"}
                if kind == "delete":
                    del files[path]
                else:
                    files[path] = action["content"]
            fake.repository[branch] = files
            sha = f"{len(fake.commits) + 1:040x}"
            commit = {
                "id": sha,
                "short_id": sha[:8],
                "title": body["commit_message"],
                "message": body["commit_message"],
                "branch": branch,
            }
            fake.commits.append(commit)
            return 201, commit

        def _create(self, body: dict[str, Any]) -> tuple[int, Any]:
            missing = [k for k in ("source_branch", "target_branch", "title") if not body.get(k)]
            if missing:
                return 400, {"error": f"{', '.join(missing)} is missing"}
            if body["source_branch"] not in fake.branches():
                return 400, {"message": {"source_branch": ["Invalid source branch"]}}
            if body["target_branch"] not in fake.branches():
                return 400, {"message": {"target_branch": ["Invalid target branch"]}}
            duplicate = next(
                (
                    m
                    for m in fake.merge_requests
                    if m["state"] == "opened"
                    and m["source_branch"] == body["source_branch"]
                    and m["target_branch"] == body["target_branch"]
                ),
                None,
            )
            if duplicate is not None:
                return 409, {
                    "message": [
                        "Another open merge request already exists for this source branch: "
                        f"!{duplicate['iid']}"
                    ]
                }
            iid = len(fake.merge_requests) + 1
            mr = {
                "id": 1000 + iid,
                "iid": iid,
                "project_id": fake.project_id,
                "state": "opened",
                "title": body["title"],
                "description": body.get("description", ""),
                "source_branch": body["source_branch"],
                "target_branch": body["target_branch"],
                "web_url": f"{fake.url}/{fake.project_path}/-/merge_requests/{iid}",
            }
            fake.merge_requests.append(mr)
            return 201, mr

    return Handler


@contextmanager
def serve(fake: FakeGitlab) -> Iterator[FakeGitlab]:
    """Serve ``fake`` on 127.0.0.1 (a free port) in a thread; ``fake.url`` says where."""
    with serving(_handler(fake)) as address:
        fake.url = f"http://{address}"
        yield fake
