"""Metric formulas against small cases worked out by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest

from omc.floor.backtest.metrics import performance, periods_per_year, trade_stats
from omc.floor.orders import TradeRecord


def test_periods_per_year_is_24_7() -> None:
    assert periods_per_year(300) == 105_120  # 5-minute bars, 365 days
    assert periods_per_year(3600) == 8_760
    assert periods_per_year(86400) == 365


def test_performance_by_hand() -> None:
    # daily bars: 100 -> 110 -> 99 -> 121
    m = performance(np.array([110.0, 99.0, 121.0]), 100.0, 86400)
    r = [0.1, -0.1, 0.22222222222222222]
    mean = sum(r) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / 2)
    assert m["total_return"] == pytest.approx(0.21)
    assert m["cagr"] == pytest.approx(1.21 ** (365 / 3) - 1)
    assert m["volatility_ann"] == pytest.approx(sd * math.sqrt(365))
    assert m["sharpe"] == pytest.approx(mean / sd * math.sqrt(365))
    assert m["sortino"] == pytest.approx(mean / math.sqrt(0.01 / 3) * math.sqrt(365))
    assert m["max_drawdown"] == pytest.approx(-0.1)
    assert m["max_drawdown_duration_bars"] == 1
    assert m["max_drawdown_duration_days"] == pytest.approx(1.0)
    assert m["calmar"] == pytest.approx((1.21 ** (365 / 3) - 1) / 0.1)


def test_drawdown_duration_counts_until_recovery_or_end() -> None:
    # hourly: peak 120 at bar 1, under water for bars 2..5, new peak at 6, then under to end
    eq = np.array([100.0, 120.0, 90.0, 60.0, 100.0, 119.0, 130.0, 125.0, 126.0])
    m = performance(eq, 100.0, 3600)
    assert m["max_drawdown"] == pytest.approx(60 / 120 - 1)
    assert m["max_drawdown_duration_bars"] == 4
    assert m["max_drawdown_duration_days"] == pytest.approx(4 / 24)


def test_flat_curve_has_no_ratio() -> None:
    m = performance(np.full(5, 100.0), 100.0, 60)
    assert m["total_return"] == 0 and m["sharpe"] is None and m["max_drawdown"] == 0


def _trade(pnl: str) -> TradeRecord:
    t = TradeRecord("X", "long", 0, datetime(2024, 1, 1, tzinfo=UTC), Decimal(1), Decimal(100))
    t.exit_index = 1
    t.pnl = Decimal(pnl)
    return t


def test_trade_stats_by_hand() -> None:
    s = trade_stats([_trade("10"), _trade("-5"), _trade("20")])
    assert s["trades"] == 3
    assert s["win_rate"] == pytest.approx(2 / 3)
    assert s["profit_factor"] == pytest.approx(30 / 5)
    assert s["avg_trade"] == pytest.approx(25 / 3)
    assert s["avg_trade_return"] == pytest.approx((0.1 - 0.05 + 0.2) / 3)
    assert trade_stats([_trade("1")])["profit_factor"] is None  # no losing trade


def test_backtest_exposure_turnover_and_buy_and_hold() -> None:
    from omc.floor.backtest.engine import run_backtest
    from omc.floor.fills import FeeModel
    from tests.test_floor_fills import Script, bars

    r = run_backtest(
        Script(actions={0: [lambda c: c.order("X", 10)], 2: [lambda c: c.order("X", -10)]}),
        bars(),
        cash=2000,
        fees=FeeModel.flat(0),
    )
    # long from bar 1's open to bar 3's open: held at the close of bars 1 and 2
    assert r.metrics["exposure"] == pytest.approx(2 / 6)
    assert r.metrics["turnover"] == pytest.approx((1020 + 900) / np.mean(r.equity))
    assert r.metrics["trades"] == 1 and r.metrics["win_rate"] == 0
    assert r.final_equity == Decimal(2000 - 1020 + 900)
    # buy & hold: 20 units at bar 0 open (100), worth 20 x 112 at the last close
    assert r.benchmark["final_equity"] == pytest.approx(2240)
    assert r.benchmark["total_return"] == pytest.approx(0.12)
