"""Training for the Lab: candidate models with their search spaces and the Optuna search over
the purged walk-forward folds (every trial recorded)."""

from omc.lab.training.search import SearchResult, Trial, run_search

__all__ = ["SearchResult", "Trial", "run_search"]
