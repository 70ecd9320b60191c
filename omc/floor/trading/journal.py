"""The append-only trading journal and the state rebuilt from it.

Every decision, order, order update (fills are cumulative per order), Guard denial, warning,
trading-state move, bar mark, kill and reconciliation of an *account* is one `floor_journal`
row. The in-memory `TradingState` (cash, positions, orders, P&L, order times, trading state)
is *only* ever changed by applying journal events — while running (`Journal.append` applies
the event at once) and after a crash (`Journal.open` replays the stored events) — so a
rebuilt state is exactly the state the process had at its last committed event.

One writer per account: only a journal opened with `write=True` — holding the account's
lease (`omc.floor.trading.lease`) — may flush; readers (`omc pnl`, `omc orders`, …) need none.
Writes are buffered and committed by `flush()` in one transaction, which first renews the
lease (the fence: a writer that lost it writes nothing) and then inserts through
`omc.core.upsert.upsert` (INSERT … ON CONFLICT (event_id) DO NOTHING). Event ids are
`<account>:<ordinal>`, the ordinal being the event's position in the account's journal. A
flush that inserted fewer rows than it had is never ignored: the stored rows are compared,
and unless they are exactly these events (a retried flush whose commit had succeeded) it
raises `JournalConflict` and writes nothing. Rows are never updated or deleted.

Group commit (`GroupCommit`): a writer commits what is buffered once `events` events are
pending or the oldest has waited `ms` milliseconds (`flush_if_due`, which the trading session
calls at the end of each bar and before it waits), and always where a caller flushes
explicitly — before an order leaves for an external venue (`OrderManager.place`), at a
trading-state move, a kill and the start. `commits` counts the transactions.

Event kinds: `start`, `decision`, `order`, `order_update`, `denial`, `warning`,
`trading_state` (`omc.floor.trading.modes`; older journals have `halt`), `bar`, `kill`,
`reconcile`. `data` is JSON; decimals are stored as strings.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Table, func, select
from sqlalchemy.engine import Connection

from omc.core.upsert import upsert
from omc.floor.models import JournalEntry
from omc.floor.trading.lease import LEASE_TTL_S, JournalWriterError, Lease
from omc.floor.trading.oms import ManagedOrder, OrderState
from omc.floor.trading.pnl import Book
from omc.floor.venues.base import Side, VenueOrderType

TABLE: Table = JournalEntry.__table__  # type: ignore[assignment]
ZERO = Decimal(0)
ROW_COLUMNS = ("event_id", "account", "ts", "kind", "strategy", "symbol", "client_order_id", "data")


class JournalConflict(JournalWriterError):
    """Events with this flush's ids are stored with other content: another writer."""


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot journal {type(value).__name__}")


def encode(data: dict[str, Any]) -> str:
    return json.dumps(data, default=_default, separators=(",", ":"), sort_keys=True)


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@dataclass(slots=True)
class Event:
    ordinal: int
    account: str
    ts: datetime
    kind: str
    data: dict[str, Any]
    strategy: str | None = None
    symbol: str | None = None
    client_order_id: str | None = None

    @property
    def event_id(self) -> str:
        return f"{self.account}:{self.ordinal}"

    def row(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "account": self.account,
            "ts": self.ts,
            "kind": self.kind,
            "strategy": self.strategy,
            "symbol": self.symbol,
            "client_order_id": self.client_order_id,
            "data": encode(self.data),
        }


