"""The venue interface: what the order manager needs from any place that executes orders.

Implemented by `PaperVenue` (fills against the Exchange ledger's latest quotes), the CoinSpot
private API client (`omc.floor.venues.coinspot`) and `CcxtVenue` (any CCXT exchange). The
order manager (`omc.floor.trading.oms`) and the Guard sit in front of every venue; a venue never
decides risk, it only executes and reports.

Conventions every implementation follows
-----------------------------------------
* **Symbols** are unified `BASE/QUOTE` strings in upper case: `"BTC/AUD"`, `"ETH/USDT"`.
  (CoinSpot: coin `btc`, market `aud` -> `"BTC/AUD"`.) Assets in `balances()` are upper case.
* **Numbers** are `Decimal` (never float): quantities in base units, prices in quote units
  per base unit, fees in the quote currency unless `VenueFill.fee_currency` says otherwise.
* **Times** are aware UTC datetimes.
* **Quantities are unsigned**; the direction is `side`.
* **Instrument rules** (`instrument(symbol)`, an `omc.floor.instruments.InstrumentSpec`:
  price tick, quantity step, minimum quantity and notional) come from the exchange; a
  venue refuses an order that breaks them (`invalid_order` off the step or tick,
  `below_minimum` below a minimum) instead of silently rounding it.
* **Client order ids** (`OrderRequest.client_order_id`, at most 36 characters of
  `[A-Za-z0-9_-]`) are chosen by the caller and unique for ever. `submit` is idempotent by
  it: a second `submit` with an id the venue object has already seen sends nothing and
  returns the current state of the first order (a venue without native client ids keeps the
  mapping client id -> venue order id itself). After a process restart the order manager
  never re-submits an order whose outcome is unknown: it journals it `unknown` and resolves
  it only from what the venue reports (`lookup`, else `open_orders()` / `fills_since()`).
* **Optional, for recovery**: `lookup(order: KnownOrder) -> VenueOrderAck | None` reports
  where an order the caller knows stands (None: in neither the open orders nor the order
  history, as of reads that succeeded; raises when a read fails); `adopt(orders)` hands a
  venue without native client ids (CoinSpot) what the journal knows after a restart, so it
  can map its order ids (and history entries) back to client order ids.
* **Rejections are answers, not exceptions.** A definite "no" (no fresh quote, insufficient
  funds, below the venue minimum, unknown symbol, refused by the exchange) comes back as a
  `VenueOrderAck` with `status=REJECTED`, a machine-readable `reason` (a `RejectReason`
  value, or a venue-specific lower_snake_case code) and a human `message`.
* **Exceptions mean "outcome unknown or call failed"**: `VenueUnavailable` for transport
  failures, timeouts, 5xx and rate limits (retrying the same call — `submit` with the same
  client order id — is safe); `VenueError` for anything else (bad credentials, a response
  that cannot be parsed).
* Methods are synchronous and may block on the network; implementations do their own
  rate limiting and retries with back-off (the shared `omc.core` HTTP helpers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

from omc.floor.instruments import BELOW_INSTRUMENT_MINIMUM, InstrumentSpec, Violation


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class VenueOrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class VenueOrderStatus(StrEnum):
    """Where an order stands at the venue (the order manager adds `new` before submission).

    `submitted` = accepted and working with nothing filled yet."""

    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def final(self) -> bool:
        return self in (
            VenueOrderStatus.FILLED,
            VenueOrderStatus.CANCELLED,
            VenueOrderStatus.REJECTED,
        )


class RejectReason(StrEnum):
    """Common machine-readable rejection codes (venues may add their own)."""

    NO_QUOTE = "no_quote"  # no quote at all for the symbol
    STALE_QUOTE = "stale_quote"  # the latest quote is older than the allowed age
    INSUFFICIENT_FUNDS = "insufficient_funds"
    INVALID_ORDER = "invalid_order"  # bad quantity/price/type for this venue
    BELOW_MINIMUM = "below_minimum"  # below the venue's minimum size or notional
    UNKNOWN_SYMBOL = "unknown_symbol"
    UNKNOWN_ORDER = "unknown_order"  # cancel of an order the venue does not know
    EXCHANGE_REJECTED = "exchange_rejected"  # the exchange said no; see `message`


def violation_reason(broken: Violation) -> RejectReason:
    """The rejection code of an order that breaks its instrument's rules."""
    if broken.code == BELOW_INSTRUMENT_MINIMUM:
        return RejectReason.BELOW_MINIMUM
    return RejectReason.INVALID_ORDER


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order to place. `limit_price` is required for LIMIT and ignored for MARKET."""

    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    type: VenueOrderType = VenueOrderType.MARKET
    limit_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class VenueOrderAck:
    """The venue's answer to `submit` / `cancel`: the order's state right after the call.

    `filled_quantity` / `average_price` / `fee` are cumulative for the order (a market order
    that filled at once comes back FILLED with them set; the individual executions are also
    reported by `fills_since`). `venue_order_id` is None only when the order was rejected
    before the venue assigned an id."""

    client_order_id: str
    venue_order_id: str | None
    status: VenueOrderStatus
    ts: datetime
    filled_quantity: Decimal = Decimal(0)
    average_price: Decimal | None = None
    fee: Decimal = Decimal(0)
    reason: str | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """A working order as the venue lists it (`open_orders`). `client_order_id` is None when
    the venue cannot tell which client id the order was placed with."""

    venue_order_id: str
    client_order_id: str | None
    symbol: str
    side: Side
    type: VenueOrderType
    quantity: Decimal
    limit_price: Decimal | None
    filled_quantity: Decimal
    status: VenueOrderStatus
    created: datetime


@dataclass(frozen=True, slots=True)
class KnownOrder:
    """What the caller's journal knows about one of its orders (for `adopt` / `lookup`):
    the request, the venue's id if it ever answered, when it was sent, the cumulative fill,
    and whether the outcome of sending it is unknown (no venue answer was ever received)."""

    request: OrderRequest
    venue_order_id: str | None
    sent_at: datetime
    filled: Decimal = Decimal(0)
    outcome_unknown: bool = False
    final: bool = False


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One execution. `fill_id` is unique and stable per venue (journal idempotency key)."""

    fill_id: str
    venue_order_id: str
    client_order_id: str | None
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    ts: datetime
    fee_currency: str | None = None  # None: the symbol's quote currency


