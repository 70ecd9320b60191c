"""`/api/v1/backtests`: submit a backtest job, read one (the owner's only: another user's id
answers 404), list them newest first with `limit`/`cursor` and a `status` filter."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from omc.api import pagination
from omc.api.auth.deps import current_user, state
from omc.api.auth.users import UserInfo, audit
from omc.api.errors import ApiError
from omc.api.jobs import JobView
from omc.api.schemas.backtests import (
    BacktestCreated,
    BacktestIn,
    BacktestOut,
    BacktestPage,
    BacktestSeries,
)
from omc.api.schemas.common import ERRORS, ErrorBody
from omc.api.state import ApiState

router = APIRouter(prefix="/backtests", tags=["backtests"])


def _out(job: JobView) -> BacktestOut:
    r = job.request
    return BacktestOut(
        id=job.id,
        status=job.status,  # type: ignore[arg-type]
        strategy=r["strategy"],
        params=r.get("params") or {},
        exchange=r.get("exchange"),
        symbol=r["symbol"],
        timeframe=r["timeframe"],
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        metrics=job.metrics,
        error=job.error,
    )


@router.post("", response_model=BacktestCreated, status_code=202, responses=ERRORS)
def submit(
    body: BacktestIn, user: UserInfo = Depends(current_user), st: ApiState = Depends(state)
) -> BacktestCreated:
    """Queue a backtest on stored candles; poll `GET /backtests/{id}` for its result."""
    request = body.model_dump(mode="json")
    try:
        job_id = st.jobs.submit(user.id, request)
    except ValueError as exc:
        raise ApiError(422, "invalid_input", str(exc)) from None
    audit(st.engine, "backtest_submitted", user.name, user_id=user.id, detail={"id": job_id})
    return BacktestCreated(id=job_id)


@router.get(
    "/{job_id}",
    response_model=BacktestOut,
    responses={**ERRORS, 404: {"model": ErrorBody, "description": "No such backtest of yours"}},
)
def read(
    job_id: str, user: UserInfo = Depends(current_user), st: ApiState = Depends(state)
) -> BacktestOut:
    """One of your backtests: status, and the metrics once done."""
    job = st.jobs.get(user.id, job_id) if len(job_id) <= 64 else None
    if job is None:
        raise ApiError(404, "not_found", "no such backtest")
    return _out(job)


@router.get(
    "/{job_id}/series",
    response_model=BacktestSeries,
    responses={**ERRORS, 404: {"model": ErrorBody, "description": "No such done backtest"}},
)
def series(
    job_id: str, user: UserInfo = Depends(current_user), st: ApiState = Depends(state)
) -> BacktestSeries:
    """A done backtest's equity curve with its drawdown (thinned to at most 4,000 points)
    and its round-trip trades: what the dashboard's report charts."""
    found = st.jobs.series(user.id, job_id) if len(job_id) <= 64 else None
    if found is None:
        raise ApiError(404, "not_found", "no such done backtest")
    return BacktestSeries(
        equity=found["equity"],
        trades=[
            {**t, "exit_time": t["exit_time"] or None, "exit_price": t["exit_price"] or None}
            for t in found["trades"]
        ],
    )


@router.get("", response_model=BacktestPage, responses=ERRORS)
def page(
    limit: int = Query(pagination.DEFAULT_LIMIT, ge=1, le=pagination.MAX_LIMIT),
    cursor: str | None = Query(None, max_length=512),
    status: str | None = Query(None, pattern="^(queued|running|done|failed)$"),
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> BacktestPage:
    """Your backtests, newest first."""
    after = None
    if cursor is not None:
        when, last = pagination.decode(cursor, 2)
        after = (str(when), str(last))
    try:
        jobs, more = st.jobs.page(user.id, limit=limit, after=after, status=status)
    except ValueError:  # a cursor time that does not parse
        pagination.invalid()
    items = [_out(j) for j in jobs]
    nxt = pagination.encode(jobs[-1].created_at.isoformat(), jobs[-1].id) if more else None
    return BacktestPage(items=items, next_cursor=nxt)
