"""The trading state of an account — `active`, `reducing`, `halted` — and moving between them.

* `active` — every order the Guard's limits allow.
* `reducing` — only orders that reduce a position. Entered at the daily-loss limit; lifts
  itself on the next UTC day (when today's loss is below the limit again).
* `halted` — only orders that reduce a position, until an operator acts. Entered at the
  drawdown halt (`drawdown_halt_pct`), by the kill switch (lifted when it is cleared) and
  when start-up reconciliation finds the venue's balances differ from the journal.

A move is a `trading_state` journal event `{from, to, reason, …}` (so a restarted process
rebuilds it: `TradingState.trading`), committed at once and published on the event bus as
`floor.trading_state` `{account, from, to, reason, ts}`. Entering `reducing` or `halted`
cancels every working entry order (one that would add to a position) at once through the
order manager — journaled like any cancel — and keeps the orders that only reduce. A cancel
the venue cannot do now (unreachable, an order whose outcome is still unknown) never stops
the move; the trading session retries it every bar while the account is not `active`.
`trading_states()` is what `omc status` shows.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from omc.floor.venues.base import Side, VenueError

if TYPE_CHECKING:
    from omc.core.events import Bus
    from omc.floor.trading.journal import TradingState
    from omc.floor.trading.oms import ManagedOrder, OrderManager

log = logging.getLogger(__name__)
TOPIC = "floor.trading_state"
ZERO = Decimal(0)


class Mode(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


def entry_orders(state: TradingState) -> list[ManagedOrder]:
    """Working orders that would add to a position: every order on the adding side, and on
    the reducing side those beyond the position (oldest orders keep the reducing share)."""
    budget: dict[str, Decimal] = {}
    out = []
    for order in sorted(state.open_orders(), key=lambda o: o.number):
        pos = state.book.position(order.symbol)
        left = budget.setdefault(order.symbol, abs(pos))
        rest = order.quantity - order.filled
        reducing_side = (pos > 0 and order.side is Side.SELL) or (
            pos < 0 and order.side is Side.BUY
        )
        if reducing_side and rest <= left:
            budget[order.symbol] = left - rest
        else:
            out.append(order)
    return out


def cancel_entries(oms: OrderManager, now: datetime) -> int:
    """Cancel the working entry orders (journaled); returns how many were asked. A venue
    error is logged and leaves that order working (retried later)."""
    entries = entry_orders(oms.state)
    for order in entries:
        try:
            oms.cancel(order.client_order_id, now)
        except VenueError as exc:
            log.warning("cancel of entry order %s failed: %s", order.client_order_id, exc)
    return len(entries)


def set_mode(
    oms: OrderManager,
    to: Mode,
    reason: str,
    now: datetime,
    *,
    bus: Bus | None = None,
    details: dict[str, Any] | None = None,
    strategy: str | None = None,
) -> bool:
    """Move the account to `to` (journaled and committed, entry orders cancelled, published);
    False when it already is in that state."""
    state, journal = oms.state, oms.journal
    before = state.trading
    if before == to:
        return False
    journal.append(
        "trading_state",
        {**(details or {}), "from": str(before), "to": str(to), "reason": reason},
        ts=now,
        strategy=strategy,
    )
    if to is not Mode.ACTIVE:
        cancel_entries(oms, now)
    journal.flush()
    if bus is not None:
        bus.publish(
            TOPIC,
            {
                "account": journal.account,
                "from": str(before),
                "to": str(to),
                "reason": reason,
                "ts": now.isoformat(),
            },
        )
    return True


def trading_states(engine: Engine) -> list[dict[str, Any]]:
    """Every journaled account's current trading state (from its latest `trading_state`
    event; `active` when it never had one)."""
    from omc.floor.trading.journal import TABLE, accounts

    t = TABLE.c
    out: dict[str, dict[str, Any]] = {
        a: {"account": a, "state": str(Mode.ACTIVE), "reason": "", "since": None}
        for a in accounts(engine)
    }
    query = (
        select(t.account, t.ts, t.kind, t.data)
        .where(t.kind.in_(("trading_state", "halt")))
        .order_by(t.seq)
    )
    with engine.connect() as conn:
        for account, ts, kind, data in conn.execute(query):
            d = json.loads(data)
            if kind == "halt":  # journals written before trading states existed
                d = {"to": Mode.HALTED, "reason": d.get("code", "halt")}
            out[account].update(state=str(d["to"]), reason=d.get("reason", ""), since=ts)
    return list(out.values())
