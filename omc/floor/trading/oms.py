"""Orders: the state machine, client order ids, and the order manager every order path uses.

State machine (`OrderState`)::

    new ──► submitted ──► partially_filled ──► filled
     │          │  │             │  └────────► cancelled
     │          │  └──► filled   └──► (more partial fills)
     │          └──► cancelled / rejected
     └──► rejected / filled / partially_filled / cancelled (a venue may answer a submit
                                                             with any of these at once)

Final states (filled, cancelled, rejected) never change again; any other move raises
`InvalidTransition`. Fill quantities only grow.

`OrderManager.place` is the one way an order reaches a venue (strategy orders, target
weights, flattening): kill switch and Guard first, with the venue's instrument rules (a
denial is journaled with its reason code and nothing is sent; a symbol the venue has no rules
for is denied `unknown_instrument`; a flattening order is rounded down to the quantity step),
then an `order` event (state `new`, with a client order id derived
from the journal position, so the same decision after a crash gets the same id), then
`venue.submit` — retried with the same client order id when the outcome is unknown, which the
venue de-duplicates — then an `order_update` event with the venue's cumulative fill. For an
external venue the `order` event is committed *before* the submit (write-ahead), so a crash
in between leaves a `new` order that `reconcile()` resolves against the venue at start-up.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from omc.floor.venues.base import (
    OrderRequest,
    Quote,
    Side,
    Venue,
    VenueError,
    VenueOrderAck,
    VenueOrderStatus,
    VenueOrderType,
    VenueUnavailable,
)

if TYPE_CHECKING:
    from omc.floor.instruments import InstrumentSpec
    from omc.floor.trading.guard import Denial, Guard, KillSwitchStore
    from omc.floor.trading.journal import Journal

log = logging.getLogger(__name__)
ZERO = Decimal(0)


class OrderState(StrEnum):
    NEW = "new"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def final(self) -> bool:
        return self in FINAL


FINAL = frozenset({OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED})
ALLOWED: dict[OrderState, frozenset[OrderState]] = {
    OrderState.NEW: frozenset(OrderState) - {OrderState.NEW},
    OrderState.SUBMITTED: frozenset(
        {
            OrderState.SUBMITTED,
            OrderState.PARTIALLY_FILLED,
            OrderState.FILLED,
            OrderState.CANCELLED,
            OrderState.REJECTED,
        }
    ),
    OrderState.PARTIALLY_FILLED: frozenset(
        {OrderState.PARTIALLY_FILLED, OrderState.FILLED, OrderState.CANCELLED}
    ),
    OrderState.FILLED: frozenset(),
    OrderState.CANCELLED: frozenset(),
    OrderState.REJECTED: frozenset(),
}


class InvalidTransition(RuntimeError):
    """An order was asked to move between states the state machine does not allow."""


@dataclass(slots=True)
class ManagedOrder:
    """An order as the journal knows it. Fill figures are cumulative."""

    client_order_id: str
    strategy: str
    symbol: str
    side: Side
    quantity: Decimal
    type: VenueOrderType
    limit_price: Decimal | None
    created: datetime
    tag: str = ""
    state: OrderState = OrderState.NEW
    venue_order_id: str | None = None
    filled: Decimal = ZERO
    notional: Decimal = ZERO
    fee: Decimal = ZERO
    reason: str | None = None
    number: int = 0

    @property
    def open(self) -> bool:
        return not self.state.final

    @property
    def average_price(self) -> Decimal | None:
        return self.notional / self.filled if self.filled else None

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity if self.side is Side.BUY else -self.quantity

    def transition(self, to: OrderState) -> None:
        if to is self.state and not self.state.final:
            return
        if to not in ALLOWED[self.state]:
            raise InvalidTransition(f"order {self.client_order_id}: {self.state} -> {to}")
        self.state = to

    def as_dict(self) -> dict[str, Any]:
        return {
            "client_order_id": self.client_order_id,
            "strategy": self.strategy,
            "symbol": self.symbol,
            "side": str(self.side),
            "quantity": self.quantity,
            "type": str(self.type),
            "limit_price": self.limit_price,
            "state": str(self.state),
            "venue_order_id": self.venue_order_id,
            "filled": self.filled,
            "average_price": self.average_price,
            "fee": self.fee,
            "created": self.created.isoformat(),
            "tag": self.tag,
            "reason": self.reason,
        }


def client_order_id(account: str, ordinal: int) -> str:
    """A client order id unique for ever per account and journal position (≤ 36 chars)."""
    digest = hashlib.sha1(account.encode()).hexdigest()[:10]
    return f"omc{digest}-{ordinal}"


class OrderManager:
    """Guard → journal → venue for one account (see module docstring)."""

    def __init__(
        self,
        journal: Journal,
        venue: Venue,
        guard: Guard,
        kill: KillSwitchStore | None = None,
        *,
        external: bool | None = None,
        submit_retries: int = 3,
    ) -> None:
        self.journal = journal
        self.state = journal.state
        self.venue = venue
        self.guard = guard
        self.kill = kill
        self.external = (not getattr(venue, "simulated", False)) if external is None else external
        self.submit_retries = submit_retries

    # ------------------------------------------------------------------ placing
    def kill_active(self) -> bool:
        return self.kill is not None and self.kill.get().active

    def place(
        self,
        strategy: str,
        symbol: str,
        side: Side,
        quantity: Decimal,
        *,
        now: datetime,
        type: VenueOrderType = VenueOrderType.MARKET,
        limit_price: Decimal | None = None,
        tag: str = "",
        reason: dict[str, Any] | None = None,
        flatten: bool = False,
    ) -> ManagedOrder | Denial:
        """Check, journal and submit one order; returns the order or the Guard's denial.

        `flatten=True` is only for the kill switch's own flattening: such an order must
        reduce a position and skips the kill-switch check (nothing else)."""
        quote = self._quote(symbol)
        killed = self.kill_active()
        spec, no_spec = self._instrument(symbol)
        if flatten and spec is not None:  # sell what can be sold; dust below the step stays
            quantity = spec.floor_quantity(quantity) or quantity
        denial = self.guard.check(
            self.state,
            strategy=strategy,
            symbol=symbol,
            side=side,
            quantity=quantity,
            price=self._exec_price(quote, side, limit_price),
            quote_ts=quote.ts if quote is not None else None,
            now=now,
            kill_active=killed and not flatten,
            limit_price=limit_price if type is VenueOrderType.LIMIT else None,
            instrument=spec,
        )
        if denial is None and spec is None:
            from omc.floor.trading.guard import Denial, DenyCode

            denial = Denial(DenyCode.UNKNOWN_INSTRUMENT, no_spec)
        if denial is None and flatten:
            pos = self.state.book.position(symbol)
            if not pos or (side is Side.BUY) == (pos > 0) or quantity > abs(pos):
                from omc.floor.trading.guard import Denial, DenyCode

                denial = Denial(DenyCode.KILL_SWITCH, "flatten orders may only reduce")
        if denial is not None:
            self.journal.append(
                "denial",
                {
                    "code": str(denial.code),
                    "message": denial.message,
                    "side": str(side),
                    "quantity": quantity,
                    "limit_price": limit_price,
                    "reason": reason or {},
                },
                ts=now,
                strategy=strategy,
                symbol=symbol,
            )
            return denial
        cid = client_order_id(self.journal.account, self.journal.next_ordinal)
        self.journal.append(
            "order",
            {
                "client_order_id": cid,
                "side": str(side),
                "quantity": quantity,
                "type": str(type),
                "limit_price": limit_price,
                "tag": tag,
                "reason": reason or {},
            },
            ts=now,
            strategy=strategy,
            symbol=symbol,
            client_order_id=cid,
        )
        if self.external:
            self.journal.flush()  # write-ahead: the intent is durable before it is sent
        order = self.state.orders[cid]
        ack = self._submit(order)
        if ack is not None:
            self.record(ack, now)
        return order

    def instrument(self, symbol: str) -> InstrumentSpec | None:
        """The venue's rules for `symbol`, or None when it has none (or cannot say now)."""
        return self._instrument(symbol)[0]

    def _instrument(self, symbol: str) -> tuple[InstrumentSpec | None, str]:
        try:
            return self.venue.instrument(symbol), ""
        except VenueError as exc:
            return None, f"no trading rules for {symbol} at {self.venue.name}: {exc}"

    def _quote(self, symbol: str) -> Quote | None:
        try:
            return self.venue.quote(symbol)
        except VenueError:
            return None

    @staticmethod
    def _exec_price(quote: Quote | None, side: Side, limit: Decimal | None) -> Decimal | None:
        if quote is None:
            return limit
        price = quote.ask if side is Side.BUY else quote.bid
        if limit is not None:
            price = min(price, limit) if side is Side.BUY else max(price, limit)
        return price

    def _submit(self, order: ManagedOrder) -> VenueOrderAck | None:
        request = OrderRequest(
            order.client_order_id,
            order.symbol,
            order.side,
            order.quantity,
            order.type,
            order.limit_price,
        )
        for attempt in range(self.submit_retries + 1):
            try:
                return self.venue.submit(request)
            except VenueUnavailable as exc:
                log.warning("submit %s: %s (attempt %d)", order.client_order_id, exc, attempt + 1)
            except VenueError as exc:
                log.error("submit %s failed: %s", order.client_order_id, exc)
                break
        return None  # outcome unknown: stays `new` until reconcile()

    def record(self, ack: VenueOrderAck, now: datetime) -> None:
        """Journal the venue's view of an order when it changed anything."""
        order = self.state.orders.get(ack.client_order_id)
        if order is None:
            return
        filled = ack.filled_quantity
        notional = (
            order.notional
            if filled == order.filled
            else (filled * ack.average_price if ack.average_price is not None else order.notional)
        )
        status = OrderState(str(ack.status))
        if (
            status is order.state
            and filled == order.filled
            and ack.fee == order.fee
            and ack.venue_order_id == order.venue_order_id
        ):
            return
        if order.state.final:
            return
        self.journal.append(
            "order_update",
            {
                "client_order_id": order.client_order_id,
                "status": str(status),
                "venue_order_id": ack.venue_order_id,
                "filled": filled,
                "notional": notional,
                "fee": ack.fee,
                "reason": ack.reason,
                "message": ack.message,
            },
            ts=now,
            strategy=order.strategy,
            symbol=order.symbol,
            client_order_id=order.client_order_id,
        )

    # ------------------------------------------------------------------ cancel / sync
    def cancel(self, client_order_id: str, now: datetime) -> None:
        order = self.state.orders[client_order_id]
        if not order.open:
            return
        if order.venue_order_id is None:
            ack = VenueOrderAck(order.client_order_id, None, VenueOrderStatus.CANCELLED, now)
        else:
            ack = self.venue.cancel(order.venue_order_id, symbol=order.symbol, side=order.side)
            if ack.status is VenueOrderStatus.REJECTED:
                ack = VenueOrderAck(
                    order.client_order_id,
                    order.venue_order_id,
                    VenueOrderStatus.CANCELLED,
                    now,
                    order.filled,
                    order.average_price,
                    order.fee,
                    ack.reason,
                    ack.message,
                )
        self.record(ack, now)

    def cancel_all(self, now: datetime) -> int:
        open_ids = [o.client_order_id for o in self.state.orders.values() if o.open]
        for cid in open_ids:
            self.cancel(cid, now)
        return len(open_ids)

    def reconcile(self, now: datetime) -> dict[str, Any]:
        """Start-up: bring every journaled open order in line with the venue, and journal how
        the venue's balances compare with the book."""
        venue_open = {o.client_order_id: o for o in self.venue.open_orders() if o.client_order_id}
        by_venue_id = {o.venue_order_id: o for o in self.venue.open_orders()}
        changed = 0
        mine = [o for o in self.state.orders.values() if o.open]
        since = min((o.created for o in mine), default=now)
        fills = self.venue.fills_since(since) if mine else []
        for order in mine:
            listed = venue_open.get(order.client_order_id) or (
                by_venue_id.get(order.venue_order_id) if order.venue_order_id else None
            )
            if listed is not None:
                state = VenueOrderStatus(str(listed.status))
                filled = listed.filled_quantity
                vid: str | None = listed.venue_order_id
            else:
                own = [
                    f
                    for f in fills
                    if f.client_order_id == order.client_order_id
                    or (order.venue_order_id and f.venue_order_id == order.venue_order_id)
                ]
                filled = sum((f.quantity for f in own), ZERO)
                vid = own[0].venue_order_id if own else order.venue_order_id
                state = (
                    VenueOrderStatus.FILLED
                    if filled >= order.quantity
                    else VenueOrderStatus.CANCELLED
                )
            own_fills = [f for f in fills if f.client_order_id == order.client_order_id]
            notional = sum((f.quantity * f.price for f in own_fills), ZERO)
            fee = sum((f.fee for f in own_fills), ZERO)
            avg = notional / filled if filled and own_fills else order.average_price
            ack = VenueOrderAck(
                order.client_order_id,
                vid,
                state,
                now,
                filled,
                avg,
                fee if own_fills else order.fee,
            )
            before = len(self.journal.pending)
            self.record(ack, now)
            changed += len(self.journal.pending) - before
        report: dict[str, Any] = {"orders_updated": changed}
        try:
            balances = self.venue.balances()
        except VenueError as exc:
            report["balances_error"] = str(exc)
        else:
            diffs = {}
            for sym, qty in self.state.book.symbol_positions().items():
                asset = sym.split("/")[0]
                have = balances[asset].total if asset in balances else ZERO
                if have != qty:
                    diffs[asset] = {"book": qty, "venue": have}
            report["balance_differences"] = diffs
        self.journal.append("reconcile", report, ts=now)
        return report
