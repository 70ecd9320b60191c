"""Backtest ↔ paper ↔ live divergence: does a trading account behave as its backtest promised?

For an account (a journal: paper or live), the same strategy with the same parameters is
re-run by the event-driven backtester on the candles of the account's traded period (from
the Exchange ledger, or a given candle file); the two sides' executions are paired and judged
(`compare`). Optionally a second account (e.g. the paper twin of a live account) is compared
too: against the backtest, and as the reference for the first account.

`sides` reads the sides, `compare` pairs and judges, this module assembles the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from omc.floor.data import Bars
from omc.floor.divergence.compare import Comparison, Pair, Thresholds, compare
from omc.floor.divergence.sides import (
    AccountRun,
    Execution,
    Leg,
    backtest_leg,
    ledger_candles,
    read_account,
    window,
)
from omc.floor.fills import FeeModel, SlippageModel

__all__ = [
    "AccountRun",
    "Comparison",
    "DivergenceReport",
    "Execution",
    "Leg",
    "Pair",
    "Thresholds",
    "compare",
    "divergence_report",
    "read_account",
]


@dataclass
class DivergenceReport:
    """The account, its period and one comparison per (reference, actual) pair of sides."""

    account: str
    venue: str
    strategy: str
    params: dict[str, Any]
    symbols: tuple[str, ...]
    start: datetime
    end: datetime
    bar_seconds: float
    comparisons: list[Comparison]

    @property
    def verdict(self) -> str:
        return "within" if all(c.verdict == "within" for c in self.comparisons) else "outside"

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "venue": self.venue,
            "strategy": self.strategy,
            "params": dict(self.params),
            "symbols": list(self.symbols),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "bar_seconds": self.bar_seconds,
            "verdict": self.verdict,
            "comparisons": [c.as_dict() for c in self.comparisons],
        }


def divergence_report(
    engine: Engine,
    account: str,
    *,
    bars: Mapping[str, Bars] | None = None,
    against: str | None = None,
    timeframe: str | None = None,
    exchange: str | None = None,
    fees: FeeModel | None = None,
    slippage: SlippageModel | None = None,
    thresholds: Thresholds | None = None,
) -> DivergenceReport:
    """Compare `account` with its backtest on the same period (and with account `against`).

    `bars`: candles per symbol (default: the ledger's, `timeframe` defaulting to the journaled
    bar spacing). `fees`/`slippage`: the backtest's assumptions (default: the configured
    fees, no slippage). LookupError / ValueError carry a one-line reason (unknown account,
    nothing traded, no candles for the period, unknown strategy)."""
    th = thresholds or Thresholds()
    run = read_account(engine, account)
    if not run.orders and not run.denials:
        raise LookupError(
            f"account {account!r} has no fills and no denials yet: nothing to compare"
        )
    data = bars if bars is not None else ledger_candles(engine, run, timeframe, exchange)
    bt = backtest_leg(
        run, data, fees=fees or FeeModel.from_settings(), slippage=slippage or SlippageModel()
    )
    bar_s = next(iter(data.values())).bar_seconds if data else run.bar_seconds
    mine = run.leg()
    comparisons = [compare(bt, mine, th, bar_s)]
    if against is not None:
        other = read_account(engine, against)
        lo, hi = window(run, th.tolerance_bars * bar_s)
        theirs = other.leg(lo, hi)
        comparisons.append(compare(bt, theirs, th, bar_s))
        comparisons.append(compare(theirs, mine, th, bar_s))
    return DivergenceReport(
        account,
        run.venue,
        run.strategy,
        run.params,
        run.symbols,
        run.start,
        run.end,
        bar_s,
        comparisons,
    )