@dataclass
class TradingState:
    """Everything an account's journal says: book, orders, trading state, last bar, counters."""

    book: Book = field(default_factory=Book)
    orders: dict[str, ManagedOrder] = field(default_factory=dict)
    working: dict[str, ManagedOrder] = field(default_factory=dict)  # the open ones, in order
    order_times: deque[datetime] = field(default_factory=lambda: deque(maxlen=10_000))
    trading: str = "active"  # omc.floor.trading.modes.Mode
    trading_reason: str = ""
    trading_since: datetime | None = None
    warned: set[str] = field(default_factory=set)
    denials: dict[str, int] = field(default_factory=dict)
    denial_times: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    halts: list[dict[str, Any]] = field(default_factory=list)
    started: dict[str, Any] | None = None
    last_bar: int = -1
    last_bar_ts: datetime | None = None
    events: int = 0

    def open_orders(self, symbol: str | None = None) -> list[ManagedOrder]:
        return [o for o in self.working.values() if symbol is None or o.symbol == symbol]

    def apply(self, e: Event) -> None:
        """Apply one event (the only way this state changes)."""
        self.events += 1
        d = e.data
        kind = e.kind
        if kind == "bar":
            book = self.book
            for sym, price in d.get("marks", {}).items():
                book.marks[sym] = Decimal(price)
            book.snapshot(e.ts)
            self.last_bar = int(d.get("index", self.last_bar + 1))
            self.last_bar_ts = e.ts
        elif kind == "order":
            assert e.client_order_id is not None and e.symbol is not None
            self.orders[e.client_order_id] = self.working[e.client_order_id] = ManagedOrder(
                client_order_id=e.client_order_id,
                strategy=e.strategy or "",
                symbol=e.symbol,
                side=Side(d["side"]),
                quantity=Decimal(d["quantity"]),
                type=VenueOrderType(d["type"]),
                limit_price=_dec(d.get("limit_price")),
                created=e.ts,
                tag=d.get("tag", ""),
                number=e.ordinal,
            )
            self.order_times.append(e.ts)
        elif kind == "order_update":
            assert e.client_order_id is not None
            order = self.orders[e.client_order_id]
            filled, notional, fee = Decimal(d["filled"]), Decimal(d["notional"]), Decimal(d["fee"])
            dq = filled - order.filled
            if dq < 0:
                raise ValueError(f"order {order.client_order_id}: fill went down")
            if dq:
                price = (notional - order.notional) / dq
                signed = dq if order.side is Side.BUY else -dq
                self.book.apply_fill(
                    order.strategy, order.symbol, signed, price, fee - order.fee, e.ts
                )
            elif fee != order.fee:
                self.book.apply_fill(
                    order.strategy, order.symbol, ZERO, ZERO, fee - order.fee, e.ts
                )
            order.transition(OrderState(d["status"]))
            if not order.open:
                self.working.pop(order.client_order_id, None)
            order.filled, order.notional, order.fee = filled, notional, fee
            order.venue_order_id = d.get("venue_order_id") or order.venue_order_id
            order.reason = d.get("reason") or order.reason
        elif kind == "denial":
            code = d["code"]
            self.denials[code] = self.denials.get(code, 0) + 1
            first = self.denial_times.get(code, (e.ts, e.ts))[0]
            self.denial_times[code] = (first, e.ts)
        elif kind == "trading_state":
            self.trading, self.trading_reason, self.trading_since = d["to"], d["reason"], e.ts
            if d["to"] == "halted":
                extra = {k: v for k, v in d.items() if k not in ("from", "to", "reason", "code")}
                code = d.get("code", d["reason"])
                self.halts.append({"ts": e.ts, "strategy": e.strategy or "", "code": code, **extra})
        elif kind == "halt":  # journals written before trading states existed
            self.trading, self.trading_reason = "halted", d.get("code", "halt")
            self.trading_since = e.ts
            self.halts.append({"ts": e.ts, "strategy": e.strategy or "", **d})
        elif kind == "warning":
            self.warned.add(d.get("code", "warning"))
        elif kind == "start" and self.started is None:
            self.started = d
            self.book.fund(Decimal(d.get("initial_cash", "0")))


@dataclass(frozen=True, slots=True)
class GroupCommit:
    """When `Journal.flush_if_due` commits: at `events` pending events, or when the oldest
    pending event has waited `ms` milliseconds (see module docstring)."""

    events: int = 1000
    ms: float = 250.0


GROUPED = GroupCommit()
"""The default: a paper session commits about four times a second however fast it runs."""
EVERY_BAR = GroupCommit(events=1, ms=0.0)
"""Commit whatever is pending at every `flush_if_due` (external venues: each bar)."""


