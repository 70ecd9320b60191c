"""The Lab's feature library: families of causal feature functions.

A family function receives a `Context` — the bars up to now as arrays, each bar's close time,
and the ledger frames (rows with `known_at`) — and returns named float64 arrays, one value
per bar. It is causal by construction:

* Exchange families (`returns`, `volatility`, `rsi`, `sma_ratio`, `volume_z`) are trailing
  windows over bars <= i (the Floor's `sma` / `rsi` where they fit);
* ledger families are **as-of joins on knowledge time**: bar i sees a ledger row only when
  `known_at <= close time of bar i` (`asof_index`, a backward as-of join), and every value is a
  function of the rows known by then — so it is the same whether later rows exist or not.
  Windows are windows of knowledge time ("items that became known in the last hour").
  Where nothing is known yet a ledger feature is neutral (0 counts, 0 change, no recent
  event), never NaN: only the Exchange families have a NaN warm-up.

Families and their parameters (defaults in `DEFAULTS`, names of the columns they make):

| family      | parameters                        | columns                                     |
|-------------|-----------------------------------|---------------------------------------------|
| returns     | lags [1, 3, 12, 48]               | ret_{k}: log(close_i / close_{i-k})         |
| volatility  | windows [12, 48, 288]             | vol_{w}: std of 1-bar log returns           |
| rsi         | periods [14]                      | rsi_{n}: Wilder's RSI (0..100)              |
| sma_ratio   | windows [12, 48, 288]             | sma_{n}: close / SMA(n) - 1                 |
| volume_z    | windows [48, 288]                 | volz_{w}: z-score of log(1 + volume)        |
| sentiment   | windows_hours [1, 24]             | sent_mean_{w}h (0 = none), sent_count_{w}h, |
|             |                                   | sent_chg_{w}h (mean now - mean w h ago)     |
| news_volume | windows_hours [1, 24]             | news_{w}h: news items known in the window   |
| tvl, fees   | lags_days [1, 7]                  | tvl_chg_{k}d / fees_chg_{k}d: asinh change  |
|             |                                   | of the latest known daily value over k days |
|             |                                   | (0 while either value is not yet known)     |
| catalyst    | half_life_hours 24, cap_hours 720 | cat_{listing,delisting,filing}_hours (since |
|             |                                   | the last one, capped) and _weight (2^-h/hl) |

`register(name, fn, **defaults)` adds a family (a test adds a deliberately leaking one);
`code_version(families)` hashes this module's source (plus any registered function's).
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from omc.floor import indicators

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
HOUR_NS = 3_600 * 10**9
DAY_NS = 24 * HOUR_NS


@dataclass(frozen=True)
class Context:
    """What a family function sees: bars (oldest first), their close times (epoch ns) and
    the ledger frames (sorted by `known_at`)."""

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    at: IntArray
    ledgers: Mapping[str, pd.DataFrame]

    def __len__(self) -> int:
        return len(self.close)

    def ledger(self, name: str) -> pd.DataFrame:
        frame = self.ledgers.get(name)
        return frame if frame is not None else pd.DataFrame({"known_at": []})


Family = Callable[..., dict[str, FloatArray]]
FAMILIES: dict[str, Family] = {}
DEFAULTS: dict[str, dict[str, Any]] = {}


def register(name: str, fn: Family, **defaults: Any) -> None:
    """Add (or replace) a feature family `fn(ctx, **params) -> {column: values}`."""
    FAMILIES[name] = fn
    DEFAULTS[name] = defaults


def unregister(name: str) -> None:
    FAMILIES.pop(name, None)
    DEFAULTS.pop(name, None)


def family(name: str, **defaults: Any) -> Callable[[Family], Family]:
    def add(fn: Family) -> Family:
        register(name, fn, **defaults)
        return fn

    return add


def code_version(families: Iterable[str]) -> str:
    """A hash of this library's source and of any registered family used from elsewhere."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for name in sorted(families):
        fn = FAMILIES[name]
        if fn.__module__ != __name__:
            try:
                digest.update(inspect.getsource(fn).encode())
            except (OSError, TypeError):
                digest.update(f"{fn.__module__}.{fn.__qualname__}".encode())
    return digest.hexdigest()[:16]


