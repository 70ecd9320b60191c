"""The signal-driven fast path: a numba-compiled loop for strategies that implement
`Strategy.signals` (target weights decided at bar closes, executed at the next bar's open).

It reproduces the event-driven engine's rules for that case — market orders at the next
open, taker fee, bps slippage, sizing to the lot size, no leverage, long-only — in float64,
so its trades are the same and its final equity agrees with the exact Decimal path to ~1e-9
(a test asserts both). Used for big backtests, parameter sweeps and walk-forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt

from omc.floor.backtest.metrics import performance
from omc.floor.data import Bars, FloatArray
from omc.floor.strategy import Strategy

IntArray = npt.NDArray[np.int64]


@nb.njit(cache=True, nogil=True)
def _simulate(  # pragma: no cover - compiled
    open_: FloatArray,
    close: FloatArray,
    target: FloatArray,
    start: int,
    cash: float,
    fee: float,
    slip: float,
    lot: float,
) -> tuple[Any, ...]:
    n = open_.shape[0]
    equity = np.empty(n - start)
    cap = 1
    for i in range(start, n):
        if not np.isnan(target[i]):
            cap += 1
    t_entry = np.full(cap, -1, np.int64)
    t_exit = np.full(cap, -1, np.int64)
    t_qty = np.zeros(cap)
    t_in = np.zeros(cap)
    t_outq = np.zeros(cap)
    t_out = np.zeros(cap)
    t_fee = np.zeros(cap)
    k = -1  # index of the open trade, or of the last one
    open_trade = False
    pos = 0.0
    fees_paid = 0.0
    notional_total = 0.0
    in_market = 0
    for i in range(start, n):
        if i > start and not np.isnan(target[i - 1]):
            w = target[i - 1]
            o = open_[i]
            eq_open = cash + pos * o
            cur = pos * o
            want = eq_open * w
            if not (w == 0.0 and pos == 0.0) and want != cur:
                buy = want > cur
                price = o * (1.0 + slip) if buy else o * (1.0 - slip)
                if w == 0.0:
                    tgt = 0.0
                else:
                    tgt = math.floor(eq_open * w / (price * (1.0 + fee)) / lot) * lot
                delta = tgt - pos
                if delta != 0.0 and (delta > 0.0) == buy:
                    if delta > 0.0:
                        afford = math.floor(cash / (price * (1.0 + fee)) / lot) * lot
                        if delta > afford:
                            delta = afford
                    elif -delta > pos:
                        delta = -pos
                    if delta != 0.0:
                        notional = abs(delta) * price
                        f = notional * fee
                        cash -= delta * price + f
                        fees_paid += f
                        notional_total += notional
                        newpos = pos + delta
                        if abs(newpos) < lot * 0.5:
                            newpos = 0.0
                        if not open_trade:
                            k += 1
                            open_trade = True
                            t_entry[k] = i
                        t_fee[k] += f
                        if delta > 0.0:
                            t_qty[k] += delta
                            t_in[k] += notional
                        else:
                            t_outq[k] -= delta
                            t_out[k] += notional
                        pos = newpos
                        if pos == 0.0:
                            t_exit[k] = i
                            open_trade = False
        equity[i - start] = cash + pos * close[i]
        if pos != 0.0:
            in_market += 1
    m = k + 1
    return (
        equity,
        t_entry[:m],
        t_exit[:m],
        t_qty[:m],
        t_in[:m],
        t_outq[:m],
        t_out[:m],
        t_fee[:m],
        cash,
        pos,
        fees_paid,
        notional_total,
        in_market,
    )


@dataclass
class FastResult:
    """Arrays of a fast-path run. Trades: entry/exit bar (exit −1 while open), quantity,
    average prices, fees and net P&L (open trades marked at the last close)."""

    equity: FloatArray
    start: int
    entry_index: IntArray
    exit_index: IntArray
    quantity: FloatArray
    entry_price: FloatArray
    exit_price: FloatArray
    fees: FloatArray
    pnl: FloatArray
    cash: float
    position: float
    final_equity: float
    fees_paid: float
    traded_notional: float
    bars_in_market: int
    metrics: dict[str, Any] = field(default_factory=dict)


def simulate(
    bars: Bars,
    target: FloatArray,
    *,
    cash: float = 10_000.0,
    fee_bps: float = 10.0,
    slippage_bps: float = 0.0,
    start: int = 0,
    lot: float = 1e-8,
) -> FastResult:
    """Run target weights (NaN = no order) through the compiled loop."""
    tgt = np.ascontiguousarray(target, dtype=np.float64)
    if np.nanmin(tgt, initial=0.0) < 0:
        raise ValueError("the fast path is long-only; use the event-driven engine for shorts")
    out = _simulate(
        bars.open,
        bars.close,
        tgt,
        int(start),
        float(cash),
        fee_bps / 1e4,
        slippage_bps / 1e4,
        float(lot),
    )
    (
        equity,
        t_entry,
        t_exit,
        t_qty,
        t_in,
        t_outq,
        t_out,
        t_fee,
        cash_f,
        pos,
        fees,
        notional,
        in_mkt,
    ) = out
    last = float(bars.close[-1])
    open_mask = t_exit < 0
    gross = t_out - t_in + np.where(open_mask, (t_qty - t_outq) * last, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        entry_price = np.where(t_qty > 0, t_in / t_qty, np.nan)
        exit_price = np.where(t_outq > 0, t_out / t_outq, np.nan)
    return FastResult(
        equity=equity,
        start=start,
        entry_index=t_entry,
        exit_index=t_exit,
        quantity=t_qty,
        entry_price=entry_price,
        exit_price=exit_price,
        fees=t_fee,
        pnl=gross - t_fee,
        cash=float(cash_f),
        position=float(pos),
        final_equity=float(cash_f) + float(pos) * last,
        fees_paid=float(fees),
        traded_notional=float(notional),
        bars_in_market=int(in_mkt),
    )


def fast_metrics(res: FastResult, initial: float, bar_seconds: float) -> dict[str, Any]:
    """The headline metrics of a fast run (same formulas as `metrics`)."""
    m = performance(res.equity, initial, bar_seconds)
    closed = res.exit_index >= 0
    pnl = res.pnl[closed]
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    n = int(closed.sum())
    m.update(
        {
            "trades": n,
            "win_rate": float(len(wins) / n) if n else None,
            "profit_factor": float(wins.sum() / -losses.sum()) if len(losses) else None,
            "avg_trade": float(pnl.mean()) if n else None,
            "exposure": res.bars_in_market / max(len(res.equity), 1),
            "turnover": res.traded_notional / float(np.mean(res.equity)),
            "fees_paid": res.fees_paid,
            "final_equity": res.final_equity,
        }
    )
    return m


def run_fast(
    strategy: Strategy,
    bars: Bars,
    *,
    cash: float | Decimal = 10_000.0,
    fee_bps: float | Decimal = 10.0,
    slippage_bps: float | Decimal = 0.0,
    start: int = 0,
    lot: float = 1e-8,
    with_metrics: bool = False,
) -> FastResult:
    """Backtest a signal-capable strategy on one symbol through the compiled loop."""
    sig = strategy.signals({bars.symbol: bars})
    if sig is None:
        raise ValueError(f"{strategy.name} has no vectorised signals(); use run_backtest")
    res = simulate(
        bars,
        sig[bars.symbol],
        cash=float(cash),
        fee_bps=float(fee_bps),
        slippage_bps=float(slippage_bps),
        start=start,
        lot=lot,
    )
    if with_metrics:
        res.metrics = fast_metrics(res, float(cash), bars.bar_seconds)
    return res
