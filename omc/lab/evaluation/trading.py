"""The out-of-sample signal traded: through the Floor's backtester, and vectorised per trial.

A model's OOS probability p at a bar's close becomes a long-only target: all in while
p > 0.5, flat otherwise (orders only when that changes), executed at the next bar's open with
the plan's taker fee — the Floor's rules. `backtest` runs such targets through the Floor's
backtester (`omc.floor.backtest.sweep.evaluate`: the compiled fast path, with its look-ahead
check) via `SignalStrategy`, a Strategy whose targets are the precomputed OOS decisions.

`strategy_returns` is the same rule vectorised for many trials at once (a T×N matrix of
per-bar returns feeding the deflated Sharpe and PBO): over bar t the position decided at
t − 2 is held from the close of t − 1 to the open of t, the fee is paid on the change of
weight at the open (a buy of all equity spends it on quantity × price × (1 + fee), a sale
pays the fee on its proceeds, as the Floor does), and the position decided at t − 1 is held
from the open to the close.
A test checks it against the Floor backtest for the selected trial.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from omc.floor.backtest.metrics import periods_per_year
from omc.floor.backtest.sweep import evaluate
from omc.floor.data import Bars
from omc.floor.strategy import Context, Strategy, Targets

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
CASH = 10_000.0
CURVE_POINTS = 600


class SignalStrategy(Strategy):
    """Long-only targets precomputed per bar (`weights[i]` decided at bar i's close; NaN = no
    order) — the Lab's out-of-sample decisions replayed through the Floor."""

    name = "lab_signal"
    defaults: ClassVar[dict[str, Any]] = {"weights": None}

    def validate(self) -> None:
        w = self.params["weights"]
        if w is None or np.asarray(w).ndim != 1:
            raise ValueError("lab_signal needs `weights`: one target weight per bar")
        self.params["weights"] = np.asarray(w, dtype=np.float64)

    def on_bar(self, ctx: Context) -> Targets | None:
        sym = ctx.symbols[0]
        w = float(self.params["weights"][len(ctx.data(sym).close) - 1])
        return None if math.isnan(w) else {sym: w}

    def signals(self, bars: Mapping[str, Bars]) -> dict[str, FloatArray]:
        return {s: self.params["weights"][: len(b)].copy() for s, b in bars.items()}


def positions(proba: FloatArray) -> FloatArray:
    """The long (1) / flat (0) position a probability asks for."""
    return (np.asarray(proba, dtype=np.float64) > 0.5).astype(np.float64)


def span_positions(span: tuple[int, int], rows: IntArray, pos: FloatArray) -> FloatArray:
    """Positions over bar positions [span[0], span[1]): `pos` at `rows`, the last decision
    carried over bars without a prediction (flat before the first)."""
    out = np.full((span[1] - span[0], *pos.shape[1:]), np.nan)
    out[rows - span[0]] = pos
    frame = pd.DataFrame(out.reshape(len(out), -1)).ffill().fillna(0.0)
    return np.asarray(frame.to_numpy().reshape(out.shape), dtype=np.float64)


def order_targets(pos: FloatArray) -> FloatArray:
    """Targets for the Floor: the position where it changes, NaN elsewhere."""
    prev = np.concatenate(([0.0], pos[:-1]))
    return np.where(pos != prev, pos, np.nan)


