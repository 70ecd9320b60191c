"""`/api/v1/ledgers/{ticks,protocols,onchain,news,social,sentiment,events,freshness}`: the
other ledgers, read point-in-time through `omc.ledgers.pit` (any logged-in user).

Every read takes `as_of` (default: now), a time range (`start`/`end`, on the rows' own
time), its filters, `limit` and `cursor`; rows come newest first (`order=asc` for oldest
first). A cursor holds the `as_of` of the first page and the position after the last row,
so later pages see the same knowledge. Numbers of ticks and metrics are exact decimals
(JSON strings)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, Field

from omc.api import pagination
from omc.api.auth.deps import current_user, state
from omc.api.auth.users import UserInfo
from omc.api.schemas.common import ERRORS
from omc.api.state import ApiState
from omc.core.time import parse_utc, utcnow

router = APIRouter(prefix="/ledgers", tags=["ledgers"])
Order = Literal["desc", "asc"]


class FeedPage(BaseModel):
    ledger: str
    as_of: datetime
    items: list[dict[str, Any]] = Field(description="Rows as stored by `as_of`.")
    next_cursor: str | None


def _value(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.to_pydatetime()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _value(value.tolist())
    if isinstance(value, list | tuple):
        return [_value(v) for v in value]
    if value is pd.NaT or value is pd.NA:
        return None
    return value


def _known(cursor: str | None, as_of: datetime | None) -> tuple[datetime, int]:
    if cursor is None:
        return (as_of or utcnow()), 0
    when, offset = pagination.decode(cursor, 2)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        pagination.invalid()
    try:
        return parse_utc(str(when)), offset
    except ValueError:
        pagination.invalid()


def _page(
    ledger: str,
    frame: pd.DataFrame,
    time_col: str,
    known: datetime,
    offset: int,
    limit: int,
    order: Order,
) -> FeedPage:
    frame = frame.sort_values(time_col, kind="stable", ascending=order == "asc")
    part = frame.iloc[offset : offset + limit + 1]
    items = [{k: _value(v) for k, v in row.items()} for row in part.to_dict("records")[:limit]]
    more = len(part) > limit
    nxt = pagination.encode(known.isoformat(), offset + limit) if more else None
    return FeedPage(ledger=ledger, as_of=known, items=items, next_cursor=nxt)


AS_OF = Query(None, description="Knowledge time (default: now).")
START = Query(None, description="From this time of the rows, inclusive.")
END = Query(None, description="Up to this time of the rows, inclusive.")
LIMIT = Query(pagination.DEFAULT_LIMIT, ge=1, le=pagination.MAX_LIMIT)
CURSOR = Query(None, max_length=512)


@router.get("/ticks", response_model=FeedPage, responses=ERRORS)
def ticks(
    coin: str | None = Query(None, min_length=1, max_length=64),
    source: str = Query("coinspot", min_length=1, max_length=64),
    market: str | None = Query(None, min_length=1, max_length=64),
    as_of: AwareDatetime | None = AS_OF,
    start: AwareDatetime | None = START,
    end: AwareDatetime | None = END,
    order: Order = "desc",
    limit: int = LIMIT,
    cursor: str | None = CURSOR,
    _: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> FeedPage:
    """Price ticks (bid, ask, last, volume) by source, coin and market."""
    from omc.ledgers import pit

    known, offset = _known(cursor, as_of)
    frame = pit.ticks(
        st.engine,
        as_of=known,
        coin=coin,
        source=source,
        market=market,
        start=start,
        end=end,
        exact=True,
    )
    return _page("exchange", frame, "ts", known, offset, limit, order)


@router.get("/protocols", response_model=FeedPage, responses=ERRORS)
def protocols(
    protocol: str | None = Query(None, min_length=1, max_length=64),
    metric: str | None = Query(None, min_length=1, max_length=64),
    chain: str | None = Query(None, min_length=1, max_length=64),
    as_of: AwareDatetime | None = AS_OF,
    start: AwareDatetime | None = START,
    end: AwareDatetime | None = END,
    order: Order = "desc",
    limit: int = LIMIT,
    cursor: str | None = CURSOR,
    _: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> FeedPage:
    """Protocol metrics (TVL, fees, volume, …) by protocol, metric and chain."""
    from omc.ledgers import pit

    known, offset = _known(cursor, as_of)
    frame = pit.protocol_metrics(
        st.engine,
        as_of=known,
        protocol=protocol,
        metric=metric,
        chain=chain,
        start=start,
        end=end,
        exact=True,
    )
    return _page("glass", frame, "ts", known, offset, limit, order)


@router.get("/onchain", response_model=FeedPage, responses=ERRORS)
def onchain(
    chain: str | None = Query(None, min_length=1, max_length=64),
    metric: str | None = Query(None, min_length=1, max_length=64),
    as_of: AwareDatetime | None = AS_OF,
    start: AwareDatetime | None = START,
    end: AwareDatetime | None = END,
    order: Order = "desc",
    limit: int = LIMIT,
    cursor: str | None = CURSOR,
    _: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> FeedPage:
    """On-chain metrics by chain and metric."""
    from omc.ledgers import pit

    known, offset = _known(cursor, as_of)
    frame = pit.onchain_metrics(
        st.engine, as_of=known, chain=chain, metric=metric, start=start, end=end, exact=True
    )
    return _page("glass", frame, "ts", known, offset, limit, order)


@router.get("/news", response_model=FeedPage, responses=ERRORS)
def news(
    coin: str | None = Query(None, min_length=1, max_length=64),
    source: str | None = Query(None, min_length=1, max_length=64),
    as_of: AwareDatetime | None = AS_OF,
    start: AwareDatetime | None = START,
    end: AwareDatetime | None = END,
    order: Order = "desc",
    limit: int = LIMIT,
    cursor: str | None = CURSOR,
    _: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> FeedPage:
    """News items (their revision as known at `as_of`) with sentiment and coins."""
    from omc.ledgers import pit

    known, offset = _known(cursor, as_of)
    frame = pit.news(st.engine, as_of=known, coin=coin, source=source, start=start, end=end)
    return _page("human", frame, "published_at", known, offset, limit, order)


@router.get("/social", response_model=FeedPage, responses=ERRORS)
def social(
    coin: str | None = Query(None, min_length=1, max_length=64),
    platform: str | None = Query(None, min_length=1, max_length=64),
    as_of: AwareDatetime | None = AS_OF,
    start: AwareDatetime | None = START,
    end: AwareDatetime | None = END,
    order: Order = "desc",
    limit: int = LIMIT,
    cursor: str | None = CURSOR,
    _: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> FeedPage:
    """Social posts with sentiment and coins."""
    from omc.ledgers import pit

    known, offset = _known(cursor, as_of)
    frame = pit.social(st.engine, as_of=known, coin=coin, platform=platform, start=start, end=end)
    return _page("human", frame, "published_at", known, offset, limit, order)


@router.get("/sentiment", response_model=FeedPage, responses=ERRORS)
def sentiment(
    coin: str | None = Query(None, min_length=1, max_length=64),
    as_of: AwareDatetime | None = AS_OF,
    start: AwareDatetime | None = START,
    end: AwareDatetime | None = END,
    order: Order = "desc",
    limit: int = LIMIT,
    cursor: str | None = CURSOR,
    _: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> FeedPage:
    """Hourly sentiment per coin (count, mean, weighted) as known at `as_of`."""
    from omc.ledgers import pit

    known, offset = _known(cursor, as_of)
    frame = pit.sentiment_hourly(st.engine, as_of=known, coin=coin, start=start, end=end)
    return _page("human", frame, "hour", known, offset, limit, order)


@router.get("/events", response_model=FeedPage, responses=ERRORS)
def events(
    source: str | None = Query(None, min_length=1, max_length=64),
    kind: str | None = Query(None, min_length=1, max_length=64),
    coin: str | None = Query(None, min_length=1, max_length=64),
    as_of: AwareDatetime | None = AS_OF,
    start: AwareDatetime | None = START,
    end: AwareDatetime | None = END,
    order: Order = "desc",
    limit: int = LIMIT,
    cursor: str | None = CURSOR,
    _: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> FeedPage:
    """Catalyst events (listings, unlocks, …) by source, kind and coin."""
    from omc.ledgers import pit

    known, offset = _known(cursor, as_of)
    frame = pit.events(
        st.engine, as_of=known, source=source, kind=kind, coin=coin, start=start, end=end
    )
    return _page("catalyst", frame, "published_at", known, offset, limit, order)


class CollectorFreshness(BaseModel):
    collector: str
    freshness: Literal["fresh", "stale", "missing"]
    state: str = Field(description="fresh, degraded, stale, failing or never (`omc status`).")
    last_success: datetime | None
    age_s: float | None
    interval_s: float
    last_status: str | None
    last_error: str | None


class TableFreshness(BaseModel):
    ledger: str
    table: str
    rows: int
    first: datetime | None
    last: datetime | None


class Freshness(BaseModel):
    as_of: datetime
    collectors: list[CollectorFreshness]
    tables: list[TableFreshness]


FRESHNESS = {
    "fresh": "fresh",
    "degraded": "fresh",
    "stale": "stale",
    "failing": "stale",
    "never": "missing",
}


@router.get("/freshness", response_model=Freshness, responses=ERRORS)
def freshness(
    as_of: AwareDatetime | None = AS_OF,
    _: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> Freshness:
    """Per collector: its last run and success, fresh | stale | missing; per ledger table:
    rows and the time of the first and last row stored by `as_of`."""
    from omc.ledgers import pit
    from omc.ledgers.status import collector_health

    known = as_of or utcnow()
    health = [
        CollectorFreshness(
            freshness=FRESHNESS.get(h["state"], "stale"),  # type: ignore[arg-type]
            **{k: h[k] for k in CollectorFreshness.model_fields if k in h},
        )
        for h in collector_health(st.engine, st.settings, known)
    ]
    tables = [
        TableFreshness(**{k: _value(v) for k, v in row.items()})
        for row in pit.ledger_stats(st.engine, as_of=known).to_dict("records")
    ]
    return Freshness(as_of=known, collectors=health, tables=tables)
