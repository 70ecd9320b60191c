"""Built-in strategies (`sma_cross`, `rsi_revert`), the ML-model strategy adapter, and the
registry the CLI and sweeps look strategies up in (a name, or a file `path.py:ClassName`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from omc.floor.data import Bars, FloatArray
from omc.floor.indicators import rsi, sma
from omc.floor.resolvers import register_resolver as register_resolver  # re-exported
from omc.floor.resolvers import resolver_for
from omc.floor.strategy import Context, Series, Strategy, Targets
from omc.floor.strategy_files import is_file_spec, load_strategy_class


def _cross_targets(
    a: FloatArray, b: FloatArray, up_weight: float, down_weight: float
) -> FloatArray:
    """NaN everywhere except bars where `a` crosses above `b` (up_weight) or below (down)."""
    out = np.full(len(a), np.nan)
    with np.errstate(invalid="ignore"):
        up = (a[1:] > b[1:]) & (a[:-1] <= b[:-1])
        down = (a[1:] < b[1:]) & (a[:-1] >= b[:-1])
    out[1:][up] = up_weight
    out[1:][down] = down_weight
    return out


def crossover(a: FloatArray, b: FloatArray) -> FloatArray:
    """+1 where `a` crosses above `b` at this bar (a > b now, a ≤ b on the bar before), −1
    where it crosses below, 0 elsewhere (NaN inputs never cross)."""
    t = _cross_targets(a, b, 1.0, -1.0)
    return np.nan_to_num(t, nan=0.0)


class SmaCross(Strategy):
    """Long-only SMA crossover: all-in (`size` of equity, split across symbols) at the next
    open after the fast SMA closes above the slow one; flat at the next open after it closes
    below."""

    name = "sma_cross"
    defaults: ClassVar[dict[str, Any]] = {"fast": 10, "slow": 30, "size": 1.0}

    def validate(self) -> None:
        fast, slow = int(self.params["fast"]), int(self.params["slow"])
        if fast < 1 or slow < 1:
            raise ValueError("sma_cross: fast and slow must be ≥ 1")
        if fast >= slow:
            raise ValueError(f"sma_cross: fast ({fast}) must be below slow ({slow})")
        self.params["fast"], self.params["slow"] = fast, slow
        self.params["size"] = float(self.params["size"])

    def warmup(self) -> int:
        return int(self.params["slow"]) + 1

    def init(self, ctx: Context) -> None:
        self.weight = self.params["size"] / len(ctx.symbols)
        self.cross: dict[str, Series] = {}
        f, s = self.params["fast"], self.params["slow"]
        for sym in ctx.symbols:
            close = ctx.data(sym).close
            fast = ctx.indicator(sma, close, f, name=f"sma{f}")
            slow = ctx.indicator(sma, close, s, name=f"sma{s}")
            # +1 on the bar the fast SMA closes above the slow one, -1 below, else 0
            self.cross[sym] = ctx.indicator(crossover, fast, slow, name="cross")

    def on_bar(self, ctx: Context) -> Targets | None:
        out: dict[str, float] | None = None
        for sym, cross in self.cross.items():
            c = cross[-1]
            if c:
                out = out or {}
                out[sym] = self.weight if c > 0 else 0.0
        return out

    def signals(self, bars: Mapping[str, Bars]) -> dict[str, FloatArray]:
        w = self.params["size"] / len(bars)
        return {
            s: _cross_targets(
                sma(b.close, self.params["fast"]), sma(b.close, self.params["slow"]), w, 0.0
            )
            for s, b in bars.items()
        }


class RsiRevert(Strategy):
    """Long-only RSI mean reversion: buy at the next open after RSI(`period`) crosses below
    `lower`; sell at the next open after it crosses above `upper`."""

    name = "rsi_revert"
    defaults: ClassVar[dict[str, Any]] = {"period": 14, "lower": 30.0, "upper": 70.0, "size": 1.0}

    def validate(self) -> None:
        self.params["period"] = int(self.params["period"])
        for k in ("lower", "upper", "size"):
            self.params[k] = float(self.params[k])
        if self.params["period"] < 2:
            raise ValueError("rsi_revert: period must be ≥ 2")
        if not 0 < self.params["lower"] < self.params["upper"] < 100:
            raise ValueError("rsi_revert: need 0 < lower < upper < 100")

    def warmup(self) -> int:
        return int(self.params["period"]) * 10

    def init(self, ctx: Context) -> None:
        self.weight = self.params["size"] / len(ctx.symbols)
        self.rsi = {
            s: ctx.indicator(rsi, ctx.data(s).close, self.params["period"], name="rsi")
            for s in ctx.symbols
        }

    def on_bar(self, ctx: Context) -> Targets | None:
        lo, hi = self.params["lower"], self.params["upper"]
        out: dict[str, float] | None = None
        for sym, r in self.rsi.items():
            if len(r) < 2:
                return None
            r1, r0 = r[-1], r[-2]
            if r1 < lo and r0 >= lo:
                out = out or {}
                out[sym] = self.weight
            elif r1 > hi and r0 <= hi:
                out = out or {}
                out[sym] = 0.0
        return out

    def signals(self, bars: Mapping[str, Bars]) -> dict[str, FloatArray]:
        out = {}
        lo, hi = self.params["lower"], self.params["upper"]
        w = self.weight if hasattr(self, "weight") else self.params["size"] / len(bars)
        for s, b in bars.items():
            r = rsi(b.close, self.params["period"])
            lo_line = np.full(len(r), lo)
            hi_line = np.full(len(r), hi)
            enter = _cross_targets(lo_line, r, w, np.nan)  # r crosses below lower
            exit_ = _cross_targets(r, hi_line, 0.0, np.nan)  # r crosses above upper
            out[s] = np.where(np.isnan(enter), exit_, enter)
        return out


class ModelStrategy(Strategy):
    """Runs a trained model with its feature code: `features(open, high, low, close, volume)`
    returns an (n_bars, n_features) array and must be causal (the backtester verifies it);
    `model.predict(X)` scores rows. Long `size` while the score exceeds `threshold`, flat
    otherwise; orders only when that state changes. Same object in backtest, paper and live."""

    name = "model"
    defaults: ClassVar[dict[str, Any]] = {
        "model": None,
        "features": None,
        "threshold": 0.5,
        "size": 1.0,
    }

    def validate(self) -> None:
        if self.params["model"] is None or not callable(self.params["features"]):
            raise ValueError("model strategy needs `model` (with .predict) and `features`")

    def _features(self, b: Any) -> Any:
        feats: Callable[..., Any] = self.params["features"]
        return feats, (b.open, b.high, b.low, b.close, b.volume)

    def init(self, ctx: Context) -> None:
        self.weight = self.params["size"] / len(ctx.symbols)
        self.X: dict[str, Series] = {}
        self.state: dict[str, bool] = {}
        for s in ctx.symbols:
            fn, cols = self._features(ctx.data(s))
            self.X[s] = ctx.indicator(fn, *cols, name="features")
            self.state[s] = False

    def on_bar(self, ctx: Context) -> Targets | None:
        out: dict[str, float] | None = None
        for s, X in self.X.items():
            row = np.atleast_1d(X[-1])
            if np.isnan(row).any():
                continue
            score = float(np.asarray(self.params["model"].predict(row[None, :]))[0])
            want = score > self.params["threshold"]
            if want != self.state[s]:
                self.state[s] = want
                out = out or {}
                out[s] = self.weight if want else 0.0
        return out

    def signals(self, bars: Mapping[str, Bars]) -> dict[str, FloatArray]:
        out = {}
        w = self.params["size"] / len(bars)
        for s, b in bars.items():
            fn, cols = self._features(b)
            X = np.asarray(fn(*cols), dtype=np.float64)
            X2 = X.reshape(len(X), -1)
            ok = ~np.isnan(X2).any(axis=1)
            score = np.full(len(X2), -np.inf)
            if ok.any():
                score[ok] = np.asarray(self.params["model"].predict(X2[ok]), dtype=np.float64)
            target = np.full(len(X2), np.nan)
            state = False
            want = score > self.params["threshold"]
            for i in np.flatnonzero(ok):
                if want[i] != state:
                    state = bool(want[i])
                    target[i] = w if state else 0.0
            out[s] = target
        return out


STRATEGIES: dict[str, type[Strategy]] = {"sma_cross": SmaCross, "rsi_revert": RsiRevert}


def parse_value(text: str, default: Any) -> Any:
    """Convert a CLI `k=v` string to the type of the parameter's default."""
    if isinstance(default, bool):
        return text.lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(float(text)) if float(text).is_integer() else float(text)
    if isinstance(default, float):
        return float(text)
    return text


def strategy_class(name: str) -> type[Strategy]:
    """A registered strategy's class, a class from a registered resolver (`prefix:REST`),
    or the class of a strategy file `path.py:ClassName` (`omc.floor.strategy_files`);
    ValueError (one line) when there is none."""
    prefix, sep, rest = name.partition(":")
    resolver = resolver_for(prefix) if sep else None
    if resolver is not None:
        return resolver(rest)
    if is_file_spec(name):
        return load_strategy_class(name)
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(
            f"unknown strategy {name!r}; known: {sorted(STRATEGIES)}, or a file: path.py:ClassName"
        ) from None


def make_strategy(name: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """Build a registered strategy or one from a file (`path.py:ClassName`); string
    parameter values are converted to the types of the defaults."""
    cls = strategy_class(name)
    kwargs: dict[str, Any] = {}
    for k, v in (params or {}).items():
        if k not in cls.defaults:
            raise ValueError(f"{name}: unknown parameter {k!r}; known: {sorted(cls.defaults)}")
        kwargs[k] = parse_value(v, cls.defaults[k]) if isinstance(v, str) else v
    return cls(**kwargs)
