"""Performance metrics of an equity curve and its trades, and the buy-and-hold baseline.

Conventions (crypto trades 24/7): a year is 365 days of the data's bar frequency, so a 5-minute
series has 105,120 periods a year. Per-bar simple returns include the first bar (from the
initial cash). Sharpe = mean/std (ddof 1) × √periods, risk-free 0; Sortino uses the downside
deviation √mean(min(r, 0)²); annualised volatility = std × √periods; CAGR over the elapsed
bars × bar length; max drawdown is the deepest fall from a running peak (a negative fraction)
and its duration the longest run of bars below a previous peak; Calmar = CAGR / |max DD|;
turnover = Σ |fill value| (buys and sells) / mean close-of-bar equity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from omc.floor.data import FloatArray, to_decimal
from omc.floor.orders import TradeRecord

if TYPE_CHECKING:
    from omc.floor.backtest.engine import BacktestResult

YEAR_SECONDS = 365 * 86400


def periods_per_year(bar_seconds: float) -> float:
    return YEAR_SECONDS / bar_seconds


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def performance(equity: FloatArray, initial: float, bar_seconds: float) -> dict[str, Any]:
    """Return/risk figures of a close-of-bar equity curve that started at `initial`."""
    eq = np.concatenate(([float(initial)], np.asarray(equity, dtype=np.float64)))
    n = len(eq) - 1
    ppy = periods_per_year(bar_seconds)
    total = eq[-1] / eq[0] - 1.0
    years = n * bar_seconds / YEAR_SECONDS
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = eq[1:] / eq[:-1] - 1.0
        cagr = (eq[-1] / eq[0]) ** (1.0 / years) - 1.0 if years > 0 and eq[-1] > 0 else math.nan
    if n >= 2:
        sd = float(np.std(r, ddof=1))
        mean = float(np.mean(r))
        vol = sd * math.sqrt(ppy)
        sharpe = mean / sd * math.sqrt(ppy) if sd > 0 else math.nan
        dd_dev = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
        sortino = mean / dd_dev * math.sqrt(ppy) if dd_dev > 0 else math.nan
    else:
        vol = sharpe = sortino = math.nan
    peak = np.maximum.accumulate(eq)
    dd = eq / peak - 1.0
    max_dd = float(dd.min())
    under = dd < 0
    at_peak = np.flatnonzero(~under)
    bounds = np.concatenate(([-1], at_peak, [len(under)]))
    longest = int(np.max(np.diff(bounds)) - 1)
    calmar = cagr / abs(max_dd) if max_dd < 0 and math.isfinite(cagr) else math.nan
    return {
        "bars": n,
        "total_return": _num(total),
        "cagr": _num(cagr),
        "volatility_ann": _num(vol),
        "sharpe": _num(sharpe),
        "sortino": _num(sortino),
        "max_drawdown": _num(max_dd),
        "max_drawdown_duration_bars": int(longest),
        "max_drawdown_duration_days": longest * bar_seconds / 86400,
        "calmar": _num(calmar),
    }


def trade_stats(trades: Sequence[TradeRecord]) -> dict[str, Any]:
    """Win rate, profit factor and averages over closed trades."""
    closed = [t for t in trades if t.closed]
    pnls = [float(t.pnl) for t in closed]
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    gross_loss = -sum(losses)
    return {
        "trades": len(closed),
        "open_trades": len(trades) - len(closed),
        "win_rate": _num(len(wins) / len(closed)) if closed else None,
        "profit_factor": _num(sum(wins) / gross_loss) if gross_loss > 0 else None,
        "avg_trade": _num(sum(pnls) / len(closed)) if closed else None,
        "avg_trade_return": _num(sum(t.return_pct for t in closed) / len(closed))
        if closed
        else None,
    }


def buy_and_hold(result: BacktestResult) -> tuple[FloatArray, Decimal, Decimal]:
    """Equal-weight buy at the first bar's open (same fees, slippage, lot), held to the end.
    Returns (equity curve, exact final equity, fees paid)."""
    start, lot = result.start, Decimal("0.00000001")
    cash = result.initial_cash
    rate = result.fees.rate(False)
    k = len(result.bars)
    curve = np.zeros(len(result.equity))
    fees = Decimal(0)
    final = Decimal(0)
    for bars in result.bars.values():
        budget = result.initial_cash / k
        price = result.slippage.adjust(to_decimal(bars.open[start]), True)
        qty = (budget / (price * (1 + rate)) / lot).to_integral_value(ROUND_DOWN) * lot
        fee = qty * price * rate
        left = budget - qty * price - fee
        fees += fee
        cash -= qty * price + fee
        curve += float(left) + float(qty) * bars.close[start:]
        final += left + qty * to_decimal(bars.close[-1])
    return curve, final, fees


def attach_metrics(result: BacktestResult) -> dict[str, Any]:
    """Fill `result.metrics` and `result.benchmark` (buy-and-hold) and return the metrics."""
    initial = float(result.initial_cash)
    bar_s = result.bar_seconds
    m = performance(result.equity, initial, bar_s)
    m.update(trade_stats(result.trades))
    n = max(len(result.equity), 1)
    mean_eq = float(np.mean(result.equity)) if len(result.equity) else initial
    m["exposure"] = result.bars_in_market / n
    m["turnover"] = float(result.traded_notional) / mean_eq if mean_eq else None
    m["fees_paid"] = float(result.fees_paid)
    m["final_equity"] = float(result.final_equity)
    m["final_equity_exact"] = str(result.final_equity)
    m["initial_cash"] = initial
    if result.guard is not None:
        m["guard"] = result.guard
    curve, final, fees = buy_and_hold(result)
    b = performance(curve, initial, bar_s)
    b.update(
        {
            "trades": 1,
            "open_trades": 1,
            "win_rate": None,
            "profit_factor": None,
            "avg_trade": _num(float(final) - initial),
            "avg_trade_return": _num(float(final) / initial - 1),
            "exposure": 1.0,
            "turnover": _num(float(result.initial_cash - fees) / float(np.mean(curve))),
            "fees_paid": float(fees),
            "final_equity": float(final),
            "final_equity_exact": str(final),
            "initial_cash": initial,
        }
    )
    result.metrics, result.benchmark = m, b
    return m
