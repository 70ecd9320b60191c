"""A fake CoinSpot public API v2 on 127.0.0.1 that can misbehave on demand.

`FakeCoinSpot` is a real `ThreadingHTTPServer` (port 0, so tests never collide) answering
CoinSpot's real paths with real body shapes:

* `GET /pubapi/v2/latest` — every price; the coins and values are the real 2020 `/latest`
  capture (`tests/data/api/coinspot_v1_latest_2020.json`) plus a non-AUD `btc_usdt` market.
* `GET /pubapi/v2/latest/{coin}` and `/latest/{coin}/{market}` — one `{bid, ask, last}`.
* `GET /pubapi/v2/orders/open/{coin}` — the order book (`buyorders` / `sellorders` of
  `{amount, rate, total, coin, market}`).
* `GET /pubapi/v2/orders/completed/{coin}` — recent trades, the same plus `solddate`
  (UTC, `2020-05-21T13:22:45.000Z` style, as the official v2 page documents).

Unknown coins answer HTTP 200 `{"status": "error", "message": "Coin not found"}`, as CoinSpot
does. Every v2 success carries `"status": "ok", "message": "ok"`.

Faults are queued with `server.inject(Fault(...))`; each one is consumed by the next request
whose path starts with the fault's `path` (default: any request). Data faults (crossed,
missing field, …) can be combined in one response with `Fault(..., more=(Fault(...), ...))`.
`server.prices` is the live price table (edit it for lasting changes). Every request
received is recorded in `server.requests`, faulty or not.
"""

from __future__ import annotations

import copy
import json
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.base import LocalFakeServer

DATA = Path(__file__).resolve().parent.parent / "data" / "api"
LATEST_CAPTURE = DATA / "coinspot_v1_latest_2020.json"

FAULT_KINDS = (
    "delay",  # sleep `seconds` before answering normally (longer than the client timeout)
    "reset",  # close the socket with an RST, no response at all
    "http",  # answer `status` (500/502/503/404/…) with a JSON error body; `retry_after`
    "rate_limited",  # 429 with `Retry-After: retry_after`
    "truncated",  # 200 with the JSON body cut in half (Content-Length matches the cut body)
    "short_body",  # 200 announcing the full length, then closing after half the bytes
    "html",  # an HTML error page with `status` (200 or 502)
    "status_error",  # 200 `{"status": "error", "message": message}`
    "crossed",  # `coin`'s quote has bid > ask
    "non_positive",  # `coin`'s quote has bid 0
    "missing_field",  # `coin`'s quote lacks `field_name`
    "bad_number",  # `coin`'s `field_name` is not a number
    "extra_fields",  # unknown fields at the top level and inside every quote / order
    "no_prices",  # `/latest` body without `prices`
)


@dataclass
class Fault:
    """One misbehaviour, consumed by the next request whose path starts with `path`."""

    kind: str
    path: str = "/"
    status: int = 500
    seconds: float = 1.0
    retry_after: str | None = None
    coin: str = "btc"
    field_name: str = "last"
    message: str = "Coin not found"
    more: tuple[Fault, ...] = ()  # further data faults applied to the same response

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r} (known: {', '.join(FAULT_KINDS)})")


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    at: float
    fault: str | None = None


def real_prices() -> dict[str, dict[str, str]]:
    """The real captured prices, plus a non-AUD market keyed `coin_market`."""
    prices: dict[str, dict[str, str]] = json.loads(LATEST_CAPTURE.read_text())["prices"]
    prices["btc_usdt"] = {"bid": "22712.01", "ask": "22740.5", "last": "22731.02"}
    return prices


def _orders(coin: str, quote: dict[str, str], completed: bool) -> dict[str, list[dict[str, Any]]]:
    """A small, deterministic book (or trade list) around the coin's real quote."""
    from decimal import Decimal

    bid, ask = Decimal(quote["bid"]), Decimal(quote["ask"])
    market = f"{coin.upper()}/AUD"
    buys, sells = [], []
    for i, amount in enumerate(("0.5", "1.25", "2")):
        buy_rate = bid - i * bid / 100
        sell_rate = ask + i * ask / 100
        for side, rate in ((buys, buy_rate), (sells, sell_rate)):
            item: dict[str, Any] = {
                "amount": float(amount),
                "rate": float(rate),
                "total": float(rate * Decimal(amount)),
                "coin": coin.upper(),
                "market": market,
            }
            if completed:
                minute = 10 + i + (0 if side is buys else 30)
                item["solddate"] = f"2020-12-14T03:{minute:02d}:45.000Z"
            side.append(item)
    return {"buyorders": buys, "sellorders": sells}


