"""The kill switch acting on one account right away (`omc kill`), outside any session:
cancel the journaled open orders (paper book or live venue) and, with flatten, close the
positions — journaled as a `kill` event. Running sessions also react at their next bar."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from omc.core.time import utcnow
from omc.floor.trading.guard import Guard, KillSwitchStore
from omc.floor.trading.journal import Journal
from omc.floor.trading.oms import OrderManager
from omc.floor.trading.session import _result, _venue_status
from omc.floor.venues.base import Quote, Side, Venue, VenueError, VenueOrder
from omc.floor.venues.paper import PaperVenue


class JournalMarks:
    """Quotes for flattening a paper account outside a session: the latest tick in the
    Exchange ledger when there is one (`ledger`), else the account's last journaled mark
    (bid = ask = last), time-stamped at its last bar."""

    def __init__(self, state: Any, ledger: Any | None = None) -> None:
        self.state = state
        self.ledger = ledger

    def latest(self, symbol: str) -> Quote | None:
        if self.ledger is not None:
            q: Quote | None = self.ledger.latest(symbol)
            if q is not None:
                return q
        mark = self.state.book.marks.get(symbol)
        if mark is None:
            return None
        ts = self.state.last_bar_ts or utcnow()
        return Quote(symbol, mark, mark, mark, ts, {"source": "journal_mark"})


def kill_account(
    engine: Engine,
    account: str,
    *,
    reason: str,
    flatten: bool = False,
    venue: Venue | None = None,
    kill: KillSwitchStore | None = None,
    now: datetime | None = None,
    ledger: Any | None = None,
) -> dict[str, Any]:
    """What `omc kill` does to one account right away (running sessions also react at their
    next bar): cancel every open order the journal records — at `venue` when given (a live
    venue), else on the paper book — and with `flatten`, sell every long position (paper:
    at the ledger's latest quote, or the last journaled mark). Journaled as a `kill` event."""
    now = now or utcnow()
    journal = Journal.open(engine, account)
    state = journal.state
    if venue is None:
        paper = PaperVenue(
            JournalMarks(state, ledger),
            cash=state.book.cash,
            max_quote_age_s=10 * 365 * 86400,  # a kill never waits for a fresh quote
            clock=lambda: now,
            name="paper",
        )
        paper.restore(
            state.book.cash,
            state.book.symbol_positions(),
            [
                VenueOrder(
                    o.venue_order_id or f"P-{o.client_order_id}",
                    o.client_order_id,
                    o.symbol,
                    o.side,
                    o.type,
                    o.quantity,
                    o.limit_price,
                    o.filled,
                    _venue_status(o.state),
                    o.created,
                )
                for o in state.open_orders()
            ],
        )
        venue = paper
        age = 10 * 365 * 86400.0
    else:
        age = Guard().limits.max_quote_age_s
    # a kill's own orders only reduce positions: no size or rate limit may keep one open
    limits = Guard().limits.model_copy(
        update={
            "max_quote_age_s": age,
            "max_order_notional": Decimal("1e30"),
            "max_orders_per_minute": 10**9,
        }
    )
    oms = OrderManager(journal, venue, Guard(limits), kill)
    report: dict[str, Any] = {"account": account, "venue": venue.name}
    try:
        if not isinstance(venue, PaperVenue) and state.events > 1:
            oms.reconcile(now)
        report["cancelled"] = oms.cancel_all(now)
        flattened = []
        if flatten:
            for row in state.book.summary()["positions"]:
                qty = Decimal(row["quantity"])
                if qty <= 0:
                    continue
                res = oms.place(
                    row["strategy"],
                    row["symbol"],
                    Side.SELL,
                    qty,
                    now=now,
                    flatten=True,
                    reason={"kill": reason},
                )
                flattened.append({"symbol": row["symbol"], "result": _result(res)})
        report["flattened"] = flattened
    except VenueError as exc:
        report["error"] = str(exc)
    journal.append(
        "kill",
        {
            "reason": reason,
            "source": "omc kill",
            "cancelled": report.get("cancelled", 0),
            "flattened": report.get("flattened", []),
            "error": report.get("error"),
        },
        ts=now,
    )
    journal.flush()
    return report
