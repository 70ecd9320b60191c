"""Fake news feeds on 127.0.0.1, plus the fault-queue server the Human-ledger fakes share.

`FakeServer` is a real `ThreadingHTTPServer` (port 0) with CoinSpot-fake-style faults, each
consumed by the next request whose path starts with `Fault.path`:
`delay` (longer than the client timeout), `reset` (TCP RST), `http` (`status`, optional
`retry_after`), `rate_limited` (429 + Retry-After), `truncated` (200, body cut in half),
`html` (an HTML error page with `status`), and `mutate` (the normal JSON body passed through
`fault.mutate` first: nulls, numbers as strings, missing or extra fields, …).

`FakeFeeds` serves `GET /{name}/rss`: `cointelegraph` is the real captured Cointelegraph
RSS 2.0 feed, `coindesk` a generated RSS 2.0 feed (one entry repeated, one re-titled copy of a
Cointelegraph story, one without a date), `decrypt` a generated Atom feed.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.base import LocalFakeServer

DATA = Path(__file__).resolve().parent.parent / "data" / "api"

HTML_PAGE = (
    "<!doctype html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad Gateway</h1><p>cloudflare</p></body></html>"
)
KINDS = ("delay", "reset", "http", "rate_limited", "truncated", "html", "mutate")


@dataclass
class Fault:
    kind: str
    path: str = "/"
    status: int = 500
    seconds: float = 1.0
    retry_after: str | None = None
    mutate: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault {self.kind!r}")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    fault: str | None = None


@dataclass
class Answer:
    status: int
    body: Any  # bytes are sent as they are; anything else as JSON
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer(LocalFakeServer):
    """Base: the HTTP server, the fault queue and the request log. Subclasses `route()`."""

    def __init__(self) -> None:
        super().__init__(_Handler)

    def pending(self) -> list[Fault]:
        return self.pending_faults()

    def route(self, request: Request) -> Answer:  # pragma: no cover - overridden
        return Answer(404, {"error": "not found"})


class _Handler(BaseHTTPRequestHandler):
    fake: FakeServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate small writes

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        fault = self.fake.take_fault(parts.path)
        request = Request(
            method,
            parts.path,
            dict(parse_qsl(parts.query, keep_blank_values=True)),
            {k.lower(): v for k, v in self.headers.items()},
            body,
            fault.kind if fault else None,
        )
        with self.fake.lock:
            self.fake.requests.append(request)
        try:
            self._answer(request, fault)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _answer(self, request: Request, fault: Fault | None) -> None:
        kind = fault.kind if fault else None
        if fault and kind == "delay":
            time.sleep(fault.seconds)
        if fault and kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if fault and kind == "http":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._send(
                Answer(
                    fault.status,
                    {"message": "server error", "error": fault.status},
                    headers=headers,
                )
            )
            return
        if fault and kind == "rate_limited":
            headers = {"Retry-After": fault.retry_after or "0"}
            self._send(Answer(429, {"message": "Too Many Requests", "error": 429}, headers=headers))
            return
        if fault and kind == "html":
            self._send(Answer(fault.status, HTML_PAGE.encode(), "text/html; charset=utf-8"))
            return
        answer = self.fake.route(request)
        if fault and kind == "mutate" and fault.mutate and not isinstance(answer.body, bytes):
            answer.body = fault.mutate(answer.body)
        if kind == "truncated":
            data = (
                answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
            )
            answer.body = data[: len(data) // 2]
        self._send(answer)

    def _send(self, answer: Answer) -> None:
        data = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def running(server: FakeServer) -> Iterator[Any]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------- the feeds

COINTELEGRAPH = (DATA / "cointelegraph_rss.xml").read_bytes()

# A real Cointelegraph story, re-titled slightly by another outlet (same story, new URL).
SHARED_STORY_TITLE = "Justin Sun says Tron’s post-quantum cryptography has gone live on testnet"


def coindesk_rss() -> bytes:
    items = [
        (
            "cd-1",
            "Bitcoin Surges Past $70,000 as ETF Inflows Hit Record",
            "https://www.coindesk.com/markets/2026/10/10/bitcoin-surges-past-70000/?utm_source=rss",
            "Sat, 10 Oct 2026 11:05:00 +0000",
        ),
        (
            "cd-2",
            "Justin Sun Says Tron's Post-Quantum Cryptography Has Gone Live on Testnet",
            "https://www.coindesk.com/tech/2026/10/10/tron-post-quantum-testnet/",
            "Sat, 10 Oct 2026 12:02:00 +0000",
        ),
        (
            "cd-3",
            "Solana Network Suffers Outage as Validators Halt Blocks",
            "https://www.coindesk.com/tech/2026/10/10/solana-outage/",
            "",
        ),
        (
            "cd-1",
            "Bitcoin Surges Past $70,000 as ETF Inflows Hit Record",
            "https://www.coindesk.com/markets/2026/10/10/bitcoin-surges-past-70000/?utm_source=rss",
            "Sat, 10 Oct 2026 11:05:00 +0000",
        ),
        ("cd-4", "", "https://www.coindesk.com/untitled/", "Sat, 10 Oct 2026 09:00:00 +0000"),
    ]
    body = []
    for guid, title, link, date in items:
        date_xml = f"<pubDate>{date}</pubDate>" if date else ""
        body.append(
            f"<item><title><![CDATA[{title}]]></title><link>{link}</link>"
            f'<guid isPermaLink="false">{guid}</guid>{date_xml}'
            f"<description><![CDATA[<p>{title}.</p>]]></description>"
            f"<category>Markets</category><extra:field xmlns:extra='urn:x'>1</extra:field></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        "<title>CoinDesk</title><link>https://www.coindesk.com</link><description>News</description>"
        + "".join(body)
        + "</channel></rss>"
    ).encode()


def decrypt_atom() -> bytes:
    entries = [
        (
            "tag:decrypt.co,2026:1",
            "Ethereum Price Plunges After Major Exchange Hack",
            "2026-10-10T10:15:00Z",
        ),
        (
            "tag:decrypt.co,2026:2",
            "Dogecoin Jumps 15% After Elon Musk Tweet",
            "2026-10-10T12:45:00Z",
        ),
    ]
    body = "".join(
        f"<entry><id>{eid}</id><title>{title}</title>"
        f'<link rel="alternate" href="https://decrypt.co/{i}/story"/>'
        f"<updated>{when}</updated><published>{when}</published>"
        f"<summary>{title}</summary><author><name>Decrypt</name></author></entry>"
        for i, (eid, title, when) in enumerate(entries)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Decrypt</title><id>https://decrypt.co/</id><updated>2026-10-10T12:45:00Z</updated>"
        + body
        + "</feed>"
    ).encode()


class FakeFeeds(FakeServer):
    """`/cointelegraph/rss` (real), `/coindesk/rss` (RSS 2.0), `/decrypt/rss` (Atom)."""

    def __init__(self) -> None:
        super().__init__()
        self.feeds: dict[str, tuple[bytes, str]] = {
            "cointelegraph": (COINTELEGRAPH, "application/rss+xml; charset=utf-8"),
            "coindesk": (coindesk_rss(), "application/rss+xml; charset=utf-8"),
            "decrypt": (decrypt_atom(), "application/atom+xml; charset=utf-8"),
        }

    def feed_url(self, name: str) -> str:
        return f"{self.url}/{name}/rss"

    def route(self, request: Request) -> Answer:
        name = request.path.strip("/").split("/")[0]
        if name in self.feeds and request.path.rstrip("/").endswith("/rss"):
            body, content_type = self.feeds[name]
            return Answer(200, body, content_type)
        return Answer(404, HTML_PAGE.encode(), "text/html")
