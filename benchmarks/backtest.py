"""Backtest speed: OMC (fast path, event-driven path) vs backtrader, backtesting.py, vectorbt —
like with like.

    python benchmarks/backtest.py [--quick] [--bars 1000000] [--peer-bars 100000]

Data: a seeded random walk (seed 42) whose 5-minute returns, ranges and volumes are resampled
from the bundled real BTC/USDT candles — synthetic, because no 1,000,000-bar real file ships.
Measures bars/s of one `sma_cross(10, 30)` backtest (fees 10 bps) and the wall time of a
100-combination sweep (fast 5..50 × slow 60..150) on 100,000 bars.

Like with like: every engine runs the same rules — long-only, all-in at the next bar's open
after the fast SMA closes above the slow one, flat at the next open after it closes below,
10 bps on each fill — and computes its metrics inside the timed call (OMC its metrics;
backtesting.py its stats; backtrader its analyzers; vectorbt return, Sharpe and drawdown).
Before an engine is timed its run is checked against OMC's fast path on the same bars: the
same trades (entry bars) and the same final equity within a stated tolerance; the check is
printed, and an engine that disagrees is not timed. The sweep states its worker counts and a
per-core figure. The peers' single runs use a slice (`--peer-bars`), reported in bars/s with
the size used: over the full 1,000,000 synthetic bars prices drift up 1e11-fold and fees take
equity to 0.05 % of its start, so positions end as a few 1e-8 lots and engines differ only in
how a float size is floored at a whole-lot tie. backtesting.py and backtrader sweep times are
estimated from their single-run speed ("est."). Peers that are not installed
(`pip install -e '.[bench]'`) show as unavailable.
"""

from __future__ import annotations

import argparse
import math
import os
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bar
from rich.console import Console
from rich.table import Table

from omc.floor.backtest.engine import run_backtest
from omc.floor.backtest.fast import run_fast
from omc.floor.backtest.sweep import run_sweep
from omc.floor.data import Bars, load_csv, synthetic
from omc.floor.fills import FeeModel
from omc.floor.indicators import sma
from omc.floor.strategies import SmaCross

CSV = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles" / "BTC_USDT-5m.csv"
FAST, SLOW, FEE, CASH, LOT = 10, 30, 0.001, 10_000.0, 1e-8
GRID = {"fast": list(range(5, 51, 5)), "slow": list(range(60, 151, 10))}  # 100 combos


def timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


@dataclass(frozen=True)
class Trades:
    """What one run did: the bar each trade was entered at, and final equity ÷ initial cash
    (an open position marked at the last close)."""

    entries: tuple[int, ...]
    growth: float


Engine = Callable[[Bars], Trades]
"""Runs one full backtest (metrics included) and says what it traded."""


def agreement(name: str, ref: Trades, got: Trades, tol: float) -> tuple[bool, str]:
    """Whether `got` made OMC's trades (`ref`): the same entry bars and final equity within
    `tol` relative; and the line that says so."""
    same = got.entries == ref.entries
    diff = abs(got.growth / ref.growth - 1)
    ok = same and diff <= tol
    first = next(
        (i for i, (a, b) in enumerate(zip(got.entries, ref.entries, strict=False)) if a != b),
        min(len(got.entries), len(ref.entries)),
    )
    trades = (
        f"the same {len(ref.entries)} trades"
        if same
        else f"{len(got.entries)} trades vs OMC's {len(ref.entries)} (first differing: #{first})"
    )
    verdict = "agrees" if ok else "DISAGREES — not timed"
    return ok, (
        f"check {name}: {trades}; final equity ×{got.growth:.9f} vs ×{ref.growth:.9f} "
        f"(relative difference {diff:.1e}, tolerance {tol:.0e}) → {verdict}"
    )


def omc_fast(bars: Bars) -> Trades:
    res = run_fast(SmaCross(fast=FAST, slow=SLOW), bars, cash=CASH, with_metrics=True)
    return Trades(tuple(int(i) for i in res.entry_index), res.final_equity / CASH)


def omc_event(bars: Bars) -> Trades:
    res = run_backtest(
        SmaCross(fast=FAST, slow=SLOW), bars, cash=Decimal(CASH), fees=FeeModel.flat(10)
    )  # metrics attached (`with_metrics=True`), as the peers compute theirs
    return Trades(tuple(t.entry_index for t in res.trades), float(res.final_equity) / CASH)


