"""A misbehaving OpenAI-compatible server on loopback, to prove the LLM client copes with it.

Real endpoints time out, reset connections, rate-limit, fail with 5xx, refuse `response_format`
and answer with garbage. This server does each of those on cue, so the client's retries,
timeouts, fallbacks and limits are tested over real sockets rather than against mocks. It is an
adversary, not a stand-in for an LLM: what it answers is scripted, never generated.

    with AdversaryLLM([status(500), reply("ok")]) as server:
        ...  # point an Endpoint at server.base_url; inspect server.requests afterwards

Each POST /v1/chat/completions consumes the next action of the script, then `default` forever.
A request with `"stream": true` gets its reply as server-sent events, as real servers send it.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Reply:
    """A well-formed chat.completion whose content is `text` (good, garbage or not JSON)."""

    text: str
    prompt_tokens: int = 7
    completion_tokens: int = 3


@dataclass(frozen=True)
class Status:
    """An HTTP status (an error, or a 200 with a body of your own); `body` defaults to an
    OpenAI-style error object."""

    code: int
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hang:
    """Read the request, then answer nothing for `seconds` (cut short when the server stops)."""

    seconds: float = 30.0


@dataclass(frozen=True)
class Reset:
    """Read the request, then close with SO_LINGER 0: the client sees a connection reset."""


@dataclass(frozen=True)
class MalformedHTTP:
    """Answer bytes that are not HTTP."""


@dataclass(frozen=True)
class Delay:
    """Wait, then do `then`: a slow but healthy server."""

    seconds: float
    then: Action = Reply("ok")


@dataclass(frozen=True)
class Trickle:
    """Stream `text` in `pieces` chunks, `gap` seconds apart: a slow server that is alive.
    Asked without streaming, it is silent for the whole time, then answers at once."""

    text: str
    pieces: int
    gap: float


@dataclass(frozen=True)
class StreamCut:
    """Stream the start of `text`, then close the connection mid-answer."""

    text: str


Action = Reply | Status | Hang | Reset | MalformedHTTP | Delay | Trickle | StreamCut
reply, status, hang, reset, malformed_http, delay = Reply, Status, Hang, Reset, MalformedHTTP, Delay
trickle, stream_cut = Trickle, StreamCut


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any]


class AdversaryLLM:
    """The server; a context manager that serves on 127.0.0.1 on a free port."""

    def __init__(
        self,
        script: Iterable[Action] = (),
        default: Action | None = None,
        model: str = "adv",
        respond: Callable[[dict[str, Any]], Action] | None = None,
    ) -> None:
        """`respond`, if given, picks the action from the request body once `script` is spent
        (for protocols whose concurrent requests arrive in no fixed order)."""
        self.script: deque[Action] = deque(script)
        self.default = default or Reply("ok")
        self.respond = respond
        self.model = model
        self.requests: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> AdversaryLLM:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def _next(self, received: Received) -> Action:
        with self._lock:
            self.requests.append(received)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.script:
                return self.script.popleft()
        return self.respond(received.body) if self.respond else self.default

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1


def _handler_for(adversary: AdversaryLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/") != "/v1/models":
                return self._json(404, _error("no such path"))
            model = {"id": adversary.model, "object": "model", "created": 0, "owned_by": "adv"}
            self._json(200, {"object": "list", "data": [model]})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._json(404, _error("no such path"))
            headers = {name.lower(): value for name, value in self.headers.items()}
            received = Received(self.path, headers, json.loads(raw or b"{}"))
            action = adversary._next(received)
            try:
                self._act(action, received.body)
            finally:
                adversary._done()

        def _act(self, action: Action, request: dict[str, Any]) -> None:
            if isinstance(action, Delay):
                adversary._stopping.wait(action.seconds)
                return self._act(action.then, request)
            model = request.get("model", "")
            if isinstance(action, Reply) and request.get("stream"):
                usage = (request.get("stream_options") or {}).get("include_usage", False)
                return self._events(_stream_chunks(action, model, usage))
            if isinstance(action, Reply):
                return self._json(200, _completion(action, model))
            if isinstance(action, Trickle) and not request.get("stream"):
                adversary._stopping.wait(action.gap * action.pieces)  # silent while generating
                return self._json(200, _completion(Reply(action.text), model))
            if isinstance(action, Trickle):
                pieces = _split(action.text, action.pieces)
                return self._events(
                    _stream_chunks(Reply(action.text), model, True, pieces), gap=action.gap
                )
            if isinstance(action, StreamCut):
                chunks = _stream_chunks(Reply(action.text), model, False)
                self._events(chunks[:1], end=False)
                self.close_connection = True
                return self.connection.close()
            if isinstance(action, Status):
                error = _error(HTTPStatus(action.code).phrase)
                body = error if action.body is None else action.body
                return self._json(action.code, body, action.headers)
            self.close_connection = True
            if isinstance(action, Hang):
                adversary._stopping.wait(action.seconds)
            elif isinstance(action, Reset):
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
            elif isinstance(action, MalformedHTTP):
                self.wfile.write(b"\x00\xffSURPRISE not http at all\r\n\r\n")

        def _events(self, chunks: list[dict[str, Any]], gap: float = 0.0, end: bool = True) -> None:
            """Server-sent events in HTTP/1.1 chunked encoding, each `gap` seconds apart."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            events = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks]
            try:
                for number, event in enumerate([*events, "data: [DONE]\n\n"] if end else events):
                    if number and gap:
                        adversary._stopping.wait(gap)
                    data = event.encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                if end:
                    self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):  # the client hung up mid-answer
                self.close_connection = True

        def _json(self, code: int, body: object, headers: dict[str, str] | None = None) -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "adversary_error", "code": None}}


def _completion(action: Reply, model: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": action.text}
    prompt, completion = action.prompt_tokens, action.completion_tokens
    return {
        "id": f"chatcmpl-adv-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _split(text: str, pieces: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, pieces)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _stream_chunks(
    action: Reply, model: str, usage: bool, pieces: list[str] | None = None
) -> list[dict[str, Any]]:
    """A chat.completion.chunk per piece of the text, a last one with finish_reason, and, when
    asked for with stream_options.include_usage, one with the usage and no choices."""
    base = {"id": "chatcmpl-adv", "object": "chat.completion.chunk", "created": 0, "model": model}
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        for piece in (pieces or _split(action.text, 2))
    ]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        prompt, completion = action.prompt_tokens, action.completion_tokens
        counts = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        chunks.append({**base, "choices": [], "usage": counts})
    return chunks
