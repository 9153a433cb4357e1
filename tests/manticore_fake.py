"""A loopback HTTP server that records what the Manticore client sends and answers by rule.

It checks requests, never search quality: anything about retrieval runs against a real
Manticore (LITELONG_MANTICORE_URL).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    content_type: str
    body: str

    def ndjson(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


Answer = tuple[int, Any]
Rule = Callable[[Request], Answer | None]


def default_answer(request: Request) -> Answer:
    if request.path == "/bulk":
        return 200, {"items": [], "errors": False}
    return 200, [{"total": 0, "error": "", "warning": ""}]


@dataclass
class FakeManticore:
    url: str
    requests: list[Request] = field(default_factory=list)
    rule: Rule | None = None

    def bulk_requests(self) -> list[Request]:
        return [request for request in self.requests if request.path == "/bulk"]


@contextmanager
def fake_manticore(rule: Rule | None = None) -> Iterator[FakeManticore]:
    fake = FakeManticore(url="", rule=rule)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                parts.path,
                parse_qs(parts.query),
                self.headers.get("Content-Type") or "",
                self.rfile.read(length).decode(),
            )
            with lock:
                fake.requests.append(request)
            answer = (fake.rule(request) if fake.rule else None) or default_answer(request)
            status, payload = answer
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
