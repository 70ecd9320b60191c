"""`evaluate`: the whole honest evaluation of a finished search, as one JSON-able result.

Everything reported is out of sample: per-fold and overall metrics of the selected trial on
the purged walk-forward test rows, the baselines on the same rows, the OOS signal traded
through the Floor against buy-and-hold, flat and the price-only logistic baseline, the
deflated Sharpe (all trials counted) and PBO over the trials' OOS strategy returns, then the
sealed holdout — scored once, here, after selection, with the selected model refitted on all
development rows (`StudyEvaluation.model`, the artifact to save). Feature importances come
from that refit, calibration and the confusion matrix from the OOS rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from omc.floor.data import Bars
from omc.lab.evaluation import stats, trading
from omc.lab.evaluation.metrics import (
    Fitter,
    baseline_fitters,
    classification_metrics,
    summary,
    walk_forward_scores,
)
from omc.lab.evaluation.verdict import decide
from omc.lab.plan import ResearchPlan
from omc.lab.training import models as M
from omc.lab.training.search import SearchResult

CALIBRATION_BINS = 10
# the classification baselines the verdict's AUC bar is set by (the issue's "majority class,
# last direction"); the price-only logistic is the trading baseline, reported beside them — a
# signal in past returns alone (momentum, mean reversion) is an edge too
VERDICT_BASELINES = ("majority", "last_direction")


def plain(value: Any) -> Any:
    """Plain JSON: numpy scalars/arrays to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class StudyEvaluation:
    folds: list[dict[str, Any]]
    oos: dict[str, Any]
    baseline: dict[str, Any]
    trading: dict[str, Any]
    holdout: dict[str, Any]
    feature_importance: dict[str, float]
    calibration: list[dict[str, Any]]
    confusion: dict[str, Any]
    verdict: dict[str, Any]
    search: dict[str, Any]
    trials: list[dict[str, Any]]
    model: Any = field(repr=False, default=None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = plain(
            {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "model"}
        )
        return out


def calibration(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict[str, Any]]:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        hit = which == b
        if hit.any():
            out.append(
                {
                    "lo": float(edges[b]),
                    "hi": float(edges[b + 1]),
                    "mean_predicted": float(p[hit].mean()),
                    "observed": float(y[hit].mean()),
                    "count": int(hit.sum()),
                }
            )
    return out


def confusion(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    yt, pr = y.astype(int), (p > 0.5).astype(int)
    m = [[int(((yt == a) & (pr == b)).sum()) for b in (0, 1)] for a in (0, 1)]
    return {"labels": [0, 1], "matrix": m, "rows": "actual", "columns": "predicted"}


def _best_baseline(base: dict[str, dict[str, Any]], key: str = "auc") -> tuple[str, float | None]:
    scored = [(v.get(key), k) for k, v in base.items() if v.get(key) is not None]
    if not scored:
        return "none", None
    auc, name = max(scored)
    return name, auc


def evaluate(
    search: SearchResult,
    X: pd.DataFrame,
    labels: pd.DataFrame,
    bars: pd.DataFrame,
    plan: ResearchPlan,
    *,
    holdout_opened_before: int = 0,
) -> StudyEvaluation:
    """The study's evaluation (module docstring); the holdout is scored exactly once."""
    with M.one_blas_thread():
        return _evaluate(search, X, labels, bars, plan, holdout_opened_before)


def _iso(stamp: Any) -> str:
    return stamp.isoformat() if hasattr(stamp, "isoformat") else str(stamp)


def _fold_table(search: SearchResult, index: pd.Index) -> list[dict[str, Any]]:
    """The selected trial's metrics per fold, with each fold's windows and row counts."""
    parts = zip(search.splits.folds, search.folds, search.best.fold_scores, strict=True)
    return [
        {
            "fold": f.number + 1,
            "train": list(f.train),
            "test": list(f.test),
            "train_rows": len(tr),
            "test_rows": len(te),
            "test_start": _iso(index[f.test[0]]),
            "test_end": _iso(index[f.test[1] - 1]),
            **scores,
        }
        for f, (tr, te), scores in parts
    ]


def _selection_stats(
    search: SearchResult, fb: Bars, span: tuple[int, int], fee: float
) -> dict[str, Any]:
    """Deflated Sharpe and PBO of the selected trial among all trials (vectorised OOS
    strategy returns, the Floor's fee rule)."""
    best = search.best
    matrix = trading.trial_returns(
        fb, span, search.oos_rows, np.column_stack([t.oos_proba for t in search.trials]), fee
    )
    ann = trading.annual_sharpe_factor(fb)
    n_trials = len(search.trials)
    dsr = stats.deflated_sharpe(
        matrix[:, best.number], n_trials, stats.trial_sharpe_variance(matrix)
    )
    splits_pbo = stats.pbo_splits(len(matrix))
    pbo = stats.pbo(matrix, splits_pbo).pbo if n_trials >= 2 and splits_pbo else None
    return {
        "sharpe_vectorised": dsr.sharpe * ann,
        "deflated_sharpe": dsr.deflated_sharpe * ann,
        "deflated_sharpe_benchmark": dsr.benchmark * ann,
        "deflated_sharpe_probability": dsr.probability if math.isfinite(dsr.probability) else None,
        "pbo": pbo,
        "pbo_splits": splits_pbo,
        "trials": n_trials,
    }


def _holdout(
    search: SearchResult,
    values: np.ndarray,
    y: np.ndarray,
    fitters: dict[str, Fitter],
    fb: Bars,
    final: Any,
    fee: float,
    opened_before: int,
) -> dict[str, Any]:
    """The sealed holdout scored once: the refitted model and the baselines (fitted on every
    development row), metrics and trading."""
    dev, hold = search.dev_rows, search.holdout_rows
    out: dict[str, Any] = {
        "opened_before": int(opened_before),
        "flagged": opened_before > 0,
        "rows": len(hold),
        "span": [_iso(search.index[search.splits.holdout[0]]), _iso(search.index[-1])],
        "metrics": {},
        "baseline": {},
    }
    if not len(hold):
        return out
    probas = {"model": M.predict_proba(final, values[hold])}
    probas.update({name: fit(dev, hold) for name, fit in fitters.items()})
    scored = {name: classification_metrics(y[hold], p) for name, p in probas.items()}
    for m in scored.values():
        m["auc"] = m["roc_auc"]
    traded = trading.trade(fb, (int(hold[0]), int(hold[-1]) + 1), hold, probas, fee)
    out["metrics"] = {**scored.pop("model"), "sharpe": traded["model"]["sharpe"]}
    out["baseline"] = scored
    out["trading"] = {k: v for k, v in traded.items() if k != "equity"}
    out["equity"] = traded["equity"]
    return out


def _evaluate(
    search: SearchResult,
    X: pd.DataFrame,
    labels: pd.DataFrame,
    bars: pd.DataFrame,
    plan: ResearchPlan,
    holdout_opened_before: int,
) -> StudyEvaluation:
    if not (X.index.equals(labels.index) and X.index.equals(bars.index)):
        raise ValueError("features, labels and bars must share one index")
    best = search.best
    fee = plan.evaluation.fee_bps
    y = labels["y"].to_numpy(dtype=np.float64)
    close = bars["close"].to_numpy(dtype=np.float64)
    oos_rows = search.oos_rows
    y_oos = y[oos_rows]
    oos: dict[str, Any] = summary(best.fold_scores, classification_metrics(y_oos, best.oos_proba))
    oos.pop("folds")  # the per-fold table is `folds`

    fitters = baseline_fitters(close, y, plan.target.horizon_bars, plan.seed)
    baseline: dict[str, Any] = {}
    base_proba: dict[str, np.ndarray] = {}
    for name, fit in fitters.items():
        per_fold, proba = walk_forward_scores(fit, y, search.folds)
        baseline[name] = summary(per_fold, classification_metrics(y_oos, proba))
        base_proba[name] = proba

    fb = trading.frame_bars(bars, plan.symbols[0])
    span = (int(oos_rows[0]), int(oos_rows[-1]) + 1)
    traded = trading.trade(fb, span, oos_rows, {"model": best.oos_proba, **base_proba}, fee)
    for name in base_proba:
        baseline[name]["sharpe"] = traded[name]["sharpe"]
        baseline[name]["total_return"] = traded[name]["total_return"]
    oos["sharpe"] = traded["model"]["sharpe"]
    oos["total_return"] = traded["model"]["total_return"]
    oos.update(_selection_stats(search, fb, span, fee))
    oos["rows"] = len(oos_rows)

    # the sealed holdout: the selected model refitted on every development row, scored once
    values = np.ascontiguousarray(X.to_numpy(dtype=np.float64))
    fit_rows = M.train_rows(best.model, search.dev_rows)
    final = M.build(best.model, best.params, plan.seed, len(fit_rows))
    final = M.fit(final, values[fit_rows], y[fit_rows])
    holdout = _holdout(search, values, y, fitters, fb, final, fee, holdout_opened_before)

    base_name, base_auc = _best_baseline({k: baseline[k] for k in VERDICT_BASELINES})
    hb = holdout["baseline"]
    _, hold_base_auc = _best_baseline({k: hb[k] for k in VERDICT_BASELINES if k in hb})
    verdict = decide(
        oos_auc=oos.get("auc"),
        baseline_auc=base_auc,
        baseline_name=base_name,
        deflated_sharpe_probability=oos["deflated_sharpe_probability"],
        n_trials=len(search.trials),
        holdout_auc=holdout["metrics"].get("auc"),
        holdout_baseline_auc=hold_base_auc,
        opened_before=holdout_opened_before,
        thresholds=plan.evaluation,
    )
    return StudyEvaluation(
        folds=_fold_table(search, X.index),
        oos=oos,
        baseline=baseline,
        trading=traded,
        holdout=holdout,
        feature_importance=M.feature_importance(final, search.feature_names),
        calibration=calibration(y_oos, best.oos_proba),
        confusion=confusion(y_oos, best.oos_proba),
        verdict=verdict,
        search={
            "selected": best.number,
            "model": best.model,
            "params": best.params,
            "score": best.score,
            "seconds": search.seconds,
            "splits": search.splits.to_json(),
            "usable_rows": int(search.usable.sum()),
            "dev_rows": len(search.dev_rows),
        },
        trials=[t.to_json() for t in search.trials],
        model=final,
    )
