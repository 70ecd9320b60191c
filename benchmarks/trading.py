"""Trading benchmark: paper replay speed — a year of 5-minute bars (105,120) through
`replay_paper`, what `omc trade paper --replay` runs, with its group commits — in bars/s on
SQLite and PostgreSQL (and, for comparison, on a slice committing every bar as before group
commits); tick → strategy → Guard → paper fill latency (p50/p99 over 100,000 ticks, the
journal committing as `omc trade paper` does, inside the timed path); journal write
throughput (events/s) on SQLite and PostgreSQL; and the time to rebuild state from a journal
of 1,000,000 events.

    python benchmarks/trading.py [--replay-bars 105120] [--ticks 100000] [--events 1000000]
                                 [--pg URL]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
from sqlalchemy import text

from omc.core.config import Settings
from omc.core.db import make_engine
from omc.floor.data import Bars, load_csv, synthetic
from omc.floor.fills import FeeModel
from omc.floor.strategies import make_strategy
from omc.floor.trading.guard import Guard, GuardLimits
from omc.floor.trading.journal import EVERY_BAR, Journal
from omc.floor.trading.paper_session import open_paper_session
from omc.floor.trading.session import TradingSession
from omc.floor.venues.base import Quote
from omc.floor.venues.paper import PaperVenue, ReplayQuotes
from omc.migrations import upgrade

SYM = "BTC/AUD"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
CSV = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles" / "BTC_USDT-5m.csv"
YEAR_5M = 365 * 24 * 12
LOOSE = GuardLimits(  # the Guard still checks every order, but lets the strategy trade all year
    max_order_notional=Decimal(10**9),
    max_position_notional=Decimal(10**9),
    max_position_pct=Decimal(1),
    max_daily_loss=Decimal(10**9),
    max_daily_loss_pct=Decimal(1),
    drawdown_warn_pct=Decimal("0.98"),
    drawdown_halt_pct=Decimal("0.99"),
)


def replay_rate(url: str, label: str, bars: Bars, *, every_bar: bool = False) -> float:
    """Bars/s of one paper replay (as `omc trade paper --replay`: `replay_paper`'s session);
    `every_bar`: commit every bar, as before group commits."""
    engine = make_engine(url)
    account = f"bench-replay-{label}-{'bar' if every_bar else 'grouped'}"
    quotes = ReplayQuotes()
    t = time.perf_counter()
    s = open_paper_session(
        engine,
        make_strategy("sma_cross", {"fast": 10, "slow": 30}),
        (bars.symbol,),
        quotes,
        account=account,
        settings=Settings(),
        limits=LOOSE,
    )
    if every_bar:
        s.journal.commit = EVERY_BAR
    try:
        s.replay(bars, quotes)
    finally:
        s.close()
    dt = time.perf_counter() - t
    policy = "committing every bar" if every_bar else "group commits"
    print(
        f"paper replay {label}, {policy}: {len(bars) / dt:,.0f} bars/s — {len(bars):,} bars in "
        f"{dt:.1f} s ({s.journal.commits:,} commits, {len(s.state.orders):,} orders, "
        f"{s.state.events:,} events, trading {s.state.trading})"
    )
    return dt


def latency(url: str, ticks: int) -> None:
    engine = make_engine(url)
    rng = np.random.default_rng(1)
    prices = 50000 * np.exp(np.cumsum(rng.normal(0, 0.002, ticks)))
    quotes = ReplayQuotes()
    holder: dict[str, TradingSession] = {}
    venue = PaperVenue(quotes, fees=FeeModel.flat(10), clock=lambda: holder["s"].now)
    limits = GuardLimits(max_orders_per_minute=10_000)
    s = TradingSession(
        engine, "bench-latency", make_strategy("sma_cross", {"fast": 5, "slow": 20}), (SYM,),
        venue, Guard(limits),
    )  # fmt: skip  # the journal commits as `omc trade paper` does (GROUPED), in the timed path
    holder["s"] = s
    s.start()
    lat = np.empty(ticks)
    for i, p in enumerate(prices):
        ts = T0 + timedelta(seconds=i)
        d = Decimal(repr(float(p)))
        t = time.perf_counter()
        quotes.set(Quote(SYM, d, d, d, ts))
        s.step(ts, {SYM: (p, p, p, p, 1.0)})
        lat[i] = time.perf_counter() - t
    s.close()
    print(
        f"tick→strategy→Guard→paper fill: p50 {np.percentile(lat, 50) * 1e3:.3f} ms, "
        f"p99 {np.percentile(lat, 99) * 1e3:.3f} ms, p99.9 {np.percentile(lat, 99.9) * 1e3:.3f} "
        f"ms (the ticks that commit a group) over {ticks:,} ticks "
        f"({len(s.state.orders)} orders, {sum(s.state.denials.values())} denials)"
    )


def journal_throughput(url: str, label: str, events: int) -> None:
    engine = make_engine(url)
    j = Journal.open(engine, f"bench-{label}", write=True)  # the account's one writer
    j.append("start", {"initial_cash": Decimal(10**9)}, ts=T0)
    t = time.perf_counter()
    for i in range(events):
        j.append("bar", {"index": i, "marks": {SYM: "50000.5"}}, ts=T0 + timedelta(seconds=i))
        if len(j.pending) >= 10_000:
            j.flush()
    j.close()
    dt = time.perf_counter() - t
    print(f"journal write {label}: {events / dt:,.0f} events/s ({events:,} events)")


def rebuild(url: str, events: int) -> None:
    engine = make_engine(url)
    j = Journal.open(engine, "bench-rebuild", write=True)
    j.append("start", {"initial_cash": Decimal(10**7)}, ts=T0)
    t = time.perf_counter()
    for i in range(events - 1):
        ts = T0 + timedelta(seconds=i)
        if i % 4 == 0:
            cid = f"c{i}"
            side = "buy" if i % 8 == 0 else "sell"
            j.append("order", {"client_order_id": cid, "side": side, "quantity": "0.01",
                     "type": "market", "limit_price": None, "tag": ""}, ts=ts, strategy="s",
                     symbol=SYM, client_order_id=cid)  # fmt: skip
        elif i % 4 == 1:
            cid = f"c{i - 1}"
            j.append("order_update", {"client_order_id": cid, "status": "filled",
                     "venue_order_id": "v", "filled": "0.01", "notional": "500.01",
                     "fee": "0.5"}, ts=ts, client_order_id=cid)  # fmt: skip
        else:
            j.append("bar", {"index": i, "marks": {SYM: "50000.5"}}, ts=ts)
        if len(j.pending) >= 20_000:
            j.flush()
    j.close()
    print(f"  (wrote {events:,} events in {time.perf_counter() - t:.1f} s)")
    t = time.perf_counter()
    r = Journal.open(engine, "bench-rebuild")
    dt = time.perf_counter() - t
    ok = r.state.book.summary() == j.state.book.summary()
    print(f"rebuild state from {r.state.events:,} events: {dt:.1f} s (identical: {ok})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replay-bars", type=int, default=YEAR_5M)
    ap.add_argument("--per-bar-bars", type=int, default=5_000, help="slice committing per bar")
    ap.add_argument("--ticks", type=int, default=100_000)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--journal-events", type=int, default=200_000)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (other work running on the machine shows here)")
    tmp = Path(tempfile.mkdtemp())
    sqlite = f"sqlite:///{tmp / 'bench.db'}"
    upgrade(make_engine(sqlite))
    pg = make_engine(args.pg)
    with pg.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS omc_bench_trading CASCADE"))
        conn.execute(text("CREATE SCHEMA omc_bench_trading"))
    pg_url = f"{args.pg}?options=-csearch_path%3Domc_bench_trading"
    upgrade(make_engine(pg_url))
    year = synthetic(load_csv(CSV), args.replay_bars, seed=7, symbol=SYM)
    slice_ = year.slice(0, min(args.per_bar_bars, len(year)))
    for url, label in ((sqlite, "sqlite"), (pg_url, "postgresql")):
        replay_rate(url, label, slice_, every_bar=True)
        dt = replay_rate(url, label, year)
        ok = dt < 60 or len(year) < YEAR_5M
        print(f"{'PASS' if ok else 'MISS'} a year of 5-minute bars replays in under a minute")
    latency(sqlite, args.ticks)
    journal_throughput(sqlite, "sqlite", args.journal_events)
    journal_throughput(pg_url, "postgresql", args.journal_events)
    rebuild(sqlite, args.events)
    with pg.begin() as conn:
        conn.execute(text("DROP SCHEMA omc_bench_trading CASCADE"))


if __name__ == "__main__":
    main()
