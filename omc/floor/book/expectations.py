"""Expectations: the out-of-sample metrics a strategy was approved on, which its paper and
live results are held to (`omc.floor.book.monitor`).

Keys (all optional; JSON numbers — these are ratios, not money):

* `trade_return_mean`, `trade_return_std` — the distribution of per-trade returns (net of
  fees, as a fraction of the entry value) over `trades` closed trades;
* `hit_rate` — the share of winning trades; `turnover` — traded value / mean equity;
* `max_drawdown` — the deepest equity drawdown (a fraction, positive);
* `trades_per_day`, `bar_seconds`, `period` and `source` (where they come from).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from omc.floor.backtest.engine import BacktestResult
from omc.floor.backtest.metrics import attach_metrics

KEYS = ("trade_return_mean", "trade_return_std", "hit_rate", "turnover", "max_drawdown")


def _num(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def from_returns(returns: list[float], **extra: Any) -> dict[str, Any]:
    """Expectations of a per-trade return sample (plus `extra` keys)."""
    n = len(returns)
    out: dict[str, Any] = {"trades": n}
    if n:
        mean = sum(returns) / n
        var = sum((r - mean) ** 2 for r in returns) / (n - 1) if n > 1 else 0.0
        out["trade_return_mean"] = mean
        out["trade_return_std"] = math.sqrt(var)
        out["hit_rate"] = sum(1 for r in returns if r > 0) / n
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def from_backtest(result: BacktestResult, *, source: str) -> dict[str, Any]:
    """Expectations from a backtest run (its closed trades, turnover and drawdown)."""
    metrics = result.metrics or attach_metrics(result)
    closed = [t for t in result.trades if t.closed]
    days = 0.0
    if len(result.ts) > 1:
        days = float(result.ts[-1] - result.ts[0]) / 1e9 / 86400
    start = closed[0].entry_time.isoformat() if closed else None
    end = closed[-1].exit_time.isoformat() if closed and closed[-1].exit_time else None
    return from_returns(
        [t.return_pct for t in closed],
        turnover=_num(metrics.get("turnover")),
        max_drawdown=abs(_num(metrics.get("max_drawdown")) or 0.0),
        trades_per_day=len(closed) / days if days > 0 else None,
        bar_seconds=result.bar_seconds,
        period={"first_trade": start, "last_exit": end},
        source=source,
    )


def from_lab_metrics(oos: Mapping[str, Any]) -> dict[str, Any]:
    """Expectations from a Lab study's out-of-sample metrics (the keys it has)."""
    out: dict[str, Any] = {}
    for key in (*KEYS, "trades", "sharpe", "total_return"):
        value = _num(oos.get(key))
        if value is not None:
            out[key] = abs(value) if key == "max_drawdown" else value
    if "win_rate" in oos and "hit_rate" not in out:
        value = _num(oos.get("win_rate"))
        if value is not None:
            out["hit_rate"] = value
    if out:
        out["source"] = "lab out-of-sample"
    return out
