"""A fake DeFiLlama API on 127.0.0.1 that can misbehave on demand (plus the generic fault server).

`FaultyServer` is a real `ThreadingHTTPServer` (port 0) with a fault queue and a request log;
subclasses answer `route(method, path, query, body) -> (status, json_body)`. Faults are queued
with `server.inject(Fault(...))`, each consumed by the next request whose path starts with
`Fault.path`:

* transport/HTTP faults: `delay` (longer than the client timeout), `reset` (RST, no answer),
  `http` (`status` 500/502/503/404 with a JSON body, optional `retry_after`), `rate_limited`
  (429 + `Retry-After`), `truncated` (valid JSON cut in half), `html` (an HTML error page);
* data faults: `mutate` (`fn(body) -> body` edits the good body: nulls, numbers as strings,
  missing or extra fields, duplicates), `replace` (answer `body` instead).

`FakeDefiLlama` speaks DeFiLlama's real paths with real body shapes:

* `GET /protocols` — the real sample (`tests/data/api/defillama_protocols_sample.json`) plus
  `server.extra_protocols` (e.g. `generate_protocols(5000)`);
* `GET /protocol/{slug}` — `{tvl: [{date, totalLiquidityUSD}], chainTvls: {key: {tvl: [...]}},
  currentChainTvls, mcap, symbol, …}` for slugs in `server.histories` (`protocol_history()`
  builds one: `DAYS` midnight points ending on `LAST_DAY`, plus an intraday point that day;
  chains Ethereum and Arbitrum, with `Ethereum-borrowed`/`borrowed` and
  `Ethereum-staking`/`staking` keys); unknown slugs answer 404;
* `GET /summary/fees/{slug}?dataType=dailyFees|dailyRevenue` — the documentation example
  (`defillama_summary_fees_hyperliquid_docs_example.json`) with a `DAYS`-day chart;
* `GET /v2/historicalChainTvl/{chain}` — `[{date, tvl}]` for `DAYS` days.
"""

from __future__ import annotations

import copy
import json
import random
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tests.fakes.base import LocalFakeServer

DATA = Path(__file__).resolve().parent.parent / "data" / "api"
PROTOCOLS_SAMPLE = DATA / "defillama_protocols_sample.json"
FEES_EXAMPLE = DATA / "defillama_summary_fees_hyperliquid_docs_example.json"

DAYS = 30
LAST_DAY = datetime(2025, 6, 1, tzinfo=UTC)
LAST_DAY_S = int(LAST_DAY.timestamp())
INTRADAY_S = LAST_DAY_S + 14 * 3600  # DeFiLlama's last history point is "now", not midnight

FAULT_KINDS = ("delay", "reset", "http", "rate_limited", "truncated", "html", "mutate", "replace")

HTML_PAGE = (
    "<!doctype html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad Gateway</h1><p>cloudflare</p></body></html>"
)


@dataclass
class Fault:
    """One misbehaviour, consumed by the next request whose path starts with `path`."""

    kind: str
    path: str = "/"
    status: int = 500
    seconds: float = 1.0
    retry_after: str | None = None
    fn: Callable[[Any], Any] | None = None
    body: Any = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r} (known: {', '.join(FAULT_KINDS)})")


@dataclass
class RecordedRequest:
    method: str
    path: str
    body: Any
    fault: str | None = None


class FaultyServer(LocalFakeServer):
    """A local JSON server with a fault queue and a request log; subclasses define `route`."""

    def __init__(self) -> None:
        super().__init__(_Handler)

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        raise NotImplementedError


