"""The compiled fast path agrees with the exact event-driven engine: a property test over
thousands of random runs of both built-in signal strategies (random prices — round ones
included, so sizes land exactly on lot boundaries and repeated entry signals meet an all-in
book —, lots, fees, slippage, sizes and cash)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from omc.floor.backtest.engine import run_backtest
from omc.floor.backtest.fast import run_fast
from omc.floor.data import Bars
from omc.floor.fills import FeeModel, SlippageModel
from omc.floor.strategies import RsiRevert, SmaCross
from omc.floor.strategy import Strategy

RUNS = 1000  # per strategy


def _bars(rng: np.random.Generator, n: int) -> Bars:
    tick = float(rng.choice([1.0, 0.5, 0.25, 0.01]))
    base = float(rng.choice([1.0, 7.0, 100.0, 2500.0, 43000.0]))
    steps = rng.integers(-3, 4, size=n) * tick * max(1.0, base / 1000)
    close = np.round(np.maximum(base + np.cumsum(steps), tick), 2)
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) + tick
    low = np.maximum(np.minimum(open_, close) - tick, tick / 2)
    ts = (1_700_000_000 + 300 * np.arange(n, dtype=np.int64)) * 10**9
    return Bars("X", ts, open_, high, low, close, np.full(n, 1e9))


def _strategy(rng: np.random.Generator, kind: str) -> Strategy:
    size = float(rng.choice([1.0, 1.0, 0.5, 0.3, 0.25]))
    if kind == "sma_cross":
        fast = int(rng.integers(1, 6))
        return SmaCross(fast=fast, slow=fast + int(rng.integers(1, 8)), size=size)
    lower = float(rng.integers(25, 46))
    return RsiRevert(
        period=int(rng.integers(2, 8)), lower=lower, upper=lower + float(rng.integers(5, 35)),
        size=size,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["sma_cross", "rsi_revert"])
def test_fast_path_agrees_with_the_exact_engine_on_random_runs(kind: str) -> None:
    rng = np.random.default_rng(20240611 + len(kind))
    worst, failures = 0.0, []
    for run in range(RUNS):
        bars = _bars(rng, int(rng.integers(30, 70)))
        strategy = _strategy(rng, kind)
        lot = str(rng.choice(["0.00000001", "0.0001", "0.01", "1"]))
        fee, slip = int(rng.choice([0, 0, 10, 25])), int(rng.choice([0, 0, 5]))
        cash = str(rng.choice(["1000", "10000", "12345.67", "100"]))
        ev = run_backtest(
            strategy, bars, cash=Decimal(cash), fees=FeeModel.flat(fee),
            slippage=SlippageModel(Decimal(slip)), lot_size=Decimal(lot),
            check_lookahead=False, with_metrics=False,
        )  # fmt: skip
        fa = run_fast(
            strategy, bars, cash=float(cash), fee_bps=fee, slippage_bps=slip, lot=float(lot),
            check_lookahead=False,
        )  # fmt: skip
        rel = float(np.max(np.abs(fa.equity - ev.equity) / np.abs(ev.equity)))
        rel = max(rel, abs(fa.final_equity - float(ev.final_equity)) / float(ev.final_equity))
        worst = max(worst, rel)
        if rel > 1e-9 or [t.entry_index for t in ev.trades] != list(fa.entry_index):
            failures.append((run, strategy, lot, fee, slip, cash, rel))
    assert not failures, f"{len(failures)} of {RUNS} runs disagree, e.g. {failures[:3]}"
    assert worst <= 1e-9
