"""Serve the API on port 8080 (python -m llm_api)."""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tokenizers.pre_tokenizers import Whitespace

PRE_TOKENIZER = Whitespace()
MAX_BODY = 64 * 1024


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._reply(200, {"status": "ok"})
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.path != "/tokens" or not 0 < length <= MAX_BODY:
            self._reply(400, {"error": "POST /tokens with a text body up to 64 KiB"})
            return
        text = self.rfile.read(length).decode("utf-8", "replace")
        self._reply(200, {"tokens": [token for token, _ in PRE_TOKENIZER.pre_tokenize_str(text)]})

    def _reply(self, status: int, document: dict[str, object]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