def _rolling(x: FloatArray, window: int) -> pd.core.window.rolling.Rolling:
    return pd.Series(x).rolling(int(window), min_periods=int(window))


# ----------------------------------------------------------------------------- Exchange


@family("returns", lags=[1, 3, 12, 48])
def returns(ctx: Context, lags: list[int]) -> dict[str, FloatArray]:
    logc = np.log(ctx.close)
    out = {}
    for k in lags:
        r = np.full(len(ctx), np.nan)
        if 0 < k < len(ctx):
            r[k:] = logc[k:] - logc[:-k]
        out[f"ret_{k}"] = r
    return out


def _one_bar_returns(close: FloatArray) -> FloatArray:
    r = np.full(len(close), np.nan)
    r[1:] = np.diff(np.log(close))
    return r


@family("volatility", windows=[12, 48, 288])
def volatility(ctx: Context, windows: list[int]) -> dict[str, FloatArray]:
    r = _one_bar_returns(ctx.close)
    return {f"vol_{w}": _rolling(r, w).std().to_numpy(dtype=np.float64) for w in windows}


@family("rsi", periods=[14])
def rsi(ctx: Context, periods: list[int]) -> dict[str, FloatArray]:
    return {f"rsi_{n}": indicators.rsi(ctx.close, n) for n in periods}


@family("sma_ratio", windows=[12, 48, 288])
def sma_ratio(ctx: Context, windows: list[int]) -> dict[str, FloatArray]:
    return {f"sma_{n}": ctx.close / indicators.sma(ctx.close, n) - 1.0 for n in windows}


@family("volume_z", windows=[48, 288])
def volume_z(ctx: Context, windows: list[int]) -> dict[str, FloatArray]:
    lv = np.log1p(np.maximum(ctx.volume, 0.0))
    out = {}
    for w in windows:
        roll = _rolling(lv, w)
        mean = roll.mean().to_numpy(dtype=np.float64)
        std = roll.std().to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(std > 0, (lv - mean) / np.where(std > 0, std, 1.0), 0.0)
        out[f"volz_{w}"] = np.where(np.isnan(mean), np.nan, z)
    return out


# ----------------------------------------------------------------------------- as-of joins


def ns(values: Any) -> IntArray:
    """Aware timestamps (a Series/Index/array) as epoch nanoseconds."""
    index = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    return np.asarray(index.as_unit("ns").asi8, dtype=np.int64)


def asof_index(known: IntArray, at: IntArray) -> IntArray:
    """For each moment in `at`, the position of the last row with `known <= moment` in the
    sorted `known` times, -1 when none: the as-of join every ledger feature uses (what
    `pd.merge_asof(direction="backward", allow_exact_matches=True)` does, as one vectorised
    binary search)."""
    if len(known) > 1 and bool(np.any(np.diff(known) < 0)):
        raise ValueError("ledger rows must be sorted by known_at")
    return np.searchsorted(known, at, side="right").astype(np.int64) - 1


def window_sum(known: IntArray, values: FloatArray, at: IntArray, window: int) -> FloatArray:
    """Sum of `values` over the rows with known time in (moment - window, moment]."""
    total = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    return total[asof_index(known, at) + 1] - total[asof_index(known, at - window) + 1]


def latest_by(known: IntArray, row_time: IntArray, at: IntArray) -> IntArray:
    """For each moment, the position of the row with the greatest `row_time` among the rows
    known by then (-1 when none): the newest value known, however late rows arrived."""
    if len(known) == 0:
        return np.full(len(at), -1, dtype=np.int64)
    newest = row_time == np.maximum.accumulate(row_time)
    best = np.maximum.accumulate(np.where(newest, np.arange(len(row_time)), -1))
    j = asof_index(known, at)
    return np.where(j >= 0, best[np.maximum(j, 0)], -1)