class Journal:
    """The journal of one account: append (buffered), flush (one transaction), replay."""

    def __init__(
        self,
        engine: Engine,
        account: str,
        lease: Lease | None = None,
        commit: GroupCommit = GROUPED,
    ) -> None:
        self.engine = engine
        self.account = account
        self.lease = lease
        self.commit = commit
        self.state = TradingState()
        self.pending: list[Event] = []
        self.next_ordinal = 0
        self.commits = 0
        self._oldest = 0.0  # time.monotonic() of the first pending event

    @classmethod
    def open(
        cls,
        engine: Engine,
        account: str,
        *,
        write: bool = False,
        lease_ttl_s: float = LEASE_TTL_S,
    ) -> Journal:
        """The account's journal with its state rebuilt from every stored event. `write`:
        take the account's lease first (`LeaseHeld` when another process writes it)."""
        lease = Lease.acquire(engine, account, ttl_s=lease_ttl_s) if write else None
        journal = cls(engine, account, lease)
        try:
            for event in journal.stored():
                journal.state.apply(event)
                journal.next_ordinal = event.ordinal + 1
        except BaseException:
            if lease is not None:
                lease.release()
            raise
        return journal

    def append(
        self,
        kind: str,
        data: dict[str, Any],
        *,
        ts: datetime,
        strategy: str | None = None,
        symbol: str | None = None,
        client_order_id: str | None = None,
    ) -> Event:
        event = Event(
            self.next_ordinal, self.account, ts, kind, data, strategy, symbol, client_order_id
        )
        # round-trip through JSON so the live state sees exactly what a rebuild will see
        event.data = json.loads(encode(data))
        self.state.apply(event)
        self.next_ordinal += 1
        if not self.pending:
            self._oldest = time.monotonic()
        self.pending.append(event)
        return event

    def due(self, wait_s: float = 0.0) -> bool:
        """Whether the group-commit policy says to commit now — or before a wait of `wait_s`
        seconds, when the oldest pending event would wait too long in it."""
        if not self.pending:
            return False
        policy = self.commit
        waited_ms = (time.monotonic() - self._oldest + wait_s) * 1000
        return len(self.pending) >= policy.events or waited_ms >= policy.ms

    def flush_if_due(self, wait_s: float = 0.0) -> int:
        """`flush()` when `due(wait_s)`; returns how many events were new."""
        return self.flush() if self.due(wait_s) else 0

    def flush(self) -> int:
        """Commit the buffered events in one transaction; returns how many were new.
        Raises `LeaseLost` / `JournalConflict` (writing nothing) when another process
        writes this account."""
        if not self.pending:
            return 0
        if self.lease is None:
            raise JournalWriterError(
                f"journal {self.account!r} is read-only: open it with write=True (the "
                "account's lease) to write"
            )
        rows = [e.row() for e in self.pending]
        with self.engine.begin() as conn:
            self.lease.renew(conn)
            result = upsert(conn, TABLE, rows, key=("event_id",))
            if result.inserted != len(rows):
                self._verify_stored(conn, rows)
        self.pending.clear()
        self.commits += 1
        return result.inserted

    def _verify_stored(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Rows the insert skipped must be stored exactly as given (an idempotent re-write);
        anything else is another writer's event under our id."""
        t = TABLE.c
        stored: dict[str, dict[str, Any]] = {}
        for i in range(0, len(rows), 500):
            ids = [r["event_id"] for r in rows[i : i + 500]]
            query = select(*(t[c] for c in ROW_COLUMNS)).where(t.event_id.in_(ids))
            stored.update((m["event_id"], dict(m)) for m in conn.execute(query).mappings())
        for row in rows:
            if stored.get(row["event_id"]) != row:
                raise JournalConflict(
                    f"journal {self.account!r}: event {row['event_id']} is already stored with "
                    "other content — another process wrote this account's journal; nothing "
                    "of this flush was written"
                )

    def heartbeat(self) -> None:
        """Keep the lease while nothing is flushed (a writer calls this every bar or poll)."""
        if self.lease is not None:
            self.lease.heartbeat()

    def close(self, *, flush: bool = True) -> None:
        """Flush (unless `flush=False`) and release the lease; the journal is read-only after."""
        lease, self.lease = self.lease, None
        if lease is None:
            return
        try:
            if flush and self.pending:
                self.lease = lease
                self.flush()
        finally:
            self.lease = None
            lease.release()

    def discard(self) -> None:
        """Forget unflushed events (tests: simulate a crash)."""
        self.pending.clear()

    def stored(self, after: int = -1, batch: int = 20_000) -> Iterator[Event]:
        """The account's stored events in order (streamed in batches by sequence number)."""
        for _, event in stored_after(self.engine, self.account, batch=batch):
            if event.ordinal > after:
                yield event


def _columns() -> tuple[Any, ...]:
    t = TABLE.c
    return (t.seq, t.event_id, t.ts, t.kind, t.strategy, t.symbol, t.client_order_id, t.data)


def _decode(account: str, row: Any) -> tuple[int, Event]:
    """(seq, event) of one stored row: the one way a journal row becomes an Event."""
    seq, event_id, ts, kind, strategy, symbol, cid, data = row
    ordinal = int(event_id[len(account) + 1 :])
    return seq, Event(ordinal, account, ts, kind, json.loads(data), strategy, symbol, cid)


def stored_after(
    engine: Engine, account: str, after_seq: int = 0, batch: int = 20_000
) -> Iterator[tuple[int, Event]]:
    """(seq, event) for the account's stored events with a sequence number above `after_seq`,
    in order, read in batches (readers that follow the journal keep the last seq)."""
    last_seq = after_seq
    while True:
        query = (
            select(*_columns())
            .where(TABLE.c.account == account, TABLE.c.seq > last_seq)
            .order_by(TABLE.c.seq)
            .limit(batch)
        )
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            last_seq, event = _decode(account, row)
            yield last_seq, event
        if len(rows) < batch:
            return


def last_event(engine: Engine, account: str, kind: str | None = None) -> Event | None:
    """The account's latest stored event (of `kind`, when given)."""
    query = (
        select(*_columns()).where(TABLE.c.account == account).order_by(TABLE.c.seq.desc()).limit(1)
    )
    if kind is not None:
        query = query.where(TABLE.c.kind == kind)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _decode(account, row)[1]


def accounts(engine: Engine) -> list[str]:
    """Every account with a journal."""
    with engine.connect() as conn:
        rows = conn.execute(select(TABLE.c.account).group_by(TABLE.c.account)).all()
    return sorted(r[0] for r in rows)


def event_count(engine: Engine, account: str | None = None) -> int:
    query = select(func.count()).select_from(TABLE)
    if account is not None:
        query = query.where(TABLE.c.account == account)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())
