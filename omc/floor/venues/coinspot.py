"""`CoinSpotVenue`: live trading on CoinSpot behind the `Venue` interface.

Mapping (see `omc.floor.venues.base` for the interface rules):

* LIMIT orders are CoinSpot order-book orders (`/my/buy`, `/my/sell` with a `rate`; CoinSpot
  calls them "market orders"); non-AUD markets pass `markettype`. They fill at their rate.
* MARKET orders are CoinSpot's instant "buy now" / "sell now" in coin units (AUD market
  only); they come back FILLED, with price and fee read from the order history.
* `open_orders` lists `/ro/my/orders/market/open` (CoinSpot's conditional "limit orders" —
  stop loss, take profit — are not placed by OMC and not listed); `fills_since` reads
  `/ro/my/orders/completed`; `balances` reads `/ro/my/balances` and derives `available`
  from what open orders lock; `quote` reads the public `/pubapi/v2/latest/{coin}`.

Idempotency without client order ids: CoinSpot has none, so the venue keeps
`client_order_id -> order` itself, and a repeated `submit` of a known id sends nothing. When a
submit fails *after its bytes may have reached CoinSpot* (read timeout, reset, 5xx, an
unreadable answer) the order is marked "outcome unknown" and `VenueUnavailable` is raised.
The next `submit` with the same client id reconciles before anything is sent again: it
waits until `settle_s` after the first attempt, then looks for an order it does not already
own with the same coin, side and rate, placed since the attempt, in the open orders (amount
<= requested, since partial fills shrink it) and then in the completed orders (coin, side,
rate — or amount for instant trades — and date); a match is adopted, and only when there is
none is the order sent again. CoinSpot refuses any nonce below the last one it processed,
so once those read calls (later nonces) have been answered, the lost request can no longer
execute late. History entries are claimed by at most one order (`fill_id`), so two equal
orders placed close together are never both matched to the same execution.

CoinSpot history entries carry no fill id: `fill_id` is a digest of the entry (side, market,
date, amount, rate, total) plus its rank among identical entries; fees are AUD
(`audfeeExGst + audGst`). History entries are attributed to this venue's orders by id when
CoinSpot sends one, else by (coin, side, rate) for order-book fills and by claim for instant
trades; an entry that matches no known order gets `venue_order_id = "unknown"`.

After a restart the venue knows nothing: `adopt(orders)` gives it what the journal knows
(venue order id, coin, side, rate, amount, sent time, fill so far) so open orders and history
entries map back to client order ids — final orders too, each claiming at most its journaled
fill, so their executions are never taken for another order's. `lookup(order)` then reports
where an order stands from reads only (never a send): found among the open orders, or matched
in the history (by id, else coin + side + rate, or side + amount for instant trades, placed
since it was sent); None when neither read shows it (an exception when a read fails).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from omc.core.config import Settings
from omc.core.http import HttpError, PayloadError, RequestFailed
from omc.core.time import utcnow
from omc.floor.instruments import InstrumentSpec
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
)
from omc.floor.venues.coinspot_client import CoinSpotPrivateClient
from omc.floor.venues.coinspot_models import (
    CoinSpotAPIError,
    CoinSpotAuthError,
    CoinSpotOutcomeUnknown,
    CompletedOrder,
    OpenOrder,
)
from omc.floor.venues.coinspot_signing import CoinSpotCredentials
from omc.ledgers.exchange.coinspot import CoinSpotClient

UNKNOWN_ORDER_ID = "unknown"
PRECISION = Decimal("0.00000001")  # CoinSpot: amounts and rates to 8 decimal places
# CoinSpot's API documentation (coinspot.com.au/v2/api) publishes the precision but no minimum
# order size or value; none is assumed (CoinSpot's own refusal comes back `below_minimum`)
RULES_SOURCE = "CoinSpot published precision (8 dp amounts and rates; no documented minimum)"
T = TypeVar("T")
_SYMBOL = re.compile(r"^([A-Z0-9]+)/([A-Z0-9]+)$")


@dataclass
class _Tracked:
    """What the venue knows about one of its orders."""

    request: OrderRequest
    coin: str
    market: str
    sent_at: datetime
    venue_order_id: str | None = None
    status: VenueOrderStatus = VenueOrderStatus.SUBMITTED
    filled: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)  # sum of filled quantity x price
    fee: Decimal = Decimal(0)
    outcome_unknown: bool = False
    cancel_requested: bool = False
    created: datetime = field(default_factory=utcnow)
    amounts: dict[str, Decimal] = field(default_factory=dict)  # claimed fill id -> quantity
    limit: Decimal | None = None  # the most it may claim (adopted final orders: their fill)
    adopted_final: bool = False

    @property
    def room(self) -> Decimal:
        return self.request.quantity if self.limit is None else self.limit

    @property
    def side(self) -> Side:
        return self.request.side

    @property
    def claimed_amount(self) -> Decimal:
        return sum(self.amounts.values(), Decimal(0))


class CoinSpotVenue:
    """The `Venue` for CoinSpot (see the module docstring)."""

    name = "coinspot"

    def __init__(
        self,
        client: CoinSpotPrivateClient,
        public: CoinSpotClient | None = None,
        *,
        settle_s: float = 2.0,
        window_s: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.client = client
        self.public = public
        self.settle_s = settle_s
        self.window = timedelta(seconds=window_s)  # clock skew / look-back for matching
        self.sleep = sleep
        self.clock = clock
        self._orders: dict[str, _Tracked] = {}
        self._by_venue_id: dict[str, str] = {}
        self._claimed: dict[str, str] = {}  # fill id -> client order id

    @classmethod
    def from_settings(
        cls, settings: Settings, credentials: CoinSpotCredentials | None = None, **kwargs: Any
    ) -> CoinSpotVenue:
        return cls(
            CoinSpotPrivateClient.from_settings(settings, credentials),
            CoinSpotClient.from_settings(settings),
            **kwargs,
        )

    def close(self) -> None:
        self.client.close()
        if self.public is not None:
            self.public.close()

    def __repr__(self) -> str:
        return f"CoinSpotVenue({self.client!r}, orders={len(self._orders)})"

    def instrument(self, symbol: str) -> InstrumentSpec:
        """CoinSpot's rules: amounts and rates to 8 decimal places, no published minimum."""
        coin, market = _split(symbol)
        return InstrumentSpec(f"{coin}/{market}", PRECISION, PRECISION, source=RULES_SOURCE)

    # ----------------------------------------------------------------- submit

    def submit(self, order: OrderRequest) -> VenueOrderAck:
        known = self._orders.get(order.client_order_id)
        if known is not None and not known.outcome_unknown:
            return self._ack(self._guard(lambda: self._refresh(known)))
        problem = self._validate(order)
        if problem is not None:
            return self._rejected(order, RejectReason.INVALID_ORDER, problem)
        coin, market = _split(order.symbol)
        if known is None:
            return self._send(_Tracked(order, coin, market, sent_at=self.clock()))
        # the last attempt may or may not have reached CoinSpot: look before resending
        wait = (known.sent_at + timedelta(seconds=self.settle_s) - self.clock()).total_seconds()
        if wait > 0:
            self.sleep(wait)
        if self._guard(lambda: self._reconcile(known)):
            known.outcome_unknown = False
            return self._ack(known)
        return self._send(known)

    def _send(self, tracked: _Tracked) -> VenueOrderAck:
        order = tracked.request
        tracked.sent_at = self.clock()
        self._orders[order.client_order_id] = tracked
        try:
            if order.type is VenueOrderType.LIMIT:
                assert order.limit_price is not None
                place = self.client.buy if order.side is Side.BUY else self.client.sell
                placed = place(
                    tracked.coin,
                    order.quantity,
                    order.limit_price,
                    None if tracked.market == "AUD" else tracked.market,
                )
                tracked.venue_order_id = placed.id
                self._by_venue_id[placed.id] = order.client_order_id
                tracked.outcome_unknown = False
                tracked.created = tracked.sent_at
                tracked.status = VenueOrderStatus.SUBMITTED
                return self._ack(tracked)
            trade = (self.client.buy_now if order.side is Side.BUY else self.client.sell_now)(
                tracked.coin, order.quantity, "coin"
            )
        except (CoinSpotOutcomeUnknown, PayloadError) as exc:
            tracked.outcome_unknown = True
            raise VenueUnavailable(
                f"coinspot: outcome of {order.client_order_id} unknown ({exc}); submit it "
                "again with the same client order id to reconcile"
            ) from exc
        except CoinSpotAuthError as exc:
            del self._orders[order.client_order_id]
            raise VenueError(str(exc)) from exc
        except CoinSpotAPIError as exc:
            del self._orders[order.client_order_id]
            return self._rejected(order, _reason(exc.api_message), exc.api_message)
        except RequestFailed as exc:  # never reached CoinSpot (connect errors, 429s exhausted)
            del self._orders[order.client_order_id]
            raise VenueUnavailable(f"coinspot: {exc}") from exc
        # an instant trade: filled now; price and fee from the history entry
        tracked.outcome_unknown = False
        tracked.venue_order_id = f"now-{order.client_order_id}"
        self._by_venue_id[tracked.venue_order_id] = order.client_order_id
        tracked.status = VenueOrderStatus.FILLED
        tracked.filled = trade.amount
        price = trade.price or Decimal(0)
        tracked.notional = trade.amount * price
        # the trade happened; if the history is unreachable, price/fee refine later
        with contextlib.suppress(HttpError, PayloadError):
            self._claim_instant(tracked)
        return self._ack(tracked)

    # ----------------------------------------------------------------- cancel

    def cancel(self, venue_order_id: str, *, symbol: str, side: Side) -> VenueOrderAck:
        client_id = self._by_venue_id.get(venue_order_id)
        tracked = self._orders.get(client_id) if client_id else None
        if tracked is not None and tracked.status.final:
            return self._ack(tracked)
        coin, _ = _split(symbol)
        open_now = {o.id: o for o in self._guard(lambda: self.client.open_market_orders(coin))}
        if tracked is None:
            if venue_order_id not in open_now:
                return self._unknown_order(venue_order_id)
            adopted = open_now[venue_order_id]
            tracked = self._adopt_foreign(adopted, symbol)
        working = open_now.get(venue_order_id)
        if working is None:  # gone: filled, or cancelled by an earlier attempt
            return self._ack(self._settle_gone(tracked))
        tracked.filled = tracked.request.quantity - working.amount
        tracked.cancel_requested = True
        cancel = self.client.cancel_buy if side is Side.BUY else self.client.cancel_sell
        try:
            cancel(venue_order_id)
        except CoinSpotOutcomeUnknown as exc:
            raise VenueUnavailable(f"coinspot: cancel of {venue_order_id} unknown ({exc})") from exc
        except CoinSpotAuthError as exc:
            raise VenueError(str(exc)) from exc
        except CoinSpotAPIError:  # "not found": it filled (or was cancelled) meanwhile
            return self._ack(self._guard(lambda: self._settle_gone(tracked)))
        except RequestFailed as exc:
            raise VenueUnavailable(f"coinspot: {exc}") from exc
        tracked.status = VenueOrderStatus.CANCELLED
        since = tracked.sent_at - self.window
        self._guard(lambda: self._attribute(self.client.completed_orders(start=since)))
        return self._ack(tracked)

    def _settle_gone(self, tracked: _Tracked) -> _Tracked:
        """An order no longer open: FILLED unless we asked to cancel it and the history shows
        less than its quantity."""
        self._attribute(self.client.completed_orders(start=tracked.sent_at - self.window))
        if tracked.cancel_requested and tracked.filled < tracked.request.quantity:
            tracked.status = VenueOrderStatus.CANCELLED
        else:
            self._mark_filled(tracked)
        return tracked

    # ----------------------------------------------------------------- recovery

    def adopt(self, orders: Iterable[KnownOrder]) -> None:
        """Track the journal's orders again after a restart (see the module docstring)."""
        for known in sorted(orders, key=lambda k: k.sent_at):
            request = known.request
            if request.client_order_id in self._orders:
                continue
            coin, market = _split(request.symbol)
            vid = known.venue_order_id
            tracked = _Tracked(
                request,
                coin,
                market,
                sent_at=known.sent_at,
                venue_order_id=vid,
                filled=known.filled,
                outcome_unknown=known.outcome_unknown or vid is None,
                created=known.sent_at,
            )
            if known.final:
                tracked.adopted_final, tracked.limit = True, known.filled
                tracked.status = (
                    VenueOrderStatus.FILLED
                    if known.filled >= request.quantity
                    else VenueOrderStatus.CANCELLED
                )
            self._orders[request.client_order_id] = tracked
            if vid is not None:
                self._by_venue_id[vid] = request.client_order_id

    def lookup(self, known: KnownOrder) -> VenueOrderAck | None:
        """Where an order stands, from reads only (see the module docstring)."""
        tracked = self._orders.get(known.request.client_order_id)
        if tracked is None:
            self.adopt([known])
            tracked = self._orders[known.request.client_order_id]
        if tracked.outcome_unknown:
            self._guard(lambda: self._preclaim(tracked))
            if not self._guard(lambda: self._reconcile(tracked)):
                return None
            tracked.outcome_unknown = False
            return self._ack(tracked)
        if tracked.status.final or tracked.request.type is VenueOrderType.MARKET:
            return self._ack(tracked)
        return self._ack(self._guard(lambda: self._locate(tracked)))

    def _preclaim(self, tracked: _Tracked) -> None:
        """Let adopted final instant trades near `tracked` claim their history entries
        first, so an equal unknown trade is never matched to one of theirs."""
        since = tracked.sent_at - 2 * self.window
        for other in sorted(self._orders.values(), key=lambda t: t.sent_at):
            if (
                other.adopted_final
                and not other.amounts
                and other.filled > 0
                and other.request.type is VenueOrderType.MARKET
                and other.coin == tracked.coin
                and other.sent_at >= since
            ):
                self._claim_instant(other)

    def _locate(self, tracked: _Tracked) -> _Tracked:
        """An order-book order with a known id: working (open orders), else final — FILLED
        when the history shows all of it, else CANCELLED with what it shows."""
        assert tracked.venue_order_id is not None
        listed = {o.id: o for o in self.client.open_market_orders(tracked.coin)}
        self._attribute(
            self.client.completed_orders(tracked.coin, start=tracked.sent_at - self.window)
        )
        working = listed.get(tracked.venue_order_id)
        quantity = tracked.request.quantity
        if working is not None:
            tracked.filled = max(tracked.filled, quantity - working.amount)
            tracked.status = (
                VenueOrderStatus.PARTIALLY_FILLED
                if tracked.filled > 0
                else VenueOrderStatus.SUBMITTED
            )
            return tracked
        tracked.filled = max(tracked.filled, tracked.claimed_amount)
        if tracked.filled >= quantity:
            self._mark_filled(tracked)
        else:
            tracked.status = VenueOrderStatus.CANCELLED
        return tracked

    # ----------------------------------------------------------------- queries

    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        coin = _split(symbol)[0] if symbol else None
        listed = self._guard(lambda: self.client.open_market_orders(coin))
        out = []
        for o in listed:
            sym = _symbol(o.coin, o.market)
            if symbol and sym != symbol:
                continue
            client_id = self._by_venue_id.get(o.id)
            tracked = self._orders.get(client_id) if client_id else None
            quantity = tracked.request.quantity if tracked else o.amount
            filled = quantity - o.amount
            if tracked is not None:
                tracked.filled = max(tracked.filled, filled)
            out.append(
                VenueOrder(
                    venue_order_id=o.id,
                    client_order_id=client_id,
                    symbol=sym,
                    side=Side(o.side),
                    type=VenueOrderType.LIMIT,
                    quantity=quantity,
                    limit_price=o.rate,
                    filled_quantity=filled,
                    status=VenueOrderStatus.PARTIALLY_FILLED
                    if filled > 0
                    else VenueOrderStatus.SUBMITTED,
                    created=o.created or (tracked.created if tracked else self.clock()),
                )
            )
        return out

    def balances(self) -> dict[str, Balance]:
        held = self._guard(self.client.balances)
        locked: dict[str, Decimal] = {}
        for o in self._guard(lambda: self.client.open_market_orders()):
            if o.side == "buy":
                quote = (o.market or "BTC/AUD").split("/")[-1].upper()
                locked[quote] = locked.get(quote, Decimal(0)) + o.amount * o.rate
            else:
                locked[o.coin.upper()] = locked.get(o.coin.upper(), Decimal(0)) + o.amount
        return {
            coin: Balance(
                coin, b.balance, max(Decimal(0), b.balance - locked.get(coin, Decimal(0)))
            )
            for coin, b in held.items()
            if b.balance != 0
        }

    def quote(self, symbol: str) -> Quote:
        coin, market = _split(symbol)
        if self.public is None:
            raise VenueError("coinspot: no public client configured for quotes")
        try:
            q = self.public.latest(coin, None if market == "AUD" else market)
        except (RequestFailed, PayloadError) as exc:
            raise VenueError(f"coinspot: no quote for {symbol}: {exc}") from exc
        return Quote(symbol, q.bid, q.ask, q.last, self.clock())

    def fills_since(self, since: datetime) -> list[VenueFill]:
        entries = self._guard(lambda: self.client.completed_orders(start=since))
        ids = self._attribute(entries)
        fills = []
        for entry, fill_id in zip(entries, ids, strict=True):
            if entry.solddate < since:
                continue
            client_id = self._claimed.get(fill_id)
            tracked = self._orders.get(client_id) if client_id else None
            venue_id = entry.id or (tracked.venue_order_id if tracked else None)
            fills.append(
                VenueFill(
                    fill_id=fill_id,
                    venue_order_id=venue_id or UNKNOWN_ORDER_ID,
                    client_order_id=client_id,
                    symbol=_symbol(entry.coin, entry.market),
                    side=Side(entry.side),
                    quantity=entry.amount,
                    price=entry.rate,
                    fee=entry.fee_aud,
                    ts=entry.solddate,
                    fee_currency="AUD",
                )
            )
        fills.sort(key=lambda f: (f.ts, f.fill_id))
        return fills

    # ----------------------------------------------------------------- reconciliation

    def _reconcile(self, tracked: _Tracked) -> bool:
        """Find the order a lost submit may have created; adopt it. True when found."""
        order = tracked.request
        since = tracked.sent_at - self.window
        if order.type is VenueOrderType.LIMIT:
            owned = set(self._by_venue_id)
            candidates = [
                o
                for o in self.client.open_market_orders(tracked.coin)
                if o.id not in owned
                and self._same_limit(tracked, o)
                and (o.created is None or o.created >= since)
            ]
            if candidates:
                found = min(candidates, key=lambda o: (o.created or since, o.id))
                tracked.venue_order_id = found.id
                self._by_venue_id[found.id] = order.client_order_id
                tracked.created = found.created or tracked.sent_at
                tracked.filled = order.quantity - found.amount
                tracked.status = (
                    VenueOrderStatus.PARTIALLY_FILLED
                    if tracked.filled > 0
                    else VenueOrderStatus.SUBMITTED
                )
                self._attribute(self.client.completed_orders(tracked.coin, start=since))
                return True
            history = self.client.completed_orders(tracked.coin, start=since)
            self._attribute(history)
            ids = _fill_ids(history)
            matched = [
                (e, fid)
                for e, fid in zip(history, ids, strict=True)
                if fid not in self._claimed
                and e.side == order.side.value
                and e.rate == order.limit_price
                and e.solddate >= since
            ]
            if sum((e.amount for e, _ in matched), Decimal(0)) >= order.quantity:
                tracked.venue_order_id = f"filled-{order.client_order_id}"
                self._by_venue_id[tracked.venue_order_id] = order.client_order_id
                remaining = order.quantity
                for entry, fid in sorted(matched, key=lambda m: m[0].solddate):
                    if remaining <= 0:
                        break
                    self._claim(tracked, entry, fid)
                    remaining -= entry.amount
                self._mark_filled(tracked)
                return True
            return False
        return self._claim_instant(tracked, since=since)

    def _claim_instant(self, tracked: _Tracked, since: datetime | None = None) -> bool:
        """Claim the history entry of an instant trade (same coin, side and amount)."""
        since = since or tracked.sent_at - self.window
        history = self.client.completed_orders(tracked.coin, start=since)
        for entry, fid in sorted(
            zip(history, _fill_ids(history), strict=True), key=lambda m: m[0].solddate
        ):
            if (
                fid not in self._claimed
                and entry.side == tracked.side.value
                and entry.amount == tracked.request.quantity
                and entry.solddate >= since
            ):
                if tracked.venue_order_id is None:
                    tracked.venue_order_id = f"now-{tracked.request.client_order_id}"
                    self._by_venue_id[tracked.venue_order_id] = tracked.request.client_order_id
                tracked.filled = tracked.notional = Decimal(0)
                self._claim(tracked, entry, fid)
                self._mark_filled(tracked)
                return True
        return False

    def _attribute(self, entries: list[CompletedOrder]) -> list[str]:
        """Give each history entry a fill id and, when possible, an owner among our
        order-book orders (by id, else coin + side + rate with room left)."""
        ids = _fill_ids(entries)
        for entry, fid in sorted(zip(entries, ids, strict=True), key=lambda m: m[0].solddate):
            if fid in self._claimed:
                continue
            owner = self._owner(entry)
            if owner is not None:
                self._claim(owner, entry, fid)
        return ids

    def _owner(self, entry: CompletedOrder) -> _Tracked | None:
        if entry.id and entry.id in self._by_venue_id:
            return self._orders[self._by_venue_id[entry.id]]
        for tracked in sorted(self._orders.values(), key=lambda t: t.created):
            order = tracked.request
            if (
                order.type is VenueOrderType.LIMIT
                and tracked.venue_order_id is not None
                and tracked.coin == entry.coin.upper()
                and order.side.value == entry.side
                and order.limit_price == entry.rate
                and entry.solddate >= tracked.created - self.window
                and tracked.claimed_amount + entry.amount <= tracked.room
            ):
                return tracked
        return None

    def _claim(self, tracked: _Tracked, entry: CompletedOrder, fill_id: str) -> None:
        self._claimed[fill_id] = tracked.request.client_order_id
        tracked.amounts[fill_id] = entry.amount
        tracked.fee += entry.fee_aud
        if tracked.request.type is VenueOrderType.MARKET:
            tracked.filled += entry.amount
            tracked.notional += entry.amount * entry.rate
        else:
            tracked.filled = max(tracked.filled, tracked.claimed_amount)

    def _refresh(self, tracked: _Tracked) -> _Tracked:
        """Bring a working order-book order up to date from the open orders list."""
        if tracked.status.final or tracked.venue_order_id is None:
            return tracked
        listed = {o.id: o for o in self.client.open_market_orders(tracked.coin)}
        working = listed.get(tracked.venue_order_id)
        if working is None:
            return self._settle_gone(tracked)
        tracked.filled = tracked.request.quantity - working.amount
        tracked.status = (
            VenueOrderStatus.PARTIALLY_FILLED if tracked.filled > 0 else VenueOrderStatus.SUBMITTED
        )
        if tracked.filled > tracked.claimed_amount:
            self._attribute(self.client.completed_orders(tracked.coin, start=tracked.sent_at))
        return tracked

    # ----------------------------------------------------------------- helpers

    def _mark_filled(self, tracked: _Tracked) -> None:
        tracked.status = VenueOrderStatus.FILLED
        if tracked.request.type is VenueOrderType.LIMIT:
            tracked.filled = tracked.request.quantity

    def _same_limit(self, tracked: _Tracked, o: OpenOrder) -> bool:
        order = tracked.request
        return (
            o.side == order.side.value
            and o.rate == order.limit_price
            and o.amount <= order.quantity
            and (o.market or f"{tracked.coin}/AUD").upper() == f"{tracked.coin}/{tracked.market}"
        )

    def _adopt_foreign(self, o: OpenOrder, symbol: str) -> _Tracked:
        request = OrderRequest(
            client_order_id=f"coinspot-{o.id}"[:36],
            symbol=symbol,
            side=Side(o.side),
            quantity=o.amount,
            type=VenueOrderType.LIMIT,
            limit_price=o.rate,
        )
        coin, market = _split(symbol)
        created = o.created or self.clock()
        tracked = _Tracked(request, coin, market, created, venue_order_id=o.id, created=created)
        self._orders[request.client_order_id] = tracked
        self._by_venue_id[o.id] = request.client_order_id
        return tracked

    def _ack(self, tracked: _Tracked) -> VenueOrderAck:
        order = tracked.request
        if order.type is VenueOrderType.LIMIT:
            average = order.limit_price if tracked.filled > 0 else None
        else:
            average = tracked.notional / tracked.filled if tracked.filled else None
        status = tracked.status
        if status is VenueOrderStatus.SUBMITTED and tracked.filled > 0:
            status = VenueOrderStatus.PARTIALLY_FILLED
        return VenueOrderAck(
            client_order_id=order.client_order_id,
            venue_order_id=tracked.venue_order_id,
            status=status,
            ts=self.clock(),
            filled_quantity=tracked.filled,
            average_price=average,
            fee=tracked.fee,
        )

    def _rejected(self, order: OrderRequest, reason: str, message: str) -> VenueOrderAck:
        return VenueOrderAck(
            client_order_id=order.client_order_id,
            venue_order_id=None,
            status=VenueOrderStatus.REJECTED,
            ts=self.clock(),
            reason=reason,
            message=message,
        )

    def _unknown_order(self, venue_order_id: str) -> VenueOrderAck:
        return VenueOrderAck(
            client_order_id="",
            venue_order_id=venue_order_id,
            status=VenueOrderStatus.REJECTED,
            ts=self.clock(),
            reason=RejectReason.UNKNOWN_ORDER,
            message=f"no open CoinSpot order {venue_order_id}",
        )

    def _validate(self, order: OrderRequest) -> str | None:
        if not _SYMBOL.match(order.symbol):
            return f"symbol {order.symbol!r} is not BASE/QUOTE"
        spec = self.instrument(order.symbol)
        if order.quantity <= 0 or spec.violation(order.quantity) is not None:
            return "quantity must be positive with at most 8 decimal places"
        if order.type is VenueOrderType.LIMIT:
            price = order.limit_price
            if price is None or price <= 0 or spec.violation(order.quantity, limit_price=price):
                return "limit price must be positive with at most 8 decimal places"
        elif not order.symbol.endswith("/AUD"):
            return "CoinSpot instant (market) orders trade against AUD only"
        return None

    @staticmethod
    def _guard(call: Callable[[], T]) -> T:
        return _guard(call)


