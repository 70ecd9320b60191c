"""Causal technical indicators (compiled with numba), shared by every execution path so the
event-driven engine, the fast path, sweeps and trading see bit-identical values.

`sma` is exact on decimal prices (what exchanges quote, and what CSV and database candles
hold): the window sums are taken in integers of the prices' smallest decimal step, and each
mean is one correctly rounded division. So two windows with the same true mean give the
same float — an exact tie stays a tie (a crossover fires on the bar the fast average really
crosses, not a bar early on rounding noise) — and the value does not depend on how much
history precedes the window. Other data fall back to a float running sum.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from omc.floor.data import FloatArray, IntArray


@nb.njit(cache=True, nogil=True)
def _sma(x: FloatArray, n: int) -> FloatArray:  # pragma: no cover - compiled
    out = np.full(x.shape[0], np.nan)
    if n <= 0 or x.shape[0] < n:
        return out
    total = 0.0
    for i in range(n):
        total += x[i]
    out[n - 1] = total / n
    for i in range(n, x.shape[0]):
        # re-sum periodically so floating error cannot accumulate over millions of bars
        if i % 4096 == 0:
            total = 0.0
            for j in range(i - n + 1, i + 1):
                total += x[j]
        else:
            total += x[i] - x[i - n]
        out[i] = total / n
    return out


MAX_DECIMALS = 8


@nb.njit(cache=True, nogil=True)
def _decimal_steps(x: FloatArray, n: int, q: IntArray) -> float:  # pragma: no cover - compiled
    """Fill `q` with `x` in whole steps of 10^-d (smallest d ≤ 8) and return 10^d; 0.0 when
    the values are not such decimals or a window sum of `n` steps could lose precision."""
    top = 0.0
    for v in x:
        if not np.isfinite(v):
            return 0.0
        top = max(top, abs(v))
    for d in range(MAX_DECIMALS + 1):
        scale = 10.0**d
        if top * scale * max(n, 1) >= 2.0**53:
            return 0.0
        ok = True
        for i in range(x.shape[0]):
            y = x[i] * scale
            r = math.floor(y + 0.5)
            if abs(y - r) > abs(y) * 1e-15 + 1e-9:
                ok = False
                break
            q[i] = np.int64(r)
        if ok:
            return scale
    return 0.0


@nb.njit(cache=True, nogil=True)
def _sma_exact(x: FloatArray, n: int) -> FloatArray:  # pragma: no cover - compiled
    if n <= 0 or x.shape[0] < n:
        return np.full(x.shape[0], np.nan)
    q = np.empty(x.shape[0], np.int64)
    scale = _decimal_steps(x, n, q)
    if scale == 0.0:
        return _sma(x, n)
    out = np.full(x.shape[0], np.nan)
    den = n * scale
    total = 0
    for i in range(x.shape[0]):
        total += q[i]
        if i >= n:
            total -= q[i - n]
        if i >= n - 1:
            out[i] = total / den
    return out


def sma(x: FloatArray, n: int) -> FloatArray:
    """Simple moving average of the last `n` values (NaN for the first n-1 bars); exact on
    decimal prices (see module doc)."""
    return _sma_exact(np.ascontiguousarray(x, dtype=np.float64), int(n))


@nb.njit(cache=True, nogil=True)
def _rsi(x: FloatArray, n: int) -> FloatArray:  # pragma: no cover - compiled
    out = np.full(x.shape[0], np.nan)
    if n <= 0 or x.shape[0] <= n:
        return out
    gain = 0.0
    loss = 0.0
    for i in range(1, n + 1):
        d = x[i] - x[i - 1]
        if d > 0:
            gain += d
        else:
            loss -= d
    gain /= n
    loss /= n
    out[n] = 100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + gain / loss)
    for i in range(n + 1, x.shape[0]):
        d = x[i] - x[i - 1]
        g = d if d > 0 else 0.0
        lo = -d if d < 0 else 0.0
        gain = (gain * (n - 1) + g) / n
        loss = (loss * (n - 1) + lo) / n
        out[i] = 100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + gain / loss)
    return out


def rsi(x: FloatArray, n: int = 14) -> FloatArray:
    """Wilder's relative strength index over `n` bars (NaN until bar n)."""
    return _rsi(np.ascontiguousarray(x, dtype=np.float64), int(n))
