"""`/api/v1/ledgers`: the shared ledgers, read point-in-time through `omc.ledgers.pit`
(any logged-in user). Every read takes `as_of` (default: now), and pages carry it in their
cursor so later pages see the same knowledge as the first."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime

from omc.api import pagination
from omc.api.auth.deps import current_user, state
from omc.api.auth.users import UserInfo
from omc.api.errors import ApiError
from omc.api.schemas.common import ERRORS
from omc.api.schemas.ledgers import CandleOut, CandlePage, PriceOut, PricePage
from omc.api.state import ApiState
from omc.core.time import parse_utc, timeframe_seconds, utcnow

router = APIRouter(prefix="/ledgers", tags=["ledgers"])
TICK = timedelta(microseconds=1)


def _dec(value: Any) -> Decimal | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _cursor(cursor: str | None, as_of: AwareDatetime | None) -> tuple[Any, Any]:
    """(as_of, position after) from a cursor, or (as_of or now, None) for a first page."""
    if cursor is None:
        return (as_of or utcnow()), None
    when, after = pagination.decode(cursor, 2)
    try:
        return parse_utc(str(when)), after
    except ValueError:
        pagination.invalid()


@router.get("/candles", response_model=CandlePage, responses=ERRORS)
def candles(
    exchange: str = Query(min_length=1, max_length=64),
    symbol: str = Query(min_length=1, max_length=64),
    timeframe: str = Query("5m", min_length=1, max_length=8),
    as_of: AwareDatetime | None = Query(None, description="Knowledge time (default: now)."),
    start: AwareDatetime | None = Query(None, description="First candle open time, inclusive."),
    end: AwareDatetime | None = Query(None, description="Last candle open time, inclusive."),
    limit: int = Query(500, ge=1, le=pagination.MAX_LIMIT),
    cursor: str | None = Query(None, max_length=512),
    _: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> CandlePage:
    """Candles of one series as stored by `as_of`, oldest first."""
    from omc.ledgers import pit

    try:
        timeframe_seconds(timeframe)
    except ValueError as exc:
        raise ApiError(422, "invalid_input", f"timeframe: {exc}") from None
    known, after = _cursor(cursor, as_of)
    first = start
    if after is not None:
        try:
            first = parse_utc(str(after)) + TICK
        except ValueError:
            pagination.invalid()
    frame = pit.candles(
        st.engine,
        exchange,
        symbol,
        timeframe,
        as_of=known,
        start=first,
        end=end,
        exact=True,
        limit=limit + 1,
    )
    rows = frame.head(limit + 1).to_dict("records")
    items = [
        CandleOut(
            ts=r["ts"].to_pydatetime(),
            open=r["open"],
            high=r["high"],
            low=r["low"],
            close=r["close"],
            volume=r["volume"],
            collected_at=r["collected_at"].to_pydatetime(),
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    nxt = pagination.encode(known.isoformat(), items[-1].ts.isoformat()) if more else None
    return CandlePage(
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
        as_of=known,
        items=items,
        next_cursor=nxt,
    )


@router.get("/prices/latest", response_model=PricePage, responses=ERRORS)
def latest_prices(
    coin: str | None = Query(None, min_length=1, max_length=32),
    source: str = Query("coinspot", min_length=1, max_length=32),
    as_of: AwareDatetime | None = Query(None, description="Knowledge time (default: now)."),
    max_age_s: int = Query(86400, ge=1, le=31 * 86400, description="Look back this far."),
    limit: int = Query(pagination.DEFAULT_LIMIT, ge=1, le=pagination.MAX_LIMIT),
    cursor: str | None = Query(None, max_length=512),
    _: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> PricePage:
    """The last tick of each coin and market known at `as_of` (within `max_age_s`), by coin."""
    from omc.ledgers import pit

    known, after = _cursor(cursor, as_of)
    frame = pit.ticks(
        st.engine,
        as_of=known,
        coin=coin,
        source=source,
        start=known - timedelta(seconds=max_age_s),
        end=known,
        exact=True,
    )
    last = frame.groupby(["coin", "market"], sort=True).tail(1).sort_values(["coin", "market"])
    rows = last.to_dict("records")
    if after is not None:
        rows = [r for r in rows if f"{r['coin']}/{r['market']}" > str(after)]
    items = [
        PriceOut(
            coin=r["coin"],
            market=r["market"],
            source=r["source"],
            ts=r["ts"].to_pydatetime(),
            bid=_dec(r["bid"]),
            ask=_dec(r["ask"]),
            last=_dec(r["last"]),
            volume=_dec(r["volume"]),
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    nxt = (
        pagination.encode(known.isoformat(), f"{items[-1].coin}/{items[-1].market}")
        if more
        else None
    )
    return PricePage(as_of=known, items=items, next_cursor=nxt)
