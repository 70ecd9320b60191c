"""The save-time check of an LLM key never follows a redirect to another origin: httpx
drops `Authorization` there, but not Anthropic's `x-api-key` nor Google's
`x-goog-api-key`, so a user-chosen base_url that redirects would hand the key to a host
the user never named."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from tests.api_support import login
from tests.fakes.openai_server import FakeOpenAI, fake_openai

KEY = "sk-ant-redirect-test-0123456789abcdef"


@pytest.fixture
def elsewhere() -> Iterator[FakeOpenAI]:
    with fake_openai(key=None) as server:
        yield server


def redirector(target: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(307)
            self.send_header("Location", target + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("provider", ["anthropic", "google", "openai"])
def test_a_cross_origin_redirect_is_refused_with_the_key_unsent(
    client: TestClient, elsewhere: FakeOpenAI, provider: str
) -> None:
    target = elsewhere.base_url.rsplit("/v1", 1)[0]
    server = redirector(target)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/v1"
        body = {"kind": f"llm:{provider}", "name": "r", "api_key": KEY, "base_url": base}
        res = client.post("/api/v1/credentials", json=body, headers=login(client, "alice"))
    finally:
        server.shutdown()
        server.server_close()
    assert res.status_code == 422, res.text
    assert KEY not in res.text
    assert elsewhere.requests == []  # nothing reached the other origin
