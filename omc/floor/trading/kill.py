"""The kill switch acting on one account right away (`omc kill`), outside any session:
cancel the journaled open orders (paper book) or every order working at the live venue (also
ones the journal does not know; unknown-outcome orders are resolved first, never cancelled
only locally) and, with flatten, close the positions — journaled as a `kill` event — and halt
the account (`omc.floor.trading.modes`). Running sessions also react at their next bar.

One writer per account: `kill_account` takes the account's lease (`LeaseHeld` while a
session runs it). `kill_or_command` is what `omc kill` does per account: when a live session
holds the lease, the (already set) kill switch is the command — it waits, bounded, for the
session to journal its own `kill` event and reports that; otherwise it acts itself."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from omc.core.events import Bus
from omc.core.time import utcnow
from omc.floor.trading.guard import Guard, KillSwitchStore, flatten_limits
from omc.floor.trading.journal import Journal, last_event
from omc.floor.trading.lease import LeaseHeld, current_holder
from omc.floor.trading.modes import Mode, set_mode
from omc.floor.trading.oms import OrderManager
from omc.floor.trading.session import _result, restore_paper
from omc.floor.venues.base import Quote, Side, Venue, VenueError
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
    bus: Bus | None = None,
) -> dict[str, Any]:
    """What `omc kill` does to one account right away (running sessions also react at their
    next bar): cancel every open order — at `venue` when given (a live venue: every order
    working there, see `OrderManager.cancel_all`), else the journal's on the paper book —
    and with `flatten`, sell every long position (paper: at the ledger's latest quote, or
    the last journaled mark). Journaled as a `kill` event."""
    now = now or utcnow()
    journal = Journal.open(engine, account, write=True)
    try:
        return _kill(journal, reason, flatten, venue, kill, now, ledger, bus)
    finally:
        journal.close()


def _kill(
    journal: Journal,
    reason: str,
    flatten: bool,
    venue: Venue | None,
    kill: KillSwitchStore | None,
    now: datetime,
    ledger: Any | None,
    bus: Bus | None = None,
) -> dict[str, Any]:
    account, state = journal.account, journal.state
    if venue is None:
        paper = PaperVenue(
            JournalMarks(state, ledger),
            cash=state.book.cash,
            max_quote_age_s=10 * 365 * 86400,  # a kill never waits for a fresh quote
            clock=lambda: now,
            name="paper",
        )
        restore_paper(paper, state)
        venue = paper
        age = 10 * 365 * 86400.0
    else:
        age = Guard().limits.max_quote_age_s
    # a kill's own orders only reduce positions: no size or rate limit may keep one open
    limits = flatten_limits(Guard().limits).model_copy(update={"max_quote_age_s": age})
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
    set_mode(oms, Mode.HALTED, "kill_switch", now, bus=bus)
    journal.flush()
    return report


def kill_or_command(
    engine: Engine,
    account: str,
    act: Callable[[], dict[str, Any]],
    *,
    venue: str,
    after: int,
    wait_s: float = 30.0,
    poll_s: float = 0.2,
) -> dict[str, Any]:
    """`omc kill` for one account once the kill switch is on (`after`: the account's last
    journal ordinal before it was set): while a live session holds the account's lease, wait
    up to `wait_s` for a `kill` event after `after` — the session acting on the switch — and
    report what it did; when no session holds it (or it exits without acting), `act()`
    (`kill_account`) acts itself."""
    deadline = time.monotonic() + wait_s
    while True:
        done = last_event(engine, account, "kill")
        if done is not None and done.ordinal > after:
            return {
                "account": account,
                "venue": venue,
                "session": done.data.get("holder"),
                "acknowledged": True,
                "cancelled": done.data.get("cancelled", 0),
                "flattened": done.data.get("flattened", []),
            }
        holder = current_holder(engine, account)
        if holder is None:
            try:
                return act()
            except LeaseHeld:  # a session took it just now: it obeys the switch
                holder = current_holder(engine, account)
        if time.monotonic() >= deadline:
            return {
                "account": account,
                "venue": venue,
                "session": holder,
                "acknowledged": False,
                "error": f"running session {holder} has not confirmed within {wait_s:g} s; "
                "the switch blocks its orders and it acts at its next bar",
            }
        time.sleep(poll_s)


def switch_account(
    engine: Engine,
    account: str,
    *,
    on: bool,
    flatten: bool = False,
    reason: str = "manual",
    wait_s: float = 10.0,
    ledger: Any | None = None,
    bus: Bus | None = None,
) -> dict[str, Any]:
    """One paper account's own kill switch (`KillSwitchStore(engine, account=…)`; the global
    one `omc kill` sets still covers it). On: the switch is set, then the account's open
    orders are cancelled (and its positions flattened) — by its running session, which this
    waits up to `wait_s` for, or here when none runs (`kill_or_command`). Off: cleared; a
    kill-halted account trades again when a session next runs it."""
    store = KillSwitchStore(engine, account=account)
    if not on:
        store.set(False, reason=f"cleared: {reason}")
        return {"account": account, "active": False}
    last = last_event(engine, account)
    store.set(True, flatten=flatten, reason=reason)
    report: dict[str, Any] = {"account": account, "venue": "paper", "cancelled": 0, "flattened": []}
    if last is not None:  # a journal to act on

        def act() -> dict[str, Any]:
            return kill_account(
                engine,
                account,
                reason=reason,
                flatten=flatten,
                kill=store,
                ledger=ledger,
                bus=bus,
            )

        report = kill_or_command(
            engine, account, act, venue="paper", after=last.ordinal, wait_s=wait_s
        )
    return {**report, "active": True}
