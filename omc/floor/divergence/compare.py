"""Matching two sides' executions and judging the difference.

Executions pair by symbol and side, nearest in time within a tolerance (default two bars),
closest pairs first, each execution used once. Per pair: the time difference, the price
difference in bps (positive = the actual side paid more on a buy / got less on a sell), the
*slippage* (the same, measured against the reference's market price before the slippage it
assumed), the fee difference (absolute and in bps of notional) and the size difference.
Unpaired reference executions are *missed* trades, unpaired actual ones *extra* trades.

The verdict is `within` when every threshold holds, else `outside` with one reason per
threshold broken: mean slippage ≤ assumed + `max_slippage_bps`; mean fee excess ≤
`max_fee_excess_bps`; missed + extra ≤ `max_unmatched_pct` % of the reference's trades;
|P&L difference| ≤ `max_pnl_gap_pct` % of initial equity; mean |size difference| of the
pairs ≤ `max_size_diff_pct` % (e.g. the Guard clipping orders the backtest did not).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from omc.floor.divergence.sides import Execution, Leg
from omc.floor.fills import BPS

ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Thresholds:
    """When actual behaviour is still within what the reference promised."""

    tolerance_bars: float = 2.0
    max_slippage_bps: Decimal = Decimal(10)
    max_fee_excess_bps: Decimal = Decimal(2)
    max_unmatched_pct: Decimal = Decimal(10)
    max_pnl_gap_pct: Decimal = Decimal(1)
    max_size_diff_pct: Decimal = Decimal(10)


@dataclass(frozen=True)
class Pair:
    reference: Execution
    actual: Execution

    @property
    def dt_s(self) -> float:
        return (self.actual.time - self.reference.time).total_seconds()

    def _adverse_bps(self, base: Decimal) -> Decimal:
        if not base:
            return ZERO
        diff = (self.actual.price - base) / base * BPS
        return diff if self.actual.side == "buy" else -diff

    @property
    def price_bps(self) -> Decimal:
        """Actual vs reference fill price, bps; positive = worse for the actual side."""
        return self._adverse_bps(self.reference.price)

    @property
    def slippage_bps(self) -> Decimal:
        """Actual fill vs the reference's market price before its assumed slippage, bps."""
        return self._adverse_bps(self.reference.market)

    @property
    def fee_diff(self) -> Decimal:
        return self.actual.fee - self.reference.fee

    @property
    def fee_bps_diff(self) -> Decimal:
        """Fee as bps of notional, actual minus reference."""

        def rate(e: Execution) -> Decimal:
            return e.fee / e.notional * BPS if e.notional else ZERO

        return rate(self.actual) - rate(self.reference)

    @property
    def quantity_diff_pct(self) -> Decimal:
        ref = self.reference.quantity
        return (self.actual.quantity - ref) / ref * HUNDRED if ref else ZERO

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.reference.symbol,
            "side": self.reference.side,
            "reference_time": self.reference.time.isoformat(),
            "actual_time": self.actual.time.isoformat(),
            "dt_s": self.dt_s,
            "reference_price": self.reference.price,
            "actual_price": self.actual.price,
            "price_bps": _round(self.price_bps),
            "slippage_bps": _round(self.slippage_bps),
            "reference_quantity": self.reference.quantity,
            "actual_quantity": self.actual.quantity,
            "quantity_diff_pct": _round(self.quantity_diff_pct),
            "reference_fee": self.reference.fee,
            "actual_fee": self.actual.fee,
            "fee_diff": self.fee_diff,
            "fee_bps_diff": _round(self.fee_bps_diff),
        }


def _round(value: Decimal, places: str = "0.0001") -> Decimal:
    return value.quantize(Decimal(places))


def match(
    reference: list[Execution], actual: list[Execution], tolerance_s: float
) -> tuple[list[Pair], list[Execution], list[Execution]]:
    """(pairs, missed, extra): nearest-in-time pairing per (symbol, side), closest first."""
    candidates: list[tuple[float, int, int]] = []
    by_key: dict[tuple[str, str], list[int]] = {}
    for j, a in enumerate(actual):
        by_key.setdefault((a.symbol, a.side), []).append(j)
    for key, idx in by_key.items():
        idx.sort(key=lambda j: actual[j].time)
        by_key[key] = idx
    stamps = {k: [actual[j].time.timestamp() for j in v] for k, v in by_key.items()}
    for i, r in enumerate(reference):
        key = (r.symbol, r.side)
        if key not in by_key:
            continue
        t = r.time.timestamp()
        times = stamps[key]
        lo = bisect.bisect_left(times, t - tolerance_s)
        hi = bisect.bisect_right(times, t + tolerance_s)
        for pos in range(lo, hi):
            candidates.append((abs(times[pos] - t), i, by_key[key][pos]))
    candidates.sort(key=lambda c: (c[0], reference[c[1]].time, c[2]))
    used_r: set[int] = set()
    used_a: set[int] = set()
    pairs: list[Pair] = []
    for _, i, j in candidates:
        if i in used_r or j in used_a:
            continue
        used_r.add(i)
        used_a.add(j)
        pairs.append(Pair(reference[i], actual[j]))
    pairs.sort(key=lambda p: (p.reference.time, p.reference.symbol))
    missed = [r for i, r in enumerate(reference) if i not in used_r]
    extra = [a for j, a in enumerate(actual) if j not in used_a]
    return pairs, missed, extra