def peak_mb(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def backtesting_py() -> Engine | None:
    """backtesting.py trades whole units, so its prices are per 1e-8 BTC (a unit is OMC's lot,
    as its own docs advise for fractional trading); its stats are computed by `run()`."""
    try:
        from backtesting import Backtest, Strategy
    except ImportError:
        return None

    class Cross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.f = self.I(sma, np.asarray(self.data.Close), FAST)
            self.s = self.I(sma, np.asarray(self.data.Close), SLOW)

        def next(self) -> None:
            f1, s1, f0, s0 = self.f[-1], self.s[-1], self.f[-2], self.s[-2]
            if f1 > s1 and f0 <= s0 and not self.position:
                self.buy()  # all-in, filled at the next open
            elif f1 < s1 and f0 >= s0 and self.position:
                self.position.close()

    def run(bars: Bars) -> Trades:
        frame = bars.to_frame()
        frame[["Open", "High", "Low", "Close"]] *= LOT  # the price of one lot
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stats = Backtest(frame, Cross, cash=CASH, commission=FEE).run()
        entries = [int(i) for i in stats["_trades"]["EntryBar"]]
        entries += [t.entry_bar for t in stats["_strategy"].trades]  # still open at the end
        return Trades(tuple(sorted(entries)), float(stats["Equity Final [$]"]) / CASH)

    return run


def backtrader_() -> Engine | None:
    """backtrader with fractional sizes (its default sizing is whole units: with prices above
    the cash it bought nothing) and cheat-on-open, so the size is computed at the open the
    order fills at — exactly as OMC sizes a target weight; analyzers are its metrics."""
    try:
        import backtrader as btr
    except ImportError:
        return None

    class Fractional(btr.CommInfoBase):  # type: ignore[misc]
        params = (("stocklike", True), ("commtype", btr.CommInfoBase.COMM_PERC), ("percabs", True))

        def getsize(self, price: float, cash: float) -> float:
            return cash / price

    class Cross(btr.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            f = btr.ind.SMA(self.data.close, period=FAST)
            s = btr.ind.SMA(self.data.close, period=SLOW)
            self.cross = btr.ind.CrossOver(f, s)
            self.signal = 0.0
            self.entries: list[int] = []

        def next(self) -> None:  # at the close: remember the crossover
            self.signal = float(self.cross[0])

        def next_open(self) -> None:  # at the next open: act on it at this open's price
            signal, self.signal = self.signal, 0.0
            if signal > 0 and not self.position:
                price = self.data.open[0]
                lots = math.floor(self.broker.getcash() / (price * (1 + FEE)) / LOT)
                self.buy(size=lots * LOT)
                self.entries.append(len(self.data) - 1)
            elif signal < 0 and self.position:
                self.close()

    def run(bars: Bars) -> Trades:
        cerebro = btr.Cerebro(stdstats=False, cheat_on_open=True)
        cerebro.adddata(btr.feeds.PandasData(dataname=bars.to_frame().tz_localize(None)))
        cerebro.addstrategy(Cross)
        cerebro.broker.setcash(CASH)
        cerebro.broker.addcommissioninfo(Fractional(commission=FEE))
        for analyzer in (btr.analyzers.SharpeRatio, btr.analyzers.DrawDown):
            cerebro.addanalyzer(analyzer)
        cerebro.addanalyzer(btr.analyzers.TradeAnalyzer)
        (strategy,) = cerebro.run()
        return Trades(tuple(strategy.entries), cerebro.broker.getvalue() / CASH)

    return run


def _vbt_signals(vbt: Any, close: Any, fast: Any, slow: Any) -> tuple[Any, Any, Any]:
    f = vbt.MA.run(close, fast, short_name="fast")
    s = vbt.MA.run(close, slow, short_name="slow")
    # decided at a close, filled at the next open (`price=open` below), as in OMC
    entries = f.ma_crossed_above(s).vbt.fshift(1, fill_value=False)
    exits = f.ma_crossed_below(s).vbt.fshift(1, fill_value=False)
    return entries, exits, f


def vectorbt_() -> tuple[Engine | None, Callable[[Bars], Any] | None]:
    """vectorbt: the single run and the sweep (return, Sharpe, drawdown per combination), all
    cash in, buys floored to OMC's 1e-8 lot (`size_granularity` on entry bars; an exit sells
    everything, as OMC's does)."""
    try:
        import vectorbt as vbt
    except Exception:  # not installed or incompatible with this numpy
        return None, None

    def portfolio(bars: Bars, fast: Any, slow: Any) -> Any:
        frame = bars.to_frame()
        close, open_ = frame["Close"], frame["Open"]
        entries, exits, _ = _vbt_signals(vbt, close, fast, slow)
        pf = vbt.Portfolio.from_signals(
            close,
            entries,
            exits,
            price=open_,
            fees=FEE,
            init_cash=CASH,
            size_granularity=entries.astype(float).where(entries) * LOT,
            freq="5min",
        )
        pf.total_return(), pf.sharpe_ratio(), pf.max_drawdown()
        return pf

    def single(bars: Bars) -> Trades:
        pf = portfolio(bars, FAST, SLOW)
        entries = tuple(int(i) for i in pf.trades.records["entry_idx"])
        return Trades(entries, float(pf.final_value()) / CASH)

    def sweep(bars: Bars) -> Any:
        fw = [f for f in GRID["fast"] for _ in GRID["slow"]]
        sw = [s for _ in GRID["fast"] for s in GRID["slow"]]
        return portfolio(bars, fw, sw)

    return single, sweep


def sweep_agreement(rows: list[dict[str, Any]], pf: Any) -> tuple[bool, str]:
    """vectorbt's sweep vs OMC's: per combination the same closed trades and final equity."""
    closed = pf.trades.closed.count()
    final = pf.final_value()
    bad = []
    for row in rows:
        key = (row["fast"], row["slow"])
        col = next(c for c in final.index if (c[0], c[1]) == key)
        same = int(closed[col]) == int(row["trades"])
        if not same or abs(float(final[col]) / float(row["final_equity"]) - 1) > 1e-6:
            bad.append(key)
    ok = not bad
    verdict = "agrees" if ok else f"DISAGREES on {len(bad)} (first {bad[0]}) — not timed"
    return ok, (
        f"check vectorbt sweep: {len(rows)} combinations, closed trades and final equity "
        f"(tolerance 1e-06) vs OMC's sweep → {verdict}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--sweep-bars", type=int, default=100_000)
    ap.add_argument("--peer-bars", type=int, default=100_000, help="slice for slow peers")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="200k bars, 50k-bar peers and sweep")
    args = ap.parse_args()
    if args.quick:
        args.bars, args.sweep_bars, args.peer_bars = 200_000, 50_000, 50_000
    console = Console(width=150)
    real = load_csv(CSV)
    bars = synthetic(real, args.bars, seed=42)
    sweep_bars = bars.slice(0, args.sweep_bars)
    peer = bars.slice(0, min(args.peer_bars, args.bars))
    n_combos = len(GRID["fast"]) * len(GRID["slow"])
    workers = args.workers
    console.print(
        f"Data: {args.bars:,} synthetic 5m bars (seeded random walk resampling the returns of "
        f"{len(real):,} real BTC/USDT bars). Sweep: {n_combos} combinations on "
        f"{args.sweep_bars:,} bars; OMC sweeps with {workers} worker process(es), vectorbt in "
        f"one process. CPUs: {os.cpu_count()}; load average {os.getloadavg()[0]:.2f} "
        "(other work running on the machine shows here)."
    )

    def measure(name: str, engine: Engine, data: Bars, ref: Trades, tol: float) -> float | None:
        """Run once untimed (warm-up) and check it made OMC's trades; time it only if so."""
        ok, line = agreement(name, ref, engine(data), tol)
        console.print(line)
        return timed(lambda: engine(data)) if ok else None

    def rate(seconds: float | None, n: int, why: str = "unavailable") -> str:
        return why if seconds is None else f"{n / seconds:,.0f} ({n:,} bars)"

    def est(seconds: float | None, n: int) -> str:
        if seconds is None:
            return ""
        per_run = seconds * len(sweep_bars) / n
        return f"{per_run * n_combos / workers:.1f} est. ({workers} workers)"

    omc_fast(bars.slice(0, 5000))  # compile / warm
    ref, ref_peer = omc_fast(bars), omc_fast(peer)
    console.print(
        f"reference: OMC fast path — {len(ref.entries)} trades, final equity ×{ref.growth:.9f} "
        f"({len(ref_peer.entries)} trades on the {len(peer):,}-bar peer slice)"
    )
    t_fast = timed(lambda: omc_fast(bars), repeat=3)
    run_sweep("sma_cross", sweep_bars.slice(0, 3000), {"fast": [5], "slow": [60]}, workers=1)
    t0 = time.perf_counter()
    sweep_rows = run_sweep("sma_cross", sweep_bars, GRID, workers=workers)
    t_sweep = time.perf_counter() - t0
    mem_fast = peak_mb(lambda: omc_fast(bars))
    rows: list[tuple[str, str, str, str]] = []
    rows.append(
        (
            "OMC fast path (numba)",
            rate(t_fast, len(bars)),
            f"{t_sweep:.2f} ({workers} workers = {t_sweep * workers:.2f} core-s)",
            f"{mem_fast:,.0f} MB",
        )
    )
    omc_event(bars.slice(0, 5000))
    t_event = measure("OMC event-driven (exact)", omc_event, bars, ref, 1e-9)
    mem_event = peak_mb(lambda: omc_event(bars))
    rows.append(
        (
            "OMC event-driven (Decimal)",
            rate(t_event, len(bars), "disagrees"),
            est(t_event, len(bars)),
            f"{mem_event:,.0f} MB",
        )
    )
    t_event_peer = measure("OMC event-driven, peer slice", omc_event, peer, ref_peer, 1e-9)
    rows.append(("OMC event-driven, peer slice", rate(t_event_peer, len(peer)), "", ""))
    peers: list[tuple[str, Engine | None, float]] = [
        ("backtesting.py", backtesting_py(), 1e-9),  # whole units = 1e-8 lots
        ("backtrader", backtrader_(), 1e-9),
    ]
    timings: dict[str, float | None] = {}
    for name, engine, tol in peers:
        if engine is None:
            rows.append((name, "unavailable", "unavailable", ""))
            continue
        t = timings[name] = measure(name, engine, peer, ref_peer, tol)
        rows.append((name, rate(t, len(peer), "disagrees"), est(t, len(peer)) or "—", ""))
    vbt_single, vbt_sweep = vectorbt_()
    t_vbt = t_vbt_sweep = None
    if vbt_single is None or vbt_sweep is None:
        rows.append(("vectorbt (end to end)", "unavailable", "unavailable", ""))
    else:
        vbt_single(bars.slice(0, 2000))  # compile
        t_vbt = measure("vectorbt", vbt_single, peer, ref_peer, 1e-6)
        vbt_sweep(sweep_bars.slice(0, 2000))
        ok, line = sweep_agreement(sweep_rows, vbt_sweep(sweep_bars))
        console.print(line)
        if ok:
            t_vbt_sweep = timed(lambda: vbt_sweep(sweep_bars))
        sweep_text = "disagrees" if t_vbt_sweep is None else f"{t_vbt_sweep:.2f} (1 process)"
        rows.append(("vectorbt (end to end)", rate(t_vbt, len(peer), "disagrees"), sweep_text, ""))
    table = Table(title="sma_cross(10, 30) backtest speed — same trades, metrics included")
    table.add_column("Engine")
    table.add_column("bars/s (one backtest)", justify="right")
    table.add_column(f"{n_combos}-combo sweep on {args.sweep_bars:,} bars (s)", justify="right")
    table.add_column("OMC peak memory (tracemalloc)", justify="right")
    for r in rows:
        table.add_row(*r)
    console.print(table)
    t_btpy = timings.get("backtesting.py")
    per_core = None if t_vbt_sweep is None else t_vbt_sweep / (t_sweep * workers)
    checks = [
        ("fast path ≥ 10,000,000 bars/s", len(bars) / t_fast >= 10_000_000),
        (
            "event-driven ≥ backtesting.py (same slice)",
            t_btpy is None or (t_event_peer is not None and t_event_peer <= t_btpy),
        ),
        ("sweep ≥ 5× faster than vectorbt per core", per_core is None or per_core >= 5),
    ]
    for label, ok in checks:
        console.print(f"{'[green]PASS' if ok else '[red]MISS'}[/] {label}")
    if t_vbt_sweep is not None and per_core is not None:
        console.print(
            f"sweep: OMC {t_sweep:.2f} s on {workers} workers ({t_sweep * workers:.2f} "
            f"core-seconds), vectorbt {t_vbt_sweep:.2f} s in one process: "
            f"{t_vbt_sweep / t_sweep:.1f}× faster wall-clock, {per_core:.1f}× per core"
        )
    console.print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
