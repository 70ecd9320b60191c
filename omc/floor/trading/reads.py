"""Read models of an account's journal for the API and the CLI: positions, orders, fills,
P&L with the equity series, and the journal of decisions with their reasons.

`AccountView` keeps an account's `TradingState` between reads and applies only the events
stored after the last one it saw (`floor_journal.seq`), recording each fill (an
`order_update` whose cumulative quantity grew) on the way — so a read costs the new events,
not the whole journal. `Views` holds one per account behind a lock, for a server's threads.
The state is only ever built by `TradingState.apply`, as everywhere else."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Engine, select

from omc.floor.trading.journal import TABLE, Event, TradingState, stored_after
from omc.floor.trading.oms import ManagedOrder

T = TypeVar("T")
ZERO = Decimal(0)
JOURNAL_KINDS = (
    "start",
    "decision",
    "order",
    "denial",
    "warning",
    "trading_state",
    "kill",
    "reconcile",
    "halt",
)
"""What the journal read shows by default: everything but `bar` marks and `order_update`s."""


@dataclass(frozen=True, slots=True)
class Fill:
    seq: int
    ts: datetime
    client_order_id: str
    strategy: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal


@dataclass
class AccountView:
    """One account's state, refreshed incrementally (see the module doc)."""

    account: str
    state: TradingState = field(default_factory=TradingState)
    last_seq: int = 0
    fills: list[Fill] = field(default_factory=list)
    reasons: dict[str, Any] = field(default_factory=dict)  # order -> why it was placed

    def refresh(self, engine: Engine) -> AccountView:
        for seq, event in stored_after(engine, self.account, self.last_seq):
            if event.kind == "order" and event.client_order_id is not None:
                self.reasons[event.client_order_id] = event.data.get("reason")
            before = self._before(event)
            self.state.apply(event)
            if before is not None:
                self._fill(seq, event, *before)
            self.last_seq = seq
        return self

    def _before(self, event: Event) -> tuple[ManagedOrder, Decimal, Decimal, Decimal] | None:
        if event.kind != "order_update" or event.client_order_id is None:
            return None
        order = self.state.orders.get(event.client_order_id)
        return None if order is None else (order, order.filled, order.notional, order.fee)

    def _fill(
        self,
        seq: int,
        event: Event,
        order: ManagedOrder,
        filled: Decimal,
        notional: Decimal,
        fee: Decimal,
    ) -> None:
        dq = order.filled - filled
        if dq <= 0:
            return
        self.fills.append(
            Fill(
                seq,
                event.ts,
                order.client_order_id,
                order.strategy,
                order.symbol,
                str(order.side),
                dq,
                (order.notional - notional) / dq,
                order.fee - fee,
            )
        )


class Views:
    """`AccountView`s of many accounts, shared by threads: `read(account, fn)` refreshes the
    account's view and returns `fn(view)`, under the account's lock."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._views: dict[str, AccountView] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def read(self, account: str, fn: Callable[[AccountView], T]) -> T:
        with self._guard:
            lock = self._locks.setdefault(account, threading.Lock())
        with lock:
            view = self._views.setdefault(account, AccountView(account))
            return fn(view.refresh(self.engine))


# ---------------------------------------------------------------------- reads
def order_row(o: ManagedOrder, why: Any = None) -> dict[str, Any]:
    """One journaled order (decimals exact): `reason` is why it was placed (the decision's
    targets and signals, or the kill), `venue_reason` what the venue said (a rejection)."""
    return {
        "client_order_id": o.client_order_id,
        "venue_order_id": o.venue_order_id,
        "strategy": o.strategy,
        "symbol": o.symbol,
        "side": str(o.side),
        "type": str(o.type),
        "quantity": o.quantity,
        "limit_price": o.limit_price,
        "state": str(o.state),
        "open": o.open,
        "filled": o.filled,
        "average_price": o.average_price,
        "fee": o.fee,
        "reason": why,
        "venue_reason": o.reason,
        "created": o.created,
    }


def orders(
    view: AccountView, *, open_only: bool = False, recent: int = 100
) -> list[dict[str, Any]]:
    """The open orders, then (unless `open_only`) the `recent` latest final ones, newest
    first."""
    state = view.state
    why = view.reasons.get
    rows = [order_row(o, why(o.client_order_id)) for o in reversed(list(state.working.values()))]
    if not open_only:
        final = [o for o in reversed(list(state.orders.values())) if not o.open]
        rows += [order_row(o, why(o.client_order_id)) for o in final[:recent]]
    return rows


def fills_page(view: AccountView, *, before: int | None, limit: int) -> tuple[list[Fill], bool]:
    """Fills newest first, those with `seq < before` when given; and whether more follow."""
    found = [f for f in reversed(view.fills) if before is None or f.seq < before]
    return found[:limit], len(found) > limit


def equity_series(view: AccountView, points: int) -> list[tuple[datetime, Decimal]]:
    """The equity curve (one point per bar), thinned to at most `points` points (the last
    point always kept)."""
    curve = view.state.book.equity_curve
    if len(curve) <= points:
        return list(curve)
    step = len(curve) / points
    picked = [curve[int(i * step)] for i in range(points - 1)]
    return [*picked, curve[-1]]


def pnl(view: AccountView, *, points: int = 500) -> dict[str, Any]:
    """The P&L summary (`Book.summary`, what `omc pnl --json` prints), the trading state and
    the equity series."""
    state = view.state
    summary = state.book.summary()
    summary["trading"] = state.trading
    summary["trading_reason"] = state.trading_reason
    summary["last_bar_ts"] = state.last_bar_ts
    summary["equity_series"] = equity_series(view, points)
    return summary


def journal_page(
    engine: Engine,
    account: str,
    *,
    kinds: Sequence[str] = JOURNAL_KINDS,
    before: int | None = None,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], bool]:
    """The account's journal events of `kinds`, newest first (seq < `before` when given):
    decisions with their reasons (targets and signals), orders with theirs, Guard denials
    and warnings, trading-state moves, kills; and whether more follow."""
    t = TABLE.c
    query = select(t.seq, t.ts, t.kind, t.strategy, t.symbol, t.client_order_id, t.data).where(
        t.account == account, t.kind.in_(list(kinds))
    )
    if before is not None:
        query = query.where(t.seq < before)
    query = query.order_by(t.seq.desc()).limit(limit + 1)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    items = [
        {
            "seq": r.seq,
            "ts": r.ts,
            "kind": r.kind,
            "strategy": r.strategy,
            "symbol": r.symbol,
            "client_order_id": r.client_order_id,
            "data": json.loads(r.data),
        }
        for r in rows[:limit]
    ]
    return items, len(rows) > limit
