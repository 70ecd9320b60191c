"""Backtest research paths agree with the single backtest: `--volume-share` in sweeps and
walk-forward, the exit fee at walk-forward fold boundaries (by hand), turnover as documented."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from omc.floor import strategies
from omc.floor.backtest.engine import run_backtest
from omc.floor.backtest.fast import run_fast
from omc.floor.backtest.sweep import run_sweep
from omc.floor.backtest.walkforward import walk_forward
from omc.floor.data import Bars, FloatArray, load_csv
from omc.floor.fills import FeeModel, SlippageModel
from omc.floor.strategies import make_strategy
from omc.floor.strategy import Context, Strategy, Targets

CSV = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles" / "BTC_USDT-5m.csv"


@pytest.fixture(scope="module")
def btc() -> Bars:
    return load_csv(CSV).slice(0, 3000)


def test_sweep_honours_volume_share(btc: Bars) -> None:
    grid = {"fast": [5, 10], "slow": [30]}
    free = run_sweep("sma_cross", btc, grid, workers=1)
    capped = run_sweep("sma_cross", btc, grid, workers=1, volume_share=0.0001)
    assert free != capped
    for row in capped:
        strat = make_strategy("sma_cross", {"fast": row["fast"], "slow": row["slow"]})
        slip = SlippageModel(Decimal(0), Decimal("0.0001"))
        ref = run_backtest(strat, btc, fees=FeeModel.flat(10), slippage=slip)
        assert row["final_equity"] == pytest.approx(float(ref.final_equity), rel=1e-12)
    # a share so small that no fill is possible: nothing trades
    none = run_sweep("sma_cross", btc, grid, workers=1, volume_share=1e-15)
    assert all(r["final_equity"] == 10_000 and r["fees_paid"] == 0 for r in none)


def test_walk_forward_honours_volume_share(btc: Bars) -> None:
    grid = {"fast": [5, 10], "slow": [30]}
    free = walk_forward("sma_cross", btc, grid, folds=2, workers=1)
    assert free.metrics["trades"] > 0
    none = walk_forward("sma_cross", btc, grid, folds=2, workers=1, volume_share=1e-15)
    assert none.metrics["trades"] == 0 and none.metrics["final_equity"] == 10_000


class Hold(Strategy):
    """All-in on the first bar's signal, held to the end (a test strategy)."""

    name = "hold_test"
    defaults: ClassVar[dict[str, Any]] = {"size": 1.0}

    def on_bar(self, ctx: Context) -> Targets | None:
        return {ctx.symbols[0]: self.params["size"]} if ctx.index == 0 else None

    def signals(self, bars: Mapping[str, Bars]) -> dict[str, FloatArray]:
        out = {}
        for s, b in bars.items():
            t = np.full(len(b), np.nan)
            t[0] = self.params["size"]
            out[s] = t
        return out


def _flat_bars(n: int, price: float) -> Bars:
    ts = np.arange(n, dtype=np.int64) * 300 * 10**9 + 1_700_000_000 * 10**9
    p = np.full(n, price)
    return Bars("X/USD", ts, p, p, p, p, np.full(n, 1e9))


@pytest.mark.parametrize("fast_path", [True, False])
def test_walk_forward_pays_the_exit_fee_at_fold_boundaries(
    monkeypatch: pytest.MonkeyPatch, fast_path: bool
) -> None:
    monkeypatch.setitem(strategies.STRATEGIES, "hold_test", Hold)
    if not fast_path:
        monkeypatch.setattr(Hold, "signals", Strategy.signals)
    bars = _flat_bars(30, 100.0)  # 2 folds: windows of 10 bars; tests [10, 20) and [20, 30)
    res = walk_forward(
        "hold_test", bars, {"size": [1.0]}, folds=2, workers=1, fee_bps=10, slippage_bps=10
    )
    fee, slip, lot = 0.001, 0.001, 1e-8
    money = 10_000.0
    for k in range(2):
        buy = 100.0 * (1 + slip)  # bar 1 of the window, at the open
        qty = np.floor(money / (buy * (1 + fee)) / lot) * lot
        cash = money - qty * buy * (1 + fee)
        if k == 0:  # fold boundary: sold at the window's last close, fee and slippage paid
            money = cash + qty * 100.0 * (1 - slip) * (1 - fee)
            assert res.folds[0].test_metrics["final_equity"] == pytest.approx(money, rel=1e-12)
            assert res.equity[9] == pytest.approx(money, rel=1e-12)
        else:  # the last window ends marked to market, like a single backtest
            money = cash + qty * 100.0
    assert res.metrics["final_equity"] == pytest.approx(money, rel=1e-12)


def test_turnover_is_traded_notional_over_mean_equity(btc: Bars) -> None:
    strat = make_strategy("sma_cross", {"fast": 5, "slow": 30})
    res = run_backtest(strat, btc, fees=FeeModel.flat(10))
    expect = float(res.traded_notional) / float(np.mean(res.equity))
    assert res.metrics["turnover"] == pytest.approx(expect, rel=1e-12)
    fast = run_fast(strat, btc, fee_bps=10, with_metrics=True)
    assert fast.metrics["turnover"] == pytest.approx(expect, rel=1e-9)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "turnover is traded notional over mean equity" in " ".join(readme.split())
