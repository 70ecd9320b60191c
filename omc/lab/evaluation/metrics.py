"""Classification metrics (scikit-learn) and the baselines every model is compared with.

`classification_metrics(y, p)` — accuracy, balanced accuracy, F1 (at p > 0.5), ROC AUC, log
loss, Brier score; a metric undefined on the rows (AUC with one class) is None.

Baselines, fitted on each fold's training rows and scored on the same test rows as the model:

* `majority` — the training rows' base rate as the probability (predicts the majority class;
  AUC 0.5 by construction);
* `last_direction` — the direction of the last h-bar move (h = the horizon, known at the
  bar), its probability the training rows' frequency of an up label after an up / down move;
* `price_logistic` — a logistic regression on lagged one-bar log returns only
  (`price_features`), the "no other information" model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    roc_auc_score,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from omc.lab.evaluation.splits import Splits

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
METRICS = ("accuracy", "balanced_accuracy", "f1", "roc_auc", "log_loss", "brier")
PRICE_LAGS = 5
EPS = 1e-6


def _num(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def classification_metrics(y: npt.ArrayLike, proba: npt.ArrayLike) -> dict[str, float | None]:
    """The six metrics of probabilities `proba` of class 1 against labels `y` (0/1)."""
    yt = np.asarray(y, dtype=np.float64).astype(np.int64)
    p = np.clip(np.asarray(proba, dtype=np.float64), EPS, 1 - EPS)
    if yt.size == 0:
        return dict.fromkeys(METRICS)
    pred = (p > 0.5).astype(np.int64)
    two = len(np.unique(yt)) == 2
    return {
        "accuracy": _num(accuracy_score(yt, pred)),
        "balanced_accuracy": _num(balanced_accuracy_score(yt, pred)) if two else None,
        "f1": _num(f1_score(yt, pred, zero_division=0.0)),
        "roc_auc": _num(roc_auc_score(yt, p)) if two else None,
        "log_loss": _num(log_loss(yt, p, labels=[0, 1])),
        "brier": _num(brier_score_loss(yt, p)),
    }


def price_features(close: pd.Series | FloatArray, lags: int = PRICE_LAGS) -> FloatArray:
    """Lagged one-bar log returns r[i], r[i-1], ..., r[i-lags+1] (causal; NaN in warm-up)."""
    c = np.asarray(close, dtype=np.float64)
    r = np.full(len(c), np.nan)
    r[1:] = np.diff(np.log(c))
    out = np.full((len(c), lags), np.nan)
    for k in range(lags):
        out[k:, k] = r[: len(c) - k]
    return out


def last_direction(close: pd.Series | FloatArray, horizon: int) -> FloatArray:
    """1.0 when close[i] > close[i-h], 0.0 when not, NaN for the first h bars."""
    c = np.asarray(close, dtype=np.float64)
    out = np.full(len(c), np.nan)
    out[horizon:] = (c[horizon:] > c[:-horizon]).astype(np.float64)
    return out


Fitter = Callable[[IntArray, IntArray], FloatArray]


def majority_fitter(y: FloatArray) -> Fitter:
    def fit(train: IntArray, test: IntArray) -> FloatArray:
        return np.full(len(test), float(np.mean(y[train])) if len(train) else 0.5)

    return fit


def last_direction_fitter(y: FloatArray, last: FloatArray) -> Fitter:
    def fit(train: IntArray, test: IntArray) -> FloatArray:
        base = float(np.mean(y[train]))
        rates = {}
        for v in (0.0, 1.0):
            hit = train[last[train] == v]
            rates[v] = float(np.mean(y[hit])) if len(hit) else base
        out = np.full(len(test), base)
        lt = last[test]
        out[lt == 1.0] = rates[1.0]
        out[lt == 0.0] = rates[0.0]
        return out

    return fit


def price_logistic_fitter(y: FloatArray, feats: FloatArray, seed: int = 0) -> Fitter:
    def fit(train: IntArray, test: IntArray) -> FloatArray:
        model = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=100, random_state=seed),
        )
        ytr = y[train]
        if len(np.unique(ytr)) < 2:
            return np.full(len(test), float(np.mean(ytr)))
        model.fit(feats[train], ytr.astype(np.int64))
        return np.asarray(model.predict_proba(feats[test])[:, 1], dtype=np.float64)

    return fit


def baseline_fitters(
    close: FloatArray, y: FloatArray, horizon: int, seed: int = 0
) -> dict[str, Fitter]:
    """The three baselines over bar positions (`y`, `close` aligned with the bars)."""
    return {
        "majority": majority_fitter(y),
        "last_direction": last_direction_fitter(y, last_direction(close, horizon)),
        "price_logistic": price_logistic_fitter(y, price_features(close), seed),
    }


def baseline_usable(n: int, horizon: int) -> npt.NDArray[np.bool_]:
    """Rows (of `n` bars) where every baseline has its inputs (past the returns' warm-up)."""
    ok = np.ones(n, dtype=bool)
    ok[: max(PRICE_LAGS, horizon)] = False
    return ok


def fold_rows(splits: Splits, usable: npt.NDArray[np.bool_]) -> list[tuple[IntArray, IntArray]]:
    """(train, test) usable bar positions of every fold."""
    out = []
    for f in splits.folds:
        tr, te = f.train_rows(), f.test_rows()
        out.append((tr[usable[tr]], te[usable[te]]))
    return out


def walk_forward_scores(
    fit: Fitter, y: FloatArray, folds: Sequence[tuple[IntArray, IntArray]]
) -> tuple[list[dict[str, float | None]], FloatArray]:
    """Per-fold metrics and the concatenated out-of-sample probabilities of `fit`."""
    per_fold, probas = [], []
    for train, test in folds:
        p = fit(train, test)
        per_fold.append(classification_metrics(y[test], p))
        probas.append(p)
    return per_fold, np.concatenate(probas) if probas else np.empty(0)


def summary(per_fold: Sequence[dict[str, float | None]], overall: dict[str, Any]) -> dict[str, Any]:
    """`overall` metrics plus the per-fold table and the fold mean of AUC."""
    aucs = [float(a) for f in per_fold if (a := f.get("roc_auc")) is not None]
    return {
        **overall,
        "auc": overall.get("roc_auc"),
        "fold_mean_auc": _num(float(np.mean(aucs))) if aucs else None,
        "folds": list(per_fold),
    }
