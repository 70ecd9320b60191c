"""Selection-aware statistics of strategy returns (Bailey & López de Prado).

* `sharpe` — mean / std (ddof 1) of per-period returns, × √periods when annualised.
* `probabilistic_sharpe` (PSR) — P(true Sharpe > a benchmark), from the sample Sharpe, its
  length, skewness and (non-excess) kurtosis: Φ((SR − SR*)·√(n − 1) / √(1 − γ₃·SR +
  (γ₄ − 1)/4·SR²)). Per-period units throughout.
* `expected_max_sharpe` — the expected maximum Sharpe of N unskilled trials whose Sharpe
  ratios have variance V: √V·((1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e))), γ the
  Euler–Mascheroni constant (0 for one trial).
* `deflated_sharpe` — PSR against that expected maximum: the probability that the selected
  strategy's Sharpe beats what the best of N lucky trials would show. More trials raise the
  bar. Its `deflated_sharpe` value is the per-period Sharpe in excess of the bar.
* `pbo` — the probability of backtest overfitting by combinatorially symmetric
  cross-validation: the T×N matrix of per-period returns (rows = time, columns = trials) is
  cut into S blocks; for every way of choosing S/2 blocks as in-sample, the in-sample best
  trial's out-of-sample rank ω gives a logit log(ω / (1 − ω)); PBO = share of logits < 0.
  (`purgedcv` takes the transposed N×T matrix.) Block sums make every combination O(N).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations, pairwise
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

FloatArray = npt.NDArray[np.float64]
EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


def sharpe(returns: npt.ArrayLike, periods_per_year: float = 1.0) -> float:
    """Sharpe ratio of per-period returns (risk-free 0); NaN when undefined."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2:
        return math.nan
    sd = float(np.std(r, ddof=1))
    if not sd > 0 or float(np.ptp(r)) == 0.0:
        return math.nan
    return float(np.mean(r)) / sd * math.sqrt(periods_per_year)


def _moments(r: FloatArray) -> tuple[float, float, float]:
    sr = sharpe(r)
    skew = float(sps.skew(r, bias=False))
    kurt = float(sps.kurtosis(r, fisher=False, bias=False))
    return sr, skew, kurt


def probabilistic_sharpe(returns: npt.ArrayLike, benchmark: float = 0.0) -> float:
    """P(true per-period Sharpe > `benchmark`); NaN when the Sharpe is undefined."""
    r = np.asarray(returns, dtype=np.float64)
    sr, skew, kurt = _moments(r)
    if not math.isfinite(sr) or not (math.isfinite(skew) and math.isfinite(kurt)):
        return math.nan
    denom = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
    if denom <= 0:
        return math.nan
    z = (sr - benchmark) * math.sqrt(r.size - 1) / math.sqrt(denom)
    return _N.cdf(z)


def expected_max_sharpe(n_trials: int, var_sharpe: float, mean_sharpe: float = 0.0) -> float:
    """Expected maximum of `n_trials` Sharpe ratios drawn with no skill (mean `mean_sharpe`,
    variance `var_sharpe`, in the same per-period units)."""
    if n_trials < 1:
        raise ValueError("n_trials must be >= 1")
    if var_sharpe < 0:
        raise ValueError("var_sharpe must be >= 0")
    if n_trials == 1:
        return mean_sharpe
    z = (1 - EULER_GAMMA) * _N.inv_cdf(1 - 1 / n_trials) + EULER_GAMMA * _N.inv_cdf(
        1 - 1 / (n_trials * math.e)
    )
    return mean_sharpe + math.sqrt(var_sharpe) * z


@dataclass(frozen=True)
class Deflated:
    sharpe: float  # the observed per-period Sharpe
    benchmark: float  # the expected maximum Sharpe of the trials under no skill
    deflated_sharpe: float  # sharpe - benchmark (per period)
    probability: float  # PSR against the benchmark
    n_trials: int


