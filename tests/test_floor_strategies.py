"""Look-ahead protection, fast path = event path, sweeps, walk-forward, ML strategy, symbols."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from omc.floor.backtest.engine import run_backtest
from omc.floor.backtest.fast import run_fast
from omc.floor.backtest.sweep import parse_grid, run_sweep
from omc.floor.backtest.walkforward import walk_forward
from omc.floor.data import Bars, FloatArray, load_csv, synthetic
from omc.floor.fills import FeeModel, SlippageModel
from omc.floor.strategies import ModelStrategy, RsiRevert, SmaCross, make_strategy
from omc.floor.strategy import Context, LookAheadError, Strategy, Targets

CSV = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles" / "BTC_USDT-5m.csv"


@pytest.fixture(scope="module")
def btc() -> Bars:
    return load_csv(CSV)


# ------------------------------------------------------------------ look-ahead


class PeekByIndex(Strategy):
    name = "peek"

    def on_bar(self, ctx: Context) -> Targets | None:
        close = ctx.data(ctx.symbols[0]).close
        now = len(close) - 1
        return {ctx.symbols[0]: 1.0} if close[now + 1] > close[now] else None


class PeekByValues(Strategy):
    name = "peek_values"

    def on_bar(self, ctx: Context) -> Targets | None:
        values = ctx.data(ctx.symbols[0]).close.values
        assert len(values) == len(ctx.data(ctx.symbols[0]).close)
        values[-1] = 0.0  # read-only: cannot even tamper with the present
        return None


def next_close(close: FloatArray) -> FloatArray:
    out = np.roll(close, -1)
    out[-1] = np.nan
    return out


class PeekByIndicator(Strategy):
    name = "peek_indicator"

    def init(self, ctx: Context) -> None:
        self.tomorrow = ctx.indicator(next_close, ctx.data(ctx.symbols[0]).close)

    def on_bar(self, ctx: Context) -> Targets | None:
        c = ctx.data(ctx.symbols[0]).close
        return {ctx.symbols[0]: 1.0 if self.tomorrow[-1] > c[-1] else 0.0}


def test_indexing_the_next_bar_is_impossible(btc: Bars) -> None:
    with pytest.raises(LookAheadError, match="after the current bar"):
        run_backtest(PeekByIndex(), btc.slice(0, 100))


def test_history_is_read_only_and_ends_now(btc: Bars) -> None:
    with pytest.raises(ValueError, match="read-only"):
        run_backtest(PeekByValues(), btc.slice(0, 100))


def test_an_indicator_that_uses_future_data_is_caught(btc: Bars) -> None:
    with pytest.raises(LookAheadError, match="not causal"):
        run_backtest(PeekByIndicator(), btc.slice(0, 500))


def test_fills_happen_after_the_signal_bar(btc: Bars) -> None:
    r = run_backtest(SmaCross(fast=5, slow=20), btc.slice(0, 2000), fees=FeeModel.flat(0))
    sig = SmaCross(fast=5, slow=20).signals({btc.symbol: btc.slice(0, 2000)})[btc.symbol]
    for f in r.fills:
        assert not np.isnan(sig[f.index - 1])  # decided on the previous bar's close
        assert f.price == Decimal(repr(float(btc.open[f.index])))  # at this bar's open


# ------------------------------------------------------------------ fast = exact


@pytest.mark.parametrize(
    "strategy",
    [SmaCross(fast=7, slow=40), RsiRevert(period=14, lower=25, upper=60), SmaCross(size=0.5)],
)
def test_fast_path_matches_event_driven(btc: Bars, strategy: Strategy) -> None:
    ev = run_backtest(
        strategy, btc, fees=FeeModel.flat(10), slippage=SlippageModel(Decimal(5)), start=100
    )
    fa = run_fast(strategy, btc, fee_bps=10, slippage_bps=5, start=100, with_metrics=True)
    assert [t.entry_index for t in ev.trades] == list(fa.entry_index)
    assert [t.exit_index if t.closed else -1 for t in ev.trades] == list(fa.exit_index)
    assert fa.final_equity == pytest.approx(float(ev.final_equity), rel=1e-9)
    assert fa.fees_paid == pytest.approx(float(ev.fees_paid), rel=1e-9)
    np.testing.assert_allclose(fa.equity, ev.equity, rtol=1e-9)
    for key in ("total_return", "sharpe", "max_drawdown", "trades", "win_rate", "exposure"):
        assert fa.metrics[key] == pytest.approx(ev.metrics[key], rel=1e-7), key


# ------------------------------------------------------------------ sweeps


def test_parse_grid() -> None:
    assert parse_grid("fast=5:20:5") == ("fast", [5, 10, 15, 20])
    assert parse_grid("lower=20,25.5", 30.0) == ("lower", [20.0, 25.5])
    assert parse_grid("x=0.1:0.3:0.1")[1] == pytest.approx([0.1, 0.2, 0.3])


def test_sweep_is_the_same_for_any_number_of_workers(btc: Bars) -> None:
    grid = {"fast": [5, 10, 20, 40], "slow": [20, 50, 100]}
    one = run_sweep("sma_cross", btc, grid, workers=1)
    two = run_sweep("sma_cross", btc, grid, workers=2)
    assert one == two
    assert len(one) == 10  # fast ≥ slow (20/20, 40/20) is rejected
    sharpes = [r["sharpe"] for r in one]
    assert sharpes == sorted(sharpes, reverse=True)
    best = make_strategy("sma_cross", {"fast": one[0]["fast"], "slow": one[0]["slow"]})
    ref = run_backtest(best, btc, fees=FeeModel.flat(10))
    assert one[0]["final_equity"] == pytest.approx(float(ref.final_equity), rel=1e-9)


def test_walk_forward_reports_out_of_sample_only(btc: Bars) -> None:
    res = walk_forward("sma_cross", btc, {"fast": [5, 10], "slow": [30, 60]}, folds=3, workers=1)
    size = len(btc) // 4
    assert [f.test for f in res.folds] == [
        (size, 2 * size),
        (2 * size, 3 * size),
        (3 * size, len(btc)),
    ]
    assert len(res.equity) == len(btc) - size  # the first window is never reported
    assert res.metrics["final_equity"] == pytest.approx(float(res.equity[-1]))


# ------------------------------------------------------------------ ML plug-in, symbols


def momentum_features(o: Any, h: Any, lo: Any, c: FloatArray, v: Any) -> FloatArray:
    ret = np.full(len(c), np.nan)
    ret[12:] = c[12:] / c[:-12] - 1
    return np.column_stack([ret, np.log(v + 1)])


class SignModel:
    """Stands in for a trained model: any object with `predict(X)`."""

    def predict(self, X: FloatArray) -> FloatArray:
        return (X[:, 0] > 0).astype(float)


def test_model_strategy_runs_a_model_with_its_feature_code(btc: Bars) -> None:
    strat = ModelStrategy(model=SignModel(), features=momentum_features, threshold=0.5)
    data = btc.slice(0, 3000)
    ev = run_backtest(strat, data, fees=FeeModel.flat(10))
    fa = run_fast(ModelStrategy(model=SignModel(), features=momentum_features), data, fee_bps=10)
    assert len(ev.trades) > 10
    assert [t.entry_index for t in ev.trades] == list(fa.entry_index)
    assert fa.final_equity == pytest.approx(float(ev.final_equity), rel=1e-9)

    def leaky(o: Any, h: Any, lo: Any, c: FloatArray, v: Any) -> FloatArray:
        return np.column_stack([next_close(c) / c - 1])

    with pytest.raises(LookAheadError):
        run_backtest(ModelStrategy(model=SignModel(), features=leaky), data)


def test_several_symbols_share_one_cash_book(btc: Bars) -> None:
    a = synthetic(btc, 3000, seed=1, symbol="AAA")
    b = synthetic(btc, 3000, seed=2, symbol="BBB")
    r = run_backtest(SmaCross(fast=5, slow=30), {"AAA": a, "BBB": b}, fees=FeeModel.flat(10))
    assert {t.symbol for t in r.trades} == {"AAA", "BBB"}
    assert r.cash >= 0
    positions = sum(
        (
            q * Decimal(repr(float(x.close[-1])))
            for q, x in zip(r.positions.values(), (a, b), strict=True)
        ),
        Decimal(0),
    )
    assert r.final_equity == r.cash + positions
    assert sum(t.pnl for t in r.trades) == pytest.approx(
        r.final_equity - 10000, abs=Decimal("1e-9")
    )


def test_registered_resolver_builds_prefixed_strategies() -> None:
    """An outer layer (the Lab's `model:<ID>`) resolves `prefix:REST` names; unknown ids fail
    with its one-line ValueError, unknown prefixes fall through to the usual message."""
    from omc.floor.strategies import SmaCross, register_resolver, strategy_class

    seen: list[str] = []

    def resolve(rest: str) -> type[SmaCross]:
        seen.append(rest)
        if rest != "abc":
            raise ValueError(f"no approved model {rest!r}")
        return SmaCross

    register_resolver("testres", resolve)
    assert make_strategy("testres:abc", {"fast": "3"}).params["fast"] == 3
    assert seen == ["abc"]
    with pytest.raises(ValueError, match="no approved model 'zzz'"):
        strategy_class("testres:zzz")
    with pytest.raises(ValueError, match="unknown strategy"):
        strategy_class("nosuchprefix:zzz")


def test_walk_forward_purge_ends_training_before_the_test_window(btc: Bars) -> None:
    grid = {"fast": [5, 10], "slow": [30, 60]}
    plain = walk_forward("sma_cross", btc, grid, folds=3, workers=1)
    purged = walk_forward("sma_cross", btc, grid, folds=3, workers=1, purge=25)
    size = len(btc) // 4
    assert [f.train for f in plain.folds] == [(k * size, (k + 1) * size) for k in range(3)]
    assert [f.train for f in purged.folds] == [(k * size, (k + 1) * size - 25) for k in range(3)]
    assert [f.test for f in purged.folds] == [f.test for f in plain.folds]
    assert all(f.train[1] + 25 == f.test[0] for f in purged.folds)
    with pytest.raises(ValueError, match="purge"):
        walk_forward("sma_cross", btc, grid, folds=3, workers=1, purge=size)