class FakeCoinSpot(LocalFakeServer):
    """The server plus its data, its fault queue and its request log."""

    def __init__(self) -> None:
        super().__init__(_Handler)
        self.prices = real_prices()

    def record(self, request: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(request)

    # ---------------------------------------------------------------- bodies

    def body_for(self, path: str) -> dict[str, Any] | None:
        """The v2 body for `path`, or None for a path CoinSpot does not have."""
        parts = [p for p in path.split("?", 1)[0].split("/") if p]
        if parts[:2] != ["pubapi", "v2"]:
            return None
        rest = parts[2:]
        with self.lock:
            prices = copy.deepcopy(self.prices)
        ok = {"status": "ok", "message": "ok"}
        if rest == ["latest"]:
            return {**ok, "prices": prices}
        if len(rest) in (2, 3) and rest[0] == "latest":
            key = rest[1].lower() + (f"_{rest[2].lower()}" if len(rest) == 3 else "")
            if rest[2:] == ["aud"]:
                key = rest[1].lower()
            if key not in prices:
                return {"status": "error", "message": "Coin not found"}
            return {**ok, "prices": prices[key]}
        if len(rest) == 3 and rest[0] == "orders" and rest[1] in ("open", "completed"):
            coin = rest[2].lower()
            if coin not in prices:
                return {"status": "error", "message": "Coin not found"}
            return {**ok, **_orders(coin, prices[coin], completed=rest[1] == "completed")}
        return None


def _quotes(body: dict[str, Any], coin: str) -> list[dict[str, Any]]:
    """The quote dicts of `coin` inside a `/latest` or `/latest/{coin}` body."""
    prices = body.get("prices")
    if not isinstance(prices, dict):
        return []
    if "bid" in prices:  # /latest/{coin}
        return [prices]
    return [prices[coin]] if isinstance(prices.get(coin), dict) else []


def apply_data_fault(body: dict[str, Any], fault: Fault) -> dict[str, Any]:
    """Spoil a good body the way `fault` says (data faults only)."""
    if fault.kind == "no_prices":
        body.pop("prices", None)
        return body
    if fault.kind == "extra_fields":
        body["server_time"] = "2020-12-14T03:45:00.000Z"
        body["notice"] = {"maintenance": False}
        prices = body.get("prices")
        if isinstance(prices, dict):
            quotes = [prices] if "bid" in prices else list(prices.values())
            for quote in quotes:
                quote["volume24h"] = "123.4"
                quote["change"] = -1.5
        for side in ("buyorders", "sellorders"):
            for order in body.get(side, []):
                order["fee"] = "0.1"
        return body
    for quote in _quotes(body, fault.coin):
        if fault.kind == "crossed":
            quote["bid"], quote["ask"] = quote["ask"], quote["bid"]
            if quote["bid"] == quote["ask"]:
                quote["bid"] = str(float(quote["ask"]) * 2)
        elif fault.kind == "non_positive":
            quote["bid"] = "0"
        elif fault.kind == "missing_field":
            quote.pop(fault.field_name, None)
        elif fault.kind == "bad_number":
            quote[fault.field_name] = "n/a"
    return body


HTML_PAGE = (
    "<!doctype html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad Gateway</h1><p>cloudflare</p></body></html>"
)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeCoinSpot
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        return

    def do_GET(self) -> None:
        fake = self.fake
        fault = fake.take_fault(self.path)
        fake.record(
            RecordedRequest(
                method="GET",
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                at=time.monotonic(),
                fault=fault.kind if fault else None,
            )
        )
        try:
            self._answer(fault)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout) first

    def _answer(self, fault: Fault | None) -> None:
        kind = fault.kind if fault else None
        if fault is not None and kind == "delay":
            time.sleep(fault.seconds)
        if fault is not None and kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if fault is not None and kind == "http":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._send(fault.status, {"status": "error", "message": "server error"}, headers)
            return
        if fault is not None and kind == "rate_limited":
            headers = {"Retry-After": fault.retry_after or "1"}
            self._send(429, {"status": "error", "message": "Too many requests"}, headers)
            return
        if fault is not None and kind == "html":
            self._send_raw(fault.status, HTML_PAGE.encode(), "text/html; charset=utf-8")
            return
        if fault is not None and kind == "status_error":
            self._send(200, {"status": "error", "message": fault.message})
            return
        body = self.fake.body_for(self.path)
        if body is None:
            self._send(404, {"status": "error", "message": "Not found"})
            return
        if fault is not None:
            for spoil in (fault, *fault.more):
                body = apply_data_fault(body, spoil)
        data = json.dumps(body).encode()
        if kind == "truncated":
            self._send_raw(200, data[: len(data) // 2], "application/json")
            return
        if kind == "short_body":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self._send_raw(200, data, "application/json")

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(body).encode(), "application/json", headers)

    def _send_raw(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def running_coinspot() -> Iterator[FakeCoinSpot]:
    """Start a fake CoinSpot, yield it, stop it (use as a fixture body)."""
    server = FakeCoinSpot().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def coinspot_server() -> Iterator[FakeCoinSpot]:
    """A fresh fake CoinSpot per test."""
    yield from running_coinspot()
