"""Causal technical indicators (compiled with numba), shared by every execution path so the
event-driven engine, the fast path and sweeps see bit-identical values."""

from __future__ import annotations

import numba as nb
import numpy as np

from omc.floor.data import FloatArray


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


def sma(x: FloatArray, n: int) -> FloatArray:
    """Simple moving average of the last `n` values (NaN for the first n-1 bars)."""
    return _sma(np.ascontiguousarray(x, dtype=np.float64), int(n))


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
