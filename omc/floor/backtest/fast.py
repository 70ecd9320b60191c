"""The signal-driven fast path: a numba-compiled loop for strategies that implement
`Strategy.signals` (target weights decided at bar closes, executed at the next bar's open).

It reproduces the event-driven engine's rules for that case — market orders at the next
open, taker fee, bps slippage, sizing to the lot size, no leverage, long-only — in float64,
so its trades are the same and its equity agrees with the exact Decimal path within 1e-9
relative (a property test over thousands of random runs asserts it). Used for big backtests,
parameter sweeps and walk-forward.
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
from omc.floor.lookahead import Trace, check_prefixes, first_array_difference, prefix_copy
from omc.floor.strategy import LookAheadError, Strategy

IntArray = npt.NDArray[np.int64]


# Sizes are whole lots, floored as the exact engine floors them. Float noise is bounded by a
# tiny fraction (`NOISE`) of the equity: an amount within it of buying one more whole lot (an
# exact tie, e.g. cash that buys exactly 3798.6678) counts as buying it; a difference of
# target and current value within it is no difference (the exact engine would not trade);
# cash never goes below zero (the exact engine's never does: long-only, sizes floored to what
# cash affords).
NOISE = 1e-13


@nb.njit(cache=True, nogil=True)
def _lots(money: float, unit: float, slack: float) -> float:  # pragma: no cover - compiled
    """Whole lots of value `unit` that `money` buys, counting a shortfall ≤ `slack` as none."""
    return float(math.floor((money + slack) / unit))


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
    lots = 0.0  # the position, in whole lots (exact in float64)
    fees_paid = 0.0
    notional_total = 0.0
    in_market = 0
    for i in range(start, n):
        if i > start and not np.isnan(target[i - 1]):
            w = target[i - 1]
            o = open_[i]
            cur = lots * lot * o
            eq_open = cash + cur
            want = eq_open * w
            slack = NOISE * eq_open
            if not (w == 0.0 and lots == 0.0) and abs(want - cur) > slack:
                buy = want > cur
                price = o * (1.0 + slip) if buy else o * (1.0 - slip)
                unit = price * (1.0 + fee) * lot
                tgt = 0.0 if w == 0.0 else _lots(want, unit, slack)
                delta = tgt - lots
                if delta != 0.0 and (delta > 0.0) == buy:
                    if delta > 0.0:
                        afford = _lots(cash, unit, slack)
                        if delta > afford:
                            delta = afford
                    elif -delta > lots:
                        delta = -lots
                    if delta != 0.0:
                        q = delta * lot
                        notional = abs(q) * price
                        f = notional * fee
                        cash -= q * price + f
                        if cash < 0.0:
                            cash = 0.0
                        fees_paid += f
                        notional_total += notional
                        if not open_trade:
                            k += 1
                            open_trade = True
                            t_entry[k] = i
                        t_fee[k] += f
                        if delta > 0.0:
                            t_qty[k] += q
                            t_in[k] += notional
                        else:
                            t_outq[k] -= q
                            t_out[k] += notional
                        lots += delta
                        if lots == 0.0:
                            t_exit[k] = i
                            open_trade = False
        equity[i - start] = cash + lots * lot * close[i]
        if lots != 0.0:
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
        lots * lot,
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


def checked_signals(strategy: Strategy, bars: Bars, start: int = 0) -> dict[str, FloatArray] | None:
    """`strategy.signals` on `bars`, after checking that on prefixes of the data (copies
    ending at random, adversarial and decision bars) every target up to the cut is the same;
    `LookAheadError` names the first bar that differs (e.g. a `shift(-1)` feature)."""

    def run(cut: int | None) -> Trace:
        data = bars if cut is None else prefix_copy(bars, cut)
        if cut is None:
            sig = strategy.signals({bars.symbol: data})
        else:
            try:
                sig = strategy.signals({bars.symbol: data})
            except LookAheadError:
                raise
            except Exception as exc:  # too few bars for its features: no verdict
                return Trace(cut, error=exc, inconclusive=True)
        if sig is None:
            return Trace(cut, result=None, decisions={}, inconclusive=True)
        target = np.asarray(sig[bars.symbol], dtype=np.float64)
        decided = np.flatnonzero(~np.isnan(target))
        return Trace(cut, bars=decided, decisions={bars.symbol: target}, result=sig)

    def first_difference(sub: Trace, full: Trace, cut: int) -> int | None:
        if full.result is None:
            return None
        return first_array_difference(sub.decisions, full.decisions, cut)

    result: dict[str, FloatArray] | None = check_prefixes(
        run,
        first_difference,
        n=len(bars),
        start=start,
        warmup=strategy.warmup(),
        what=f"strategy {strategy.name!r} (signals)",
        when=lambda b: f"{bars.time(b):%Y-%m-%d %H:%M} UTC",
    )
    return result


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
    check_lookahead: bool = True,
) -> FastResult:
    """Backtest a signal-capable strategy on one symbol through the compiled loop. With
    `check_lookahead`, `signals` is also computed on prefixes of the data and must agree
    (`checked_signals`)."""
    if check_lookahead:
        sig = checked_signals(strategy, bars, start)
    else:
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
