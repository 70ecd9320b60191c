"""Backtest speed: OMC (fast path, event-driven path) vs backtrader, backtesting.py, vectorbt.

    python benchmarks/backtest.py [--quick] [--bars 1000000] [--peer-bars 100000]

Data: a seeded random walk (seed 42) whose 5-minute returns, ranges and volumes are resampled
from the bundled real BTC/USDT candles — synthetic, because no 1,000,000-bar real file ships.
Measures bars/s of one `sma_cross(10, 30)` backtest (fees 10 bps) and the wall time of a
100-combination sweep (fast 5..50 × slow 60..150) on 100,000 bars. Slow peers run on a slice
(`--peer-bars`) and are reported in bars/s with the size used; their sweep time is estimated
from that single-run speed (labelled "est."). Peers that are not installed show as unavailable.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc
import warnings
from collections.abc import Callable
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
FAST, SLOW, FEE = 10, 30, 0.001
GRID = {"fast": list(range(5, 51, 5)), "slow": list(range(60, 151, 10))}  # 100 combos


def timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def omc_fast(bars: Bars) -> float:
    run_fast(SmaCross(fast=FAST, slow=SLOW), bars.slice(0, 5000))  # compile / warm
    return timed(lambda: run_fast(SmaCross(fast=FAST, slow=SLOW), bars), repeat=3)


def omc_event(bars: Bars) -> float:
    run_backtest(SmaCross(fast=FAST, slow=SLOW), bars.slice(0, 5000), fees=FeeModel.flat(10))
    return timed(
        lambda: run_backtest(
            SmaCross(fast=FAST, slow=SLOW), bars, fees=FeeModel.flat(10), with_metrics=False
        )
    )


def peak_mb(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def backtesting_py(bars: Bars) -> float | None:
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
                self.buy()
            elif f1 < s1 and f0 >= s0 and self.position:
                self.position.close()

    frame = bars.to_frame()
    frame[["Open", "High", "Low", "Close"]] *= 1.0  # whole units: prices ~ 1e4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(frame, Cross, cash=1e9, commission=FEE)
        return timed(lambda: bt.run())


def backtrader_(bars: Bars) -> float | None:
    try:
        import backtrader as btr
    except ImportError:
        return None

    class Cross(btr.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            f = btr.ind.SMA(self.data.close, period=FAST)
            s = btr.ind.SMA(self.data.close, period=SLOW)
            self.cross = btr.ind.CrossOver(f, s)

        def next(self) -> None:
            if self.cross[0] > 0 and not self.position:
                self.order_target_percent(target=0.99)
            elif self.cross[0] < 0 and self.position:
                self.close()

    def run() -> None:
        cerebro = btr.Cerebro(stdstats=False)
        cerebro.adddata(btr.feeds.PandasData(dataname=bars.to_frame().tz_localize(None)))
        cerebro.addstrategy(Cross)
        cerebro.broker.setcash(10_000)
        cerebro.broker.setcommission(commission=FEE)
        cerebro.run()

    return timed(run)


def vectorbt_(bars: Bars, sweep_bars: Bars) -> tuple[float | None, float | None]:
    try:
        import vectorbt as vbt
    except Exception:  # not installed or incompatible with this numpy
        return None, None

    def single(b: Bars) -> None:
        close = b.to_frame()["Close"]
        f = vbt.MA.run(close, FAST)
        s = vbt.MA.run(close, SLOW)
        pf = vbt.Portfolio.from_signals(
            close, f.ma_crossed_above(s), f.ma_crossed_below(s), fees=FEE, freq="5min"
        )
        pf.final_value()

    def sweep(b: Bars) -> None:
        close = b.to_frame()["Close"]
        fw = [f for f in GRID["fast"] for _ in GRID["slow"]]
        sw = [s for _ in GRID["fast"] for s in GRID["slow"]]
        f = vbt.MA.run(close, fw, short_name="fast")
        s = vbt.MA.run(close, sw, short_name="slow")
        entries = f.ma_crossed_above(s)
        exits = f.ma_crossed_below(s)
        pf = vbt.Portfolio.from_signals(close, entries, exits, fees=FEE, freq="5min")
        pf.sharpe_ratio()

    try:
        single(bars.slice(0, 2000))
        sweep(sweep_bars.slice(0, 2000))  # compile
        return timed(lambda: single(bars)), timed(lambda: sweep(sweep_bars))
    except Exception as exc:  # pragma: no cover - peer breakage is reported, not fatal
        Console().print(f"[yellow]vectorbt failed: {exc!r}[/]")
        return None, None


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
    console.print(
        f"Data: {args.bars:,} synthetic 5m bars (seeded random walk resampling the returns of "
        f"{len(real):,} real BTC/USDT bars). Sweep: {len(GRID['fast']) * len(GRID['slow'])} "
        f"combinations on {args.sweep_bars:,} bars, {args.workers} workers; CPUs: {os.cpu_count()}."
    )
    rows: list[tuple[str, str, str, str]] = []
    n_combos = len(GRID["fast"]) * len(GRID["slow"])

    def rate(seconds: float | None, n: int) -> str:
        return "unavailable" if seconds is None else f"{n / seconds:,.0f} ({n:,} bars)"

    t_fast = omc_fast(bars)
    run_sweep("sma_cross", sweep_bars.slice(0, 3000), {"fast": [5], "slow": [60]}, workers=1)
    t0 = time.perf_counter()
    run_sweep("sma_cross", sweep_bars, GRID, workers=args.workers)
    t_sweep = time.perf_counter() - t0
    mem_fast = peak_mb(lambda: run_fast(SmaCross(fast=FAST, slow=SLOW), bars))
    rows.append(
        ("OMC fast path (numba)", rate(t_fast, len(bars)), f"{t_sweep:.2f}", f"{mem_fast:,.0f} MB")
    )
    t_event = omc_event(bars)
    mem_event = peak_mb(
        lambda: run_backtest(SmaCross(fast=FAST, slow=SLOW), bars, fees=FeeModel.flat(10))
    )
    per_run = t_event * len(sweep_bars) / len(bars)
    rows.append(
        (
            "OMC event-driven (Decimal)",
            rate(t_event, len(bars)),
            f"{per_run * n_combos / args.workers:.1f} est.",
            f"{mem_event:,.0f} MB",
        )
    )
    t_event_peer = omc_event(peer)
    rows.append(("OMC event-driven, peer slice", rate(t_event_peer, len(peer)), "", ""))
    t_btpy = backtesting_py(peer)
    est = (
        "unavailable"
        if t_btpy is None
        else f"{t_btpy * len(sweep_bars) / len(peer) * n_combos / args.workers:.1f} est."
    )
    rows.append(("backtesting.py", rate(t_btpy, len(peer)), est, ""))
    t_btr = backtrader_(peer)
    est = (
        "unavailable"
        if t_btr is None
        else f"{t_btr * len(sweep_bars) / len(peer) * n_combos / args.workers:.1f} est."
    )
    rows.append(("backtrader", rate(t_btr, len(peer)), est, ""))
    t_vbt, t_vbt_sweep = vectorbt_(bars, sweep_bars)
    rows.append(
        (
            "vectorbt (end to end)",
            rate(t_vbt, len(bars)),
            "unavailable" if t_vbt_sweep is None else f"{t_vbt_sweep:.2f}",
            "",
        )
    )
    table = Table(title="sma_cross(10, 30) backtest speed")
    table.add_column("Engine")
    table.add_column("bars/s (one backtest)", justify="right")
    table.add_column(f"{n_combos}-combo sweep on {args.sweep_bars:,} bars (s)", justify="right")
    table.add_column("OMC peak memory (tracemalloc)", justify="right")
    for r in rows:
        table.add_row(*r)
    console.print(table)
    checks = [
        ("fast path ≥ 10,000,000 bars/s", len(bars) / t_fast >= 10_000_000),
        (
            "event-driven ≥ backtesting.py (same slice)",
            t_btpy is None or len(peer) / t_event_peer >= len(peer) / t_btpy,
        ),
        ("sweep ≥ 5× faster than vectorbt", t_vbt_sweep is None or t_vbt_sweep / t_sweep >= 5),
    ]
    for label, ok in checks:
        console.print(f"{'[green]PASS' if ok else '[red]MISS'}[/] {label}")
    if t_vbt_sweep is not None:
        console.print(f"sweep speed-up over vectorbt: {t_vbt_sweep / t_sweep:.1f}×")


if __name__ == "__main__":
    main()