class _Handler(BaseHTTPRequestHandler):
    fake: FaultyServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        fault = self.fake.take_fault(self.path)
        with self.fake.lock:
            self.fake.requests.append(
                RecordedRequest(method, self.path, body, fault.kind if fault else None)
            )
        try:
            self._answer(method, body, fault)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout) first

    def _answer(self, method: str, body: Any, fault: Fault | None) -> None:
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
            self._send(fault.status, {"message": "Internal server error"}, headers)
            return
        if fault is not None and kind == "rate_limited":
            self._send(
                429, {"message": "Too Many Requests"}, {"Retry-After": fault.retry_after or "1"}
            )
            return
        if fault is not None and kind == "html":
            self._send_raw(fault.status, HTML_PAGE.encode(), "text/html; charset=utf-8")
            return
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        status, answer = self.fake.route(method, unquote(split.path), query, body)
        if fault is not None and kind == "mutate" and fault.fn is not None:
            answer = fault.fn(answer)
        if fault is not None and kind == "replace":
            answer = fault.body
        data = json.dumps(answer).encode()
        if kind == "truncated":
            data = data[: len(data) // 2]
        self._send_raw(status, data, "application/json")

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


# ---------------------------------------------------------------- DeFiLlama data


def sample_protocols() -> list[dict[str, Any]]:
    """The real `/protocols` sample (7 protocols)."""
    return list(json.loads(PROTOCOLS_SAMPLE.read_text()))


def generate_protocols(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """`n` protocols shaped like the real sample (slugs `gen-0` …), with staking, borrowed and
    pool2 chain keys on some; `tvl` is the sum of the plain chain values, like DeFiLlama's."""
    rng = random.Random(seed)
    templates = sample_protocols()
    chains = ["Ethereum", "Arbitrum", "Base", "Solana", "Binance", "Polygon", "Hyperliquid L1"]
    out = []
    for i in range(n):
        item = copy.deepcopy(templates[i % len(templates)])
        item["id"] = str(100_000 + i)
        item["slug"] = f"gen-{i}"
        item["name"] = f"Generated {i}"
        item.pop("parentProtocol", None)
        tvls: dict[str, float] = {}
        for chain in rng.sample(chains, rng.randint(1, 4)):
            tvls[chain] = round(rng.uniform(1e3, 5e9), 6)
        extra: dict[str, float] = {}
        first = next(iter(tvls))
        for category in ("staking", "borrowed", "pool2"):
            if rng.random() < 0.3:
                value = round(rng.uniform(1e3, 1e8), 6)
                extra[f"{first}-{category}"] = value
                extra[category] = value
        item["chainTvls"] = {**tvls, **extra}
        item["chains"] = list(tvls)
        item["tvl"] = sum(tvls.values())
        item["change_1h"] = round(rng.uniform(-5, 5), 6)
        item["change_1d"] = rng.choice([None, round(rng.uniform(-20, 20), 6)])
        item["change_7d"] = round(rng.uniform(-40, 40), 6)
        item["mcap"] = rng.choice([None, round(rng.uniform(1e6, 1e10), 2)])
        out.append(item)
    return out


def series(days: int = DAYS, base: float = 1e9, intraday: bool = True) -> list[tuple[int, float]]:
    """(epoch_s, value) points: `days` midnights ending on LAST_DAY, then an intraday point."""
    points = [
        (LAST_DAY_S - (days - 1 - d) * 86_400, round(base * (1 + d / 100), 6)) for d in range(days)
    ]
    if intraday:
        points.append((INTRADAY_S, round(base * 1.5, 6)))
    return points


def protocol_history(slug: str, days: int = DAYS) -> dict[str, Any]:
    """A `/protocol/{slug}` body: headline, per-chain and category histories, current values."""
    eth, arb, borrowed, staking = 6e8, 4e8, 3e8, 2e8
    chain_tvls = {
        "Ethereum": eth,
        "Arbitrum": arb,
        "Ethereum-borrowed": borrowed,
        "borrowed": borrowed,
        "Ethereum-staking": staking,
        "staking": staking,
    }
    return {
        "id": f"parent#{slug}",
        "name": slug.title(),
        "symbol": "UNI" if slug == "uniswap" else "-",
        "category": "Dexs",
        "chains": ["Ethereum", "Arbitrum"],
        "tvl": [{"date": d, "totalLiquidityUSD": v} for d, v in series(days, eth + arb)],
        "chainTvls": {
            key: {
                "tvl": [{"date": d, "totalLiquidityUSD": v} for d, v in series(days, base)],
                "tokensInUsd": [],
                "tokens": [],
            }
            for key, base in chain_tvls.items()
        },
        "currentChainTvls": chain_tvls,
        "tokensInUsd": [],
        "tokens": [],
        "mcap": 4.2e9,
        "raises": [],
    }


def fees_summary(slug: str, data_type: str, days: int = DAYS) -> dict[str, Any]:
    """The docs example for `/summary/fees/{slug}`, with a `days`-day chart."""
    body = json.loads(FEES_EXAMPLE.read_text())
    scale = 1.0 if data_type == "dailyFees" else 0.4
    body["slug"] = slug
    body["name"] = slug.title()
    chart = [[d, round(v * scale)] for d, v in series(days, 1_472_923, intraday=False)]
    body["totalDataChart"] = chart
    body["totalDataChartBreakdown"] = [[d, {"Ethereum": {slug: v}}] for d, v in chart]
    body["total24h"] = round(body["total24h"] * scale)
    body["total48hto24h"] = round(body["total48hto24h"] * scale)
    body["total7d"] = round(body["total7d"] * scale)
    body["totalAllTime"] = round(body["totalAllTime"] * scale)
    return body


def chain_history(chain: str, days: int = DAYS) -> list[dict[str, Any]]:
    base = 5e10 if chain == "Ethereum" else 3e9
    return [{"date": d, "tvl": v} for d, v in series(days, base, intraday=False)]


class FakeDefiLlama(FaultyServer):
    """DeFiLlama's four endpoints over the data above (edit the attributes to change it)."""

    def __init__(self) -> None:
        super().__init__()
        self.protocols = sample_protocols()
        self.extra_protocols: list[dict[str, Any]] = []
        self.histories: dict[str, dict[str, Any]] = {
            slug: protocol_history(slug) for slug in ("uniswap", "eigenlayer", "hyperliquid")
        }
        self.fees: set[str] = {"uniswap", "eigenlayer", "hyperliquid"}
        self.chains = {"Ethereum", "Arbitrum"}

    def start(self) -> FakeDefiLlama:
        super().start()
        return self

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        with self.lock:
            if parts == ["protocols"]:
                return 200, copy.deepcopy(self.protocols + self.extra_protocols)
            if len(parts) == 2 and parts[0] == "protocol" and parts[1] in self.histories:
                return 200, copy.deepcopy(self.histories[parts[1]])
            if parts[:2] == ["summary", "fees"] and len(parts) == 3 and parts[2] in self.fees:
                return 200, fees_summary(parts[2], query.get("dataType", "dailyFees"))
            chain = parts[2] if len(parts) == 3 else None
            if parts[:2] == ["v2", "historicalChainTvl"] and chain in self.chains:
                return 200, chain_history(parts[2])
        return 404, {"message": f"{path} not found"}


def running_defillama() -> Iterator[FakeDefiLlama]:
    server = FakeDefiLlama().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def defillama_server() -> Iterator[FakeDefiLlama]:
    yield from running_defillama()