@dataclass(frozen=True, slots=True)
class Balance:
    """Holdings of one asset: `total` = `available` + amount locked in open orders."""

    asset: str
    total: Decimal
    available: Decimal


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book. `ts` is when the venue (or the ledger) observed it."""

    symbol: str
    bid: Decimal
    ask: Decimal
    last: Decimal
    ts: datetime
    extra: dict[str, str] = field(default_factory=dict)


# how far in the future a quote's timestamp may lie (clocks of venue and host differ a little);
# anything later is treated like a stale quote: its time cannot be trusted
CLOCK_SKEW_S = 2.0


def quote_age_problem(
    ts: datetime, now: datetime, max_age_s: float, skew_s: float = CLOCK_SKEW_S
) -> str | None:
    """Why a quote stamped `ts` is unusable at `now` (too old, or stamped more than `skew_s`
    in the future), or None when it is fresh."""
    age = (now - ts).total_seconds()
    if age < -skew_s:
        return f"is stamped {-age:.0f}s in the future (clock skew allowance {skew_s:g}s)"
    if age > max_age_s:
        return f"is {age:.0f}s old (max {max_age_s:.0f}s)"
    return None


class VenueError(RuntimeError):
    """A venue call failed (bad credentials, unparseable answer, …)."""


class VenueUnavailable(VenueError):
    """The venue could not be reached or answered 5xx/429/timeout: the outcome of the call is
    unknown; repeating it (same client order id) is safe."""


@runtime_checkable
class Venue(Protocol):
    """Where orders execute. See the module docstring for the conventions."""

    name: str
    """Short stable id used in the journal: `paper`, `coinspot`, `ccxt:kraken`."""

    def submit(self, order: OrderRequest) -> VenueOrderAck:
        """Place `order`; idempotent by `order.client_order_id` (see module docstring).

        Returns SUBMITTED / PARTIALLY_FILLED / FILLED for an accepted order, REJECTED with a
        `reason` for a refused one. Raises `VenueUnavailable` when the outcome is unknown."""
        ...

    def cancel(self, venue_order_id: str, *, symbol: str, side: Side) -> VenueOrderAck:
        """Cancel a working order (symbol and side given because some venues need them).

        Returns the order's state afterwards: CANCELLED, or FILLED if it filled first.
        Cancelling an order that is already final is not an error (returns its state);
        an id the venue has never heard of returns REJECTED with reason `unknown_order`."""
        ...

    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        """Working orders (SUBMITTED or PARTIALLY_FILLED), optionally of one symbol."""
        ...

    def balances(self) -> dict[str, Balance]:
        """Asset (upper case) -> balance, for every asset with a non-zero total."""
        ...

    def quote(self, symbol: str) -> Quote:
        """Current top of book. Raises `VenueError` when the venue has none for `symbol`."""
        ...

    def instrument(self, symbol: str) -> InstrumentSpec:
        """The trading rules of `symbol` here. Raises `VenueError` for a symbol the venue
        does not trade (`VenueUnavailable` when its rules cannot be fetched now)."""
        ...

    def fills_since(self, since: datetime) -> list[VenueFill]:
        """Executions with `ts >= since`, oldest first (the caller de-duplicates by
        `fill_id`, so overlapping windows are fine)."""
        ...
