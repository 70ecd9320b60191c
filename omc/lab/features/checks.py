"""Data checks run before training; each result goes in the report.

* `coverage:<input>` — per input: rows, span, gaps (bars: missing bar intervals; a ledger:
  the share of bars at which it had a row known within its usual cadence). Empty ledger data
  for a family the plan uses is a `warn` (its features carry no information).
* `features` — a feature with no value, or one value after the warm-up, is a `warn`.
* `sample_size` — usable rows (label known, features past warm-up) against the minimum for
  the horizon: enough *independent* (non-overlapping) labels in every walk-forward test fold.
  Too few is a `fail`: the study stops with that message.
* `class_balance` — a single class is a `fail`; a minority under 10 % a `warn`.
* `leakage` — every feature recomputed on shorter histories (the study as known at several
  cut points: `inputs.until(close of the cut's last bar)`, the Floor's prefix-invariance idea
  from `omc.floor.lookahead`); a feature whose past values change when later data is added is
  **refused** (named in `refused`, dropped from X by the caller). A column of X the spec
  cannot recompute is refused too: its causality cannot be shown.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from omc.floor.lookahead import first_array_difference
from omc.lab.features.inputs import FAMILY_INPUTS, StudyInputs
from omc.lab.features.spec import FeatureSpec, build_matrix
from omc.lab.plan import ResearchPlan

Status = Literal["pass", "warn", "fail"]
MIN_ROWS = 500  # usable labelled rows, whatever the horizon
MIN_INDEPENDENT_PER_FOLD = 30  # non-overlapping labels in each walk-forward test fold
MIN_MINORITY = 0.10
LEAK_CUTS = 8  # cut points of the leakage check (plus the last two bars)
# how recent a ledger row must be (known within this many hours) to "cover" a bar
CADENCE_HOURS = {"sentiment": 24, "news": 24, "tvl": 72, "fees": 72, "events": None}


class CheckResult(BaseModel):
    name: str
    status: Status
    detail: str
    data: dict[str, Any] = Field(default_factory=dict)
    refused: list[str] = Field(default_factory=list)


def run_checks(
    inputs: StudyInputs,
    X: pd.DataFrame,
    y: pd.Series,
    plan: ResearchPlan,
    *,
    spec: FeatureSpec | None = None,
) -> list[CheckResult]:
    """All checks, in report order. `spec` defaults to `FeatureSpec.from_plan(plan, inputs)`
    (pass the spec X was built with when it is not the plan's)."""
    spec = spec or FeatureSpec.from_plan(plan, inputs)
    results = [check_bars(inputs)]
    results += [check_ledger(inputs, name) for name in sorted(inputs.ledgers)]
    results.append(check_features(X))
    results.append(check_sample_size(X, y, plan))
    results.append(check_balance(X, y))
    results.append(check_leakage(inputs, X, spec, seed=plan.seed))
    return results


def _iso(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()


def check_bars(inputs: StudyInputs) -> CheckResult:
    index = inputs.bars.index
    if len(index) < 2:
        return CheckResult(
            name="coverage:bars", status="fail", detail=f"only {len(index)} bars", data={}
        )
    step = pd.Timedelta(seconds=inputs.bar_seconds)
    gaps = np.diff(index.as_unit("ns").asi8) / step.value
    missing = int(np.sum(np.maximum(np.round(gaps) - 1, 0)))
    expected = len(index) + missing
    coverage = len(index) / expected
    biggest = float(gaps.max() - 1) if len(gaps) else 0.0
    data = {
        "rows": len(index),
        "first": _iso(index[0]),
        "last": _iso(index[-1]),
        "missing_bars": missing,
        "gaps": int(np.sum(gaps > 1.5)),
        "largest_gap_bars": biggest,
        "coverage": round(coverage, 6),
        "source": inputs.source,
    }
    status: Status = "pass" if coverage >= 0.99 else "warn"
    detail = (
        f"{len(index)} bars {data['first']} .. {data['last']}, {data['gaps']} gaps "
        f"({missing} missing bars, coverage {coverage:.1%})"
    )
    return CheckResult(name="coverage:bars", status=status, detail=detail, data=data)


def check_ledger(inputs: StudyInputs, name: str) -> CheckResult:
    frame = inputs.ledgers[name]
    families = [f for f, source in FAMILY_INPUTS.items() if source == name]
    if frame.empty:
        return CheckResult(
            name=f"coverage:{name}",
            status="warn",
            detail=f"no {name} data known by {inputs.as_of.isoformat()}: features of "
            f"{', '.join(families)} carry no information",
            data={"rows": 0},
        )
    known = pd.DatetimeIndex(frame["known_at"])
    closes = inputs.close_times
    data: dict[str, Any] = {
        "rows": len(frame),
        "first_known": _iso(known.min()),
        "last_known": _iso(known.max()),
    }
    cadence = CADENCE_HOURS.get(name)
    status: Status = "pass"
    detail = f"{len(frame)} rows known {data['first_known']} .. {data['last_known']}"
    if cadence is not None and len(closes):
        last = np.searchsorted(known.as_unit("ns").asi8, closes.as_unit("ns").asi8, "right") - 1
        lag = closes.as_unit("ns").asi8 - known.as_unit("ns").asi8[np.maximum(last, 0)]
        covered = (last >= 0) & (lag <= cadence * 3_600 * 10**9)
        share = float(covered.mean())
        inside = known[(known >= closes[0]) & (known <= closes[-1])]
        edges = pd.DatetimeIndex([closes[0], *inside, closes[-1]]).as_unit("ns").asi8
        gap = float(np.diff(edges).max()) / 3.6e12 if len(edges) > 1 else 0.0
        data["bar_coverage"] = round(share, 6)
        data["largest_gap_hours"] = round(gap, 3)
        detail += f"; a row known within {cadence} h at {share:.1%} of bars"
        detail += f", longest time without a new row {gap:.1f} h"
        status = "pass" if share >= 0.9 else "warn"
    return CheckResult(name=f"coverage:{name}", status=status, detail=detail, data=data)


def usable_rows(X: pd.DataFrame, y: pd.Series) -> pd.Series:
    """Rows with a known label and every feature past its warm-up."""
    return y.notna() & X.notna().all(axis=1)


def required_rows(plan: ResearchPlan) -> int:
    """Minimum usable rows: `MIN_INDEPENDENT_PER_FOLD` non-overlapping labels (horizon bars
    apart) in each of the walk-forward's test folds, outside the sealed holdout."""
    horizon = plan.target.horizon_bars
    ev = plan.evaluation
    per_fold = MIN_INDEPENDENT_PER_FOLD * horizon
    return max(MIN_ROWS, int(np.ceil(per_fold * (ev.folds + 1) / (1 - ev.holdout_fraction))))


def check_sample_size(X: pd.DataFrame, y: pd.Series, plan: ResearchPlan) -> CheckResult:
    usable = int(usable_rows(X, y).sum())
    need = required_rows(plan)
    horizon = plan.target.horizon_bars
    data = {"usable_rows": usable, "required_rows": need, "horizon_bars": horizon}
    if usable < need:
        missing = X[y.notna()].isna().mean().sort_values(ascending=False)
        limits = [f"{k} (no value on {v:.0%} of rows)" for k, v in missing.items() if v > 0.5]
        hint = f"; limited by {', '.join(limits[:3])}" if limits else ""
        return CheckResult(
            name="sample_size",
            status="fail",
            detail=f"only {usable} usable rows; a {horizon}-bar horizon with "
            f"{plan.evaluation.folds} folds needs at least {need} — use more history or a "
            f"shorter horizon{hint}",
            data=data,
        )
    return CheckResult(
        name="sample_size",
        status="pass",
        detail=f"{usable} usable rows (at least {need} needed for a {horizon}-bar horizon)",
        data=data,
    )


def check_features(X: pd.DataFrame) -> CheckResult:
    """Features with no value or a single value after the warm-up carry no information."""
    after = X.iloc[_warmup(X) :] if len(X) else X
    empty = sorted(c for c in X.columns if X[c].isna().all())
    constant = sorted(c for c in X.columns if c not in empty and after[c].nunique() <= 1)
    data = {"features": len(X.columns), "empty": empty, "constant": constant}
    if not empty and not constant:
        return CheckResult(
            name="features", status="pass", detail=f"{len(X.columns)} features vary", data=data
        )
    parts = [f"no value: {', '.join(empty)}"] if empty else []
    parts += [f"constant: {', '.join(constant)}"] if constant else []
    return CheckResult(
        name="features",
        status="warn",
        detail="features without information (" + "; ".join(parts) + ")",
        data=data,
    )


def check_balance(X: pd.DataFrame, y: pd.Series) -> CheckResult:
    labels = y[usable_rows(X, y)]
    counts = {str(k): int(v) for k, v in labels.value_counts().sort_index().items()}
    if len(counts) < 2:
        return CheckResult(
            name="class_balance",
            status="fail",
            detail=f"a single class among usable labels: {counts or 'none'}",
            data={"counts": counts},
        )
    minority = min(counts.values()) / sum(counts.values())
    status: Status = "pass" if minority >= MIN_MINORITY else "warn"
    return CheckResult(
        name="class_balance",
        status=status,
        detail=f"classes {counts} (minority {minority:.1%})",
        data={"counts": counts, "minority_share": round(minority, 6)},
    )


def leak_cuts(n: int, warmup: int, seed: int) -> list[int]:
    """Prefix lengths to recompute at: just past the warm-up, spread over the data (seeded:
    the same plan checks the same cuts), and the last two bars."""
    if n < 3:
        return []
    rng = np.random.default_rng(seed)
    start = min(max(warmup, 1), n - 2)
    cuts = {start + 1, start + 2, n - 1, n - 2}
    cuts.update(int(c) for c in np.linspace(start + 1, n - 1, LEAK_CUTS // 2))
    cuts.update(int(c) for c in rng.integers(start + 1, n, size=LEAK_CUTS // 2))
    return sorted(c for c in cuts if 1 <= c < n)


def _warmup(X: pd.DataFrame) -> int:
    complete = X.notna().all(axis=1).to_numpy()
    hits = np.flatnonzero(complete)
    return int(hits[0]) if len(hits) else 0


def check_leakage(
    inputs: StudyInputs, X: pd.DataFrame, spec: FeatureSpec, *, seed: int = 0
) -> CheckResult:
    """Recompute every feature on the study as known at several cuts; refuse any whose
    values before the cut differ from X's."""
    n = len(X)
    reasons: dict[str, str] = {}
    closes = inputs.close_times
    cuts = leak_cuts(n, _warmup(X), seed)
    checked = list(X.columns)
    for k, cut in enumerate(cuts or [n]):
        sub = build_matrix(spec, inputs.until(closes[cut - 1]) if n else inputs)
        if k == 0:
            for column in [c for c in checked if c not in sub.columns]:
                reasons[column] = "not made by the feature spec: its causality cannot be checked"
                checked.remove(column)
        if not cuts:
            break
        for column in list(checked):
            full = X[column].to_numpy(dtype=np.float64)[:cut]
            part = sub[column].to_numpy(dtype=np.float64)[:cut]
            bad = (
                0
                if len(part) != len(full)
                else first_array_difference({"v": part}, {"v": full}, cut)
            )
            if bad is not None:
                reasons[column] = (
                    f"its value on bar {bad} ({X.index[bad].isoformat()}) changes when the "
                    f"data ends at bar {cut - 1}: it uses information from later"
                )
                checked.remove(column)
    refused = sorted(reasons)
    data = {
        "cuts": cuts,
        "features": len(X.columns),
        "refused": {name: reasons[name] for name in refused},
    }
    if not refused:
        return CheckResult(
            name="leakage",
            status="pass",
            detail=f"{len(X.columns)} features unchanged on {len(cuts)} shorter histories",
            data=data,
        )
    status: Status = "fail" if len(refused) == len(X.columns) else "warn"
    detail = "refused (uses future data): " + "; ".join(f"{k}: {reasons[k]}" for k in refused)
    return CheckResult(name="leakage", status=status, detail=detail, data=data, refused=refused)
