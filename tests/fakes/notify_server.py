"""Local fake HTTP servers with a fault queue, and a fake notification endpoint.

`FakeHttpServer` is the shared base of the SEC, Zendesk and notifier fakes: a real
`ThreadingHTTPServer` on 127.0.0.1 (port 0) that records every request and answers through
`route(request) -> Reply`. Faults are queued with `inject(Fault(kind, path=...))`; each is
consumed by the next request whose path starts with `path`:

* `delay` (sleep `seconds`, then answer), `reset` (RST, no answer), `http` (`status` with a
  JSON error body and optional `Retry-After`), `rate_limited` (429 + Retry-After),
  `truncated` (the real body cut in half), `html` (an HTML error page with `status`),
  `xml404` (the SEC's S3-style 404 XML);
* any other kind is a data fault handed to the subclass's `spoil(body, fault)`.

`FakeNotify` speaks three real notification APIs on one port:

* a generic webhook: `POST /hook` (any JSON);
* a Slack incoming webhook: `POST /services/T…/B…/…` — JSON with `text` → `200 ok` (plain
  text), otherwise `400 invalid_payload`; a wrong path → `404 no_service`;
* the Telegram Bot API: `POST /bot<token>/sendMessage` — a wrong token → 401
  `{"ok": false, "error_code": 401, "description": "Unauthorized"}`, no `chat_id` or `text`
  → 400, else `{"ok": true, "result": {message}}`.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tests.fakes.base import LocalFakeServer

HTML_PAGE = (
    "<!doctype html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad Gateway</h1><p>cloudflare</p></body></html>"
)
SEC_404_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
    "<Message>The specified key does not exist.</Message></Error>"
)


@dataclass
class Fault:
    """One misbehaviour, consumed by the next request whose path starts with `path`."""

    kind: str
    path: str = "/"
    status: int = 500
    seconds: float = 1.0
    retry_after: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    fault: str | None = None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able, or bytes / str sent as-is
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class FakeHttpServer(LocalFakeServer):
    """Base: the server, its fault queue and its request log."""

    def __init__(self) -> None:
        super().__init__(_Handler)

    def route(self, request: Request) -> Reply:  # pragma: no cover - subclasses answer
        return Reply(404, {"error": "not found"})

    def spoil(self, body: Any, fault: Fault) -> Any:
        """Apply a data fault to a good JSON body (subclasses)."""
        return body


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHttpServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        fake = self.fake
        fault = fake.take_fault(self.path)
        request = Request(
            method=method,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=data,
            at=time.monotonic(),
            fault=fault.kind if fault else None,
        )
        with fake.lock:
            fake.requests.append(request)
        try:
            self._answer(request, fault)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _answer(self, request: Request, fault: Fault | None) -> None:
        kind = fault.kind if fault else None
        if fault is not None and kind == "delay":
            time.sleep(fault.seconds)
        if kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if fault is not None and kind == "http":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._send(Reply(fault.status, {"error": "server error"}, headers=headers))
            return
        if fault is not None and kind == "rate_limited":
            self._send(
                Reply(
                    429,
                    {"error": "Too many requests"},
                    headers={"Retry-After": fault.retry_after or "1"},
                )
            )
            return
        if fault is not None and kind == "html":
            self._send(Reply(fault.status, HTML_PAGE, "text/html; charset=utf-8"))
            return
        if kind == "xml404":
            self._send(Reply(404, SEC_404_XML, "application/xml"))
            return
        reply = self.fake.route(request)
        if fault is not None and kind not in ("delay", "truncated") and reply.status == 200:
            reply.body = self.fake.spoil(reply.body, fault)
        if kind == "truncated" and reply.status == 200:
            data = json.dumps(reply.body).encode()
            reply.body = data[: len(data) // 2]
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        body = reply.body
        if isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        elif body is None:
            data = b""
        else:
            data = json.dumps(body).encode()
        self.send_response(reply.status)
        if reply.status != 304:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if data:
            self.wfile.write(data)


# ------------------------------------------------------------------ notifications

SLACK_PATH = "/services/T0001/B0001/slacksecret0123456789"
TELEGRAM_TOKEN = "123456:ABC-telegramsecret-xyz"


class FakeNotify(FakeHttpServer):
    """Webhook, Slack incoming webhook and Telegram Bot API endpoints."""

    def __init__(self) -> None:
        super().__init__()
        self.webhook: list[Any] = []
        self.slack: list[Any] = []
        self.telegram: list[Any] = []
        self.message_id = 0

    @property
    def slack_url(self) -> str:
        return self.url + SLACK_PATH

    def route(self, request: Request) -> Reply:
        if request.method != "POST":
            return Reply(405, {"error": "method not allowed"})
        json_body = request.headers.get("content-type", "").startswith("application/json")
        if request.path == "/hook":
            if not json_body:
                return Reply(415, {"error": "json only"})
            with self.lock:
                self.webhook.append(request.json())
            return Reply(200, {"received": True})
        if request.path.startswith("/services/"):
            if request.path != SLACK_PATH:
                return Reply(404, "no_service", "text/plain")
            try:
                body = request.json()
            except ValueError:
                return Reply(400, "invalid_payload", "text/plain")
            if not json_body or not isinstance(body, dict) or not body.get("text"):
                return Reply(400, "invalid_payload" if json_body else "no_text", "text/plain")
            with self.lock:
                self.slack.append(body)
            return Reply(200, "ok", "text/plain")
        if request.path.startswith("/bot") and request.path.endswith("/sendMessage"):
            token = request.path[len("/bot") : -len("/sendMessage")]
            if token != TELEGRAM_TOKEN:
                return Reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            try:
                body = request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict) or not body.get("chat_id"):
                return Reply(
                    400,
                    {
                        "ok": False,
                        "error_code": 400,
                        "description": "Bad Request: chat_id is empty",
                    },
                )
            if not body.get("text"):
                return Reply(
                    400,
                    {
                        "ok": False,
                        "error_code": 400,
                        "description": "Bad Request: message text is empty",
                    },
                )
            with self.lock:
                self.message_id += 1
                self.telegram.append(body)
                message = {
                    "message_id": self.message_id,
                    "chat": {"id": body["chat_id"], "type": "private"},
                    "date": int(time.time()),
                    "text": body["text"],
                }
            return Reply(200, {"ok": True, "result": message})
        return Reply(404, {"error": "not found"})


def running(server: FakeHttpServer) -> Iterator[Any]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def notify_server() -> Iterator[FakeNotify]:
    yield from running(FakeNotify())
