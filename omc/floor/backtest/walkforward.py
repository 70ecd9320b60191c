"""Walk-forward analysis: optimise on a training window, trade the next (unseen) window.

The data is cut into `folds + 1` equal consecutive windows. Fold k sweeps the grid on window
k and trades the best parameters on window k+1 (with the strategy's warm-up bars taken from
before the window, but no trading there). Only the out-of-sample windows are reported: their
equity is chained (each starts with the previous one's final equity) and measured as one run.
A position still open at the end of a window (but the last) is sold at that window's last
close, paying the taker fee and slippage, so the next window starts flat with that cash; the
last window ends marked to market like a single backtest. `volume_share` caps fills as in
`run_backtest` (through the event-driven engine).

`purge` (default 0: the windows touch) leaves that many bars out at the end of every training
window, so the optimisation never sees the bars just before its test window: use at least the
horizon of anything the strategy looks ahead over in its own fitting (a model trained on
h-bar labels: h), plus an embargo for features that overlap the cut. The test windows, and so
the reported out-of-sample results, do not change; the strategy's warm-up for a test window
is still taken from the bars before it (indicator history, not training).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omc.floor.backtest.metrics import performance
from omc.floor.backtest.sweep import evaluate, run_sweep
from omc.floor.data import Bars, FloatArray
from omc.floor.strategies import make_strategy


@dataclass
class Fold:
    train: tuple[int, int]
    test: tuple[int, int]
    params: dict[str, Any]
    train_metric: float | None
    test_metrics: dict[str, Any]


@dataclass
class WalkForwardResult:
    folds: list[Fold]
    equity: FloatArray
    ts: np.ndarray
    metrics: dict[str, Any] = field(default_factory=dict)


def walk_forward(
    name: str,
    bars: Bars,
    grid: Mapping[str, Sequence[Any]],
    *,
    folds: int = 4,
    base_params: Mapping[str, Any] | None = None,
    cash: float = 10_000.0,
    fee_bps: float = 10.0,
    slippage_bps: float = 0.0,
    volume_share: float | None = None,
    rank_by: str = "sharpe",
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    purge: int = 0,
) -> WalkForwardResult:
    """Out-of-sample results of rolling optimise-then-trade windows, the training windows
    ending `purge` bars before their test windows."""
    if folds < 1:
        raise ValueError("walk-forward needs at least one fold")
    if purge < 0:
        raise ValueError("purge must be >= 0 bars")
    n = len(bars)
    size = n // (folds + 1)
    if size - purge < 10:
        what = f" with a {purge}-bar purge" if purge else ""
        raise ValueError(f"{n} bars are too few for {folds} walk-forward folds{what}")
    base = dict(base_params or {})
    out: list[Fold] = []
    curves: list[FloatArray] = []
    stamps: list[np.ndarray] = []
    money = float(cash)
    for k in range(folds):
        tr0, te0 = k * size, (k + 1) * size
        tr1 = te0 - purge
        te1 = (k + 2) * size if k < folds - 1 else n
        rows = run_sweep(
            name,
            bars.slice(tr0, tr1),
            grid,
            base_params=base,
            cash=money,
            fee_bps=fee_bps,
            slippage_bps=slippage_bps,
            volume_share=volume_share,
            rank_by=rank_by,
            workers=workers,
            progress=progress,
        )
        if not rows:
            raise ValueError("no valid parameter combination in the grid")
        best = {key: rows[0][key] for key in grid}
        strategy = make_strategy(name, {**base, **best})
        warm = min(strategy.warmup(), te0)
        window = bars.slice(te0 - warm, te1)
        metrics, equity = evaluate(
            strategy,
            window,
            cash=money,
            fee_bps=fee_bps,
            slippage_bps=slippage_bps,
            start=warm,
            volume_share=volume_share,
            close_out=k < folds - 1,  # the next window starts flat: pay the exit now
        )
        out.append(Fold((tr0, tr1), (te0, te1), best, rows[0].get(rank_by), metrics))
        curves.append(equity)
        stamps.append(bars.ts[te0:te1])
        money = float(equity[-1])
    equity_all = np.concatenate(curves)
    result = WalkForwardResult(out, equity_all, np.concatenate(stamps))
    result.metrics = performance(equity_all, float(cash), bars.bar_seconds)
    result.metrics["trades"] = sum(int(f.test_metrics.get("trades") or 0) for f in out)
    result.metrics["final_equity"] = float(equity_all[-1])
    return result
