"""A local HTTP server speaking the slice of Binance's spot REST API that ccxt's backfill uses.

Endpoints (found by running ccxt 4.5 against this server and logging its requests):

* `GET /api/v3/exchangeInfo` — one spot market, BTCUSDT, in Binance's real response shape.
* `GET /api/v3/klines?symbol=&interval=&startTime=&endTime=&limit=` — Binance's semantics:
  candles whose open time is in [startTime, endTime], oldest first, at most `limit` (default
  500, max 1000); without startTime, the latest `limit` candles. Rows are real kline arrays
  (`[openTime, "open", "high", "low", "close", "volume", closeTime, "quoteVolume", trades,
  "takerBase", "takerQuote", "0"]`) built from `omc/demo/data/candles/BTC_USDT-5m.csv`.
* `GET /api/v3/ping`, `GET /api/v3/time`.

Test knobs: `fail` (queue of (status, headers) answers given to the next klines requests,
e.g. a 429 with Retry-After or a 503), `block_on_klines` (the Nth klines request blocks until
`release()`; `blocked` is set when it arrives) and `requests` (every path+query served).
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

CANDLES = Path(__file__).resolve().parents[2] / "omc" / "demo" / "data" / "candles"
BTC_USDT_CSV = CANDLES / "BTC_USDT-5m.csv"
INTERVAL_MS = {"1m": 60_000, "5m": 300_000, "1h": 3_600_000}

EXCHANGE_INFO: dict[str, Any] = {
    "timezone": "UTC",
    "serverTime": 1675977600000,
    "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
    ],
    "exchangeFilters": [],
    "symbols": [
        {
            "symbol": "BTCUSDT",
            "status": "TRADING",
            "baseAsset": "BTC",
            "baseAssetPrecision": 8,
            "quoteAsset": "USDT",
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT_LIMIT",
            ],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": True,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": "0.01000000",
                    "maxPrice": "1000000.00000000",
                    "tickSize": "0.01000000",
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": "0.00001000",
                    "maxQty": "9000.00000000",
                    "stepSize": "0.00001000",
                },
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": "0.00000000",
                    "maxQty": "115.57000000",
                    "stepSize": "0.00000000",
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": "5.00000000",
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
            ],
            "permissions": [],
            "permissionSets": [["SPOT", "MARGIN"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": [
                "EXPIRE_TAKER",
                "EXPIRE_MAKER",
                "EXPIRE_BOTH",
            ],
        }
    ],
}


def _binance_number(text: str) -> str:
    """Binance prints every price and size with 8 decimals ('16727.30000000')."""
    return f"{Decimal(text):.8f}"


def load_klines(path: Path = BTC_USDT_CSV, interval_ms: int = 300_000) -> list[list[Any]]:
    """Kline arrays, in Binance's layout, from a `timestamp,open,high,low,close,volume` CSV."""
    klines: list[list[Any]] = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            ts = datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00"))
            open_ms = int(ts.timestamp() * 1000)
            volume = Decimal(row["volume"])
            close = Decimal(row["close"])
            klines.append(
                [
                    open_ms,
                    _binance_number(row["open"]),
                    _binance_number(row["high"]),
                    _binance_number(row["low"]),
                    _binance_number(row["close"]),
                    _binance_number(row["volume"]),
                    open_ms + interval_ms - 1,
                    f"{volume * close:.8f}",
                    1000,
                    _binance_number(str(volume / 2)),
                    f"{volume * close / 2:.8f}",
                    "0",
                ]
            )
    return klines


class FakeBinance:
    """The server's state: data, failure plan, blocking, and the request log."""

    def __init__(self, klines: list[list[Any]] | None = None) -> None:
        self.klines = klines if klines is not None else load_klines()
        self.requests: list[str] = []
        self.klines_requests: list[dict[str, str]] = []
        self.fail: list[tuple[int, dict[str, str]]] = []
        self.block_on_klines: int | None = None
        self.blocked = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeBinance:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def release(self) -> None:
        self._release.set()

    def klines_between(self, start_ms: int, end_ms: int) -> list[list[Any]]:
        """Every kline whose open time is in [start_ms, end_ms)."""
        return [k for k in self.klines if start_ms <= k[0] < end_ms]

    # ------------------------------------------------------------------ serving

    def _klines(self, query: dict[str, str]) -> tuple[int, Any]:
        if query.get("symbol") != "BTCUSDT":
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        interval = query.get("interval", "")
        if interval not in INTERVAL_MS:
            return 400, {"code": -1120, "msg": "Invalid interval."}
        limit = int(query.get("limit", "500"))
        if not 1 <= limit <= 1000:
            return 400, {"code": -1100, "msg": "Illegal characters found in parameter 'limit'."}
        start = int(query["startTime"]) if "startTime" in query else None
        end = int(query["endTime"]) if "endTime" in query else None
        rows = [
            k
            for k in self.klines
            if (start is None or k[0] >= start) and (end is None or k[0] <= end)
        ]
        return 200, rows[:limit] if start is not None else rows[-limit:]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json;charset=UTF-8")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send_text(self, status: int, text: str) -> None:
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                with fake._lock:
                    fake.requests.append(self.path)
                if parts.path == "/api/v3/ping":
                    self._send(200, {})
                elif parts.path == "/api/v3/time":
                    self._send(200, {"serverTime": EXCHANGE_INFO["serverTime"]})
                elif parts.path == "/api/v3/exchangeInfo":
                    self._send(200, EXCHANGE_INFO)
                elif parts.path == "/api/v3/klines":
                    with fake._lock:
                        fake.klines_requests.append(query)
                        number = len(fake.klines_requests)
                        failure = fake.fail.pop(0) if fake.fail else None
                    if fake.block_on_klines is not None and number == fake.block_on_klines:
                        fake.blocked.set()
                        fake._release.wait(30)
                        return
                    if failure is not None:
                        status, headers = failure
                        if status == 429:
                            body: Any = {"code": -1003, "msg": "Too many requests."}
                            self._send(status, body, headers)
                        else:
                            self._send_text(status, f"<html><h1>{status} Error</h1></html>")
                        return
                    status, body = fake._klines(query)
                    self._send(status, body)
                else:
                    self._send(404, {"code": -1, "msg": f"no route {parts.path}"})

        return Handler


@contextmanager
def fake_binance(klines: list[list[Any]] | None = None) -> Iterator[FakeBinance]:
    server = FakeBinance(klines).start()
    try:
        yield server
    finally:
        server.stop()