def _mean(values: list[Decimal]) -> Decimal:
    return sum(values, ZERO) / len(values) if values else ZERO


def _p95(values: list[Decimal]) -> Decimal:
    """Nearest-rank 95th percentile."""
    if not values:
        return ZERO
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class Comparison:
    """One reference side against one actual side: pairs, missed, extra, stats, verdict."""

    reference: Leg
    actual: Leg
    thresholds: Thresholds
    tolerance_s: float
    pairs: list[Pair]
    missed: list[Execution]
    extra: list[Execution]
    stats: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "outside" if self.reasons else "within"

    def as_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference.label,
            "actual": self.actual.label,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "tolerance_s": self.tolerance_s,
            "stats": dict(self.stats),
            "denials": {
                "reference": dict(self.reference.denials),
                "actual": dict(self.actual.denials),
            },
            "stops": {"reference": self.reference.stops, "actual": self.actual.stops},
            "pairs": [p.as_dict() for p in self.pairs],
            "missed": [e.as_dict() for e in self.missed],
            "extra": [e.as_dict() for e in self.extra],
        }


def compare(reference: Leg, actual: Leg, thresholds: Thresholds, bar_seconds: float) -> Comparison:
    """Pair `actual` against `reference` and judge it (see module docstring)."""
    tol = thresholds.tolerance_bars * bar_seconds
    pairs, missed, extra = match(reference.executions, actual.executions, tol)
    slip = [p.slippage_bps for p in pairs]
    abs_slip = [abs(s) for s in slip]
    fee_bps = [p.fee_bps_diff for p in pairs]
    dts = [abs(p.dt_s) for p in pairs]
    size = _mean([abs(p.quantity_diff_pct) for p in pairs])
    n_ref, n_act = len(reference.executions), len(actual.executions)
    unmatched = len(missed) + len(extra)
    unmatched_pct = (
        Decimal(unmatched) / Decimal(n_ref) * HUNDRED if n_ref else (HUNDRED if unmatched else ZERO)
    )
    equity = reference.initial_cash or actual.initial_cash
    gap = actual.pnl - reference.pnl
    gap_pct = abs(gap) / equity * HUNDRED if equity else ZERO
    stats: dict[str, Any] = {
        "reference_trades": n_ref,
        "actual_trades": n_act,
        "matched": len(pairs),
        "missed": len(missed),
        "extra": len(extra),
        "unmatched_pct": _round(unmatched_pct, "0.01"),
        "mean_abs_dt_s": sum(dts) / len(dts) if dts else 0.0,
        "max_abs_dt_s": max(dts) if dts else 0.0,
        "assumed_slippage_bps": reference.assumed_slippage_bps,
        "mean_slippage_bps": _round(_mean(slip)),
        "mean_abs_slippage_bps": _round(_mean(abs_slip)),
        "p95_abs_slippage_bps": _round(_p95(abs_slip)),
        "mean_price_diff_bps": _round(_mean([p.price_bps for p in pairs])),
        "mean_abs_quantity_diff_pct": _round(size, "0.01"),
        "reference_fees": sum((e.fee for e in reference.executions), ZERO),
        "actual_fees": sum((e.fee for e in actual.executions), ZERO),
        "matched_fee_diff": sum((p.fee_diff for p in pairs), ZERO),
        "mean_fee_bps_diff": _round(_mean(fee_bps)),
        "reference_pnl": reference.pnl,
        "actual_pnl": actual.pnl,
        "pnl_gap": gap,
        "pnl_gap_pct": _round(gap_pct),
    }
    th = thresholds
    reasons: list[str] = []
    mean_slip = _mean(slip)
    limit = reference.assumed_slippage_bps + th.max_slippage_bps
    if pairs and mean_slip > limit:
        reasons.append(
            f"mean slippage {mean_slip:.2f} bps exceeds the assumed "
            f"{reference.assumed_slippage_bps} + {th.max_slippage_bps} bps"
        )
    mean_fee = _mean(fee_bps)
    if pairs and mean_fee > th.max_fee_excess_bps:
        reasons.append(
            f"fees {mean_fee:.2f} bps of notional above the reference's "
            f"(limit {th.max_fee_excess_bps} bps)"
        )
    if pairs and size > th.max_size_diff_pct:
        reasons.append(
            f"order sizes differ by {size:.1f} % on average (limit {th.max_size_diff_pct} %)"
        )
    if unmatched_pct > th.max_unmatched_pct:
        text = (
            f"{len(missed)} missed + {len(extra)} extra trade(s) = {unmatched_pct:.1f} % of "
            f"{n_ref} reference trade(s) (limit {th.max_unmatched_pct} %)"
        )
        if actual.denials:
            text += "; denials: " + ", ".join(f"{c}: {n}" for c, n in actual.denials.items())
        if actual.stops:
            text += "; stopped: " + ", ".join(f"{s['kind']} {s['code']}" for s in actual.stops)
        reasons.append(text)
    if gap_pct > th.max_pnl_gap_pct:
        reasons.append(
            f"P&L gap {gap:,.2f} = {gap_pct:.2f} % of equity {equity:,.2f} "
            f"(limit {th.max_pnl_gap_pct} %)"
        )
    return Comparison(reference, actual, th, tol, pairs, missed, extra, stats, reasons)
