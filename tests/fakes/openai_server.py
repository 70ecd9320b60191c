"""A fake OpenAI-compatible API on 127.0.0.1: scripted chat replies, tool calls, streaming.

`FakeOpenAI(key).start()` (or `with fake_openai() as server:`) serves `GET /v1/models` and
`POST /v1/chat/completions` (the base URL a client is given is `server.base_url`, ending in
`/v1`) in OpenAI's real wire format. Every request needs `Authorization: Bearer <key>` (else
HTTP 401 with OpenAI's error body; `key=None` accepts any). A chat request:

* each request takes the next item of `server.script` (`server.say(...)` appends): a reply
  built with `tool_calls(call(name, args), ...)` or `text(content)` — a `call`'s `args` may
  be a dict (sent as a JSON string, as OpenAI does) or raw text (a malformed call) — or a
  callable `fn(request_body) -> reply` (to answer from what was sent), or a `Fault`:
  `Fault(status=429)` / `Fault(status=500)` answer that status with OpenAI's error body (and
  `Retry-After: 0` on 429), `Fault(delay=5)` sleeps longer than the client's timeout;
* with `"stream": true` the reply goes out as server-sent events (`chat.completion.chunk`
  deltas: the role, content, each tool call's name then its arguments in two pieces, the
  finish reason, a usage chunk when `stream_options.include_usage`, then `data: [DONE]`);
* with an empty script the reply is the text "ok" (a test can never hang on it).

`server.requests` records every request (`method`, `path`, `authorised`, `headers`, `body`);
`server.bodies()` the JSON bodies of the chat calls.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.base import LocalFakeServer

Reply = dict[str, Any]


@dataclass
class Fault:
    status: int | None = None
    delay: float = 0.0
    message: str = "fault"


API_KEY = "sk-fake-openai-0123456789abcdefWXYZ"
MODELS = {"object": "list", "data": [{"id": "gpt-fake-mini", "object": "model", "owned_by": "omc"}]}


@dataclass
class Request:
    method: str
    path: str
    authorised: bool
    headers: dict[str, str]
    body: Any


def call(name: str, args: dict[str, Any] | str, call_id: str | None = None) -> dict[str, Any]:
    """One tool call; `args` a dict (JSON-encoded as OpenAI does) or raw (malformed) text."""
    return {
        "name": name,
        "arguments": args if isinstance(args, str) else json.dumps(args),
        "id": call_id,
    }


def tool_calls(*calls: dict[str, Any]) -> Reply:
    items = [
        {
            "id": c["id"] or f"call_{i}_{c['name']}",
            "type": "function",
            "function": {"name": c["name"], "arguments": c["arguments"]},
        }
        for i, c in enumerate(calls)
    ]
    return {"role": "assistant", "content": None, "tool_calls": items}


def text(content: str) -> Reply:
    return {"role": "assistant", "content": content}


def _usage(body: Any, message: Reply) -> dict[str, int]:
    prompt = max(1, len(json.dumps(body.get("messages", []))) // 4)
    completion = max(1, len(json.dumps(message)) // 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str, code: str | None) -> None:
        headers = {"Retry-After": "0"} if status == 429 else {}
        self._send(
            status,
            {"error": {"message": message, "type": kind, "code": code, "param": None}},
            headers,
        )

    def do_GET(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer("GET")

    def do_POST(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
            self._answer("POST")

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        fake = self.fake
        ok = fake.key is None or self.headers.get("Authorization") == f"Bearer {fake.key}"
        with fake.lock:
            fake.requests.append(Request(method, self.path, ok, dict(self.headers.items()), body))
        if not ok:
            self._error(
                401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
            return
        if method == "GET" and self.path == "/v1/models":
            self._send(200, MODELS)
            return
        if method != "POST" or not self.path.rstrip("/").endswith("/chat/completions"):
            self._error(404, f"unknown path {self.path}", "invalid_request_error", None)
            return
        item = fake.next_item()
        if isinstance(item, Fault):
            if item.delay:
                time.sleep(item.delay)
            if item.status is None:
                item = fake.next_item()
            else:
                code = "rate_limit_exceeded" if item.status == 429 else None
                self._error(item.status, item.message, "server_error", code)
                return
        if item is None:
            item = text("ok")
        message = item(body) if callable(item) else item
        if isinstance(body, dict) and body.get("stream"):
            self._stream(body, message)
            return
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        self._send(
            200,
            {
                "id": f"chatcmpl-{len(fake.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [
                    {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
                ],
                "usage": _usage(body, message),
            },
        )

    def _stream(self, body: dict[str, Any], message: Reply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        base = {
            "id": f"chatcmpl-{len(self.fake.requests)}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
        }

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> None:
            payload = {
                **base,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
            self.wfile.flush()

        chunk({"role": "assistant", "content": ""})
        if message.get("content"):
            content = message["content"]
            half = len(content) // 2
            for piece in (content[:half], content[half:]):
                chunk({"content": piece})
        for i, tc in enumerate(message.get("tool_calls") or []):
            fn = tc["function"]
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": i,
                            "id": tc["id"],
                            "type": "function",
                            "function": {"name": fn["name"], "arguments": ""},
                        }
                    ]
                }
            )
            half = len(fn["arguments"]) // 2
            for piece in (fn["arguments"][:half], fn["arguments"][half:]):
                chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
        chunk({}, "tool_calls" if message.get("tool_calls") else "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {**base, "choices": [], "usage": _usage(body, message)}
            self.wfile.write(f"data: {json.dumps(usage)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


class FakeOpenAI(LocalFakeServer):
    def __init__(self, key: str | None = API_KEY) -> None:
        super().__init__(_Handler)
        self.key = key
        self.script: list[Reply | Fault | Callable[[Any], Reply]] = []

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def say(self, *items: Reply | Fault | Callable[[Any], Reply]) -> FakeOpenAI:
        with self.lock:
            self.script.extend(items)
        return self

    def next_item(self) -> Reply | Fault | Callable[[Any], Reply] | None:
        with self.lock:
            return self.script.pop(0) if self.script else None

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.body for r in self.requests if r.path.endswith("/chat/completions")]


@contextmanager
def fake_openai(key: str | None = API_KEY) -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(key).start()
    try:
        yield server
    finally:
        server.stop()
