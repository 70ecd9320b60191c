"""The candidate models and their Optuna search spaces.

`logistic` (standardised logistic regression), `random_forest` and `lightgbm`, each built by
`build(name, params, seed, n_rows)` from the parameters a search space samples (`suggest(name,
trial)`). Everything is seeded and single- or two-threaded so the same plan gives the same
numbers. The spaces are bounded for the Lab's time budget (a default study: 20 trials x 5
folds on ~84,000 development rows in about 30 s on two cores): the tree models train on at
most TREE_TRAIN_ROWS rows of a fold, an even stride through its training rows (`train_rows`:
neighbouring bars' features overlap heavily — lagged returns, rolling windows — so adjacent
rows add little information, and a stride keeps every part of the history); the random
forest grows at most 40 trees of depth <= 6 on bootstrap samples of at most RF_MAX_SAMPLES
rows (2 threads); LightGBM grows at most 200 trees of <= 31 leaves (63 histogram bins) on one
thread, deterministic (on a shared two-core machine a second OpenMP thread made it slower).
The logistic regression trains on every row (it costs a fraction of a second), with the BLAS
on one thread (`one_blas_thread`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import optuna
from lightgbm import LGBMClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from omc.lab.plan import SEARCH_BOUNDS, ModelName

RF_MAX_SAMPLES = 4_000
TREE_TRAIN_ROWS = 25_000
THREADS = 2
# many more rows than features: Newton steps on the Cholesky factor converge in a few
# iterations (lbfgs needed 16 and 5x the time on the benchmark features)
LOGISTIC_SOLVER = "newton-cholesky"


def one_blas_thread() -> threadpool_limits:
    """A context with the BLAS thread pools at one thread: on a shared two-core machine a
    multi-threaded BLAS made the logistic fits 5-8x slower (idle cores spin, busy ones wait);
    the tree models' own threads (joblib, LightGBM's num_threads) are set explicitly."""
    return threadpool_limits(limits=1, user_api="blas")


def suggest(
    name: ModelName, trial: optuna.Trial, space: dict[str, tuple[float, float]] | None = None
) -> dict[str, Any]:
    """Sample one parameter set of model `name` from its SEARCH_BOUNDS, each range narrowed to
    `space` (a plan's `search_space`) where it names the parameter."""
    bounds = SEARCH_BOUNDS.get(name)
    if bounds is None:
        raise ValueError(f"unknown model {name!r}")
    narrow = space or {}
    params: dict[str, Any] = {}
    for param, (kind, low, high, log, step) in bounds.items():
        low, high = narrow.get(param, (low, high))
        if kind == "int":
            lo, hi = int(low), int(high)
            if step:  # keep the grid of the full space
                lo = int(bounds[param][1]) + -(-(lo - int(bounds[param][1])) // step) * step
                hi = max(lo, hi - (hi - lo) % step)
                params[param] = trial.suggest_int(param, lo, hi, step=step)
            else:
                params[param] = trial.suggest_int(param, lo, hi, log=log)
        else:
            params[param] = trial.suggest_float(param, float(low), float(high), log=log)
    return params


def build(name: ModelName, params: dict[str, Any], seed: int, n_rows: int) -> Any:
    """An unfitted scikit-learn-compatible classifier (fit / predict_proba)."""
    if name == "logistic":
        return make_pipeline(
            StandardScaler(),
            LogisticRegression(
                C=float(params["C"]), solver=LOGISTIC_SOLVER, max_iter=100, random_state=seed
            ),
        )
    if name == "random_forest":
        return RandomForestClassifier(
            n_estimators=int(params["n_estimators"]),
            max_depth=int(params["max_depth"]),
            min_samples_leaf=int(params["min_samples_leaf"]),
            max_features=float(params["max_features"]),
            max_samples=min(RF_MAX_SAMPLES, n_rows) if n_rows > 1 else None,
            bootstrap=True,
            n_jobs=THREADS,
            random_state=seed,
        )
    if name == "lightgbm":
        return LGBMClassifier(
            **params,
            subsample_freq=1,
            max_bin=63,
            random_state=seed,
            deterministic=True,
            force_row_wise=True,
            num_threads=1,
            verbose=-1,
        )
    raise ValueError(f"unknown model {name!r}")


def train_rows(name: ModelName, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The training rows model `name` fits on: all for the logistic regression, an even
    stride of at most TREE_TRAIN_ROWS for the trees (module docstring)."""
    if name == "logistic" or len(rows) <= TREE_TRAIN_ROWS:
        return rows
    pick = np.linspace(0, len(rows) - 1, TREE_TRAIN_ROWS).round().astype(np.int64)
    return rows[np.unique(pick)]


def fit(model: Any, X: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. lbfgs convergence notes, feature-name notes
        model.fit(X, y.astype(np.int64))
    if isinstance(model, RandomForestClassifier):
        # trees are built in parallel (each from its own seed: deterministic), but a threaded
        # predict_proba sums the trees in whatever order they finish: predict on one thread
        model.set_params(n_jobs=1)
    return model


def predict_proba(model: Any, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(model.predict_proba(X)[:, 1], dtype=np.float64)


def feature_importance(model: Any, names: list[str]) -> dict[str, float]:
    """Importances normalised to sum 1: |standardised coefficient| for the logistic
    regression, impurity/split-gain importances for the trees."""
    est = model.steps[-1][1] if isinstance(model, Pipeline) else model
    if hasattr(est, "coef_"):
        raw = np.abs(np.asarray(est.coef_, dtype=np.float64)).ravel()
    elif hasattr(est, "booster_"):
        raw = np.asarray(est.booster_.feature_importance("gain"), dtype=np.float64)
    else:
        raw = np.asarray(getattr(est, "feature_importances_", np.zeros(len(names))), float)
    total = float(raw.sum())
    vals = raw / total if total > 0 else raw
    return {n: float(v) for n, v in zip(names, vals, strict=True)}
