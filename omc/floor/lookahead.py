"""Look-ahead detection by prefix invariance, shared by the backtester and the fast path.

A causal computation gives, for every bar, the same answer whether the data ends right after
that bar or much later. So we recompute on *prefixes* of the data — copies that hold nothing
after the cut — and compare with the full run:

* `check_causal`: an indicator function, compared value by value on every bar of the prefix;
* `check_prefixes`: a whole run (a backtest's orders, or a strategy's `signals`), compared
  decision by decision. It catches every route to later bars (an indicator's `shift(-1)`, an
  array stashed by an indicator function, reading engine internals through frames or
  closures): on a prefix those later bars do not exist, so the decisions change, or the
  strategy fails on the bar where the full run did not.

Cuts are chosen to be hard to slip past: every one of the first bars after the start, the
bars around the strategy's warm-up, random bars, the last bars, and (after the full run) the
bar right after a random decision and after the first decision. Prefix runs go shortest
first and the full run after them, so nothing a strategy stashes on one run can carry later
bars into a shorter one. Strategies must be deterministic (seed any randomness in `init`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from omc.floor.data import Bars
from omc.floor.strategy import LookAheadError, Strategy

SHORT_CUTS = 8  # every prefix ending on one of the first bars after the start
RANDOM_CUTS = 1  # random cuts, before the full run
DECISION_CUTS = 1  # random decision bars, after the full run (plus the first decision)


def _rng() -> np.random.Generator:
    return np.random.default_rng()


def prefix_cuts(
    n: int, start: int, warmup: int, *, random: int = RANDOM_CUTS, last: int = 0
) -> list[int]:
    """Prefix lengths to check (each in start+1..n-1, ascending): the first `SHORT_CUTS` bars
    after `start`, the bars around the warm-up, `random` random ones and the `last` last."""
    cuts = set(range(start + 1, start + 1 + SHORT_CUTS))
    w = start + warmup
    cuts.update((w, w + 1, w + 2))
    rng = _rng()
    if n - 1 > start + 1:
        cuts.update(int(c) for c in rng.integers(start + 1, n - 1, size=random, endpoint=True))
    cuts.update(range(n - last, n))
    return sorted(c for c in cuts if start < c < n)


def decision_cuts(bars: Sequence[int] | npt.NDArray[np.int64], done: Iterable[int]) -> list[int]:
    """Cuts right after the first decision and `DECISION_CUTS` random ones (not yet done)."""
    if len(bars) == 0:
        return []
    picks = {int(bars[0])}
    picks.update(int(bars[k]) for k in _rng().integers(0, len(bars), size=DECISION_CUTS))
    seen = set(done)
    return sorted(b + 1 for b in picks if b + 1 not in seen)


def prefix_copy(bars: Bars, cut: int) -> Bars:
    """The first `cut` bars as fresh arrays (no view of the later bars survives)."""
    return Bars(
        bars.symbol,
        bars.ts[:cut].copy(),
        bars.open[:cut].copy(),
        bars.high[:cut].copy(),
        bars.low[:cut].copy(),
        bars.close[:cut].copy(),
        bars.volume[:cut].copy(),
    )


def fresh(strategy: Strategy) -> Strategy:
    """A new instance of `strategy` with the same parameters (a deep copy if the class
    cannot be rebuilt from its parameters)."""
    try:
        return type(strategy)(**strategy.params)
    except (TypeError, ValueError):
        return copy.deepcopy(strategy)


@dataclass
class Trace:
    """One run on a prefix (`cut`) or on all the data (`cut` None).

    `bars`: the bar of each decision, ascending; `decisions`: what `same` compares; `error`:
    what the run raised, on bar `error_bar` (before the first bar: `inconclusive`, e.g. an
    indicator that needs more bars than the prefix has); `result`: the full run's result."""

    cut: int | None
    bars: Sequence[int] | npt.NDArray[np.int64] = ()
    decisions: Any = None
    result: Any = None
    error: Exception | None = None
    error_bar: int = -1
    inconclusive: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def check_prefixes(
    run: Callable[[int | None], Trace],
    first_difference: Callable[[Trace, Trace, int], int | None],
    *,
    n: int,
    start: int,
    warmup: int,
    what: str,
    when: Callable[[int], str] = str,
    last: int = 0,
) -> Any:
    """Run on prefixes and on the full data; the full run's result, or `LookAheadError`
    naming the first bar whose decision changes when later bars are added (see module doc).

    `first_difference(prefix, full, cut)`: the first bar < cut where they disagree, or None."""
    pending = []
    done: list[int] = []
    for cut in prefix_cuts(n, start, warmup, last=last):
        trace = run(cut)
        if isinstance(trace.error, LookAheadError):
            raise trace.error
        pending.append(trace)
        done.append(cut)
    full = run(None)
    if full.error is not None and not isinstance(full.error, LookAheadError):
        for trace in pending:
            if trace.error is not None and not trace.inconclusive:
                same = type(trace.error) is type(full.error) and trace.error_bar == full.error_bar
                if not same and trace.error_bar < full.error_bar:
                    _fail_error(trace, what, when)
    if full.error is not None:
        raise full.error
    for trace in pending:
        _compare(trace, full, first_difference, what, when)
    for cut in decision_cuts(full.bars, done):
        if start < cut < n:
            trace = run(cut)
            if isinstance(trace.error, LookAheadError):
                raise trace.error
            _compare(trace, full, first_difference, what, when)
    return full.result


