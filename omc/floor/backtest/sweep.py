"""Parameter sweeps: every combination of a grid, on all cores, ranked.

Each combination is evaluated independently (fast path when the strategy has `signals`
and fills are not capped by `volume_share`, the event-driven engine otherwise) and results
are ordered by (rank metric, grid order), so the table is identical whatever the number of
worker processes.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing as mp
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from decimal import Decimal
from typing import Any

import numpy as np

from omc.floor.backtest.fast import fast_metrics, run_fast
from omc.floor.backtest.metrics import performance
from omc.floor.data import Bars, FloatArray
from omc.floor.fills import FeeModel, SlippageModel
from omc.floor.strategies import make_strategy, parse_value
from omc.floor.strategy import Strategy

Row = dict[str, Any]

# metrics a sweep can rank by (both engines report them); the first three rank lower-first
LOWER_BETTER = ("volatility_ann", "max_drawdown_duration_bars", "fees_paid")
RANK_METRICS = (
    *LOWER_BETTER,
    "sharpe",
    "sortino",
    "total_return",
    "cagr",
    "calmar",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "avg_trade",
    "exposure",
    "turnover",
    "final_equity",
    "trades",
)


def check_rank_by(rank_by: str) -> None:
    """An unknown ranking metric is an error, not a silent rank by grid order."""
    if rank_by not in RANK_METRICS:
        raise ValueError(f"cannot rank by {rank_by!r}; known: {', '.join(sorted(RANK_METRICS))}")


def parse_grid(spec: str, default: Any = 0) -> tuple[str, list[Any]]:
    """`fast=5:50:5` (inclusive start:stop:step) or `fast=5,10,20` -> ("fast", [...])."""
    if "=" not in spec:
        raise ValueError(f"grid {spec!r}: expected name=start:stop:step or name=a,b,c")
    name, _, body = spec.partition("=")
    name = name.strip()
    if ":" in body:
        parts = body.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"grid {spec!r}: expected start:stop[:step]")
        try:
            lo, hi = float(parts[0]), float(parts[1])
            step = float(parts[2]) if len(parts) == 3 else 1.0
        except ValueError:
            raise ValueError(f"grid {spec!r}: start, stop and step must be numbers") from None
        if not all(math.isfinite(v) for v in (lo, hi, step)):
            raise ValueError(f"grid {spec!r}: start, stop and step must be finite")
        if step <= 0:
            raise ValueError(f"grid {spec!r}: step must be positive")
        count = math.floor((hi - lo) / step + 1e-9) + 1
        values: list[Any] = [lo + k * step for k in range(max(count, 0))]
        if all(float(v).is_integer() for v in values) and all(float(p).is_integer() for p in parts):
            values = [int(v) for v in values]
    else:
        values = [parse_value(v.strip(), default) for v in body.split(",") if v.strip()]
    if not values:
        raise ValueError(f"grid {spec!r} is empty")
    return name, values


def combinations(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*grid.values())]


def evaluate(
    strategy: Strategy,
    bars: Bars,
    *,
    cash: float,
    fee_bps: float,
    slippage_bps: float,
    start: int = 0,
    volume_share: float | None = None,
    close_out: bool = False,
) -> tuple[dict[str, Any], FloatArray]:
    """Metrics and equity curve of one run: fast path if possible, else event-driven (always
    when `volume_share` caps fills: the fast path cannot model partial fills).

    `close_out=True` sells a position still open after the last bar at that bar's close,
    paying the taker fee and slippage (the last equity point and the metrics include it)."""
    if volume_share is None and type(strategy).signals is not Strategy.signals:
        res = run_fast(
            strategy, bars, cash=cash, fee_bps=fee_bps, slippage_bps=slippage_bps, start=start
        )
        metrics, equity = fast_metrics(res, cash, bars.bar_seconds), res.equity
        left_cash, position = res.cash, res.position
    else:
        from omc.floor.backtest.engine import run_backtest

        full = run_backtest(
            strategy,
            bars,
            cash=Decimal(str(cash)),
            fees=FeeModel.flat(Decimal(str(fee_bps))),
            slippage=SlippageModel(
                Decimal(str(slippage_bps)),
                None if volume_share is None else Decimal(str(volume_share)),
            ),
            start=start,
        )
        metrics, equity = full.metrics, full.equity
        left_cash, position = float(full.cash), float(full.positions.get(bars.symbol, 0))
    if close_out and position:
        if position < 0:
            raise ValueError("close_out is for long-only runs")
        price = float(bars.close[-1]) * (1 - slippage_bps / 1e4)
        fee = position * price * fee_bps / 1e4
        final = left_cash + position * price - fee
        equity = equity.copy()
        equity[-1] = final
        metrics = {
            **metrics,
            **performance(equity, cash, bars.bar_seconds),
            "trades": int(metrics.get("trades") or 0) + 1,
            "fees_paid": float(metrics.get("fees_paid") or 0.0) + fee,
            "final_equity": final,
        }
        if "final_equity_exact" in metrics:
            metrics["final_equity_exact"] = repr(final)
    return metrics, equity


_JOB: dict[str, Any] = {}


def _init_worker(job: dict[str, Any]) -> None:
    _JOB.clear()
    _JOB.update(job)


def _eval_chunk(chunk: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, Row | None]]:
    job = _JOB
    out: list[tuple[int, Row | None]] = []
    for idx, params in chunk:
        try:
            strategy = make_strategy(job["name"], {**job["base"], **params})
        except ValueError:
            out.append((idx, None))  # e.g. fast >= slow: not a valid combination
            continue
        metrics, _ = evaluate(
            strategy,
            job["bars"],
            cash=job["cash"],
            fee_bps=job["fee_bps"],
            slippage_bps=job["slippage_bps"],
            start=job["start"],
            volume_share=job["volume_share"],
        )
        out.append((idx, {**params, **metrics}))
    return out


def _sort_key(rank_by: str) -> Callable[[tuple[int, Row]], tuple[int, float, int]]:
    check_rank_by(rank_by)
    lower_better = rank_by in LOWER_BETTER

    def key(item: tuple[int, Row]) -> tuple[int, float, int]:
        idx, row = item
        v = row.get(rank_by)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return (1, 0.0, idx)
        return (0, float(v) if lower_better else -float(v), idx)

    return key


def sweep_job(
    name: str,
    bars: Bars,
    *,
    base_params: Mapping[str, Any] | None = None,
    cash: float = 10_000.0,
    fee_bps: float = 10.0,
    slippage_bps: float = 0.0,
    volume_share: float | None = None,
    start: int = 0,
) -> dict[str, Any]:
    """What every combination of a sweep shares (the strategy, bars and costs)."""
    return {
        "name": name,
        "base": dict(base_params or {}),
        "bars": bars,
        "cash": float(cash),
        "fee_bps": float(fee_bps),
        "slippage_bps": float(slippage_bps),
        "volume_share": None if volume_share is None else float(volume_share),
        "start": int(start),
    }


def evaluate_part(
    job: dict[str, Any], chunk: list[tuple[int, dict[str, Any]]]
) -> list[tuple[int, Row | None]]:
    """(index, row or None when invalid) of each combination of `chunk` — the unit a sweep
    hands to a process here, or to a worker of the job queue (`omc.ops.queue.sweep`)."""
    _init_worker(job)
    return _eval_chunk(chunk)


def ranked(results: Mapping[int, Row | None], rank_by: str) -> list[Row]:
    """The valid rows, best first: by (rank metric, grid order), whoever computed them."""
    valid = [(i, r) for i, r in sorted(results.items()) if r is not None]
    valid.sort(key=_sort_key(rank_by))
    return [r for _, r in valid]


def run_sweep(
    name: str,
    bars: Bars,
    grid: Mapping[str, Sequence[Any]],
    *,
    base_params: Mapping[str, Any] | None = None,
    cash: float = 10_000.0,
    fee_bps: float = 10.0,
    slippage_bps: float = 0.0,
    volume_share: float | None = None,
    start: int = 0,
    workers: int | None = None,
    rank_by: str = "sharpe",
    progress: Callable[[int], None] | None = None,
) -> list[Row]:
    """Evaluate every grid combination; rows (params + metrics) best first. Invalid
    combinations (rejected by the strategy's validation) are dropped."""
    combos = list(enumerate(combinations(grid)))
    job = sweep_job(
        name,
        bars,
        base_params=base_params,
        cash=cash,
        fee_bps=fee_bps,
        slippage_bps=slippage_bps,
        volume_share=volume_share,
        start=start,
    )
    check_rank_by(rank_by)
    workers = workers or os.cpu_count() or 1
    results: dict[int, Row | None] = {}
    if workers <= 1 or len(combos) < 4:
        _init_worker(job)
        for item in combos:
            for idx, row in _eval_chunk([item]):
                results[idx] = row
            if progress:
                progress(1)
    else:
        size = max(1, math.ceil(len(combos) / (workers * 4)))
        chunks = [combos[k : k + size] for k in range(0, len(combos), size)]
        # warm the compiled kernels before forking so workers inherit them
        _init_worker(job)
        _eval_chunk(chunks[0][:1])
        methods = mp.get_all_start_methods()
        ctx = mp.get_context("fork" if "fork" in methods else "spawn")
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(job,)
        ) as pool:
            futures = {pool.submit(_eval_chunk, c): len(c) for c in chunks}
            for fut in as_completed(futures):
                for idx, row in fut.result():
                    results[idx] = row
                if progress:
                    progress(futures[fut])
    return ranked(results, rank_by)


def equity_returns(equity: FloatArray, initial: float) -> FloatArray:
    eq = np.concatenate(([initial], equity))
    return np.asarray(eq[1:] / eq[:-1] - 1.0, dtype=np.float64)