def strategy_returns(
    open_: FloatArray, close: FloatArray, pos: FloatArray, fee_bps: float
) -> FloatArray:
    """Per-bar returns of positions `pos` (T or T×N) decided at the closes (module rule)."""
    p = pos if pos.ndim == 2 else pos[:, None]
    zeros = np.zeros((1, p.shape[1]))
    w1 = np.vstack([zeros, p[:-1]])  # decided at t-1: held open_t -> close_t
    w2 = np.vstack([zeros, zeros, p[:-2]])[: len(p)]  # decided at t-2: close_{t-1} -> open_t
    prev_close = np.concatenate(([open_[0]], close[:-1]))[:, None]
    gap = open_[:, None] / prev_close - 1.0
    intra = close[:, None] / open_[:, None] - 1.0
    f, dw = fee_bps / 1e4, w1 - w2
    # buying dw of equity spends dw·E on qty·price·(1 + f); selling pays f on the proceeds
    cost = np.where(dw > 0, f * dw / (1.0 + f), f * -dw)
    r = (1.0 + w2 * gap) * (1.0 - cost) * (1.0 + w1 * intra) - 1.0
    return np.asarray(r if pos.ndim == 2 else r[:, 0], dtype=np.float64)


def frame_bars(bars: pd.DataFrame, symbol: str) -> Bars:
    return Bars.from_frame(symbol, bars[["open", "high", "low", "close", "volume"]])


def backtest(bars: Bars, pos: FloatArray, fee_bps: float) -> tuple[dict[str, Any], FloatArray]:
    """Metrics and equity of positions `pos` (one per bar of `bars`) through the Floor."""
    strategy = SignalStrategy(weights=order_targets(pos))
    return evaluate(strategy, bars, cash=CASH, fee_bps=fee_bps, slippage_bps=0.0)


def curve(bars: Bars, equity: FloatArray) -> dict[str, list[Any]]:
    """An equity curve thinned to at most CURVE_POINTS points, ISO timestamps."""
    idx = np.unique(np.linspace(0, len(equity) - 1, min(CURVE_POINTS, len(equity))).astype(int))
    stamps = pd.to_datetime(bars.ts[idx], unit="ns", utc=True)
    return {
        "ts": [t.isoformat() for t in stamps],
        "values": [round(float(v), 4) for v in equity[idx]],
    }


def _summary(metrics: Mapping[str, Any], equity: FloatArray) -> dict[str, Any]:
    keys = ("sharpe", "total_return", "max_drawdown", "trades", "fees_paid", "exposure")
    out = {k: metrics.get(k) for k in keys}
    out["final_equity"] = float(equity[-1]) if len(equity) else CASH
    return out


def trade(
    bars: Bars,
    span: tuple[int, int],
    rows: IntArray,
    probas: Mapping[str, FloatArray],
    fee_bps: float,
) -> dict[str, Any]:
    """Each named signal (OOS probabilities at `rows`), buy-and-hold and flat, traded through
    the Floor over bar positions [span[0], span[1]), with their equity curves."""
    window = bars.slice(*span)
    out: dict[str, Any] = {"span": [window.time(0).isoformat(), window.time(-1).isoformat()]}
    curves: dict[str, Any] = {}
    runs = {name: span_positions(span, rows, positions(p)) for name, p in probas.items()}
    runs["buy_and_hold"] = np.ones(len(window))
    for name, pos in runs.items():
        metrics, equity = backtest(window, pos, fee_bps)
        out[name] = _summary(metrics, equity)
        curves[name] = curve(window, equity)
    flat = np.full(len(window), CASH)
    out["flat"] = {"sharpe": None, "total_return": 0.0, "max_drawdown": 0.0, "trades": 0,
                   "fees_paid": 0.0, "exposure": 0.0, "final_equity": CASH}  # fmt: skip
    curves["flat"] = curve(window, flat)
    out["equity"] = curves
    return out


def trial_returns(
    bars: Bars, span: tuple[int, int], rows: IntArray, probas: FloatArray, fee_bps: float
) -> FloatArray:
    """T×N per-bar strategy returns over the span for N trials' OOS probabilities
    (`probas`: rows × N)."""
    pos = span_positions(span, rows, positions(probas))
    sl = slice(*span)
    return strategy_returns(bars.open[sl], bars.close[sl], pos, fee_bps)


def annual_sharpe_factor(bars: Bars) -> float:
    return math.sqrt(periods_per_year(bars.bar_seconds))
