"""The hyper-parameter search: Optuna within the plan's trial budget, every trial recorded.

The budget `plan.trials` is spread round-robin over `plan.models` (trial k trains
`plan.models[k % len(models)]`), one seeded TPE study per model (`TPESampler(seed=plan.seed +
j)`), so the same plan and data give the same trials. A trial fits its model on each purged
walk-forward fold's training rows and predicts the fold's test rows (`omc.lab.evaluation.
splits`: development rows only — the sealed holdout is never touched here); its score is the
mean fold ROC AUC. Every trial is kept: parameters, per-fold metrics, seconds, and its
out-of-sample probabilities over the development OOS rows (the input of the deflated Sharpe
and PBO). The selected trial is the best score (ties: the earliest).

Usable rows: the label is known, every feature is finite, and the baselines' return lags exist
(so models and baselines are scored on exactly the same rows).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import optuna
import pandas as pd

from omc.lab.evaluation.metrics import baseline_usable, classification_metrics, fold_rows
from omc.lab.evaluation.splits import Splits, plan_splits
from omc.lab.plan import ModelName, ResearchPlan
from omc.lab.training import models as M

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Progress = Callable[[str, int, int], None]


@dataclass
class Trial:
    number: int
    model: ModelName
    params: dict[str, Any]
    fold_scores: list[dict[str, float | None]]
    score: float  # mean fold ROC AUC (a fold without both classes counts 0.5)
    seconds: float
    oos_proba: FloatArray = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "model": self.model,
            "params": {k: _plain(v) for k, v in self.params.items()},
            "fold_scores": self.fold_scores,
            "score": _plain(self.score),
            "seconds": round(self.seconds, 4),
        }


@dataclass
class SearchResult:
    trials: list[Trial]
    splits: Splits
    usable: BoolArray  # per bar position
    folds: list[tuple[IntArray, IntArray]]  # usable (train, test) bar positions per fold
    feature_names: list[str]
    index: pd.Index  # the bars' index (X.index)
    seconds: float

    @property
    def best(self) -> Trial:
        return max(self.trials, key=lambda t: (_finite(t.score), -t.number))

    @property
    def oos_rows(self) -> IntArray:
        """Bar positions of the development OOS rows, in order (the trials' `oos_proba`)."""
        return np.concatenate([te for _, te in self.folds])

    @property
    def dev_rows(self) -> IntArray:
        rows = np.arange(*self.splits.dev, dtype=np.int64)
        return rows[self.usable[rows]]

    @property
    def holdout_rows(self) -> IntArray:
        rows = np.arange(*self.splits.holdout, dtype=np.int64)
        return rows[self.usable[rows]]

    @property
    def dev_oos_index(self) -> pd.Index:
        return self.index[self.oos_rows]

    @property
    def holdout_index(self) -> pd.Index:
        return self.index[self.holdout_rows]


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _finite(x: float) -> float:
    return x if math.isfinite(x) else -math.inf


def usable_rows(X: pd.DataFrame, y: pd.Series, horizon: int) -> BoolArray:
    """Rows with a known label, finite features and the baselines' inputs."""
    values = X.to_numpy(dtype=np.float64)
    ok: BoolArray = np.isfinite(values).all(axis=1) & np.isfinite(y.to_numpy(dtype=np.float64))
    return ok & baseline_usable(len(X), horizon)


def walk_forward_fit(
    name: ModelName,
    params: dict[str, Any],
    seed: int,
    values: FloatArray,
    labels: FloatArray,
    folds: list[tuple[IntArray, IntArray]],
) -> tuple[list[dict[str, float | None]], FloatArray]:
    """Fit model `name` on each fold's training rows; its test metrics and OOS probabilities."""
    scores, probas = [], []
    for rows, te in folds:
        tr = M.train_rows(name, rows)
        ytr = labels[tr]
        if len(np.unique(ytr)) < 2:
            p = np.full(len(te), float(np.mean(ytr)))
        else:
            model = M.fit(M.build(name, params, seed, len(tr)), values[tr], ytr)
            p = M.predict_proba(model, values[te])
        scores.append(classification_metrics(labels[te], p))
        probas.append(p)
    return scores, np.concatenate(probas)


def run_search(
    X: pd.DataFrame,
    y: pd.Series,
    plan: ResearchPlan,
    *,
    progress: Progress | None = None,
) -> SearchResult:
    """Every trial of the plan's budget on the purged walk-forward folds (module docstring)."""
    if len(X) != len(y) or not X.index.equals(y.index):
        raise ValueError("features and labels must share the bars' index")
    if X.shape[1] == 0:
        raise ValueError("no features to train on")
    started = time.perf_counter()
    splits = plan_splits(len(X), plan)
    usable = usable_rows(X, y, plan.target.horizon_bars)
    folds = fold_rows(splits, usable)
    for k, (tr, te) in enumerate(folds):
        if len(tr) < 2 or len(te) < 1:
            raise ValueError(
                f"fold {k + 1} has too few usable rows to train and test ({int(usable.sum())} of "
                f"{len(X)} rows have a label and every feature)"
            )
    values = np.ascontiguousarray(X.to_numpy(dtype=np.float64))
    labels = y.to_numpy(dtype=np.float64)
    models: list[ModelName] = list(dict.fromkeys(plan.models))
    per_model = {m: len(range(j, plan.trials, len(models))) for j, m in enumerate(models)}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    studies = {
        m: optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.TPESampler(
                seed=plan.seed + j, n_startup_trials=max(2, min(10, per_model[m] // 2))
            ),
        )
        for j, m in enumerate(models)
    }
    trials: list[Trial] = []
    with M.one_blas_thread():
        for k in range(plan.trials):
            name = models[k % len(models)]
            ot = studies[name].ask()
            params = M.suggest(name, ot, plan.search_space.get(name))
            t0 = time.perf_counter()
            scores, proba = walk_forward_fit(name, params, plan.seed, values, labels, folds)
            aucs = [s["roc_auc"] if s["roc_auc"] is not None else 0.5 for s in scores]
            score = float(np.mean(aucs))
            studies[name].tell(ot, score)
            trials.append(Trial(k, name, params, scores, score, time.perf_counter() - t0, proba))
            if progress:
                progress(f"trial {k + 1}/{plan.trials}: {name} AUC {score:.3f}", k + 1, plan.trials)
    return SearchResult(
        trials,
        splits,
        usable,
        folds,
        [str(c) for c in X.columns],
        X.index,
        time.perf_counter() - started,
    )
