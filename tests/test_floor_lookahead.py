"""The strategy context is narrow and holds no future bar; every route to later bars — through
the context's arrays, an indicator that stashes its input, the engine reached through the call
stack, a `shift(-1)` feature on the fast path, in sweeps and walk-forward — is a
`LookAheadError`. One context serves the backtester and the trading session."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from sqlalchemy import Engine

from omc.floor.backtest.engine import run_backtest
from omc.floor.backtest.fast import run_fast
from omc.floor.backtest.sweep import run_sweep
from omc.floor.backtest.walkforward import walk_forward
from omc.floor.context import PUBLIC
from omc.floor.data import Bars, FloatArray, load_csv
from omc.floor.strategies import STRATEGIES, ModelStrategy, SmaCross
from omc.floor.strategy import Context, LookAheadError, Strategy, Targets
from omc.floor.trading.session import TradingSession
from omc.floor.venues.base import Quote
from omc.floor.venues.paper import PaperVenue, ReplayQuotes

CSV = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles" / "BTC_USDT-5m.csv"


@pytest.fixture(scope="module")
def btc() -> Bars:
    return load_csv(CSV).slice(0, 600)


class Spy(Strategy):
    """Records what its context lets it reach."""

    name = "spy"
    seen: ClassVar[list[Any]] = []

    def init(self, ctx: Context) -> None:
        self.sma = ctx.indicator(lambda c: c * 2.0, ctx.data(ctx.symbols[0]).close, name="x2")
        Spy.seen.append(ctx)

    def on_bar(self, ctx: Context) -> Targets | None:
        close = ctx.data(ctx.symbols[0]).close
        now = len(close) - 1
        for s in (close, self.sma):
            base = s.values.base
            while getattr(base, "base", None) is not None:
                base = base.base
            later = np.asarray(base)[now + 1 :]
            assert np.isnan(later).all(), "a buffer holds a bar after the current one"
        return None


def _assert_narrow(ctx: Any) -> None:
    assert {n for n in dir(ctx) if not n.startswith("_")} == set(PUBLIC)
    with pytest.raises(TypeError):
        vars(ctx)
    for internal in ("bars", "venue", "oms", "journal", "engine", "_engine", "state", "market"):
        assert not hasattr(ctx, internal)
        with pytest.raises(LookAheadError, match="out of a strategy's reach"):
            getattr(ctx, internal)
    with pytest.raises(AttributeError):
        ctx.foo = 1
    assert not any(isinstance(getattr(ctx, n), np.ndarray) for n in ("now", "symbols", "cash"))


def test_backtest_context_is_narrow_and_holds_no_future(btc: Bars) -> None:
    Spy.seen.clear()
    run_backtest(Spy(), btc, check_lookahead=False)
    _assert_narrow(Spy.seen[-1])


def test_trading_context_is_the_same_narrow_context(engine: Engine) -> None:
    Spy.seen.clear()
    quotes = ReplayQuotes()
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    venue = PaperVenue(quotes, clock=lambda: t0, max_quote_age_s=10**9)
    s = TradingSession(engine, "spy", Spy(), ("BTC/AUD",), venue, clock=lambda: t0)
    s.start()
    for k in range(5):
        ts = t0 + timedelta(minutes=k)
        quotes.set(Quote("BTC/AUD", D(100 + k), D(100 + k), D(100 + k), ts))
        s.step(ts, {"BTC/AUD": (100.0 + k,) * 4 + (0.0,)})
    ctx = Spy.seen[-1]
    _assert_narrow(ctx)
    assert type(ctx).__name__ == type(Spy.seen[0]).__name__ == "StrategyContext"
    assert len(ctx.data("BTC/AUD").close) == 5


# ------------------------------------------------------------------ routes to later bars


class PeekBase(Strategy):
    """Reads the next bar through the array behind `close.values`."""

    name = "peek_base"

    def on_bar(self, ctx: Context) -> Targets | None:
        close = ctx.data(ctx.symbols[0]).close
        base = close.values.base
        nxt = base[len(close)]
        return {ctx.symbols[0]: 1.0 if nxt > close[-1] else 0.0}


STASH: dict[str, FloatArray] = {}


def stash(close: FloatArray) -> FloatArray:
    STASH["close"] = close  # an "innocent" indicator keeping its whole input
    return close.copy()


class PeekStash(Strategy):
    name = "peek_stash"

    def init(self, ctx: Context) -> None:
        ctx.indicator(stash, ctx.data(ctx.symbols[0]).close)

    def on_bar(self, ctx: Context) -> Targets | None:
        close = ctx.data(ctx.symbols[0]).close
        full = STASH["close"]
        i = len(close) - 1
        if i + 1 < len(full) and full[i + 1] > close[-1]:
            return {ctx.symbols[0]: 1.0}
        return {ctx.symbols[0]: 0.0}


class PeekFrame(Strategy):
    """Walks up the call stack to the engine and reads its full data."""

    name = "peek_frame"

    def on_bar(self, ctx: Context) -> Targets | None:
        frame = sys._getframe(1)
        engine = frame.f_locals["self"]
        bars = engine.bars[ctx.symbols[0]]
        i = len(ctx.data(ctx.symbols[0]).close) - 1
        return {ctx.symbols[0]: 1.0 if bars.close[i + 1] > bars.close[i] else 0.0}


class PeekAttribute(Strategy):
    name = "peek_attr"

    def on_bar(self, ctx: Context) -> Targets | None:
        return {ctx.symbols[0]: float(ctx.bars[ctx.symbols[0]].close[-1] > 0)}  # type: ignore[attr-defined]


@pytest.mark.parametrize("strategy", [PeekBase, PeekStash, PeekFrame, PeekAttribute])
def test_every_route_to_later_bars_is_a_look_ahead_error(btc: Bars, strategy: type) -> None:
    with pytest.raises(LookAheadError, match=r"after the current bar|out of a strategy.s reach"):
        run_backtest(strategy(), btc)


def test_a_causal_strategy_passes_and_its_result_is_unchanged(btc: Bars) -> None:
    checked = run_backtest(SmaCross(fast=5, slow=20), btc)
    plain = run_backtest(SmaCross(fast=5, slow=20), btc, check_lookahead=False)
    assert checked.final_equity == plain.final_equity
    assert [f.price for f in checked.fills] == [f.price for f in plain.fills]


# ------------------------------------------------------------------ fast path, sweeps, walk-forward


def leaky_features(o: Any, h: Any, lo: Any, c: FloatArray, v: Any) -> FloatArray:
    nxt = np.roll(c, -1)  # shift(-1): tomorrow's close
    nxt[-1] = np.nan
    return np.column_stack([nxt / c - 1])


def honest_features(o: Any, h: Any, lo: Any, c: FloatArray, v: Any) -> FloatArray:
    out = np.full(len(c), np.nan)
    out[1:] = c[1:] / c[:-1] - 1
    return np.column_stack([out])


class UpModel:
    def predict(self, X: FloatArray) -> FloatArray:
        return (X[:, 0] > 0).astype(float)


class LeakyModel(ModelStrategy):
    name = "leaky_model"
    defaults: ClassVar[dict[str, Any]] = {
        **ModelStrategy.defaults,
        "model": UpModel(),
        "features": leaky_features,
    }


class HonestModel(LeakyModel):
    name = "honest_model"
    defaults: ClassVar[dict[str, Any]] = {**LeakyModel.defaults, "features": honest_features}


def test_fast_path_rejects_shift_minus_one(btc: Bars) -> None:
    with pytest.raises(LookAheadError, match="after the current bar"):
        run_fast(LeakyModel(), btc)
    run_fast(HonestModel(), btc)


def test_sweep_and_walk_forward_reject_shift_minus_one(
    btc: Bars, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(STRATEGIES, "leaky_model", LeakyModel)
    monkeypatch.setitem(STRATEGIES, "honest_model", HonestModel)
    grid = {"threshold": [0.25, 0.5]}
    with pytest.raises(LookAheadError):
        run_sweep("leaky_model", btc, grid, workers=1)
    with pytest.raises(LookAheadError):
        walk_forward("leaky_model", btc, grid, folds=2, workers=1)
    assert len(run_sweep("honest_model", btc, grid, workers=1)) == 2
    assert walk_forward("honest_model", btc, grid, folds=2, workers=1).folds
