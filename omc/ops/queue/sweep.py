"""A parameter sweep over the workers: split the grid, one `omc.sweep_chunk` job per chunk,
gather, rank — the same rows in the same order as the single-process `run_sweep`.

Every chunk reads the candles from the database point-in-time at one `as_of` fixed by the
submitter, so all workers see exactly the bars the submitter saw. Rows travel as JSON and
are ranked by `omc.floor.backtest.sweep.ranked` (rank metric, then grid order), so who
computed a chunk, and when, changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine

from omc.core.time import iso_utc, parse_utc, utcnow
from omc.floor.backtest.sweep import Row, check_rank_by, combinations, evaluate_part, ranked
from omc.floor.backtest.sweep import sweep_job as make_job
from omc.floor.data import Bars


def _plain(value: Any) -> Any:
    """JSON-able: numpy scalars as Python numbers (NaN/inf stay floats)."""
    if hasattr(value, "item") and not isinstance(value, bool | int | float | str):
        return value.item()
    return value


@lru_cache(maxsize=8)
def _bars(engine: Engine, symbol: str, timeframe: str, exchange: str | None, as_of: str) -> Bars:
    from omc.floor.data import load_db

    return load_db(engine, symbol, timeframe, exchange, parse_utc(as_of))


def evaluate_chunk(engine: Engine, spec: dict[str, Any], chunk: list[list[Any]]) -> list[Any]:
    """[[index, row or None], …] of one chunk (run by a worker)."""
    source = spec["bars"]
    bars = _bars(engine, source["symbol"], source["timeframe"], source["exchange"], source["as_of"])
    job = make_job(
        spec["name"],
        bars,
        base_params=spec["base"],
        cash=spec["cash"],
        fee_bps=spec["fee_bps"],
        slippage_bps=spec["slippage_bps"],
        volume_share=spec["volume_share"],
        start=spec["start"],
    )
    out = evaluate_part(job, [(int(idx), dict(params)) for idx, params in chunk])
    return [
        [idx, None if row is None else {k: _plain(v) for k, v in row.items()}] for idx, row in out
    ]


def sweep_on_workers(
    name: str,
    symbol: str,
    timeframe: str,
    grid: Mapping[str, Sequence[Any]],
    *,
    exchange: str | None = None,
    base_params: Mapping[str, Any] | None = None,
    cash: float = 10_000.0,
    fee_bps: float = 10.0,
    slippage_bps: float = 0.0,
    volume_share: float | None = None,
    start: int = 0,
    rank_by: str = "sharpe",
    chunks: int = 8,
    timeout_s: float = 3600.0,
) -> list[Row]:
    """The sweep's rows, best first, computed by the workers (see the module doc)."""
    from celery import group

    from omc.ops.queue.tasks import sweep_chunk

    check_rank_by(rank_by)
    combos = [[i, params] for i, params in enumerate(combinations(grid))]
    spec = {
        "name": name,
        "base": dict(base_params or {}),
        "bars": {
            "symbol": symbol,
            "timeframe": timeframe,
            "exchange": exchange,
            "as_of": iso_utc(utcnow()),
        },
        "cash": float(cash),
        "fee_bps": float(fee_bps),
        "slippage_bps": float(slippage_bps),
        "volume_share": None if volume_share is None else float(volume_share),
        "start": int(start),
    }
    size = max(1, math.ceil(len(combos) / max(1, chunks)))
    parts = [combos[k : k + size] for k in range(0, len(combos), size)]
    result = group(sweep_chunk.s(spec=spec, chunk=part) for part in parts).apply_async()
    try:
        gathered = result.get(timeout=timeout_s, propagate=True)
    finally:
        result.forget()
    rows: dict[int, Row | None] = {}
    for part in gathered:
        for idx, row in part or []:
            rows[int(idx)] = row
    if len(rows) != len(combos):
        missing = len(combos) - len(rows)
        raise RuntimeError(f"sweep: {missing} combinations came back from no worker")
    return ranked(rows, rank_by)
