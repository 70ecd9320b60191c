"""A fake CoinSpot private API v2 on 127.0.0.1 that checks signatures and nonces, keeps an
account, and misbehaves on demand.

`FakeCoinSpotPrivate` is a real `ThreadingHTTPServer` (port 0) that answers
`POST /api/v2/...` the way CoinSpot does:

* **Authentication**: header `key` must be the configured key (missing: HTTP 401
  `no key`; unknown: 401 `invalid key`); header `sign` must be the hex HMAC-SHA512 of the raw
  body bytes keyed with the secret (else 401 `invalid sign`). The body must be a JSON object
  with an integer `nonce` greater than the last one this key used, else HTTP 200
  `{"status": "error", "message": "invalid nonce"}` — so a replay of the exact same signed
  bytes is refused.
* **Account state**: balances (upper-case coin -> Decimal, `AUD` included; a balance
  includes what open orders lock, `available` does not), order-book orders (`/my/buy`,
  `/my/sell`, partial fills through `server.fill(id, qty)`,
  cancel), instant trades (`/my/buy/now`, `/my/sell/now` at the ask/bid), a history of every
  execution (`/ro/my/orders/completed`, `/ro/my/orders/market/completed`,
  `/ro/my/transactions`). Fees: `market_fee` on order-book fills, `instant_fee` on
  buy/sell now, charged in AUD and reported as `audfeeExGst` + `audGst` (GST = 1/11).
* Also `GET /pubapi/v2/latest/{coin}` with the fake's `prices`, for venue quotes.

Faults are queued with `server.inject(Fault(...))`; each is consumed by the next request
whose path (after `/api/v2`) starts with the fault's `path`:

* `accept_then_timeout` — execute the call, then stall `seconds` before answering (the
  client's read timeout fires after the order exists);
* `accept_then_reset` — execute, then reset the connection without an answer;
* `accept_then_5xx` — execute, then answer `status` (a proxy error after the origin acted);
* `duplicate` — execute the call twice (an intermediary replayed it), answer the first;
* `reset` — reset the connection before doing anything;
* `http` — answer `status` without executing; `rate_limited` — 429 without executing;
* `status_error` — HTTP 200 `{"status": "error", "message": message}` without executing;
* `delay` — sleep `seconds`, then answer normally.

Every request is recorded in `server.requests` (path, headers, raw body, outcome).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

FAULT_KINDS = (
    "accept_then_timeout",
    "accept_then_reset",
    "accept_then_5xx",
    "duplicate",
    "reset",
    "http",
    "rate_limited",
    "status_error",
    "delay",
)
MUTATING = ("/my/buy", "/my/sell")
GST = Decimal(1) / Decimal(11)
Q8 = Decimal("0.00000001")


@dataclass
class Fault:
    kind: str
    path: str = "/"
    status: int = 502
    seconds: float = 1.0
    message: str = "Insufficient funds"

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r} (known: {', '.join(FAULT_KINDS)})")


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    at: float
    fault: str | None = None
    outcome: str = ""

    @property
    def params(self) -> dict[str, Any]:
        try:
            body = json.loads(self.raw or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}


@dataclass
class FakeOrder:
    id: str
    side: str
    coin: str
    amount: Decimal  # original
    rate: Decimal
    created: datetime
    filled: Decimal = Decimal(0)
    status: str = "open"  # open | filled | cancelled

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled


@dataclass
class FakeExecution:
    side: str
    coin: str
    amount: Decimal
    rate: Decimal
    fee: Decimal
    when: datetime
    instant: bool
    order_id: str | None = None

    @property
    def total(self) -> Decimal:
        return (self.amount * self.rate).quantize(Q8)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _num(value: Decimal) -> float:
    return float(value)


@dataclass
class Account:
    balances: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[str, FakeOrder] = field(default_factory=dict)
    executions: list[FakeExecution] = field(default_factory=list)


class FakeCoinSpotPrivate:
    """The server, its account, its fault queue and its request log."""

    def __init__(
        self,
        key: str = "test-key-0001",
        secret: str = "test-secret-s3cr3t",
        *,
        balances: dict[str, Decimal | str] | None = None,
        market_fee: Decimal = Decimal("0.001"),
        instant_fee: Decimal = Decimal("0.01"),
        history_ids: bool = False,
    ) -> None:
        self.key = key
        self.secret = secret
        self.market_fee = market_fee
        self.instant_fee = instant_fee
        self.history_ids = history_ids  # send the order id in history entries
        start = balances or {"AUD": "100000", "BTC": "1"}
        self.account = Account({k.upper(): Decimal(str(v)) for k, v in start.items()})
        self.prices: dict[str, dict[str, Decimal]] = {
            "BTC": {"bid": Decimal(49900), "ask": Decimal(50100), "last": Decimal(50000)},
            "ETH": {"bid": Decimal(2990), "ask": Decimal(3010), "last": Decimal(3000)},
        }
        self.last_nonce: dict[str, int] = {}
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self.lock = threading.RLock()
        self._ids = 0x5F3A00000000000000000000
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeCoinSpotPrivate:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def inject(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for i, fault in enumerate(self.faults):
                if path.startswith(fault.path):
                    return self.faults.pop(i)
        return None

    def record(self, request: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(request)

    # ----------------------------------------------------------------- inspection

    def balance(self, coin: str) -> Decimal:
        with self.lock:
            return self.account.balances.get(coin.upper(), Decimal(0))

    def orders(self, status: str | None = None) -> list[FakeOrder]:
        with self.lock:
            return [o for o in self.account.orders.values() if status in (None, o.status)]

    def executions(self) -> list[FakeExecution]:
        with self.lock:
            return list(self.account.executions)

    def accepted(self, path: str) -> list[RecordedRequest]:
        """Requests to `path` that CoinSpot executed."""
        with self.lock:
            return [r for r in self.requests if r.path == path and r.outcome == "executed"]

    # ----------------------------------------------------------------- market activity

    def fill(self, order_id: str, amount: Decimal | str | None = None) -> FakeExecution:
        """Someone trades against a resting order: fill `amount` (default: all the rest)."""
        with self.lock:
            order = self.account.orders[order_id]
            if order.status != "open":
                raise ValueError(f"order {order_id} is {order.status}")
            qty = order.remaining if amount is None else Decimal(str(amount))
            if qty <= 0 or qty > order.remaining:
                raise ValueError(f"cannot fill {qty} of {order.remaining}")
            order.filled += qty
            if order.remaining == 0:
                order.status = "filled"
            notional = qty * order.rate
            fee = (notional * self.market_fee).quantize(Q8)
            bal = self.account.balances
            if order.side == "buy":
                bal[order.coin] = bal.get(order.coin, Decimal(0)) + qty
                bal["AUD"] -= notional + fee
            else:
                bal[order.coin] -= qty
                bal["AUD"] = bal.get("AUD", Decimal(0)) + notional - fee
            execution = FakeExecution(
                order.side, order.coin, qty, order.rate, fee, _now(), False, order.id
            )
            self.account.executions.append(execution)
            return execution

    # ----------------------------------------------------------------- the API

    def handle(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """Execute one authenticated call (the lock is held by the caller)."""
        route, _, query = path.partition("?")
        ok: dict[str, Any] = {"status": "ok", "message": "ok"}
        if route in ("/status", "/ro/status"):
            return ok
        if route == "/ro/my/balances":
            return {**ok, "balances": [{c: self._balance_entry(c)} for c in self._coins()]}
        if route.startswith("/ro/my/balance/"):
            coin = route.rsplit("/", 1)[1].upper()
            entry = self._balance_entry(coin)
            if "available=yes" in query:
                entry["available"] = _num(self._available(coin))
            return {**ok, "balance": {coin: entry}}
        if route in ("/quote/buy/now", "/quote/sell/now"):
            coin = self._coin(params)
            side = "ask" if "buy" in route else "bid"
            return {**ok, "rate": _num(self.prices[coin][side])}
        if route in ("/my/buy/now", "/my/sell/now"):
            return self._instant("buy" if "buy" in route else "sell", params)
        if route in ("/my/buy", "/my/sell"):
            return self._place(route.rsplit("/", 1)[1], params)
        if route in ("/my/buy/cancel", "/my/sell/cancel"):
            return self._cancel(route.split("/")[2], params)
        if route in ("/ro/my/orders/market/open", "/ro/my/orders/limit/open"):
            limit = route.endswith("limit/open")
            return {**ok, **self._open(params, none=limit)}
        if route in ("/ro/my/orders/completed", "/ro/my/orders/market/completed"):
            return {**ok, **self._history(params, market_only="market" in route)}
        if route == "/ro/my/transactions":
            return {**ok, **self._transactions(params)}
        return {"status": "error", "message": "Not found"}

    def _coins(self) -> list[str]:
        return sorted(c for c, v in self.account.balances.items() if v != 0)

    def _balance_entry(self, coin: str) -> dict[str, Any]:
        balance = self.account.balances.get(coin, Decimal(0))
        rate = Decimal(1) if coin == "AUD" else self.prices.get(coin, {}).get("last", Decimal(0))
        return {
            "balance": _num(balance),
            "audbalance": _num((balance * rate).quantize(Decimal("0.01"))),
            "rate": _num(rate),
        }

    def _available(self, coin: str) -> Decimal:
        """The balance minus what open orders lock (AUD for buys, the coin for sells)."""
        locked = Decimal(0)
        for o in self.account.orders.values():
            if o.status == "open" and o.side == "buy" and coin == "AUD":
                locked += (o.remaining * o.rate).quantize(Q8)
            elif o.status == "open" and o.side == "sell" and coin == o.coin:
                locked += o.remaining
        return self.account.balances.get(coin, Decimal(0)) - locked

    def _coin(self, params: dict[str, Any]) -> str:
        coin = str(params.get("cointype", "")).upper()
        if coin not in self.prices:
            raise _Refused("Coin not found")
        return coin

    def _amount(self, params: dict[str, Any], name: str = "amount") -> Decimal:
        try:
            value = Decimal(str(params[name]))
        except (KeyError, ArithmeticError) as exc:
            raise _Refused(f"Invalid {name}") from exc
        if value <= 0:
            raise _Refused(f"Invalid {name}")
        return value

    def _instant(self, side: str, params: dict[str, Any]) -> dict[str, Any]:
        coin = self._coin(params)
        rate = self.prices[coin]["ask" if side == "buy" else "bid"]
        amount = self._amount(params)
        if params.get("amounttype") == "aud":
            amount = (amount / rate).quantize(Q8)
        elif params.get("amounttype") != "coin":
            raise _Refused("Invalid amounttype")
        if "rate" in params and "threshold" in params:
            wanted = Decimal(str(params["rate"]))
            moved = abs(rate - wanted) / wanted * 100
            if moved > Decimal(str(params["threshold"])):
                raise _Refused("Rate has moved beyond threshold")
        notional = (amount * rate).quantize(Q8)
        fee = (notional * self.instant_fee).quantize(Q8)
        bal = self.account.balances
        if side == "buy":
            if self._available("AUD") < notional + fee:
                raise _Refused("Insufficient funds")
            bal["AUD"] -= notional + fee
            bal[coin] = bal.get(coin, Decimal(0)) + amount
        else:
            if self._available(coin) < amount:
                raise _Refused("Insufficient funds")
            bal[coin] -= amount
            bal["AUD"] = bal.get("AUD", Decimal(0)) + notional - fee
        self.account.executions.append(FakeExecution(side, coin, amount, rate, fee, _now(), True))
        answer: dict[str, Any] = {
            "status": "ok",
            "message": "ok",
            "coin": coin,
            "market": f"{coin}/AUD",
            "amount": _num(amount),
            "total": _num(notional + fee if side == "buy" else notional - fee),
        }
        if side == "sell":
            answer["rate"] = _num(rate)
        return answer

    def _place(self, side: str, params: dict[str, Any]) -> dict[str, Any]:
        coin = self._coin(params)
        amount = self._amount(params)
        rate = self._amount(params, "rate")
        if side == "buy":
            if self._available("AUD") < (amount * rate).quantize(Q8):
                raise _Refused("Insufficient funds")
        elif self._available(coin) < amount:
            raise _Refused("Insufficient funds")
        self._ids += 1
        order = FakeOrder(f"{self._ids:024x}", side, coin, amount, rate, _now())
        self.account.orders[order.id] = order
        return {
            "status": "ok",
            "message": "ok",
            "coin": coin,
            "market": f"{coin}/AUD",
            "amount": _num(amount),
            "rate": _num(rate),
            "id": order.id,
        }

    def _cancel(self, side: str, params: dict[str, Any]) -> dict[str, Any]:
        order = self.account.orders.get(str(params.get("id", "")))
        if order is None or order.side != side or order.status != "open":
            raise _Refused("Order not found")
        order.status = "cancelled"
        return {"status": "ok", "message": "ok"}

    def _open(self, params: dict[str, Any], *, none: bool) -> dict[str, Any]:
        out: dict[str, list[dict[str, Any]]] = {"buyorders": [], "sellorders": []}
        if none:
            return out
        coin = str(params.get("cointype") or "").upper()
        for order in self.account.orders.values():
            if order.status != "open" or (coin and order.coin != coin):
                continue
            out[f"{order.side}orders"].append(
                {
                    "id": order.id,
                    "coin": order.coin,
                    "market": f"{order.coin}/AUD",
                    "amount": _num(order.remaining),
                    "created": _iso(order.created),
                    "rate": _num(order.rate),
                    "total": _num((order.remaining * order.rate).quantize(Q8)),
                }
            )
        return out

    def _selected(self, params: dict[str, Any]) -> list[FakeExecution]:
        coin = str(params.get("cointype") or "").upper()
        start = params.get("startdate")
        end = params.get("enddate")
        chosen = []
        for ex in reversed(self.account.executions):  # newest first, like CoinSpot
            day = ex.when.date()
            if coin and ex.coin != coin:
                continue
            if start and day < date.fromisoformat(str(start)):
                continue
            if end and day > date.fromisoformat(str(end)):
                continue
            chosen.append(ex)
        limit = int(params.get("limit") or 200)
        return chosen[:limit]

    def _fee_fields(self, ex: FakeExecution) -> dict[str, Any]:
        gst = (ex.fee * GST).quantize(Q8)
        total = ex.total + ex.fee if ex.side == "buy" else ex.total - ex.fee
        return {"audfeeExGst": _num(ex.fee - gst), "audGst": _num(gst), "audtotal": _num(total)}

    def _history(self, params: dict[str, Any], *, market_only: bool) -> dict[str, Any]:
        out: dict[str, list[dict[str, Any]]] = {"buyorders": [], "sellorders": []}
        for ex in self._selected(params):
            if market_only and ex.instant:
                continue
            item: dict[str, Any] = {
                "coin": ex.coin,
                "type": ex.side,
                "market": f"{ex.coin}/AUD",
                "rate": _num(ex.rate),
                "amount": _num(ex.amount),
                "total": _num(ex.total),
                "solddate": _iso(ex.when),
                "otc": False,
                **self._fee_fields(ex),
            }
            if self.history_ids and ex.order_id:
                item["id"] = ex.order_id
            out[f"{ex.side}orders"].append(item)
        return out

    def _transactions(self, params: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, list[dict[str, Any]]] = {"buyorders": [], "sellorders": []}
        for ex in self._selected(params):
            out[f"{ex.side}orders"].append(
                {
                    "otc": False,
                    "market": f"{ex.coin}/AUD",
                    "amount": _num(ex.amount),
                    "total": _num(ex.total),
                    "created": _iso(ex.when),
                    **self._fee_fields(ex),
                }
            )
        return out

    # ----------------------------------------------------------------- authentication

    def authenticate(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        """(0, params) when the call may run, else (http status, error body)."""
        key = headers.get("key")
        if not key:
            return 401, {"status": "error", "message": "no key"}
        if not hmac.compare_digest(key, self.key):
            return 401, {"status": "error", "message": "invalid key"}
        expected = hmac.new(self.secret.encode(), raw, hashlib.sha512).hexdigest()
        if not hmac.compare_digest(headers.get("sign", "").lower(), expected):
            return 401, {"status": "error", "message": "invalid sign"}
        try:
            params = json.loads(raw)
        except ValueError:
            return 400, {"status": "error", "message": "invalid json"}
        nonce = params.get("nonce") if isinstance(params, dict) else None
        if not isinstance(nonce, int) or isinstance(nonce, bool):
            return 200, {"status": "error", "message": "invalid nonce"}
        with self.lock:
            if nonce <= self.last_nonce.get(key, 0):
                return 200, {"status": "error", "message": "invalid nonce"}
            self.last_nonce[key] = nonce
        return 0, params


class _Refused(Exception):
    """CoinSpot says no (answered as HTTP 200 `status: error`)."""


def _now() -> datetime:
    return datetime.now(UTC)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeCoinSpotPrivate
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        parts = [p for p in self.path.split("?", 1)[0].split("/") if p]
        coin = (
            parts[3].upper() if parts[:3] == ["pubapi", "v2", "latest"] and len(parts) > 3 else ""
        )
        with self.fake.lock:
            price = self.fake.prices.get(coin)
            body: dict[str, Any]
            if price is None:
                body = {"status": "error", "message": "Coin not found"}
            else:
                body = {"status": "ok", "prices": {k: str(v) for k, v in price.items()}}
        self._send(200, body)

    def do_POST(self) -> None:
        fake = self.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path
        if not path.startswith("/api/v2/"):
            self._send(404, {"status": "error", "message": "Not found"})
            return
        path = path[len("/api/v2") :]
        fault = fake.take_fault(path)
        record = RecordedRequest(
            method="POST",
            path=path.split("?", 1)[0],
            headers={k.lower(): v for k, v in self.headers.items()},
            raw=raw,
            at=time.monotonic(),
            fault=fault.kind if fault else None,
        )
        fake.record(record)
        try:
            self._answer(path, raw, fault, record)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _answer(self, path: str, raw: bytes, fault: Fault | None, record: RecordedRequest) -> None:
        fake = self.fake
        kind = fault.kind if fault else None
        if fault is not None and kind == "delay":
            time.sleep(fault.seconds)
        if kind == "reset":
            record.outcome = "reset"
            self._reset()
            return
        if fault is not None and kind == "http":
            record.outcome = f"http {fault.status}"
            self._send(fault.status, {"status": "error", "message": "server error"})
            return
        if kind == "rate_limited":
            record.outcome = "http 429"
            self._send(
                429, {"status": "error", "message": "Too many requests"}, {"Retry-After": "0"}
            )
            return
        status, params = fake.authenticate(record.headers, raw)
        if status:
            record.outcome = f"refused: {params['message']}"
            self._send(status, params)
            return
        if fault is not None and kind == "status_error":
            record.outcome = f"refused: {fault.message}"
            self._send(200, {"status": "error", "message": fault.message})
            return
        with fake.lock:
            try:
                body = fake.handle(path, params)
                if kind == "duplicate":
                    fake.handle(path, params)
            except _Refused as exc:
                body = {"status": "error", "message": str(exc)}
        record.outcome = "executed" if body.get("status") == "ok" else f"refused: {body['message']}"
        if fault is not None and kind == "accept_then_timeout":
            time.sleep(fault.seconds)
        if kind == "accept_then_reset":
            self._reset()
            return
        if fault is not None and kind == "accept_then_5xx":
            self._send(fault.status, {"status": "error", "message": "Bad gateway"})
            return
        self._send(200, body)

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def running_private_coinspot(**kwargs: Any) -> Iterator[FakeCoinSpotPrivate]:
    server = FakeCoinSpotPrivate(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def coinspot_private() -> Iterator[FakeCoinSpotPrivate]:
    """A fresh fake CoinSpot private API per test."""
    yield from running_private_coinspot()
