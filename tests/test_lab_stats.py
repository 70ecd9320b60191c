"""Sharpe, PSR, expected maximum Sharpe, deflated Sharpe and PBO: checked against the
`purgedcv` reference implementation (dev-only; skipped without it), and the rule that more
trials raise the bar."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest

from omc.lab.evaluation import stats


def _returns(n: int = 3000, mu: float = 0.0004, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return mu + 0.01 * rng.standard_t(5, n) / math.sqrt(5 / 3)  # fat tails, skew from noise


def test_more_trials_raise_the_bar() -> None:
    r = _returns()
    var = 0.02**2
    probs = [stats.deflated_sharpe(r, n, var).probability for n in (1, 2, 10, 100, 1000, 10_000)]
    bars = [stats.expected_max_sharpe(n, var) for n in (1, 2, 10, 100, 1000, 10_000)]
    assert all(a > b for a, b in pairwise(probs)), probs
    assert all(a < b for a, b in pairwise(bars)), bars
    assert bars[0] == 0.0
    assert stats.deflated_sharpe(r, 1, var).probability == pytest.approx(
        stats.probabilistic_sharpe(r, 0.0)
    )


def test_sharpe_and_degenerate_inputs() -> None:
    r = np.array([0.01, 0.02, -0.01, 0.03])
    assert stats.sharpe(r) == pytest.approx(0.7319, abs=1e-4)
    assert stats.sharpe(r, 4.0) == pytest.approx(2 * stats.sharpe(r))
    assert math.isnan(stats.sharpe(np.zeros(10)))
    assert math.isnan(stats.probabilistic_sharpe(np.zeros(10)))
    with pytest.raises(ValueError):
        stats.pbo(np.zeros((100, 1)))


def test_pbo_finds_overfitting_in_noise_and_not_in_skill() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, (1600, 20))
    assert 0.2 < stats.pbo(noise, 16).pbo < 0.8  # selection is a coin flip
    skilled = noise.copy()
    skilled[:, 7] += 0.004  # one trial is truly better everywhere
    res = stats.pbo(skilled, 16)
    assert res.pbo < 0.05 and res.n_combos == 12870
    assert stats.pbo_splits(1600) == 16 and stats.pbo_splits(100) == 4
    assert stats.pbo_splits(30) is None


purgedcv = pytest.importorskip("purgedcv")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_against_purgedcv(seed: int) -> None:
    r = _returns(seed=seed)
    for bench in (0.0, 0.01, 0.03):
        assert stats.probabilistic_sharpe(r, bench) == pytest.approx(
            purgedcv.probabilistic_sharpe_ratio(r, bench), abs=1e-3
        )
    for n_trials, var in ((1, 0.0), (5, 1e-4), (50, 4e-4), (1000, 1e-3)):
        ours = stats.deflated_sharpe(r, n_trials, var)
        ref = purgedcv.deflated_sharpe_ratio_full(r, n_trials, var)
        assert ours.benchmark == pytest.approx(ref.sr_star, abs=1e-9)
        assert ours.probability == pytest.approx(ref.dsr, abs=1e-3)
        assert ours.sharpe == pytest.approx(ref.observed_sr, rel=1e-3)


@pytest.mark.parametrize("seed", [0, 1])
def test_pbo_against_purgedcv(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = rng.normal(0, 0.01, (1203, 12))  # time x trials, uneven blocks
    m[:, 3] += 0.0008
    m[:600, 5] += 0.002  # good only in the first half: the in-sample trap
    for splits in (4, 8, 10):
        ours = stats.pbo(m, splits)
        ref = purgedcv.probability_of_backtest_overfitting(m.T, n_splits=splits)  # N x T
        assert ours.pbo == pytest.approx(ref.pbo, abs=1e-12)
        assert ours.n_combos == ref.n_combos
        np.testing.assert_allclose(np.sort(ours.logits), np.sort(ref.logits), atol=1e-9)
