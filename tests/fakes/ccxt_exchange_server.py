"""A local fake of Binance's *signed* spot REST API, as ccxt 4.5 calls it for trading.

Endpoints (found by running ccxt against this server with `log` on):

* public: `GET /api/v3/exchangeInfo` (one market, BTC/USDT), `GET /api/v3/ping`,
  `GET /api/v3/time`, `GET /api/v3/ticker/24hr?symbol=` (fetch_ticker),
  `GET /api/v3/ticker/bookTicker`, `GET /api/v3/depth`;
* signed (HMAC-SHA256 of the query string + body in `signature`, key in `X-MBX-APIKEY`,
  otherwise 401 `{"code": -2014/-1022}` like Binance): `POST /api/v3/order` (with
  `newClientOrderId`; a client id seen before answers 400 `-2010 "Duplicate order sent."`),
  `GET /api/v3/order` (`orderId` or `origClientOrderId`; unknown: 400 `-2013`),
  `DELETE /api/v3/order`, `GET /api/v3/openOrders`, `GET /api/v3/account`,
  `GET /api/v3/myTrades`.

Orders are checked against the served exchangeInfo filters like Binance: LOT_SIZE
(`minQty`, `stepSize`), PRICE_FILTER (`minPrice`, `tickSize`) and NOTIONAL (`minNotional`),
each failure a 400 `-1013 "Filter failure: <FILTER>"`.

Matching: a MARKET order fills at once at the ask (buy) / bid (sell); a LIMIT order fills at
once when marketable (at the book), else rests until `set_book` crosses it. Commission is
`fee_rate` of the notional in the quote asset. Balances are checked like Binance (`-2010
"Account has insufficient balance for requested action."`).

Test knobs: `delay_next_orders` (the next N accepted orders answer only after
`delay_s` seconds — a client with a shorter timeout sees a timeout after acceptance),
`requests` (method + path of every request) and `order_posts` (every POSTed order's params).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.binance_server import EXCHANGE_INFO

API_KEY = "fake-binance-key"
API_SECRET = "fake-binance-secret"
D = Decimal
# BTCUSDT's exchange filters, enforced on every order like Binance does
_FILTERS = {f["filterType"]: f for f in EXCHANGE_INFO["symbols"][0]["filters"]}


def _s(value: Decimal) -> str:
    return f"{value:.8f}"


def _ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Order:
    order_id: int
    client_id: str
    side: str
    type: str
    qty: Decimal
    price: Decimal | None
    time: int
    executed: Decimal = field(default_factory=Decimal)
    quote: Decimal = field(default_factory=Decimal)
    status: str = "NEW"

    def as_binance(self) -> dict[str, Any]:
        return {
            "symbol": "BTCUSDT",
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_id,
            "price": _s(self.price or D(0)),
            "origQty": _s(self.qty),
            "executedQty": _s(self.executed),
            "cummulativeQuoteQty": _s(self.quote),
            "status": self.status,
            "timeInForce": "GTC",
            "type": self.type,
            "side": self.side,
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": self.time,
            "updateTime": _ms(),
            "isWorking": True,
            "workingTime": self.time,
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }


@dataclass
class FakeBinanceTrading:
    """The exchange's state and the HTTP server around it."""

    balances: dict[str, list[Decimal]] = field(
        default_factory=lambda: {"USDT": [D(10000), D(0)], "BTC": [D(0), D(0)]}
    )
    bid: Decimal = field(default_factory=lambda: D("29990"))
    ask: Decimal = field(default_factory=lambda: D("30010"))
    last: Decimal = field(default_factory=lambda: D("30000"))
    fee_rate: Decimal = field(default_factory=lambda: D("0.001"))
    delay_next_orders: int = 0
    delay_s: float = 2.0

    def __post_init__(self) -> None:
        self.orders: dict[int, _Order] = {}
        self.by_client: dict[str, _Order] = {}
        self.trades: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.order_posts: list[dict[str, str]] = []
        self.bad_signatures = 0
        self.quote_ms = _ms()  # the ticker's time: changes only when the book does
        self._next_id = 1000
        self._next_trade = 5000
        self._lock = threading.RLock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeBinanceTrading:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ exchange logic
    def set_book(self, bid: Decimal, ask: Decimal, last: Decimal | None = None) -> None:
        with self._lock:
            self.bid, self.ask = bid, ask
            self.last = last if last is not None else (bid + ask) / 2
            self.quote_ms = _ms()
            for o in list(self.orders.values()):
                if (
                    o.status in ("NEW", "PARTIALLY_FILLED")
                    and o.price is not None
                    and (
                        (o.side == "BUY" and ask <= o.price)
                        or (o.side == "SELL" and bid >= o.price)
                    )
                ):
                    self._fill(o, o.qty - o.executed, o.price, maker=True)

    def _fill(self, o: _Order, qty: Decimal, price: Decimal, *, maker: bool) -> dict[str, Any]:
        """Execute `qty` of `o` at `price`; a resting (maker) order releases its lock."""
        notional = qty * price
        fee = (notional * self.fee_rate).quantize(D("0.00000001"))
        usdt, btc = self.balances["USDT"], self.balances["BTC"]
        if o.side == "BUY":
            if maker:
                usdt[1] -= qty * (o.price or price)
                usdt[0] += qty * (o.price or price)
            usdt[0] -= notional + fee
            btc[0] += qty
        else:
            if maker:
                btc[1] -= qty
                btc[0] += qty
            btc[0] -= qty
            usdt[0] += notional - fee
        o.executed += qty
        o.quote += notional
        o.status = "FILLED" if o.executed >= o.qty else "PARTIALLY_FILLED"
        self._next_trade += 1
        trade = {
            "symbol": "BTCUSDT",
            "id": self._next_trade,
            "orderId": o.order_id,
            "orderListId": -1,
            "price": _s(price),
            "qty": _s(qty),
            "quoteQty": _s(notional),
            "commission": _s(fee),
            "commissionAsset": "USDT",
            "time": _ms(),
            "isBuyer": o.side == "BUY",
            "isMaker": maker,
            "isBestMatch": True,
        }
        self.trades.append(trade)
        return trade

    def _new_order(self, q: dict[str, str]) -> tuple[int, Any]:
        self.order_posts.append(dict(q))
        if q.get("symbol") != "BTCUSDT":
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        cid = q.get("newClientOrderId") or f"x-auto-{self._next_id}"
        if cid in self.by_client:
            return 400, {"code": -2010, "msg": "Duplicate order sent."}
        side, typ = q.get("side", ""), q.get("type", "")
        try:
            qty = D(q["quantity"])
        except (KeyError, ArithmeticError):
            return 400, {"code": -1102, "msg": "Mandatory parameter 'quantity' was not sent."}
        price = D(q["price"]) if "price" in q else None
        if typ not in ("MARKET", "LIMIT") or side not in ("BUY", "SELL"):
            return 400, {"code": -1116, "msg": "Invalid orderType."}
        if typ == "LIMIT" and price is None:
            return 400, {"code": -1102, "msg": "Mandatory parameter 'price' was not sent."}
        lot, tick = _FILTERS["LOT_SIZE"], _FILTERS["PRICE_FILTER"]
        if qty < D(lot["minQty"]) or qty % D(lot["stepSize"]):
            return 400, {"code": -1013, "msg": "Filter failure: LOT_SIZE"}
        if price is not None and (price < D(tick["minPrice"]) or price % D(tick["tickSize"])):
            return 400, {"code": -1013, "msg": "Filter failure: PRICE_FILTER"}
        exec_price = self.ask if side == "BUY" else self.bid
        ref = price if price is not None else exec_price
        if qty * ref < D(_FILTERS["NOTIONAL"]["minNotional"]):
            return 400, {"code": -1013, "msg": "Filter failure: NOTIONAL"}
        usdt, btc = self.balances["USDT"], self.balances.setdefault("BTC", [D(0), D(0)])
        need = qty * ref * (1 + self.fee_rate) if side == "BUY" else qty
        have = usdt[0] if side == "BUY" else btc[0]
        if need > have:
            return 400, {
                "code": -2010,
                "msg": "Account has insufficient balance for requested action.",
            }
        self._next_id += 1
        o = _Order(self._next_id, cid, side, typ, qty, price, _ms())
        self.orders[o.order_id] = o
        self.by_client[cid] = o
        fills = []
        marketable = typ == "MARKET" or (
            price is not None
            and ((side == "BUY" and self.ask <= price) or (side == "SELL" and self.bid >= price))
        )
        if typ == "LIMIT" and not marketable:
            if side == "BUY":
                usdt[0] -= qty * (price or D(0))
                usdt[1] += qty * (price or D(0))
            else:
                btc[0] -= qty
                btc[1] += qty
        if marketable:
            t = self._fill(o, qty, exec_price, maker=False)
            fills.append(
                {
                    "price": t["price"],
                    "qty": t["qty"],
                    "commission": t["commission"],
                    "commissionAsset": "USDT",
                    "tradeId": t["id"],
                }
            )
        body = o.as_binance()
        body["transactTime"] = o.time
        body["fills"] = fills
        return 200, body

    def _find(self, q: dict[str, str]) -> _Order | None:
        if "orderId" in q:
            return self.orders.get(int(q["orderId"]))
        if "origClientOrderId" in q:
            return self.by_client.get(q["origClientOrderId"])
        return None

    def _cancel(self, q: dict[str, str]) -> tuple[int, Any]:
        o = self._find(q)
        if o is None:
            return 400, {"code": -2011, "msg": "Unknown order sent."}
        if o.status not in ("NEW", "PARTIALLY_FILLED"):
            return 400, {"code": -2011, "msg": "Unknown order sent."}
        rest = o.qty - o.executed
        if o.side == "BUY":
            self.balances["USDT"][1] -= rest * (o.price or D(0))
            self.balances["USDT"][0] += rest * (o.price or D(0))
        else:
            self.balances["BTC"][1] -= rest
            self.balances["BTC"][0] += rest
        o.status = "CANCELED"
        body = o.as_binance()
        body["origClientOrderId"] = o.client_id
        body["transactTime"] = _ms()
        return 200, body

    def _account(self) -> dict[str, Any]:
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": "0.001", "taker": "0.001", "buyer": "0", "seller": "0"},
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": _ms(),
            "accountType": "SPOT",
            "balances": [
                {"asset": a, "free": _s(v[0]), "locked": _s(v[1])}
                for a, v in sorted(self.balances.items())
            ],
            "permissions": ["SPOT"],
            "uid": 354937868,
        }

    def _ticker(self) -> dict[str, Any]:
        now = self.quote_ms
        return {
            "symbol": "BTCUSDT",
            "priceChange": "0.00000000",
            "priceChangePercent": "0.000",
            "weightedAvgPrice": _s(self.last),
            "prevClosePrice": _s(self.last),
            "lastPrice": _s(self.last),
            "lastQty": "0.01000000",
            "bidPrice": _s(self.bid),
            "bidQty": "1.00000000",
            "askPrice": _s(self.ask),
            "askQty": "1.00000000",
            "openPrice": _s(self.last),
            "highPrice": _s(max(self.last, self.ask)),
            "lowPrice": _s(min(self.last, self.bid)),
            "volume": "100.00000000",
            "quoteVolume": _s(100 * self.last),
            "openTime": now - 86_400_000,
            "closeTime": now,
            "firstId": 1,
            "lastId": 100,
            "count": 100,
        }

    # ------------------------------------------------------------------ HTTP
    def _signed_ok(self, query: str, body: str, headers: Any) -> tuple[int, Any] | None:
        if headers.get("X-MBX-APIKEY") != API_KEY:
            return 401, {"code": -2014, "msg": "API-key format invalid."}
        total = query + body
        head, sep, sig = total.rpartition("&signature=")
        if not sep:
            return 400, {"code": -1102, "msg": "Mandatory parameter 'signature' was not sent."}
        want = hmac.new(API_SECRET.encode(), head.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig):
            self.bad_signatures += 1
            return 400, {"code": -1022, "msg": "Signature for this request is not valid."}
        params = dict(parse_qsl(head))
        if abs(int(params.get("timestamp", "0")) - _ms()) > 60_000:
            return 400, {"code": -1021, "msg": "Timestamp outside of the recvWindow."}
        return None

    def _route(self, method: str, path: str, q: dict[str, str]) -> tuple[int, Any]:
        if method == "GET" and path == "/api/v3/ping":
            return 200, {}
        if method == "GET" and path == "/api/v3/time":
            return 200, {"serverTime": _ms()}
        if method == "GET" and path == "/api/v3/exchangeInfo":
            return 200, EXCHANGE_INFO
        if method == "GET" and path == "/api/v3/ticker/24hr":
            return 200, self._ticker()
        if method == "GET" and path == "/api/v3/ticker/bookTicker":
            return 200, {
                "symbol": "BTCUSDT",
                "bidPrice": _s(self.bid),
                "bidQty": "1.00000000",
                "askPrice": _s(self.ask),
                "askQty": "1.00000000",
            }
        if method == "GET" and path == "/api/v3/depth":
            return 200, {
                "lastUpdateId": 1,
                "bids": [[_s(self.bid), "1.00000000"]],
                "asks": [[_s(self.ask), "1.00000000"]],
            }
        return 404, {"code": -1, "msg": f"no route {method} {path}"}

    def _private(self, method: str, path: str, q: dict[str, str]) -> tuple[int, Any]:
        if method == "POST" and path == "/api/v3/order":
            return self._new_order(q)
        if method == "GET" and path == "/api/v3/order":
            o = self._find(q)
            if o is None:
                return 400, {"code": -2013, "msg": "Order does not exist."}
            return 200, o.as_binance()
        if method == "DELETE" and path == "/api/v3/order":
            return self._cancel(q)
        if method == "GET" and path == "/api/v3/openOrders":
            return 200, [
                o.as_binance()
                for o in self.orders.values()
                if o.status in ("NEW", "PARTIALLY_FILLED")
            ]
        if method == "GET" and path == "/api/v3/account":
            return 200, self._account()
        if method == "GET" and path == "/api/v3/myTrades":
            start = int(q.get("startTime", "0"))
            rows = [
                t
                for t in self.trades
                if t["time"] >= start and str(t["orderId"]) == q.get("orderId", str(t["orderId"]))
            ]
            return 200, rows[: int(q.get("limit", "500"))]
        return 404, {"code": -1, "msg": f"no route {method} {path}"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self
        private = {"/api/v3/order", "/api/v3/openOrders", "/api/v3/account", "/api/v3/myTrades"}

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json;charset=UTF-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                with fake._lock:
                    fake.requests.append(f"{method} {parts.path}")
                q = dict(parse_qsl(parts.query))
                q.update(parse_qsl(body))
                delay = 0.0
                with fake._lock:
                    if parts.path in private:
                        problem = fake._signed_ok(parts.query, body, self.headers)
                        if problem is not None:
                            self._send(*problem)
                            return
                        status, answer = fake._private(method, parts.path, q)
                        if method == "POST" and status == 200 and fake.delay_next_orders:
                            fake.delay_next_orders -= 1
                            delay = fake.delay_s
                    else:
                        status, answer = fake._route(method, parts.path, q)
                if delay:
                    time.sleep(delay)  # accepted, but the client gives up first
                self._send(status, answer)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        return Handler


@contextmanager
def fake_binance_trading(**kwargs: Any) -> Iterator[FakeBinanceTrading]:
    server = FakeBinanceTrading(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()


def main() -> None:  # pragma: no cover - manual use: python -m tests.fakes.ccxt_exchange_server
    server = FakeBinanceTrading().start()
    print(server.url, flush=True)
    server.thread.join()


if __name__ == "__main__":  # pragma: no cover
    main()
