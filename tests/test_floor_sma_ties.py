"""An exact tie of two moving averages is a tie: the crossover fires on the bar the fast
average really crosses the slow one, not a bar early on rounding noise."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from omc.floor.backtest.engine import run_backtest
from omc.floor.backtest.fast import run_fast
from omc.floor.data import Bars
from omc.floor.fills import FeeModel
from omc.floor.indicators import sma
from omc.floor.strategies import SmaCross, crossover

# SMA(2) < SMA(4) on bar 5, equal (100.045 both, exactly) on bar 6, above on bar 7
CENTS = [10002, 10002, 10009, 10006, 10003, 10006, 10003, 10009, 10009]


def _bars() -> Bars:
    close = np.array(CENTS) / 100
    ts = (1_700_000_000 + 300 * np.arange(len(close), dtype=np.int64)) * 10**9
    return Bars("X", ts, close, close, close, close, np.full(len(close), 1e6))


def test_equal_averages_are_equal_and_cross_on_the_next_bar() -> None:
    close = _bars().close
    fast, slow = sma(close, 2), sma(close, 4)
    assert fast[5] < slow[5]
    assert fast[6] == slow[6] == 100.045
    assert fast[7] > slow[7]
    assert list(crossover(fast, slow)[4:8]) == [-1.0, 0.0, 0.0, 1.0]


def test_sma_is_exact_on_decimal_prices_whatever_the_history() -> None:
    rng = np.random.default_rng(7)
    cents = rng.integers(1, 10**7, size=5000)
    x = cents / 100
    full = sma(x, 20)
    for i in (19, 777, 4096, 4999):
        exact = Fraction(int(cents[i - 19 : i + 1].sum()), 2000)
        assert full[i] == float(exact)  # the correctly rounded true mean
        assert sma(x[max(0, i - 40) : i + 1], 20)[-1] == full[i]  # a trailing window: same value


def test_the_strategy_buys_after_the_real_cross_on_both_paths() -> None:
    bars = _bars()
    ev = run_backtest(SmaCross(fast=2, slow=4), bars, fees=FeeModel.flat(0))
    fa = run_fast(SmaCross(fast=2, slow=4), bars, fee_bps=0)
    assert [f.index for f in ev.fills] == [8]  # decided at bar 7's close, filled at bar 8
    assert list(fa.entry_index) == [8]
