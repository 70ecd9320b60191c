"""`CcxtVenue`: the Venue interface over any CCXT exchange (`omc trade live --venue ccxt:<id>`).

* **Idempotent submit.** Every order is sent with the caller's client order id in the
  exchange's own parameter (`newClientOrderId` on Binance, CCXT's unified `clientOrderId`
  elsewhere). When a submit's outcome is unknown (timeout, network error, 5xx), the next
  `submit` with the same id first looks the order up by client id (`fetch_order` with
  `origClientOrderId` / `clientOrderId`) and only resends when the exchange does not know it;
  an exchange that answers the resend with "duplicate order" is looked up again. A retry
  therefore never double-submits. `lookup(known)` answers the same question from reads only
  (by venue id, else by client id; None when the exchange has no such order).
* **Errors.** `InsufficientFunds` → REJECTED `insufficient_funds`; `BadSymbol` →
  `unknown_symbol`; `InvalidOrder` / `BadRequest` → `invalid_order`; any other definite
  exchange answer → `exchange_rejected`. `NetworkError` (timeouts, 5xx, rate limits) →
  `VenueUnavailable` (outcome unknown); `AuthenticationError` / `PermissionDenied` →
  `VenueError`.
* **Instrument rules** (`instrument`) come from `load_markets()`: CCXT's `precision` (in the
  exchange's precision mode) and `limits` (`omc.floor.instruments.spec_from_ccxt_market`).
  An order off the quantity step or price tick is refused `invalid_order` before it is
  sent — CCXT would otherwise round it silently (a limit price even to the nearest tick,
  which can be worse), and the journal would not match what the exchange executed.
* **Reads.** `open_orders` = `fetch_open_orders`; `balances` = `fetch_balance`; `quote` =
  `fetch_ticker` (bid/ask/last; the order book when the ticker has no bid/ask);
  `fills_since` = `fetch_my_trades` per traded symbol, each trade mapped to its client order
  id (looked up with `fetch_order` once per unknown order).

Credentials come from `OMC_CCXT_API_KEY` / `OMC_CCXT_API_SECRET` (`CcxtCredentials`, secret
strings that never appear in logs or reprs — CCXT's DEBUG log of request headers goes through
`omc.core.masking`); `OMC_CCXT_BASE_URL` redirects the API hosts (see
`omc.ledgers.exchange.backfill.make_exchange`), which is how tests run against a local fake.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from omc.core.config import Settings
from omc.core.masking import register_secrets
from omc.core.time import utcnow
from omc.floor.instruments import InstrumentSpec, spec_from_ccxt_market
from omc.floor.venues.base import (
    Balance,
    KnownOrder,
    OrderRequest,
    Quote,
    RejectReason,
    Side,
    VenueError,
    VenueFill,
    VenueOrder,
    VenueOrderAck,
    VenueOrderStatus,
    VenueOrderType,
    VenueUnavailable,
    violation_reason,
)

log = logging.getLogger(__name__)
ZERO = Decimal(0)

# the create_order parameter carrying our client order id, and the fetch_order one
CLIENT_ID_PARAM: dict[str, tuple[str, str]] = {
    "binance": ("newClientOrderId", "origClientOrderId"),
}
DEFAULT_CLIENT_ID_PARAM = ("clientOrderId", "clientOrderId")
EXCHANGE_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {
        "fetchCurrencies": False,
        "fetchMargins": False,
        "warnOnFetchOpenOrdersWithoutSymbol": False,
        "defaultType": "spot",
        "fetchMarkets": {"types": ["spot"]},
    },
}


class CcxtCredentials(BaseSettings):
    """API key and secret of the CCXT exchange (`OMC_CCXT_API_KEY`, `OMC_CCXT_API_SECRET`)."""

    model_config = SettingsConfigDict(
        env_prefix="OMC_CCXT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None


def _d(value: Any) -> Decimal:
    if value is None:
        return ZERO
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _ts(ms: Any, default: datetime) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else default


def _status(order: dict[str, Any]) -> VenueOrderStatus:
    status = order.get("status")
    filled = _d(order.get("filled"))
    if status == "closed":
        return VenueOrderStatus.FILLED
    if status in ("canceled", "cancelled", "expired"):
        return VenueOrderStatus.CANCELLED
    if status == "rejected":
        return VenueOrderStatus.REJECTED
    return VenueOrderStatus.PARTIALLY_FILLED if filled > 0 else VenueOrderStatus.SUBMITTED


def _fee(order: dict[str, Any]) -> Decimal:
    fees = order.get("fees") or ([order["fee"]] if order.get("fee") else [])
    return sum((_d(f.get("cost")) for f in fees if f), ZERO)


@dataclass
class _Tracked:
    order: OrderRequest
    venue_order_id: str | None = None
    outcome_unknown: bool = True


class CcxtVenue:
    """The Venue interface over a CCXT exchange object (see module docstring)."""

    simulated = False

    def __init__(
        self,
        exchange: ccxt.Exchange,
        *,
        symbols: tuple[str, ...] = (),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.exchange = exchange
        self.name = f"ccxt:{exchange.id}"
        self.clock = clock
        self.symbols: set[str] = set(symbols)
        self.create_param, self.lookup_param = CLIENT_ID_PARAM.get(
            exchange.id, DEFAULT_CLIENT_ID_PARAM
        )
        self._orders: dict[str, _Tracked] = {}
        self._cid_by_venue_id: dict[str, str | None] = {}
        self._markets_loaded = False
        self._specs: dict[str, InstrumentSpec] = {}

    @classmethod
    def from_settings(
        cls,
        exchange_id: str,
        settings: Settings,
        credentials: CcxtCredentials | None = None,
        **kwargs: Any,
    ) -> CcxtVenue:
        from omc.ledgers.exchange.backfill import make_exchange

        creds = credentials or CcxtCredentials()
        register_secrets(creds.api_key, creds.api_secret)  # CCXT's debug log prints headers
        exchange = make_exchange(exchange_id, settings)
        exchange.options.update(EXCHANGE_OPTIONS.get(exchange.id, {}))
        if creds.api_key is not None:
            exchange.apiKey = creds.api_key.get_secret_value()
        if creds.api_secret is not None:
            exchange.secret = creds.api_secret.get_secret_value()
        return cls(exchange, **kwargs)

    def __repr__(self) -> str:  # never the credentials
        return f"CcxtVenue({self.exchange.id!r}, orders={len(self._orders)})"

    # ------------------------------------------------------------------ plumbing
    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._markets_loaded:
            self._markets_loaded = True
            try:
                self.exchange.load_markets()
            except Exception:
                self._markets_loaded = False
                raise
        return fn(*args, **kwargs)

    def _guard(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a CCXT call, turning transport/auth failures into the venue exceptions."""
        try:
            return self._call(fn, *args, **kwargs)
        except ccxt.NetworkError as exc:
            raise VenueUnavailable(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        except (ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.AccountSuspended) as exc:
            raise VenueError(f"{self.name}: {type(exc).__name__}: {exc}") from exc

    def _ack(self, cid: str, order: dict[str, Any]) -> VenueOrderAck:
        vid = str(order["id"]) if order.get("id") is not None else None
        if vid is not None:
            self._cid_by_venue_id[vid] = cid
            tracked = self._orders.get(cid)
            if tracked is not None:
                tracked.venue_order_id, tracked.outcome_unknown = vid, False
        filled = _d(order.get("filled"))
        avg = order.get("average")
        if avg is None and filled and order.get("cost"):
            avg = _d(order["cost"]) / filled
        return VenueOrderAck(
            cid,
            vid,
            _status(order),
            _ts(order.get("lastTradeTimestamp") or order.get("timestamp"), self.clock()),
            filled,
            _d(avg) if avg is not None else None,
            _fee(order),
        )

    def _rejected(self, cid: str, reason: str, message: str) -> VenueOrderAck:
        tracked = self._orders.get(cid)
        if tracked is not None:
            tracked.outcome_unknown = False
        return VenueOrderAck(
            cid, None, VenueOrderStatus.REJECTED, self.clock(), reason=reason, message=message
        )

    def _with_fees(self, order: dict[str, Any], symbol: str) -> dict[str, Any]:
        """Order queries (unlike order placement) often carry no fees: add them from the
        order's trades."""
        if _fee(order) or not _d(order.get("filled")) or order.get("id") is None:
            return order
        try:
            trades = self._guard(
                self.exchange.fetch_my_trades, symbol, None, None, {"orderId": order["id"]}
            )
        except ccxt.ExchangeError:
            return order
        mine = [t for t in trades if str(t.get("order")) == str(order["id"])]
        return {**order, "fees": [t["fee"] for t in mine if t.get("fee")]}

    def _lookup(self, cid: str, symbol: str) -> dict[str, Any] | None:
        """The exchange's order with client id `cid`, or None when it has none."""
        try:
            order: dict[str, Any] = self._guard(
                self.exchange.fetch_order, None, symbol, {self.lookup_param: cid}
            )
        except ccxt.OrderNotFound:
            return None
        return self._with_fees(order, symbol)

    def lookup(self, known: KnownOrder) -> VenueOrderAck | None:
        """Where an order stands, from reads only (None: the exchange does not know it)."""
        cid, symbol = known.request.client_order_id, known.request.symbol
        self.symbols.add(symbol)
        found: dict[str, Any] | None
        try:
            if known.venue_order_id is not None:
                found = self._with_fees(
                    self._guard(self.exchange.fetch_order, known.venue_order_id, symbol), symbol
                )
            else:
                found = self._lookup(cid, symbol)
        except ccxt.OrderNotFound:
            return None
        except ccxt.ExchangeError as exc:
            raise VenueError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        return None if found is None else self._ack(cid, found)

    # ------------------------------------------------------------------ Venue
    def instrument(self, symbol: str) -> InstrumentSpec:
        spec = self._specs.get(symbol)
        if spec is None:
            try:
                market = self._guard(self.exchange.market, symbol)
                spec = spec_from_ccxt_market(
                    market, self.exchange.precisionMode, f"{self.name} markets"
                )
            except (ccxt.ExchangeError, ValueError) as exc:
                raise VenueError(f"{self.name}: no trading rules for {symbol}: {exc}") from exc
            self._specs[symbol] = spec
        return spec

    def submit(self, order: OrderRequest) -> VenueOrderAck:
        cid = order.client_order_id
        self.symbols.add(order.symbol)
        known = self._orders.get(cid)
        if known is not None and known.venue_order_id is not None:
            found = self._guard(self.exchange.fetch_order, known.venue_order_id, order.symbol)
            return self._ack(cid, self._with_fees(found, order.symbol))
        if known is not None and not known.outcome_unknown:
            return self._rejected(cid, RejectReason.EXCHANGE_REJECTED, "rejected before")
        if known is not None:  # the last attempt may have reached the exchange: look first
            found = self._lookup(cid, order.symbol)
            if found is not None:
                log.info("%s: order %s was accepted before; not resending", self.name, cid)
                return self._ack(cid, found)
        else:
            self._orders[cid] = _Tracked(order)
        if order.type is VenueOrderType.LIMIT and order.limit_price is None:
            return self._rejected(cid, RejectReason.INVALID_ORDER, "limit order without price")
        market = order.type is VenueOrderType.MARKET
        try:
            broken = self.instrument(order.symbol).violation(
                order.quantity, limit_price=None if market else order.limit_price
            )
        except VenueUnavailable:
            raise
        except VenueError as exc:
            return self._rejected(cid, RejectReason.UNKNOWN_SYMBOL, str(exc))
        if broken is not None:
            return self._rejected(cid, violation_reason(broken), broken.message)
        try:
            placed = self._guard(
                self.exchange.create_order,
                order.symbol,
                str(order.type),
                str(order.side),
                float(order.quantity),
                None if order.limit_price is None or market else float(order.limit_price),
                {self.create_param: cid},
            )
        except ccxt.InsufficientFunds as exc:
            return self._rejected(cid, RejectReason.INSUFFICIENT_FUNDS, str(exc))
        except ccxt.BadSymbol as exc:
            return self._rejected(cid, RejectReason.UNKNOWN_SYMBOL, str(exc))
        except (ccxt.InvalidOrder, ccxt.BadRequest) as exc:
            if isinstance(exc, ccxt.DuplicateOrderId) or "duplicate" in str(exc).lower():
                found = self._lookup(cid, order.symbol)
                if found is not None:
                    return self._ack(cid, found)
            return self._rejected(cid, RejectReason.INVALID_ORDER, str(exc))
        except ccxt.ExchangeError as exc:
            return self._rejected(cid, RejectReason.EXCHANGE_REJECTED, str(exc))
        return self._ack(cid, placed)

    def cancel(self, venue_order_id: str, *, symbol: str, side: Side) -> VenueOrderAck:
        cid = self._cid_by_venue_id.get(venue_order_id) or venue_order_id
        try:
            answer = self._guard(self.exchange.cancel_order, venue_order_id, symbol)
        except ccxt.OrderNotFound:
            answer = None
        except ccxt.ExchangeError as exc:
            return self._rejected(cid, RejectReason.EXCHANGE_REJECTED, str(exc))
        if answer is None or answer.get("status") not in ("canceled", "cancelled", "closed"):
            try:  # final already (filled), or the cancel answer is partial: ask for the order
                answer = self._guard(self.exchange.fetch_order, venue_order_id, symbol)
            except ccxt.OrderNotFound:
                return self._rejected(cid, RejectReason.UNKNOWN_ORDER, "unknown order")
        return self._ack(str(answer.get("clientOrderId") or cid), self._with_fees(answer, symbol))

    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        symbols: list[str | None] = [symbol] if symbol else [*sorted(self.symbols)] or [None]
        out: list[VenueOrder] = []
        for sym in symbols:
            for o in self._guard(self.exchange.fetch_open_orders, sym):
                vid = str(o["id"])
                cid = o.get("clientOrderId") or self._cid_by_venue_id.get(vid)
                if cid:
                    self._cid_by_venue_id[vid] = cid
                out.append(
                    VenueOrder(
                        vid,
                        cid,
                        str(o["symbol"]),
                        Side(o["side"]),
                        VenueOrderType.LIMIT if o.get("type") == "limit" else VenueOrderType.MARKET,
                        _d(o.get("amount")),
                        _d(o["price"]) if o.get("price") else None,
                        _d(o.get("filled")),
                        _status(o),
                        _ts(o.get("timestamp"), self.clock()),
                    )
                )
        return out

    def balances(self) -> dict[str, Balance]:
        bal = self._guard(self.exchange.fetch_balance)
        total, free = bal.get("total") or {}, bal.get("free") or {}
        return {
            asset.upper(): Balance(asset.upper(), _d(amount), _d(free.get(asset)))
            for asset, amount in total.items()
            if amount
        }

    def quote(self, symbol: str) -> Quote:
        try:
            t = self._guard(self.exchange.fetch_ticker, symbol)
        except ccxt.ExchangeError as exc:
            raise VenueError(f"{self.name}: no quote for {symbol}: {exc}") from exc
        bid, ask = t.get("bid"), t.get("ask")
        ts = _ts(t.get("timestamp"), self.clock())
        if not bid or not ask:
            book = self._guard(self.exchange.fetch_order_book, symbol, 5)
            if not book.get("bids") or not book.get("asks"):
                raise VenueError(f"{self.name}: empty order book for {symbol}")
            bid, ask = book["bids"][0][0], book["asks"][0][0]
        last = t.get("last") or t.get("close") or (bid + ask) / 2
        return Quote(symbol, _d(bid), _d(ask), _d(last), ts)

    def fills_since(self, since: datetime) -> list[VenueFill]:
        out: list[VenueFill] = []
        ms = int(since.timestamp() * 1000)
        for sym in sorted(self.symbols):
            quote_ccy = sym.split("/")[-1]
            for t in self._guard(self.exchange.fetch_my_trades, sym, ms):
                vid = str(t["order"])
                if vid not in self._cid_by_venue_id:
                    try:
                        o = self._guard(self.exchange.fetch_order, vid, sym)
                        self._cid_by_venue_id[vid] = o.get("clientOrderId")
                    except ccxt.OrderNotFound:
                        self._cid_by_venue_id[vid] = None
                fee = t.get("fee") or {}
                ccy = fee.get("currency")
                out.append(
                    VenueFill(
                        f"{sym}:{t['id']}",
                        vid,
                        self._cid_by_venue_id.get(vid),
                        sym,
                        Side(t["side"]),
                        _d(t["amount"]),
                        _d(t["price"]),
                        _d(fee.get("cost")),
                        _ts(t.get("timestamp"), self.clock()),
                        ccy if ccy and ccy != quote_ccy else None,
                    )
                )
        out.sort(key=lambda f: f.ts)
        return out
