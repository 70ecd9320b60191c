"""Fill rules of the event-driven engine, one order type at a time, on hand-made bars."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar

import numpy as np

from omc.floor.backtest.engine import BacktestResult, run_backtest
from omc.floor.data import Bars
from omc.floor.fills import FeeModel, SlippageModel
from omc.floor.strategy import Context, Strategy, Targets

D = Decimal
#            open   high   low   close
OHLC = [
    (100.0, 101.0, 99.0, 100.0),  # 0
    (102.0, 105.0, 101.0, 104.0),  # 1
    (103.0, 104.0, 95.0, 96.0),  # 2
    (90.0, 92.0, 88.0, 91.0),  # 3  gap down
    (110.0, 112.0, 108.0, 111.0),  # 4  gap up
    (111.0, 113.0, 110.0, 112.0),  # 5
]

Action = Callable[[Context], Any]


def bars(volume: float = 1000.0) -> Bars:
    a = np.array(OHLC)
    ts = np.arange(len(a), dtype=np.int64) * 60_000_000_000 + 1_700_000_000_000_000_000
    return Bars("X", ts, a[:, 0], a[:, 1], a[:, 2], a[:, 3], np.full(len(a), volume))


class Script(Strategy):
    """Runs the actions listed for each bar index."""

    name = "script"
    defaults: ClassVar[dict[str, Any]] = {"actions": {}}

    def on_bar(self, ctx: Context) -> Targets | None:
        i = len(ctx.data("X").close) - 1
        for act in self.params["actions"].get(i, []):
            act(ctx)
        return None


def run(actions: dict[int, list[Action]], **kw: Any) -> BacktestResult:
    kw.setdefault("fees", FeeModel.flat(0))
    return run_backtest(Script(actions=actions), bars(kw.pop("volume", 1000.0)), **kw)


def test_market_order_fills_at_next_open_with_taker_fee() -> None:
    r = run({0: [lambda c: c.order("X", 1)]}, fees=FeeModel(D(0), D(10)))
    (f,) = r.fills
    assert (f.index, f.price, f.quantity, f.maker) == (1, D("102"), D(1), False)
    assert f.fee == D("0.102")
    assert r.cash == D(10000) - D("102") - D("0.102")
    assert r.equity[0] == 10000 and r.equity[1] == float(r.cash) + 104


def test_market_order_with_slippage() -> None:
    r = run({0: [lambda c: c.order("X", 1)]}, slippage=SlippageModel(D(50)))
    assert r.fills[0].price == D("102") * D("1.005")


def test_limit_buy_fills_at_limit_when_touched_as_maker() -> None:
    r = run({0: [lambda c: c.order("X", 1, limit=97)]}, fees=FeeModel(D(5), D(10)))
    (f,) = r.fills
    assert (f.index, f.price, f.maker) == (2, D(97), True)
    assert f.fee == D("0.0485")


def test_limit_buy_gap_through_fills_at_open() -> None:
    r = run({2: [lambda c: c.order("X", 1, limit=97)]})
    assert (r.fills[0].index, r.fills[0].price) == (3, D(90))


def test_limit_sell_touch_and_gap() -> None:
    r = run({0: [lambda c: c.order("X", 2)], 1: [lambda c: c.order("X", -1, limit=103.5)]})
    assert [(f.index, f.price) for f in r.fills] == [(1, D(102)), (2, D("103.5"))]
    r = run({0: [lambda c: c.order("X", 1)], 3: [lambda c: c.order("X", -1, limit=105)]})
    assert [(f.index, f.price) for f in r.fills][-1] == (4, D(110))


def test_stop_orders_are_refused_as_on_every_venue() -> None:
    import pytest

    from omc.floor.orders import STOP_REFUSED

    for act in (
        lambda c: c.order("X", 1, stop=104.5),
        lambda c: c.order_target_percent("X", 0.5, stop=98),
    ):
        with pytest.raises(ValueError, match="stop orders are not supported") as err:
            run({0: [act]})
        assert str(err.value) == STOP_REFUSED


def test_partial_fills_by_volume_share() -> None:
    r = run(
        {0: [lambda c: c.order("X", D("2.5"))]},
        volume=10.0,
        slippage=SlippageModel(volume_share=D("0.1")),
    )
    assert [(f.index, f.quantity, f.price) for f in r.fills] == [
        (1, D(1), D(102)),
        (2, D(1), D(103)),
        (3, D("0.5"), D(90)),
    ]
    assert r.positions["X"] == D("2.5")


def test_cancel_and_open_orders() -> None:
    box: dict[str, Any] = {}

    def place(c: Context) -> None:
        box["o"] = c.order("X", 1, limit=50)

    def cancel(c: Context) -> None:
        assert c.open_orders("X") == [box["o"]]
        c.cancel(box["o"])

    r = run({0: [place], 2: [cancel]})
    assert r.fills == [] and box["o"].status == "cancelled"


def test_buys_are_limited_by_cash_and_sells_by_position() -> None:
    r = run({0: [lambda c: c.order("X", 1000)], 2: [lambda c: c.order("X", -5000)]}, cash=1020)
    assert r.fills[0].quantity == D(10)  # 1020 / 102, to the lot size
    assert r.fills[1].quantity == D(-10) and r.positions["X"] == 0


def test_target_percent_sizes_at_fill_price_net_of_fee() -> None:
    r = run({0: [lambda c: c.order_target_percent("X", 1)]}, fees=FeeModel.flat(10))
    q = r.fills[0].quantity
    assert q == (D(10000) / (D(102) * D("1.001"))).quantize(D("1e-8"), rounding="ROUND_DOWN")
    assert r.cash >= 0


def test_ticks_run_through_the_same_engine() -> None:
    prices = [100, 101, 102, 103, 102, 101, 100, 99, 98, 99, 100, 101, 102, 103, 104]
    ts = np.arange(len(prices), dtype=np.int64) * 1_000_000_000 + 1_700_000_000_000_000_000
    ticks = Bars.from_ticks("X", ts, prices)

    class Momentum(Strategy):
        name = "m"

        def on_bar(self, ctx: Context) -> Targets | None:
            c = ctx.data("X").close
            if len(c) >= 2 and c[-1] > c[-2]:
                return {"X": 1.0}
            if len(c) >= 2 and c[-1] < c[-2]:
                return {"X": 0.0}
            return None

    r = run_backtest(Momentum(), ticks, fees=FeeModel.flat(0))
    assert r.fills[0].index == 2 and r.fills[0].price == D(102)  # up-tick at 1, filled at 2
