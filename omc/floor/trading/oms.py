"""Orders: the state machine, client order ids, and the order manager every order path uses.

State machine (`OrderState`)::

    new ──► submitted ──► partially_filled ──► filled
     │          │  │             │  └────────► cancelled
     │          │  └──► filled   └──► (more partial fills)
     │          └──► cancelled / rejected
     ├──► rejected / filled / partially_filled / cancelled (a venue may answer a submit
     │                                                      with any of these at once)
     └──► unknown ──► submitted / partially_filled / filled / cancelled / rejected
                      (only on evidence from the venue, see below)

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
external venue the `order` event is committed *before* the submit (write-ahead).

**Unknown outcomes.** When the retries are exhausted without an answer (or a `new` order is
found at start-up: the process died while sending it), the order becomes `unknown`: open,
never sent again, never cancelled only locally, and the Guard denies new entries on its symbol
(`unknown_order_outcome`; reducing orders pass) until `resolve` settles it on the venue's
evidence. `reconcile` is the start-up check. Both live in `omc.floor.trading.recovery`.

`cancel_all` (the kill switch) resolves unknown orders first, cancels every open order at the
venue — also the ones the journal does not know — and journals a warning for what it could
not settle.
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
    UNKNOWN = "unknown"  # sent, but whether the venue has it is not known (see module doc)
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
    OrderState.UNKNOWN: frozenset(OrderState) - {OrderState.NEW},
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
    def unsettled(self) -> bool:
        """Sent (or about to be) without an answer: `new` or `unknown`."""
        return self.state in (OrderState.NEW, OrderState.UNKNOWN)

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
        reduce a position and skips the kill-switch check and the size and rate limits."""
        quote = self._quote(symbol)
        killed = self.kill_active()
        spec, no_spec = self._instrument(symbol)
        if flatten and spec is not None:  # sell what can be sold; dust below the step stays
            quantity = spec.floor_quantity(quantity) or quantity
        guard = self.guard
        if flatten:  # the kill switch's flattening passes no size or rate limit
            from omc.floor.trading.guard import Guard, flatten_limits

            guard = Guard(flatten_limits(self.guard.limits))
        denial = guard.check(
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
                    "layer": denial.layer,
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
        if isinstance(ack, VenueOrderAck):
            self.record(ack, now)
        else:
            self.mark_unknown(order, now, ack)
            if self.external:
                self.journal.flush()
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

    def _submit(self, order: ManagedOrder) -> VenueOrderAck | str:
        """The venue's answer, or why the outcome is unknown."""
        request = OrderRequest(
            order.client_order_id,
            order.symbol,
            order.side,
            order.quantity,
            order.type,
            order.limit_price,
        )
        problem = "not sent"
        for attempt in range(self.submit_retries + 1):
            try:
                return self.venue.submit(request)
            except VenueUnavailable as exc:
                problem = str(exc)
                log.warning("submit %s: %s (attempt %d)", order.client_order_id, exc, attempt + 1)
            except VenueError as exc:
                problem = str(exc)
                log.error("submit %s failed: %s", order.client_order_id, exc)
                break
        return problem  # outcome unknown: `unknown` until resolve() finds evidence

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

    def mark_unknown(self, order: ManagedOrder, now: datetime, message: str) -> None:
        """Journal that `order`'s outcome is unknown (once) and why."""
        if order.state is OrderState.UNKNOWN:
            return
        self.journal.append(
            "order_update",
            {
                "client_order_id": order.client_order_id,
                "status": str(OrderState.UNKNOWN),
                "venue_order_id": order.venue_order_id,
                "filled": order.filled,
                "notional": order.notional,
                "fee": order.fee,
                "reason": "outcome_unknown",
                "message": message,
            },
            ts=now,
            strategy=order.strategy,
            symbol=order.symbol,
            client_order_id=order.client_order_id,
        )

    # ------------------------------------------------------------------ cancel / sync
    def cancel(self, client_order_id: str, now: datetime) -> None:
        """Cancel at the venue. An order that may exist there is never cancelled only
        locally: an unsettled one is resolved first and left alone while still unknown."""
        order = self.state.orders[client_order_id]
        if not order.open:
            return
        if order.unsettled and self.external:
            self.resolve(now, [order])
            if not order.open or order.unsettled:
                return
        if order.venue_order_id is None:
            if self.external:
                return
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
        """The kill switch: cancel every open order — the journal's and, at an external
        venue, every other order it lists as working. Returns how many were cancelled;
        what could not be settled is journaled as a warning."""
        problems: list[str] = []
        count = 0
        for order in [o for o in self.state.orders.values() if o.open]:
            try:
                self.cancel(order.client_order_id, now)
            except VenueError as exc:
                problems.append(f"{order.client_order_id}: {exc}")
            count += not order.open
        if self.external:
            try:
                working = self.venue.open_orders()
            except VenueError as exc:
                working = []
                problems.append(f"open orders unreadable: {exc}")
            foreign = []
            for listed in working:
                try:
                    ack = self.venue.cancel(
                        listed.venue_order_id, symbol=listed.symbol, side=listed.side
                    )
                except VenueError as exc:
                    problems.append(f"{listed.venue_order_id}: {exc}")
                    continue
                mine = self.state.orders.get(listed.client_order_id or "")
                if mine is not None and mine.open:
                    self.record(ack, now)
                if ack.status is VenueOrderStatus.CANCELLED:
                    count += 1
                    if mine is None:
                        foreign.append(listed.venue_order_id)
            if foreign:
                self.journal.append(
                    "warning", {"code": "foreign_orders_cancelled", "orders": foreign}, ts=now
                )
        unsettled = [o.client_order_id for o in self.state.orders.values() if o.unsettled]
        if unsettled or problems:
            self.journal.append(
                "warning",
                {"code": "kill_incomplete", "unknown_orders": unsettled, "problems": problems},
                ts=now,
            )
        return count

    # ------------------------------------------------------------------ recovery
    def resolve(self, now: datetime, orders: list[ManagedOrder] | None = None) -> int:
        """Settle `new` / `unknown` orders on evidence (`recovery.resolve`); returns how
        many are still unsettled."""
        from omc.floor.trading import recovery

        return recovery.resolve(self, now, orders)

    def reconcile(self, now: datetime) -> dict[str, Any]:
        """The start-up reconciliation (`recovery.reconcile`); returns the journaled report."""
        from omc.floor.trading import recovery

        return recovery.reconcile(self, now)
