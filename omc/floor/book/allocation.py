"""Capital allocation across a book's strategies and the correlation groups of its coins
(used by the portfolio Guard, `omc.floor.book.portfolio`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Literal

ZERO = Decimal(0)
Method = Literal["fixed", "equal", "inverse-vol"]


def allocate(
    method: Method,
    strategies: Sequence[str],
    capital: Decimal,
    *,
    fixed: Mapping[str, Decimal] | None = None,
    vols: Mapping[str, float] | None = None,
    max_share: Decimal = Decimal(1),
) -> dict[str, Decimal]:
    """Capital per strategy: `fixed` amounts, an `equal` share, or weights ∝ 1/volatility
    (`inverse-vol`); no strategy gets more than `max_share` of `capital` (what a cap cuts
    off is spread over the others while they have room; the rest stays unallocated)."""
    if not strategies:
        return {}
    cap = capital * max_share
    if method == "fixed":
        given = fixed or {}
        return {s: min(Decimal(given.get(s, ZERO)), cap) for s in strategies}
    raw: dict[str, Decimal]
    if method == "equal":
        raw = {s: Decimal(1) for s in strategies}
    else:
        v = vols or {}
        missing = [s for s in strategies if not v.get(s) or not math.isfinite(v[s])]
        if missing:
            raise ValueError(f"inverse-vol allocation needs a positive volatility of {missing}")
        raw = {s: 1 / Decimal(repr(v[s])) for s in strategies}
    out = {s: ZERO for s in strategies}
    left, free = capital, list(strategies)
    while free and left > 0:
        total = sum((raw[s] for s in free), ZERO)
        share = {s: left * raw[s] / total for s in free}
        capped = [s for s in free if out[s] + share[s] >= cap]
        if not capped:
            for s in free:
                out[s] += share[s]
            break
        for s in capped:
            left -= cap - out[s]
            out[s] = cap
            free.remove(s)
    return out


def correlation_groups(returns: Mapping[str, Sequence[float]], threshold: float) -> dict[str, str]:
    """coin → group label: coins whose return series correlate ≥ `threshold` (linked
    transitively) share a label (their names joined with `+`)."""
    import numpy as np

    coins = sorted(returns)
    parent = {c: c for c in coins}

    def root(c: str) -> str:
        while parent[c] != c:
            c = parent[c]
        return c

    for i, a in enumerate(coins):
        for b in coins[i + 1 :]:
            x, y = np.asarray(returns[a], float), np.asarray(returns[b], float)
            n = min(len(x), len(y))
            if n < 3 or np.std(x[-n:]) == 0 or np.std(y[-n:]) == 0:
                continue
            if float(np.corrcoef(x[-n:], y[-n:])[0, 1]) >= threshold:
                parent[root(b)] = root(a)
    members: dict[str, list[str]] = {}
    for c in coins:
        members.setdefault(root(c), []).append(c)
    return {c: "+".join(members[root(c)]) for c in coins}
