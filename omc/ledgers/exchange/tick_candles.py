"""Candles built from stored ticks, for coins that have no OHLCV source.

This module owns deriving OHLC candles from `ticks.last`: for every (source, coin, market)
series and every timeframe (default `Settings.tick_candle_timeframes`, 1m/5m/1h), each
fully closed bucket [t, t + timeframe) that holds ticks becomes a `candles` row with
`exchange` = the tick source, `symbol` = `COIN/MARKET` in upper case, `source` = `ticks`,
open/close = first/last tick's `last`, high/low = max/min, and no volume (tick volumes are
rolling 24 h figures, not per-candle volumes).

Only closed buckets are built (a bucket whose end is after `now` waits for the next run),
and each run starts after the newest candle already built for the series, so re-running
inserts nothing and a later run extends the series. `build_tick_candles` is what the
scheduler calls; `omc data build-candles` is the command.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Engine, Table, func, select

from omc.core.config import get_settings
from omc.core.time import ensure_utc, floor_time, timeframe_seconds, utcnow
from omc.core.upsert import upsert
from omc.ledgers.models import Candle, Tick

log = logging.getLogger(__name__)

SOURCE = "ticks"


@dataclass
class TickCandleReport:
    """Candles inserted per timeframe, and how many tick series were looked at."""

    series: int = 0
    ticks_read: int = 0
    inserted: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.inserted.values())


def tick_symbol(coin: str, market: str) -> str:
    return f"{coin}/{market}".upper()


class _Buckets:
    """Streams time-ordered (ts, price) ticks into OHLC rows for buckets in [start, end)."""

    def __init__(self, step_s: int, start: datetime, end: datetime, base: dict[str, Any]):
        self.step_s, self.start, self.end, self.base = step_s, start, end, base
        self.rows: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None

    def add(self, ts: datetime, price: Decimal) -> None:
        if ts < self.start or ts >= self.end:
            return
        bucket = floor_time(ts, self.step_s)
        current = self.current
        if current is None or current["ts"] != bucket:
            current = {**self.base, "ts": bucket, "open": price, "high": price, "low": price}
            current["close"], current["volume"] = price, None
            self.rows.append(current)
            self.current = current
            return
        if price > current["high"]:
            current["high"] = price
        if price < current["low"]:
            current["low"] = price
        current["close"] = price


def build_tick_candles(
    engine: Engine,
    timeframes: Sequence[str] | None = None,
    *,
    now: datetime | None = None,
) -> TickCandleReport:
    """Build the closed candles not built yet from stored ticks; returns what was inserted."""
    timeframes = list(timeframes or get_settings().tick_candle_timeframes)
    steps = {tf: timeframe_seconds(tf) for tf in timeframes}  # ValueError on a bad timeframe
    now = ensure_utc(now) if now else utcnow()
    report = TickCandleReport(inserted=dict.fromkeys(timeframes, 0))
    ticks, candles = cast(Table, Tick.__table__), cast(Table, Candle.__table__)
    with engine.connect() as conn:
        series = conn.execute(select(ticks.c.source, ticks.c.coin, ticks.c.market).distinct()).all()
    report.series = len(series)
    for source, coin, market in series:
        symbol = tick_symbol(coin, market)
        starts: dict[str, datetime | None] = {}
        with engine.connect() as conn:
            for tf in timeframes:
                newest = conn.execute(
                    select(func.max(candles.c.ts)).where(
                        candles.c.exchange == source,
                        candles.c.symbol == symbol,
                        candles.c.timeframe == tf,
                        candles.c.source == SOURCE,
                    )
                ).scalar()
                starts[tf] = None if newest is None else newest + timedelta(seconds=steps[tf])
            known = [s for s in starts.values() if s is not None]
            lower = None if len(known) < len(timeframes) else min(known)
            query = (
                select(ticks.c.ts, ticks.c.last)
                .where(
                    ticks.c.source == source,
                    ticks.c.coin == coin,
                    ticks.c.market == market,
                    ticks.c.ts < now,
                )
                .order_by(ticks.c.ts)
            )
            if lower is not None:
                query = query.where(ticks.c.ts >= lower)
            base = {"exchange": source, "symbol": symbol, "source": SOURCE}
            builders: dict[str, _Buckets] = {}
            for ts, price in conn.execution_options(yield_per=10_000).execute(query):
                if price is None:
                    continue
                report.ticks_read += 1
                if not builders:  # first tick: buckets start here unless built before
                    for tf, step_s in steps.items():
                        start = starts[tf] or floor_time(ts, step_s)
                        end = floor_time(now, step_s)  # buckets before this have closed
                        builders[tf] = _Buckets(step_s, start, end, {**base, "timeframe": tf})
                for builder in builders.values():
                    builder.add(ts, price)
        for tf, builder in builders.items():
            if builder.rows:
                report.inserted[tf] += upsert(engine, candles, builder.rows).inserted
    log.info("tick candles: %s inserted from %d series", report.inserted, report.series)
    return report
