"""Live updates for one connection of `GET /api/v1/stream`: `StreamCursor.poll()` reads
what changed in the database since its last poll — by cursor, so nothing is missed between
polls and each connection is independent — and returns it as (event, data) pairs:

* `tick` — new price ticks (shared ledger), by `collected_at`;
* `alert` — new alerts (shared), by id;
* `order`, `fill`, `pnl` — the caller's own accounts only: new journal rows by `seq`
  (orders and their updates; fills from `omc.floor.trading.reads`; the P&L summary after
  any change, at most once per `pnl_every_s` per account);
* `session` — the caller's paper sessions whose status or progress moved;
* `lab` — the caller's Lab sessions whose row changed (status, step, verdict, question).

A connection starts at "now": it sends what happens after it connected."""

from __future__ import annotations

import functools
import time
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from omc.api.models import ACCOUNTS, LAB_OWNERS, PAPER_SESSIONS
from omc.core.time import utcnow
from omc.floor.trading import reads
from omc.floor.trading.journal import TABLE as JOURNAL
from omc.floor.trading.reads import Views
from omc.lab.models import LabSession
from omc.ledgers.catalyst.alerts import alerts_page
from omc.ledgers.models import Tick

TICKS = Tick.__table__
LAB = LabSession.__table__
BATCH = 500
Event = tuple[str, dict[str, Any]]


class StreamCursor:
    def __init__(
        self, engine: Engine, views: Views, user_id: int, *, pnl_every_s: float = 1.0
    ) -> None:
        self.engine = engine
        self.views = views
        self.user_id = user_id
        self.pnl_every_s = pnl_every_s
        now = utcnow()
        self._tick_at: datetime = now
        self._lab_at: datetime = now
        self._seq: dict[str, int] = {}
        self._pnl_at: dict[str, float] = {}
        self._pnl_due: set[str] = set()
        self._sessions: dict[str, tuple[str, int]] = {}
        with engine.connect() as conn:
            self._alert_id = int(conn.execute(select(func.max(alerts_table().c.id))).scalar() or 0)
        for name in self._accounts():
            self._seq[name] = self._max_seq(name)
        self._poll_sessions()  # the current state is the baseline

    # ------------------------------------------------------------------ helpers
    def _accounts(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(ACCOUNTS.c.name).where(ACCOUNTS.c.owner_id == self.user_id)
                ).scalars()
            )

    def _max_seq(self, account: str) -> int:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(func.max(JOURNAL.c.seq)).where(JOURNAL.c.account == account)
            ).scalar()
        return int(found or 0)

    # ------------------------------------------------------------------ poll
    def poll(self) -> list[Event]:
        out: list[Event] = []
        out += self._poll_ticks()
        out += self._poll_alerts()
        out += self._poll_accounts()
        out += self._poll_sessions()
        out += self._poll_lab()
        return out

    def _poll_ticks(self) -> list[Event]:
        t = TICKS.c
        query = (
            select(t.source, t.coin, t.market, t.ts, t.bid, t.ask, t.last, t.collected_at)
            .where(t.collected_at > self._tick_at)
            .order_by(t.collected_at)
            .limit(BATCH)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if rows:
            self._tick_at = rows[-1].collected_at
        return [
            ("tick", {k: v for k, v in r._mapping.items() if k != "collected_at"}) for r in rows
        ]

    def _poll_alerts(self) -> list[Event]:
        rows, _ = alerts_page(self.engine, limit=BATCH, after=self._alert_id)
        if rows:
            self._alert_id = max(r["id"] for r in rows)
        return [
            ("alert", {k: v for k, v in r.items() if k != "deliveries"}) for r in reversed(rows)
        ]

    def _poll_accounts(self) -> list[Event]:
        out: list[Event] = []
        for name in self._accounts():
            last = self._seq.setdefault(name, 0)
            t = JOURNAL.c
            query = (
                select(t.seq, t.ts, t.kind, t.symbol, t.client_order_id)
                .where(t.account == name, t.seq > last)
                .order_by(t.seq)
                .limit(BATCH * 4)
            )
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                out += self._pnl(name)
                continue
            top = rows[-1].seq
            for r in rows:
                if r.kind in ("order", "order_update"):
                    out.append(
                        (
                            "order",
                            {
                                "account": name,
                                "seq": r.seq,
                                "ts": r.ts,
                                "kind": r.kind,
                                "symbol": r.symbol,
                                "client_order_id": r.client_order_id,
                            },
                        )
                    )
            fills = self.views.read(name, functools.partial(_between, low=last, high=top))
            for f in fills:
                out.append(
                    (
                        "fill",
                        {"account": name, **{k: getattr(f, k) for k in f.__dataclass_fields__}},
                    )
                )
            self._seq[name] = top
            self._pnl_due.add(name)
            out += self._pnl(name)
        return out

    def _pnl(self, name: str) -> list[Event]:
        now = time.monotonic()
        if name not in self._pnl_due or now - self._pnl_at.get(name, -1e9) < self.pnl_every_s:
            return []
        self._pnl_due.discard(name)
        self._pnl_at[name] = now

        def summary(view: reads.AccountView) -> dict[str, Any]:
            book, state = view.state.book, view.state
            return {
                "account": name,
                "equity": book.equity(),
                "cash": book.cash,
                "realised_pnl": book.total_realised(),
                "unrealised_pnl": book.unrealised(),
                "fees": book.total_fees(),
                "drawdown": book.drawdown(),
                "trading": state.trading,
                "ts": state.last_bar_ts,
            }

        return [("pnl", self.views.read(name, summary))]

    def _poll_sessions(self) -> list[Event]:
        t = PAPER_SESSIONS.c
        query = select(t.id, t.account, t.status, t.bars_done, t.bars_total, t.error).where(
            t.owner_id == self.user_id
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out: list[Event] = []
        for r in rows:
            key = (r.status, r.bars_done)
            if self._sessions.get(r.id) != key:
                self._sessions[r.id] = key
                out.append(("session", dict(r._mapping)))
        return out

    def _poll_lab(self) -> list[Event]:
        lab = LAB.c
        query = (
            select(
                lab.id,
                lab.status,
                lab.step,
                lab.verdict,
                lab.approval,
                lab.question,
                lab.error,
                lab.updated_at,
            )
            .join(LAB_OWNERS, LAB_OWNERS.c.session_id == lab.id)
            .where(LAB_OWNERS.c.owner_id == self.user_id, lab.updated_at > self._lab_at)
            .order_by(lab.updated_at)
            .limit(BATCH)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if rows:
            self._lab_at = rows[-1].updated_at
        return [("lab", dict(r._mapping)) for r in rows]


def _between(view: reads.AccountView, low: int, high: int) -> list[reads.Fill]:
    return [f for f in view.fills if low < f.seq <= high]


def alerts_table() -> Any:
    from omc.ledgers.models import Alert

    return Alert.__table__
