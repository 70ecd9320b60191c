"""Labels and the purged, embargoed walk-forward splits: no training label can reach a test
or holdout bar, whatever the sizes (property test)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omc.lab.evaluation.labels import make_labels
from omc.lab.evaluation.splits import plan_splits, walk_forward_splits
from omc.lab.plan import Evaluation, ResearchPlan, Target


def _bars(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    idx = pd.date_range("2025-01-01", periods=n, freq="5min", tz="UTC")
    return pd.DataFrame({"open": close, "high": close, "low": close, "close": close,
                         "volume": 1.0}, index=idx)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(50, 20_000),
    folds=st.integers(1, 12),
    horizon=st.integers(1, 60),
    extra=st.integers(0, 60),
    frac=st.floats(0.05, 0.5),
    scheme=st.sampled_from(["expanding", "rolling"]),
)
def test_no_training_label_reaches_a_test_or_holdout_bar(
    n: int, folds: int, horizon: int, extra: int, frac: float, scheme: str
) -> None:
    embargo = horizon + extra  # the plan's embargo is at least the horizon
    try:
        sp = walk_forward_splits(
            n, folds=folds, horizon=horizon, embargo=embargo, scheme=scheme,  # type: ignore[arg-type]
            holdout_fraction=frac,
        )  # fmt: skip
    except ValueError:
        return  # too few bars for this layout: refused, never a leaky split
    h0 = sp.holdout[0]
    assert sp.holdout[1] == n and h0 < n
    assert len(sp.folds) == folds
    oos = []
    for f in sp.folds:
        train, test = f.train_rows(), f.test_rows()
        assert len(train) >= 10 and len(test) >= 1
        # the label of row i reads bars i..i+h; a test row's label reads t..t+h and its
        # features bars up to t: the last training label ends `embargo` bars before the test
        assert train.max() + horizon + embargo < test.min()
        assert not set(train.tolist()) & set(test.tolist())
        label_bars = set(range(train.min(), train.max() + horizon + 1))
        assert not label_bars & set(range(test.min(), test.max() + horizon + 1))
        # nothing from development (training or test labels) reaches the holdout
        assert test.max() + horizon + embargo < h0
        assert train.min() >= sp.dev[0] and test.max() < sp.dev[1]
        oos.extend(test.tolist())
    # the test blocks are back to back and in order
    assert oos == list(range(*sp.oos))
    assert sp.dev[1] + sp.gap == h0


def test_rolling_trains_on_one_block_expanding_on_all_past() -> None:
    ex = walk_forward_splits(1000, folds=4, horizon=2, embargo=3, holdout_fraction=0.2)
    ro = walk_forward_splits(1000, folds=4, horizon=2, embargo=3, scheme="rolling",
                             holdout_fraction=0.2)  # fmt: skip
    assert [f.train[0] for f in ex.folds] == [0, 0, 0, 0]
    block = ex.folds[0].test[0]
    assert all(f.train[1] - f.train[0] == block for f in ro.folds[1:])
    assert [f.test for f in ex.folds] == [f.test for f in ro.folds]
    assert ex.holdout == (800, 1000) and ex.dev == (0, 795)


def test_plan_embargo_is_at_least_the_horizon() -> None:
    plan = ResearchPlan(goal="g", symbols=["BTC/USDT"], target=Target(horizon_bars=12),
                        evaluation=Evaluation(embargo_bars=3))  # fmt: skip
    sp = plan_splits(10_000, plan)
    assert sp.embargo == 12 and sp.gap == 24


def test_too_few_bars_is_refused() -> None:
    with pytest.raises(ValueError, match="too few"):
        walk_forward_splits(100, folds=5, horizon=10, embargo=10)


@pytest.mark.parametrize("kind", ["direction", "forward_return", "volatility"])
def test_labels_read_only_bars_up_to_the_horizon(kind: str) -> None:
    h, cut = 3, 700
    bars = _bars(1000)
    target = Target(kind=kind, horizon_bars=h)  # type: ignore[arg-type]
    lab = make_labels(target, bars)
    assert list(lab.columns) == ["y", "fwd_return", "next_return"]
    assert lab.index.equals(bars.index)
    assert lab["y"].iloc[-h:].isna().all() and lab["fwd_return"].iloc[-h:].isna().all()
    assert set(lab["y"].dropna().unique()) <= {0.0, 1.0}
    changed = bars.copy()
    changed.iloc[cut:, :4] *= 1.5  # a different future from bar `cut` on
    lab2 = make_labels(target, changed)
    # a label spanning i..i+h with i + h < cut cannot see the change
    pd.testing.assert_series_equal(lab["y"].iloc[: cut - h], lab2["y"].iloc[: cut - h])


def test_direction_label_and_returns() -> None:
    bars = _bars(50)
    lab = make_labels(Target(horizon_bars=2, threshold=0.001), bars)
    c = bars["close"].to_numpy()
    fwd = np.log(c[2:] / c[:-2])
    np.testing.assert_allclose(lab["fwd_return"].to_numpy()[:-2], fwd)
    np.testing.assert_array_equal(lab["y"].to_numpy()[:-2], (fwd > 0.001).astype(float))
    np.testing.assert_allclose(lab["next_return"].to_numpy()[:-1], c[1:] / c[:-1] - 1)
