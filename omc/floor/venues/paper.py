"""The paper venue: fills against real quotes — the latest ticks in the Exchange ledger, or a
replayed candle file — never against a made-up price.

* Market buy fills at the ask, market sell at the bid, moved by the `SlippageModel` and
  charged the taker fee of the `FeeModel` (both from part 1 of the Floor).
* A limit order that is marketable fills at once like a market order but no worse than its
  limit (taker); otherwise it rests and fills at its limit price (maker fee) on the first
  later quote that crosses it (`match`).
* No quote, or a quote older than `max_quote_age_s` (`OMC_PAPER_QUOTE_MAX_AGE_S`) or stamped
  more than `max_skew_s` in the future, rejects the order with reason `no_quote` /
  `stale_quote`; resting orders are not matched against such quotes.
* Buys need the cash (notional + fee); sells need the coins (no shorting). A resting limit
  order reserves its cash (buy) or coins (sell) from other orders, never from itself.
* The instrument rules (`instrument`, by default CoinSpot's: 8 decimal places for amounts
  and prices, no minimum; `OMC_PAPER_QUANTITY_STEP` / `_PRICE_TICK` / `_MIN_QUANTITY` /
  `_MIN_NOTIONAL`) are enforced like an exchange: an order off the step or tick is rejected
  `invalid_order`, one below a minimum `below_minimum`.

The venue keeps its balances in memory; after a restart `restore()` sets them from the state
rebuilt from the journal. Quotes come from a `QuoteSource`: `LedgerQuotes` (point-in-time
reads of the `ticks` table through `omc.ledgers.pit`) or `ReplayQuotes` (set by the replay).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine

from omc.core.time import utcnow
from omc.floor.fills import FeeModel, SlippageModel
from omc.floor.instruments import EIGHT_DECIMALS, InstrumentSpec, uniform_rules
from omc.floor.venues.base import (
    CLOCK_SKEW_S,
    Balance,
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
    quote_age_problem,
    violation_reason,
)

ZERO = Decimal(0)


class PaperSettings(BaseSettings):
    """Paper trading settings from `OMC_PAPER_*` environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="OMC_PAPER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    quote_max_age_s: float = Field(
        default=30.0, gt=0, description="Reject paper orders whose latest quote is older (s)."
    )
    initial_cash: Decimal = Field(default=Decimal(10000), ge=0, description="Starting cash.")
    quote_currency: str = Field(default="AUD", description="Currency of the paper account.")
    slippage_bps: Decimal = Field(default=Decimal(0), ge=0, description="Taker slippage (bps).")
    quote_source: str = Field(default="coinspot", description="Ledger source of quotes.")
    quantity_step: Decimal = Field(
        default=EIGHT_DECIMALS, gt=0, description="Quantity step of paper orders (CoinSpot: 8 dp)."
    )
    price_tick: Decimal | None = Field(
        default=EIGHT_DECIMALS, gt=0, description="Price tick of paper limit orders (null: any)."
    )
    min_quantity: Decimal = Field(default=Decimal(0), ge=0, description="Minimum order quantity.")
    min_notional: Decimal = Field(
        default=Decimal(0), ge=0, description="Minimum paper order value (quote currency)."
    )

    def instruments(self) -> Callable[[str], InstrumentSpec]:
        """The paper venue's instrument rules (the same for every symbol)."""
        return uniform_rules(
            quantity_step=self.quantity_step,
            price_tick=self.price_tick,
            min_quantity=self.min_quantity,
            min_notional=self.min_notional,
            source="paper settings",
        )


class QuoteSource(Protocol):
    def latest(self, symbol: str) -> Quote | None: ...


class ReplayQuotes:
    """Quotes set by the caller (a candle replay sets bid = ask = last = close)."""

    def __init__(self) -> None:
        self.quotes: dict[str, Quote] = {}

    def set(self, quote: Quote) -> None:
        self.quotes[quote.symbol] = quote

    def latest(self, symbol: str) -> Quote | None:
        return self.quotes.get(symbol)


class LedgerQuotes:
    """The latest tick per symbol in the Exchange ledger, read point-in-time at `clock()`."""

    def __init__(
        self,
        engine: Engine,
        *,
        source: str = "coinspot",
        clock: Callable[[], datetime] = utcnow,
        lookback: timedelta = timedelta(days=1),
    ) -> None:
        self.engine = engine
        self.source = source
        self.clock = clock
        self.lookback = lookback

    def latest(self, symbol: str) -> Quote | None:
        from omc.ledgers import pit

        base, _, quote_ccy = symbol.partition("/")
        now = self.clock()
        frame = pit.ticks(
            self.engine,
            as_of=now,
            coin=base.lower(),
            market=(quote_ccy or "aud").lower(),
            source=self.source,
            start=now - self.lookback,
            end=now,
            exact=True,
        )
        if frame.empty:
            return None
        row = frame.iloc[-1]
        return Quote(
            symbol,
            row["bid"],
            row["ask"],
            row["last"],
            row["ts"].to_pydatetime(),
            {"source": "ledger"},
        )


