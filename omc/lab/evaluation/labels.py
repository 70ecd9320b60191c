"""Targets from bars: what a study predicts, `horizon_bars` ahead of each bar's close.

`make_labels(target, bars)` returns, on the bars' index:

* `fwd_return` — the log return close[i] -> close[i+h] (NaN for the last h bars);
* `next_return` — the simple return close[i] -> close[i+1] (what one bar of holding earns);
* `y` — the class (1.0 / 0.0, NaN where the future is unknown):
  `direction`: fwd_return > threshold; `forward_return`: fwd_return > 0 (the sign);
  `volatility`: the forward realised volatility (root mean square of the h one-bar log
  returns after bar i) exceeds the median of the same measure over the trailing window of
  past bars — the median uses only returns known at bar i.

The label of row i spans bars i..i+h: the splits purge training rows whose span reaches a test
or holdout bar (`omc.lab.evaluation.splits`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from omc.lab.plan import Target

# bars of trailing realised volatility the `volatility` target's median looks back over,
# in multiples of the horizon (and at least VOL_MEDIAN_MIN bars)
VOL_MEDIAN_HORIZONS = 20
VOL_MEDIAN_MIN = 100


def make_labels(target: Target, bars: pd.DataFrame) -> pd.DataFrame:
    """`y`, `fwd_return`, `next_return` for every bar (see the module docstring)."""
    if "close" not in bars.columns:
        raise ValueError("bars need a `close` column")
    h = int(target.horizon_bars)
    close = bars["close"].astype("float64")
    if bool((close <= 0).any()):
        raise ValueError("bars have a non-positive close; log returns are undefined")
    logc = np.log(close)
    fwd = logc.shift(-h) - logc
    nxt = close.shift(-1) / close - 1.0
    known = fwd.notna()
    if target.kind == "direction":
        y = (fwd > target.threshold).astype("float64")
    elif target.kind == "forward_return":
        y = (fwd > 0.0).astype("float64")
    else:
        r2 = (logc.diff() ** 2).astype("float64")
        past = np.sqrt(r2.rolling(h, min_periods=h).mean())  # bars i-h+1..i: known at i
        future = past.shift(-h)  # bars i+1..i+h
        window = max(VOL_MEDIAN_HORIZONS * h, VOL_MEDIAN_MIN)
        median = past.rolling(window, min_periods=max(window // 2, 2)).median()
        known = known & future.notna() & median.notna()
        y = (future > median).astype("float64")
    y = y.where(known)
    return pd.DataFrame({"y": y, "fwd_return": fwd, "next_return": nxt}, index=bars.index).astype(
        "float64"
    )
