"""A minimal fake of an OpenAI-compatible API on 127.0.0.1: `GET /v1/models` and
`POST /v1/chat/completions`, both needing `Authorization: Bearer <key>` (else HTTP 401 with
OpenAI's error body). The chat answer echoes a fixed reply (no model behind it).

Every request is recorded in `requests` (method, path, whether the key matched)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.base import LocalFakeServer

API_KEY = "sk-fake-openai-0123456789abcdefWXYZ"
MODELS = {"object": "list", "data": [{"id": "gpt-fake-mini", "object": "model", "owned_by": "omc"}]}
UNAUTHORISED = {
    "error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
              "code": "invalid_api_key"}
}  # fmt: skip


@dataclass
class Seen:
    method: str
    path: str
    authorised: bool


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        ok = self.headers.get("Authorization") == f"Bearer {self.fake.key}"
        with self.fake.lock:
            self.fake.requests.append(Seen(method, self.path, ok))
        if not ok:
            return self._send(401, UNAUTHORISED)
        if method == "GET" and self.path == "/v1/models":
            return self._send(200, MODELS)
        if method == "POST" and self.path == "/v1/chat/completions":
            body = json.loads(raw or b"{}")
            reply = {"role": "assistant", "content": "ok"}
            return self._send(200, {
                "id": "chatcmpl-fake", "object": "chat.completion",
                "model": body.get("model", "gpt-fake-mini"),
                "choices": [{"index": 0, "message": reply, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            })  # fmt: skip
        return self._send(404, {"error": {"message": "not found"}})

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")


class FakeOpenAI(LocalFakeServer):
    def __init__(self, key: str = API_KEY) -> None:
        super().__init__(_Handler)
        self.key = key

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"


@contextmanager
def fake_openai(key: str = API_KEY) -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(key).start()
    try:
        yield server
    finally:
        server.stop()