@dataclass(slots=True)
class _PaperOrder:
    request: OrderRequest
    venue_order_id: str
    created: datetime
    status: VenueOrderStatus = VenueOrderStatus.SUBMITTED
    filled: Decimal = ZERO
    notional: Decimal = ZERO
    fee: Decimal = ZERO

    def ack(self, ts: datetime, reason: str | None = None, message: str = "") -> VenueOrderAck:
        return VenueOrderAck(
            self.request.client_order_id,
            self.venue_order_id,
            self.status,
            ts,
            self.filled,
            self.notional / self.filled if self.filled else None,
            self.fee,
            reason,
            message,
        )


class PaperVenue:
    """A simulated venue (see module docstring). Implements `Venue`."""

    simulated = True

    def __init__(
        self,
        quotes: QuoteSource,
        *,
        cash: Decimal = Decimal(10000),
        quote_currency: str = "AUD",
        fees: FeeModel | None = None,
        slippage: SlippageModel | None = None,
        max_quote_age_s: float = 30.0,
        max_skew_s: float = CLOCK_SKEW_S,
        clock: Callable[[], datetime] = utcnow,
        name: str = "paper",
        instruments: Callable[[str], InstrumentSpec] | None = None,
    ) -> None:
        self.name = name
        self.instruments = instruments or uniform_rules(source="CoinSpot precision (default)")
        self.quotes = quotes
        self.fees = fees or FeeModel()
        self.slippage = slippage or SlippageModel()
        self.max_age = timedelta(seconds=max_quote_age_s)
        self.max_skew_s = max_skew_s
        self.clock = clock
        self.quote_currency = quote_currency.upper()
        self._balances: dict[str, Decimal] = {self.quote_currency: cash}
        self._orders: dict[str, _PaperOrder] = {}  # every order, by client order id
        self._by_venue_id: dict[str, _PaperOrder] = {}
        self._live: dict[str, _PaperOrder] = {}  # not final yet (finals leave as they are met)
        self._fills: list[VenueFill] = []

    def restore(
        self, cash: Decimal, positions: dict[str, Decimal], orders: Iterable[VenueOrder] = ()
    ) -> None:
        """Set balances and resting orders (after a restart, from the rebuilt journal state)."""
        self._balances = {self.quote_currency: cash}
        for sym, qty in positions.items():
            self._balances[sym.split("/")[0].upper()] = qty
        for o in orders:
            if o.client_order_id is None:
                continue
            req = OrderRequest(
                o.client_order_id, o.symbol, o.side, o.quantity, o.type, o.limit_price
            )
            self._add(_PaperOrder(req, o.venue_order_id, o.created, o.status, o.filled_quantity))

    def _add(self, po: _PaperOrder) -> None:
        cid = po.request.client_order_id
        self._orders[cid] = self._live[cid] = self._by_venue_id[po.venue_order_id] = po

    def _working(self) -> list[_PaperOrder]:
        """The orders not final yet, oldest first (O(working), not O(every order ever))."""
        live = self._live
        for cid in [c for c, po in live.items() if po.status.final]:
            del live[cid]
        return list(live.values())

    # ---------------------------------------------------------------- Venue
    def instrument(self, symbol: str) -> InstrumentSpec:
        return self.instruments(symbol)

    def quote(self, symbol: str) -> Quote:
        q = self.quotes.latest(symbol)
        if q is None:
            raise VenueError(f"no quote for {symbol}")
        return q

    def submit(self, order: OrderRequest) -> VenueOrderAck:
        now = self.clock()
        known = self._orders.get(order.client_order_id)
        if known is not None:
            return known.ack(now)
        po = _PaperOrder(order, f"P-{order.client_order_id}", now)
        self._add(po)

        def reject(reason: RejectReason, message: str) -> VenueOrderAck:
            po.status = VenueOrderStatus.REJECTED
            return po.ack(now, str(reason), message)

        if order.quantity <= 0:
            return reject(RejectReason.INVALID_ORDER, "quantity must be positive")
        if order.type is VenueOrderType.LIMIT and (
            order.limit_price is None or order.limit_price <= 0
        ):
            return reject(RejectReason.INVALID_ORDER, "a limit order needs a positive limit price")
        spec = self.instrument(order.symbol)
        limit = order.limit_price if order.type is VenueOrderType.LIMIT else None
        broken = spec.violation(order.quantity, limit_price=limit)
        if broken is not None:
            return reject(violation_reason(broken), broken.message)
        q = self.quotes.latest(order.symbol)
        if q is None:
            return reject(RejectReason.NO_QUOTE, f"no quote for {order.symbol}")
        stale = self._stale(q, now)
        if stale:
            return reject(RejectReason.STALE_QUOTE, f"latest {order.symbol} quote {stale}")
        buy = order.side is Side.BUY
        touch = q.ask if buy else q.bid
        if touch <= 0:
            return reject(RejectReason.NO_QUOTE, f"no {'ask' if buy else 'bid'} for {order.symbol}")
        price = self.slippage.adjust(touch, buy)
        broken = spec.minimum_violation(order.quantity, limit or price)
        if broken is not None:
            return reject(violation_reason(broken), broken.message)
        if order.type is VenueOrderType.LIMIT:
            assert order.limit_price is not None
            marketable = touch <= order.limit_price if buy else touch >= order.limit_price
            if not marketable:
                problem = self._funds_problem(po, order.limit_price, maker=True)
                if problem:
                    return reject(RejectReason.INSUFFICIENT_FUNDS, problem)
                return po.ack(now)  # rests
            price = min(price, order.limit_price) if buy else max(price, order.limit_price)
        problem = self._funds_problem(po, price, maker=False)
        if problem:
            return reject(RejectReason.INSUFFICIENT_FUNDS, problem)
        self._fill(po, order.quantity, price, maker=False, ts=now)
        return po.ack(now)

    def _stale(self, q: Quote, now: datetime) -> str | None:
        return quote_age_problem(q.ts, now, self.max_age.total_seconds(), self.max_skew_s)

    def _funds_problem(self, po: _PaperOrder, price: Decimal, maker: bool) -> str | None:
        """Why `po` cannot be paid for (its own reservation does not count against it)."""
        order = po.request
        base = order.symbol.split("/")[0].upper()
        if order.side is Side.BUY:
            need = order.quantity * price * (1 + self.fees.rate(maker))
            have = self._available(self.quote_currency, po)
            return (
                None if need <= have else f"needs {need:.2f} {self.quote_currency}, has {have:.2f}"
            )
        have = self._available(base, po)
        return None if order.quantity <= have else f"sells {order.quantity} {base}, has {have}"

    def _available(self, asset: str, exclude: _PaperOrder | None = None) -> Decimal:
        """Balance of `asset` less what resting limit orders (other than `exclude`) reserve."""
        total = self._balances.get(asset, ZERO)
        for po in self._working():
            if po is exclude or po.status.final or po.request.type is not VenueOrderType.LIMIT:
                continue
            r = po.request
            rest = r.quantity - po.filled
            assert r.limit_price is not None
            if r.side is Side.BUY and asset == self.quote_currency:
                total -= rest * r.limit_price * (1 + self.fees.rate(True))
            elif r.side is Side.SELL and asset == r.symbol.split("/")[0].upper():
                total -= rest
        return total

    def _fill(
        self, po: _PaperOrder, qty: Decimal, price: Decimal, maker: bool, ts: datetime
    ) -> None:
        r = po.request
        fee = qty * price * self.fees.rate(maker)
        base = r.symbol.split("/")[0].upper()
        sign = 1 if r.side is Side.BUY else -1
        self._balances[base] = self._balances.get(base, ZERO) + sign * qty
        self._balances[self.quote_currency] -= sign * qty * price + fee
        po.filled += qty
        po.notional += qty * price
        po.fee += fee
        po.status = (
            VenueOrderStatus.FILLED
            if po.filled >= r.quantity
            else VenueOrderStatus.PARTIALLY_FILLED
        )
        self._fills.append(
            VenueFill(
                f"{po.venue_order_id}-{len(self._fills)}",
                po.venue_order_id,
                r.client_order_id,
                r.symbol,
                r.side,
                qty,
                price,
                fee,
                ts,
            )
        )

    def match(self) -> list[VenueOrderAck]:
        """Fill resting limit orders that the latest quotes cross (maker, at the limit)."""
        now = self.clock()
        out = []
        for po in self._working():
            r = po.request
            if po.status.final or r.type is not VenueOrderType.LIMIT:
                continue
            q = self.quotes.latest(r.symbol)
            if q is None or self._stale(q, now):
                continue
            assert r.limit_price is not None
            crosses = q.ask <= r.limit_price if r.side is Side.BUY else q.bid >= r.limit_price
            if crosses:
                self._fill(po, r.quantity - po.filled, r.limit_price, maker=True, ts=now)
                out.append(po.ack(now))
        return out

    def cancel(self, venue_order_id: str, *, symbol: str, side: Side) -> VenueOrderAck:
        now = self.clock()
        po = self._by_venue_id.get(venue_order_id)
        if po is not None:
            if not po.status.final:
                po.status = VenueOrderStatus.CANCELLED
            return po.ack(now)
        return VenueOrderAck(
            "", None, VenueOrderStatus.REJECTED, now, reason=str(RejectReason.UNKNOWN_ORDER)
        )

    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        return [
            VenueOrder(
                po.venue_order_id,
                po.request.client_order_id,
                po.request.symbol,
                po.request.side,
                po.request.type,
                po.request.quantity,
                po.request.limit_price,
                po.filled,
                po.status,
                po.created,
            )
            for po in self._working()
            if not po.status.final and (symbol is None or po.request.symbol == symbol)
        ]

    def balances(self) -> dict[str, Balance]:
        return {
            a: Balance(a, total, self._available(a)) for a, total in self._balances.items() if total
        }

    def fills_since(self, since: datetime) -> list[VenueFill]:
        return [f for f in self._fills if f.ts >= since]


__all__ = ["LedgerQuotes", "PaperSettings", "PaperVenue", "ReplayQuotes"]