def _guard(call: Callable[[], T]) -> T:
    """Run a read call, translating client errors into venue errors."""
    try:
        return call()
    except CoinSpotAuthError as exc:
        raise VenueError(str(exc)) from exc
    except CoinSpotAPIError as exc:
        raise VenueError(str(exc)) from exc
    except PayloadError as exc:
        raise VenueError(f"coinspot: unusable answer: {exc}") from exc
    except RequestFailed as exc:
        raise VenueUnavailable(str(exc)) from exc


def _split(symbol: str) -> tuple[str, str]:
    match = _SYMBOL.match(symbol.upper())
    if not match:
        raise VenueError(f"symbol {symbol!r} is not BASE/QUOTE")
    return match.group(1), match.group(2)


def _symbol(coin: str, market: str | None) -> str:
    return (market or f"{coin}/AUD").upper()


def _reason(message: str) -> str:
    text = message.lower()
    if "insufficient" in text or "balance" in text:
        return RejectReason.INSUFFICIENT_FUNDS
    if "coin not found" in text or "invalid coin" in text:
        return RejectReason.UNKNOWN_SYMBOL
    if "minimum" in text:
        return RejectReason.BELOW_MINIMUM
    return RejectReason.EXCHANGE_REJECTED


def _fill_ids(entries: list[CompletedOrder]) -> list[str]:
    """Stable ids for history entries: a digest of the entry plus its rank among equals."""
    seen: dict[str, int] = {}
    out = []
    for entry in sorted(entries, key=lambda e: e.solddate):
        text = "|".join(
            str(part)
            for part in (
                entry.side,
                _symbol(entry.coin, entry.market),
                entry.solddate.isoformat(),
                entry.amount.normalize(),
                entry.rate.normalize(),
                entry.total.normalize() if entry.total is not None else "",
            )
        )
        rank = seen.get(text, 0)
        seen[text] = rank + 1
        out.append((id(entry), hashlib.sha256(f"{text}|{rank}".encode()).hexdigest()[:32]))
    by_obj = dict(out)
    return [by_obj[id(entry)] for entry in entries]
