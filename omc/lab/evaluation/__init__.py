"""Honest evaluation of a Lab study: labels, purged walk-forward splits with a sealed holdout,
classification metrics and baselines, the OOS signal traded through the Floor's backtester,
deflated Sharpe / PBO statistics, and the verdict. `evaluate` (in `omc.lab.evaluation.study`)
puts them together."""

from omc.lab.evaluation.labels import make_labels
from omc.lab.evaluation.study import StudyEvaluation, evaluate

__all__ = ["StudyEvaluation", "evaluate", "make_labels"]