def _take(values: FloatArray, rows: IntArray) -> FloatArray:
    if len(values) == 0:
        return np.full(len(rows), np.nan)
    return np.where(rows >= 0, values[np.maximum(rows, 0)], np.nan)


# ----------------------------------------------------------------------------- Human


def _known(frame: pd.DataFrame) -> IntArray:
    return ns(frame["known_at"]) if len(frame) else np.empty(0, dtype=np.int64)


@family("sentiment", windows_hours=[1, 24])
def sentiment(ctx: Context, windows_hours: list[int]) -> dict[str, FloatArray]:
    frame = ctx.ledger("sentiment")
    known = _known(frame)
    count = frame["count"].to_numpy(dtype=np.float64) if len(frame) else np.empty(0)
    score = count * frame["mean_sentiment"].to_numpy(dtype=np.float64) if len(frame) else count

    def mean(at: IntArray, window: int) -> tuple[FloatArray, FloatArray]:
        c = window_sum(known, count, at, window)
        s = window_sum(known, score, at, window)
        return np.where(c > 0, s / np.where(c > 0, c, 1.0), 0.0), c

    out = {}
    for w in windows_hours:
        window = int(w) * HOUR_NS
        now, c = mean(ctx.at, window)
        before, _ = mean(ctx.at - window, window)
        out[f"sent_mean_{w}h"] = now
        out[f"sent_count_{w}h"] = c
        out[f"sent_chg_{w}h"] = now - before
    return out


@family("news_volume", windows_hours=[1, 24])
def news_volume(ctx: Context, windows_hours: list[int]) -> dict[str, FloatArray]:
    known = _known(ctx.ledger("news"))
    ones = np.ones(len(known))
    return {f"news_{w}h": window_sum(known, ones, ctx.at, int(w) * HOUR_NS) for w in windows_hours}


# ----------------------------------------------------------------------------- Glass


def _level_change(ctx: Context, name: str, lags_days: list[int]) -> dict[str, FloatArray]:
    frame = ctx.ledger(name)
    known = _known(frame)
    ts = ns(frame["ts"]) if len(frame) else np.empty(0, dtype=np.int64)
    value = np.arcsinh(frame["value"].to_numpy(dtype=np.float64)) if len(frame) else np.empty(0)
    now = _take(value, latest_by(known, ts, ctx.at))
    out = {}
    for k in lags_days:
        change = now - _take(value, latest_by(known, ts, ctx.at - int(k) * DAY_NS))
        out[f"{name}_chg_{k}d"] = np.where(np.isnan(change), 0.0, change)
    return out


@family("tvl", lags_days=[1, 7])
def tvl(ctx: Context, lags_days: list[int]) -> dict[str, FloatArray]:
    return _level_change(ctx, "tvl", lags_days)


@family("fees", lags_days=[1, 7])
def fees(ctx: Context, lags_days: list[int]) -> dict[str, FloatArray]:
    return _level_change(ctx, "fees", lags_days)


# ----------------------------------------------------------------------------- Catalyst

CATALYST_GROUPS: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
    "listing": lambda f: f["kind"] == "listing",
    "delisting": lambda f: f["kind"] == "delisting",
    "filing": lambda f: f["source"] == "sec",
}


@family("catalyst", half_life_hours=24.0, cap_hours=720.0)
def catalyst(ctx: Context, half_life_hours: float, cap_hours: float) -> dict[str, FloatArray]:
    frame = ctx.ledger("events")
    out = {}
    for group, select in CATALYST_GROUPS.items():
        rows = frame[select(frame)] if len(frame) else frame
        known = _known(rows)
        published = ns(rows["published_at"]) if len(rows) else np.empty(0, dtype=np.int64)
        last = _take(published.astype(np.float64), latest_by(known, published, ctx.at))
        hours = np.clip((ctx.at - last) / HOUR_NS, 0.0, cap_hours)
        out[f"cat_{group}_hours"] = np.where(np.isnan(last), cap_hours, hours)
        out[f"cat_{group}_weight"] = np.where(
            np.isnan(last), 0.0, np.exp2(-hours / half_life_hours)
        )
    return out
