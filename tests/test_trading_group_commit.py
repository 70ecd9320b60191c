"""Group commits (both databases): a paper replay commits its journal in groups (every
`GroupCommit.events` events or `GroupCommit.ms` milliseconds), not once per bar; a crash at
any point — between groups, or just after one — restarts to exactly the uninterrupted
run's state; a session on an external venue still commits every order before it leaves,
and every bar."""

from __future__ import annotations

import time
from decimal import Decimal as D
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import Engine

from omc.core.config import Settings
from omc.floor.data import Bars, load_csv
from omc.floor.fills import FeeModel
from omc.floor.strategy import Strategy
from omc.floor.trading.guard import GuardLimits, KillSwitchStore
from omc.floor.trading.journal import EVERY_BAR, GROUPED, GroupCommit, Journal, event_count
from omc.floor.trading.paper_session import replay_paper
from omc.floor.trading.session import TradingSession
from omc.floor.venues.paper import PaperVenue, ReplayQuotes

CSV = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles" / "BTC_USDT-5m.csv"
BARS = 400


class Crash(BaseException):
    """Stands in for kill -9: nothing after it runs, nothing more is flushed."""


class Churn(Strategy):
    """Trades often — market orders by target weight and resting limit buys — and keeps its
    own count of bars, so a restart must rebuild the strategy's state too."""

    name = "churn"
    defaults: ClassVar[dict[str, Any]] = {}

    def init(self, ctx: Any) -> None:
        self.seen = 0

    def on_bar(self, ctx: Any) -> None:
        self.seen += 1
        sym = ctx.symbols[0]
        if self.seen % 9 == 0:
            ctx.order_target_percent(sym, 0.5 if (self.seen // 9) % 2 else 0)
        if self.seen % 13 == 5:
            for o in ctx.open_orders(sym):
                ctx.cancel(o)
            ctx.order(sym, D("0.002"), limit=ctx.data(sym).close[-1] * 0.999)


def _bars() -> Bars:
    return load_csv(CSV).slice(0, BARS)


def _session(engine: Engine, account: str, commit: GroupCommit | None) -> TradingSession:
    quotes = ReplayQuotes()
    holder: dict[str, TradingSession] = {}
    venue = PaperVenue(quotes, fees=FeeModel.flat(10), clock=lambda: holder["s"].now)
    s = TradingSession(
        engine, account, Churn(), (_bars().symbol,), venue, initial_cash=D(10000), commit=commit
    )
    holder["s"] = s
    s.quotes = quotes  # type: ignore[attr-defined]
    s.start()
    return s


def _run(engine: Engine, account: str, commit: GroupCommit | None, crash_at: int = -1) -> None:
    s = _session(engine, account, commit)

    def on_bar(i: int) -> None:
        if i == crash_at:
            raise Crash

    try:
        s.replay(_bars(), s.quotes, on_bar=on_bar)  # type: ignore[attr-defined]
    except Crash:
        s.journal.discard()  # kill -9: the pending group is lost ...
        assert s.journal.lease is not None
        s.journal.lease.release()  # ... and the dead holder's lease is taken over at once
        return
    s.close()


def _state(engine: Engine, account: str) -> tuple[object, ...]:
    st = Journal.open(engine, account).state
    orders = sorted(
        (o.side, o.quantity, o.type, o.limit_price, o.state, o.filled, o.notional, o.fee)
        for o in st.orders.values()
    )
    return st.book.summary(), orders, st.last_bar, dict(st.denials)


def test_a_replay_commits_in_groups_not_per_bar(engine: Engine, monkeypatch: Any) -> None:
    """What `omc trade paper --replay` does: today it committed once per bar (BARS commits)."""
    flushes: list[int] = []
    flush = Journal.flush

    def counting(self: Journal) -> int:
        flushes.append(len(self.pending))
        return flush(self)

    monkeypatch.setattr(Journal, "flush", counting)
    t0 = time.monotonic()
    summary = replay_paper(
        engine,
        Churn(),
        _bars(),
        account="grouped",
        settings=Settings(),
        limits=GuardLimits(),
    )
    elapsed = time.monotonic() - t0
    events = event_count(engine, "grouped")
    commits = sum(1 for n in flushes if n)
    orders = len(Journal.open(engine, "grouped").state.orders)
    assert orders > 20 and summary["account"] == "grouped"  # the replay traded
    # each group commit holds `events` events or waited `ms`; start, end: one each
    bound = events / GROUPED.events + elapsed / (GROUPED.ms / 1000) + 3
    assert commits <= bound, (commits, bound, events, elapsed)
    assert commits < BARS / 10 and commits <= BARS / 40 + orders


def test_commit_counts_follow_the_policy(engine: Engine) -> None:
    s = _session(engine, "k", GroupCommit(events=50, ms=1e9))
    before = s.journal.commits
    s.replay(_bars(), s.quotes)  # type: ignore[attr-defined]
    s.close()
    events = event_count(engine, "k")
    assert s.journal.commits - before <= events // 50 + 1  # no commit per order on paper
    assert s.journal.commits - before >= events // 100  # and groups are not unbounded


@pytest.mark.parametrize("crash_at", [7, 151, 333])
def test_a_crash_between_group_commits_restarts_exactly(engine: Engine, crash_at: int) -> None:
    _run(engine, "ref", GROUPED)
    policy = GroupCommit(events=37, ms=1e9)  # groups end at arbitrary bars
    _run(engine, "crash", policy, crash_at=crash_at)
    mid = Journal.open(engine, "crash").state.last_bar
    assert mid < crash_at  # the pending group was lost
    _run(engine, "crash", policy)
    assert _state(engine, "crash") == _state(engine, "ref")
    assert _state(engine, "ref")[1]  # the run traded


def test_an_external_venue_commits_each_order_before_it_leaves(engine: Engine) -> None:
    """A venue that is not simulated: when `submit` is called the order is already stored,
    and the session's policy is every bar."""
    seen: list[int] = []

    class External(PaperVenue):
        simulated = False

        def submit(self, request: Any) -> Any:
            stored = {e.client_order_id for e in Journal(engine, "ext").stored()}
            seen.append(request.client_order_id in stored)
            return super().submit(request)

    quotes = ReplayQuotes()
    holder: dict[str, TradingSession] = {}
    venue = External(quotes, fees=FeeModel.flat(10), clock=lambda: holder["s"].now)
    s = TradingSession(engine, "ext", Churn(), (_bars().symbol,), venue, initial_cash=D(10000))
    holder["s"] = s
    assert s.journal.commit == EVERY_BAR
    s.start()
    s.replay(load_csv(CSV).slice(0, 60), quotes)
    s.close()
    assert seen and all(seen)
    KillSwitchStore(engine).set(False)
