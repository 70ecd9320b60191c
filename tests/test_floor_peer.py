"""Cross-check: OMC's `sma_cross` against backtesting.py on the real BTC/USDT 5m candles."""

from __future__ import annotations

import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from omc.floor.backtest.engine import run_backtest
from omc.floor.backtest.fast import run_fast
from omc.floor.data import load_csv
from omc.floor.fills import FeeModel
from omc.floor.indicators import sma
from omc.floor.strategies import SmaCross

bt = pytest.importorskip("backtesting")
from backtesting import Strategy as BtStrategy  # noqa: E402
from backtesting.lib import FractionalBacktest  # noqa: E402

CSV = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles" / "BTC_USDT-5m.csv"
SIZE = 0.9999  # backtesting.py's "all-in" fraction; OMC is given the same


class PeerSmaCross(BtStrategy):  # type: ignore[misc]
    fast = 10
    slow = 30

    def init(self) -> None:
        self.f = self.I(sma, np.asarray(self.data.Close), self.fast)
        self.s = self.I(sma, np.asarray(self.data.Close), self.slow)

    def next(self) -> None:
        f1, s1, f0, s0 = self.f[-1], self.s[-1], self.f[-2], self.s[-2]
        if f1 > s1 and f0 <= s0 and not self.position:
            self.buy(size=SIZE)
        elif f1 < s1 and f0 >= s0 and self.position:
            self.position.close()


@pytest.mark.parametrize(("fast", "slow"), [(10, 30), (20, 100)])
def test_sma_cross_matches_backtesting_py(fast: int, slow: int) -> None:
    bars = load_csv(CSV)
    cash = 10_000
    fee = 0.001  # CoinSpot's 10 bps, on entry and exit in both engines
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = FractionalBacktest(
            bars.to_frame(), PeerSmaCross, cash=cash, commission=fee, finalize_trades=False
        )
        stats: Any = peer.run(fast=fast, slow=slow)
    peer_trades = stats["_trades"]
    ours = run_backtest(
        SmaCross(fast=fast, slow=slow, size=SIZE), bars, cash=cash, fees=FeeModel.flat(10)
    )
    closed = [t for t in ours.trades if t.closed]
    assert len(closed) == len(peer_trades) > 20
    assert [t.entry_index for t in closed] == list(peer_trades["EntryBar"])
    assert [t.exit_index for t in closed] == list(peer_trades["ExitBar"])
    peer_final = float(stats["Equity Final [$]"])
    assert abs(float(ours.final_equity) / peer_final - 1) < 1e-4
    # the compiled fast path reports the same trades and final equity as the exact path
    fast_res = run_fast(SmaCross(fast=fast, slow=slow, size=SIZE), bars, cash=cash, fee_bps=10)
    assert list(fast_res.entry_index) == [t.entry_index for t in ours.trades]
    assert abs(fast_res.final_equity / float(ours.final_equity) - 1) < 1e-9
    assert ours.final_equity == ours.cash + sum(
        (q * Decimal(repr(float(bars.close[-1]))) for q in ours.positions.values()), Decimal(0)
    )