def deflated_sharpe(returns: npt.ArrayLike, n_trials: int, var_sharpe: float) -> Deflated:
    """The deflated Sharpe ratio of the selected strategy's returns after `n_trials` trials
    whose per-period Sharpe ratios had variance `var_sharpe`."""
    bar = expected_max_sharpe(n_trials, var_sharpe)
    sr = sharpe(returns)
    return Deflated(sr, bar, sr - bar, probabilistic_sharpe(returns, bar), int(n_trials))


def trial_sharpe_variance(matrix: npt.ArrayLike) -> float:
    """Variance (ddof 1) of the per-period Sharpe ratios of the columns of a T×N return
    matrix; columns with an undefined Sharpe (e.g. never in the market) count as 0."""
    m = np.asarray(matrix, dtype=np.float64)
    srs = np.array([sharpe(m[:, j]) for j in range(m.shape[1])])
    srs = np.where(np.isfinite(srs), srs, 0.0)
    return float(np.var(srs, ddof=1)) if srs.size > 1 else 0.0


@dataclass(frozen=True)
class PBO:
    pbo: float
    logits: FloatArray
    n_combos: int
    n_splits: int


def _block_sharpes(s: FloatArray, s2: FloatArray, n: FloatArray) -> FloatArray:
    """Sharpe (ddof 1) per row of block-sum aggregates (combos × trials); 0 when undefined."""
    mean = s / n
    var = (s2 - s * s / n) / (n - 1)
    scale = np.maximum(np.abs(mean), 1e-300)
    ok = var > (1e-12 * scale) ** 2
    out = np.zeros_like(mean)
    np.divide(mean, np.sqrt(np.where(ok, var, 1.0)), out=out, where=ok)
    return out


def pbo(matrix: npt.ArrayLike, n_splits: int = 16) -> PBO:
    """Probability of backtest overfitting of a T×N (time × trials) return matrix by CSCV
    with `n_splits` (even) contiguous blocks; the selection metric is the Sharpe ratio."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] < 2:
        raise ValueError("pbo needs a T×N matrix with at least two trials (columns)")
    if n_splits < 2 or n_splits % 2:
        raise ValueError("n_splits must be even and >= 2")
    t, n_cfg = m.shape
    if t < 2 * n_splits:
        raise ValueError(f"{t} periods are too few for {n_splits} CSCV blocks")
    edges = [(t // n_splits) * k + min(k, t % n_splits) for k in range(n_splits + 1)]
    sums = np.array([m[a:b].sum(axis=0) for a, b in pairwise(edges)])
    sq = np.array([(m[a:b] ** 2).sum(axis=0) for a, b in pairwise(edges)])
    counts = np.diff(np.array(edges, dtype=np.float64))
    combos = list(combinations(range(n_splits), n_splits // 2))
    sel = np.zeros((len(combos), n_splits))
    for row, c in enumerate(combos):
        sel[row, list(c)] = 1.0
    # in-sample = the chosen half (purgedcv chooses the out-of-sample half: same set of splits)
    is_s, is_q, is_n = sel @ sums, sel @ sq, (sel @ counts)[:, None]
    oos_s, oos_q, oos_n = (1 - sel) @ sums, (1 - sel) @ sq, ((1 - sel) @ counts)[:, None]
    is_perf = _block_sharpes(is_s, is_q, is_n)
    oos_perf = _block_sharpes(oos_s, oos_q, oos_n)
    best = np.argmax(is_perf, axis=1)
    ranks = sps.rankdata(oos_perf, axis=1)
    omega = ranks[np.arange(len(combos)), best] / (n_cfg + 1)
    logits = np.log(omega / (1 - omega))
    return PBO(float(np.mean(logits < 0)), logits, len(combos), n_splits)


def pbo_splits(periods: int, wanted: int = 16, min_block: int = 20) -> int | None:
    """The largest even block count <= `wanted` with blocks of at least `min_block` periods
    (None when even two blocks are too short)."""
    s = min(wanted, periods // min_block)
    s -= s % 2
    return s if s >= 2 else None
