"""Purged, embargoed walk-forward splits and the sealed holdout, over bar positions.

The last `holdout_fraction` of the bars is the sealed holdout, scored once after selection.
The development rows before it are cut into `folds + 1` equal consecutive blocks: block 0
only trains; fold k tests block k + 1 and trains on the bars before it — all of them
(`expanding`) or the last block's worth (`rolling`).

The label of row i spans bars i..i+h (h = the horizon). Between the last training row and the
first test row there is a gap of `h + embargo` bars: the purge (h) drops every training row
whose label reaches the test block, and the embargo (>= h, `Evaluation.embargo`) keeps that
many further bars between the last training label's end and the first test bar, so features
built from the bars around the cut do not tie a training row to a test row. The same gap
separates the development rows from the holdout: no development label (training or test)
ever reaches a holdout bar. Positions are bar positions (not usable-row positions), so rows
dropped for NaNs never shrink a gap.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from omc.lab.plan import ResearchPlan

IntArray = npt.NDArray[np.int64]
MIN_TRAIN_ROWS = 10


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: half-open [start, stop) bar positions."""

    number: int
    train: tuple[int, int]
    test: tuple[int, int]

    def train_rows(self) -> IntArray:
        return np.arange(*self.train, dtype=np.int64)

    def test_rows(self) -> IntArray:
        return np.arange(*self.test, dtype=np.int64)


@dataclass(frozen=True)
class Splits:
    n: int
    horizon: int
    embargo: int
    scheme: Literal["expanding", "rolling"]
    folds: tuple[Fold, ...]
    dev: tuple[int, int]  # every development row (the final refit trains on these)
    holdout: tuple[int, int]

    @property
    def gap(self) -> int:
        """Bars between the last training row and the first test row (purge + embargo)."""
        return self.horizon + self.embargo

    @property
    def oos(self) -> tuple[int, int]:
        """The out-of-sample development span: the test blocks, back to back."""
        return self.folds[0].test[0], self.folds[-1].test[1]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["folds"] = [asdict(f) for f in self.folds]
        out["gap"] = self.gap
        return out


def walk_forward_splits(
    n: int,
    *,
    folds: int,
    horizon: int,
    embargo: int,
    scheme: Literal["expanding", "rolling"] = "expanding",
    holdout_fraction: float = 0.2,
) -> Splits:
    """The folds and the holdout of `n` bars (see the module docstring)."""
    if folds < 1:
        raise ValueError("walk-forward needs at least one fold")
    if horizon < 1 or embargo < 0:
        raise ValueError("horizon must be >= 1 and embargo >= 0")
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError("holdout_fraction must be between 0 and 1")
    gap = horizon + embargo
    h0 = n - max(1, math.ceil(n * holdout_fraction))
    dev_end = h0 - gap
    block = dev_end // (folds + 1) if dev_end > 0 else 0
    if block - gap < MIN_TRAIN_ROWS:
        raise ValueError(
            f"{n} bars are too few for {folds} folds with a {gap}-bar purge/embargo gap and a "
            f"{holdout_fraction:.0%} holdout"
        )
    out = []
    for k in range(folds):
        te0 = (k + 1) * block
        te1 = (k + 2) * block if k < folds - 1 else dev_end
        tr1 = te0 - gap
        tr0 = 0 if scheme == "expanding" else max(0, tr1 - block)
        out.append(Fold(k, (tr0, tr1), (te0, te1)))
    return Splits(n, horizon, embargo, scheme, tuple(out), (0, dev_end), (h0, n))


def plan_splits(n: int, plan: ResearchPlan) -> Splits:
    """`walk_forward_splits` with the plan's scheme, folds, horizon, embargo and holdout."""
    h = plan.target.horizon_bars
    ev = plan.evaluation
    return walk_forward_splits(
        n,
        folds=ev.folds,
        horizon=h,
        embargo=ev.embargo(h),
        scheme=ev.scheme,
        holdout_fraction=ev.holdout_fraction,
    )