def _compare(
    trace: Trace,
    full: Trace,
    first_difference: Callable[[Trace, Trace, int], int | None],
    what: str,
    when: Callable[[int], str],
) -> None:
    if trace.inconclusive:
        return
    assert trace.cut is not None
    if trace.error is not None:
        _fail_error(trace, what, when)
    bar = first_difference(trace, full, trace.cut)
    if bar is not None:
        raise LookAheadError(
            f"{what} uses data after the current bar: its decision on bar {bar} "
            f"({when(bar)}) changes when the data ends at bar {trace.cut - 1}"
        )


def _fail_error(trace: Trace, what: str, when: Callable[[int], str]) -> None:
    assert trace.cut is not None and trace.error is not None
    b = trace.error_bar
    raise LookAheadError(
        f"{what} uses data after the current bar: with the data ending at bar {trace.cut - 1} "
        f"it fails on bar {b} ({when(b)}) with {type(trace.error).__name__}: {trace.error}, "
        "but not when later bars exist"
    ) from trace.error


def first_log_difference(sub: Trace, full: Trace, cut: int) -> int | None:
    """For decision logs (tuples starting with their bar, in bar order): the first bar where
    the prefix's log and the full log (restricted to bars < cut) differ."""
    ref = [d for d in full.decisions if d[0] < cut]
    got = list(sub.decisions)
    for a, b in zip(ref, got, strict=False):
        if a != b:
            return int(min(a[0], b[0]))
    if len(ref) != len(got):
        k = min(len(ref), len(got))
        return int((ref if len(ref) > k else got)[k][0])
    return None


def first_array_difference(
    sub: Mapping[str, npt.NDArray[Any]], full: Mapping[str, npt.NDArray[Any]], cut: int
) -> int | None:
    """For per-bar arrays (NaN = nothing): the first bar < cut where they differ (beyond
    1e-9 relative), over all symbols."""
    first: int | None = None
    for key, ref in full.items():
        got = sub.get(key)
        r = np.asarray(ref[:cut], dtype=np.float64)
        if got is None or np.shape(got) != r.shape:
            return 0
        g = np.asarray(got, dtype=np.float64)
        if np.array_equal(g, r, equal_nan=True):
            continue
        same = (np.isnan(g) & np.isnan(r)) | np.isclose(g, r, rtol=1e-9, atol=0.0)
        if not len(r):
            continue
        bad = np.flatnonzero(~same.reshape(len(r), -1).all(axis=1))
        if len(bad):
            first = int(bad[0]) if first is None else min(first, int(bad[0]))
    return first


def check_causal(
    fn: Callable[..., Any],
    arrays: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    full: npt.NDArray[Any],
    name: str,
    warmup: int = 0,
) -> None:
    """Recompute indicator `fn` on prefixes of its inputs (every one of the first bars, the
    bars around the warm-up, random ones, the last two); raise `LookAheadError` if any value
    up to a cut differs from the full-data computation. A prefix `fn` cannot handle (too
    short for it) is skipped."""
    n = len(full)
    if n < 2:
        return
    for cut in prefix_cuts(n, 0, warmup, random=3, last=2):
        sub = tuple(
            a[:cut].copy() if isinstance(a, np.ndarray) and len(a) == n else a for a in arrays
        )
        try:
            part = np.asarray(fn(*sub, **kwargs), dtype=np.float64)
        except Exception:  # too few bars for this indicator: not a verdict
            continue
        bad = first_array_difference({"v": part}, {"v": full}, cut)
        if bad is not None:
            raise LookAheadError(
                f"indicator {name!r} is not causal: its value on bar {bad} changes when the "
                f"data ends at bar {cut - 1} (it uses future data)"
            )
