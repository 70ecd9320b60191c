"""Ledger health: per collector (last success, freshness, error rate, quarantine, last error),
per table (row counts and time span), gaps in candle and tick series, and the data-quality
figures of `omc.ledgers.quality` (volume, duplicates, null rates, anomalies).

A collector's state: `never` (no finished run), `failing` (its latest finished run failed, or
none ever succeeded), `degraded` (its latest run was `partial`: stored, but something was
quarantined or a part failed), `stale` (no run at all for `STALE_FACTOR` intervals), `fresh`
(its latest run was `ok` and recent). Only `ok` runs count as successes (`last_success`); an
`interrupted` run (shutdown) changes nothing."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from omc.core.config import Settings
from omc.core.time import timeframe_seconds, utcnow
from omc.ledgers.collectors.registry import INTERVALS
from omc.ledgers.models import LEDGER_TABLES, Candle, CollectorRun, QuarantinedItem, Tick

STALE_FACTOR = 3  # a collector is stale after this many intervals without a success


def collector_health(
    engine: Engine, settings: Settings, now: datetime | None = None
) -> list[dict[str, Any]]:
    now = now or utcnow()
    runs = CollectorRun.__table__
    quarantine = QuarantinedItem.__table__
    since = now - timedelta(hours=24)
    with engine.connect() as conn:
        names = set(conn.execute(select(runs.c.collector).distinct()).scalars())
        names |= set(INTERVALS)
        out = []
        for name in sorted(names):
            last_success = conn.execute(
                select(func.max(runs.c.finished_at)).where(
                    runs.c.collector == name, runs.c.status == "ok"
                )
            ).scalar()
            # the latest *finished* run: one in progress (or cut short by a shutdown) must not
            # hide a failing state
            last = conn.execute(
                select(runs.c.status, runs.c.error, runs.c.finished_at)
                .where(runs.c.collector == name, runs.c.status.not_in(("running", "interrupted")))
                .order_by(runs.c.id.desc())
                .limit(1)
            ).first()
            counts = conn.execute(
                select(runs.c.status, func.count())
                .where(runs.c.collector == name, runs.c.started_at >= since)
                .group_by(runs.c.status)
            ).all()
            total = sum(n for _, n in counts)
            failed = sum(n for status, n in counts if status == "failed")
            quarantined = conn.execute(
                select(func.coalesce(func.sum(quarantine.c.occurrences), 0)).where(
                    quarantine.c.collector == name
                )
            ).scalar()
            # failed runs, and partial ones that name what went wrong (e.g. trades of a coin)
            last_error = conn.execute(
                select(runs.c.error, runs.c.finished_at)
                .where(runs.c.collector == name, runs.c.error.is_not(None))
                .order_by(runs.c.id.desc())
                .limit(1)
            ).first()
            interval = INTERVALS[name](settings) if name in INTERVALS else None
            age = (now - last_success).total_seconds() if last_success else None
            last_age = (now - last.finished_at).total_seconds() if last is not None else None
            if last is None:
                state = "never"
            elif last.status == "failed" or (last_success is None and last.status != "partial"):
                state = "failing"
            elif (
                interval is not None
                and last_age is not None
                and (last_age > STALE_FACTOR * interval)
            ):
                state = "stale"
            elif last.status == "partial":
                state = "degraded"
            else:
                state = "fresh"
            out.append(
                {
                    "collector": name,
                    "state": state,
                    "last_success": last_success,
                    "age_s": age,
                    "interval_s": interval or 0.0,
                    "last_status": last.status if last else None,
                    "runs_24h": total,
                    "failed_24h": failed,
                    "error_rate_24h": (failed / total) if total else 0.0,
                    "quarantined": int(quarantined or 0),
                    "last_error": last_error.error if last_error else None,
                    "last_error_at": last_error.finished_at if last_error else None,
                }
            )
    return out


def table_counts(engine: Engine) -> list[dict[str, Any]]:
    out = []
    with engine.connect() as conn:
        for ledger, tables in LEDGER_TABLES.items():
            for name, model in tables.items():
                table = model.__table__
                time_col = next(
                    (table.c[c] for c in ("ts", "published_at", "hour") if c in table.c), None
                )
                if time_col is None:
                    rows = conn.execute(select(func.count()).select_from(table)).scalar()
                    first = last = None
                else:
                    rows, first_raw, last_raw = conn.execute(
                        select(func.count(), func.min(time_col), func.max(time_col))
                    ).one()
                    first = (
                        time_col.type.process_result_value(first_raw, conn.dialect)
                        if first_raw
                        else None
                    )
                    last = (
                        time_col.type.process_result_value(last_raw, conn.dialect)
                        if last_raw
                        else None
                    )
                out.append(
                    {"ledger": ledger, "table": name, "rows": rows, "first": first, "last": last}
                )
    return out


def series_gaps(engine: Engine, settings: Settings) -> list[dict[str, Any]]:
    """Missing candles per (exchange, symbol, timeframe) and missing tick slots per source."""
    candles = Candle.__table__
    ticks = Tick.__table__
    out = []
    with engine.connect() as conn:
        groups = conn.execute(
            select(
                candles.c.exchange,
                candles.c.symbol,
                candles.c.timeframe,
                func.count(),
                func.min(candles.c.ts),
                func.max(candles.c.ts),
            ).group_by(candles.c.exchange, candles.c.symbol, candles.c.timeframe)
        ).all()
        for exchange, symbol, timeframe, count, first_raw, last_raw in groups:
            step = timeframe_seconds(timeframe)
            stamps = (
                [
                    ts
                    for ts in conn.execute(
                        select(candles.c.ts)
                        .where(
                            candles.c.exchange == exchange,
                            candles.c.symbol == symbol,
                            candles.c.timeframe == timeframe,
                        )
                        .order_by(candles.c.ts)
                    ).scalars()
                ]
                if _expected(first_raw, last_raw, step, candles.c.ts, conn) > count
                else []
            )
            gap = _largest_gap(stamps, step)
            if gap:
                out.append({"series": f"candles {exchange} {symbol} {timeframe}", **gap})
        tick_groups = conn.execute(
            select(
                ticks.c.source,
                func.count(ticks.c.ts.distinct()),
                func.min(ticks.c.ts),
                func.max(ticks.c.ts),
            ).group_by(ticks.c.source)
        ).all()
        for source, count, first_raw, last_raw in tick_groups:
            interval = INTERVALS[source](settings) if source in INTERVALS else None
            if not interval or _expected(first_raw, last_raw, interval, ticks.c.ts, conn) <= count:
                continue
            stamps = list(
                conn.execute(
                    select(ticks.c.ts)
                    .where(ticks.c.source == source)
                    .distinct()
                    .order_by(ticks.c.ts)
                ).scalars()
            )
            gap = _largest_gap(stamps, interval)
            if gap:
                out.append({"series": f"ticks {source}", **gap})
    return out


def _expected(first_raw: Any, last_raw: Any, step: float, column: Any, conn: Any) -> int:
    first = column.type.process_result_value(first_raw, conn.dialect)
    last = column.type.process_result_value(last_raw, conn.dialect)
    return int((last - first).total_seconds() // step) + 1


def _largest_gap(stamps: list[datetime], step: float) -> dict[str, Any] | None:
    missing = 0
    largest = timedelta(0)
    at = None
    delta = timedelta(seconds=step)
    for before, after in itertools.pairwise(stamps):
        gap = after - before
        if gap > delta:
            missing += int(gap / delta) - 1
            if gap > largest:
                largest, at = gap, before
    if not missing:
        return None
    return {"missing": missing, "largest": str(largest), "at": at}


def ledger_status(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Everything `omc status` shows, as plain data."""
    from omc.ledgers import quality

    return {
        "generated_at": utcnow(),
        "collectors": collector_health(engine, settings),
        "tables": table_counts(engine),
        "gaps": series_gaps(engine, settings),
        "quality": {
            "volume": quality.collector_volume(engine, settings),
            "null_rates": quality.null_rates(engine),
            "anomalies": quality.anomalies(engine),
        },
    }
