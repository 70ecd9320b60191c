"""Data quality of the ledgers: per collector volume against expectation and duplicate rate;
per table null rates of key fields; z-score anomalies in each numeric series.

`omc status` shows all of it next to collector health. Anomalies compare the newest value
(for prices: the newest log return) of each series with its trailing window; |z| above
`Z_LIMIT` is flagged.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Table, case, func, select

from omc.core.config import Settings
from omc.core.time import utcnow
from omc.ledgers.collectors.registry import INTERVALS
from omc.ledgers.models import (
    Candle,
    CatalystEvent,
    CollectorRun,
    NewsItem,
    OnchainMetric,
    ProtocolMetric,
    SentimentHourly,
    SocialPost,
    Tick,
)

Z_LIMIT = 4.0
WINDOW = 300  # trailing points per series
MIN_POINTS = 30  # fewer points: no verdict

# the fields a consumer relies on, per table (a null there is a data-quality problem)
KEY_FIELDS: dict[Any, tuple[str, ...]] = {
    Tick: ("bid", "ask", "last"),
    Candle: ("open", "high", "low", "close", "volume"),
    ProtocolMetric: ("value", "coins"),
    OnchainMetric: ("value",),
    NewsItem: ("url", "sentiment", "coins"),
    SocialPost: ("sentiment", "coins", "score"),
    CatalystEvent: ("coins", "impact", "url"),
}


def collector_volume(
    engine: Engine, settings: Settings, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Per collector over 24 h: runs against the runs its interval implies, items fetched,
    duplicate rate (items already stored / items fetched) and runs left unfinished."""
    now = now or utcnow()
    since = now - timedelta(hours=24)
    runs = CollectorRun.__table__
    out = []
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                runs.c.collector,
                func.count(),
                func.coalesce(func.sum(runs.c.fetched), 0),
                func.coalesce(func.sum(runs.c.duplicates), 0),
                func.coalesce(func.sum(runs.c.inserted + runs.c.updated), 0),
                func.min(runs.c.started_at),
                func.sum(case((runs.c.status == "running", 1), else_=0)),
            )
            .where(runs.c.started_at >= since)
            .group_by(runs.c.collector)
        ).all()
    for name, count, fetched, duplicates, written, first, running in rows:
        interval = INTERVALS[name](settings) if name in INTERVALS else None
        expected = None
        if interval and first is not None:
            window = (now - max(first, since)).total_seconds()
            expected = max(1, int(window // interval) + 1)
        out.append(
            {
                "collector": name,
                "runs_24h": count,
                "expected_runs_24h": expected,
                "volume_ratio": (count / expected) if expected else None,
                "fetched_24h": int(fetched),
                "written_24h": int(written),
                "duplicate_rate_24h": (int(duplicates) / int(fetched)) if fetched else 0.0,
                "unfinished_runs": int(running or 0),
            }
        )
    return out


def null_rates(engine: Engine) -> list[dict[str, Any]]:
    """Share of rows whose key fields are NULL, per table and field (tables with rows)."""
    out = []
    with engine.connect() as conn:
        for model, fields in KEY_FIELDS.items():
            table: Table = model.__table__
            counts = conn.execute(
                select(
                    func.count(),
                    *(func.sum(case((table.c[f].is_(None), 1), else_=0)) for f in fields),
                )
            ).one()
            total = counts[0]
            if not total:
                continue
            for field, nulls in zip(fields, counts[1:], strict=True):
                out.append(
                    {
                        "table": table.name,
                        "field": field,
                        "rows": total,
                        "null_rate": int(nulls or 0) / total,
                    }
                )
    return out


def zscore(values: list[float]) -> float | None:
    """z-score of the last value against the ones before it; None when undefined."""
    history, last = values[:-1], values[-1]
    if len(history) < MIN_POINTS:
        return None
    mean = sum(history) / len(history)
    var = sum((v - mean) ** 2 for v in history) / (len(history) - 1)
    if var <= 0:
        return None if last == mean else math.inf
    return (last - mean) / math.sqrt(var)


def log_returns(prices: Iterable[float]) -> list[float]:
    series = [p for p in prices if p > 0]
    return [math.log(b / a) for a, b in itertools.pairwise(series)]


def anomalies(engine: Engine) -> list[dict[str, Any]]:
    """Series whose newest point is more than Z_LIMIT standard deviations from its window."""
    found = []
    for series, kind, values, at in _numeric_series(engine):
        data = log_returns(values) if kind == "return" else values
        if len(data) < 2:
            continue
        z = zscore(data)
        if z is not None and abs(z) > Z_LIMIT:
            found.append({"series": series, "measure": kind, "z": z, "at": at, "points": len(data)})
    return found


def _numeric_series(engine: Engine) -> Iterable[tuple[str, str, list[float], Any]]:
    """(series name, 'return' | 'level', values oldest first, time of the newest)."""
    c, t = Candle.__table__, Tick.__table__
    p, o, s = ProtocolMetric.__table__, OnchainMetric.__table__, SentimentHourly.__table__
    groups: list[tuple[str, Any, tuple[str, ...], Any, str, Any]] = [
        ("candles", c, ("exchange", "symbol", "timeframe"), c.c.close, "return", c.c.ts),
        ("ticks", t, ("source", "coin", "market"), t.c.last, "return", t.c.ts),
        ("protocol", p, ("protocol", "chain", "metric"), p.c.value, "level", p.c.ts),
        ("onchain", o, ("chain", "metric"), o.c.value, "level", o.c.ts),
        ("sentiment", s, ("coin",), s.c.mean_sentiment, "level", s.c.hour),
    ]
    with engine.connect() as conn:
        for label, table, keys, value, kind, time_col in groups:
            key_cols = [table.c[k] for k in keys]
            for key in conn.execute(select(*key_cols).distinct()).all():
                condition = [col == v for col, v in zip(key_cols, key, strict=True)]
                query = (
                    select(time_col, value)
                    .where(*condition)
                    .order_by(time_col.desc())
                    .limit(WINDOW)
                )
                rows = list(conn.execute(query).all())
                if not rows:
                    continue
                rows.reverse()
                values = [float(v) for _, v in rows if v is not None]
                yield f"{label} {' '.join(str(k) for k in key)}", kind, values, rows[-1][0]
