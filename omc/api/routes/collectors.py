"""`/api/v1/collectors` (admins only; others 403): status and health of every collector,
its runs, the quarantine, a run now, pause and resume (audited)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from omc.api import pagination
from omc.api.auth.deps import admin_user, client_ip, state
from omc.api.auth.users import UserInfo, audit
from omc.api.errors import ApiError
from omc.api.schemas.common import ERRORS, ErrorBody
from omc.api.services import collectors
from omc.api.state import ApiState
from omc.ledgers.collectors.controls import set_paused

router = APIRouter(prefix="/collectors", tags=["collectors"])
ADMIN = {**ERRORS, 403: {"model": ErrorBody, "description": "Admins only"}}
NAMED = {**ADMIN, 404: {"model": ErrorBody, "description": "No such collector"}}


class CollectorOut(BaseModel):
    collector: str
    state: str = Field(description="fresh, degraded, stale, failing or never.")
    paused: bool
    paused_reason: str | None
    last_success: datetime | None
    age_s: float | None
    interval_s: float
    last_status: str | None
    runs_24h: int
    failed_24h: int
    error_rate_24h: float
    quarantined: int
    last_error: str | None
    last_error_at: datetime | None


class CollectorList(BaseModel):
    items: list[CollectorOut]
    next_cursor: str | None = None


class RunOut(BaseModel):
    id: int
    collector: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    fetched: int
    inserted: int
    updated: int
    duplicates: int
    quarantined: int
    error: str | None


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None


class QuarantineOut(BaseModel):
    id: int
    collector: str
    run_id: int | None
    reason: str
    payload: str = Field(description="The start of the payload, masked.")
    payload_hash: str
    payload_size: int | None
    first_seen: datetime
    last_seen: datetime
    occurrences: int


class QuarantinePage(BaseModel):
    items: list[QuarantineOut]
    next_cursor: str | None


class PauseIn(BaseModel):
    reason: str | None = Field(default=None, max_length=200)


class Accepted(BaseModel):
    collector: str
    status: str


def _named(name: str) -> str:
    if not collectors.known(name):
        raise ApiError(404, "not_found", "no such collector")
    return name


def _before(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    value = pagination.decode(cursor, 1)[0]
    if not isinstance(value, int) or isinstance(value, bool):
        pagination.invalid()
    return value


@router.get("", response_model=CollectorList, responses=ADMIN)
def status(_: UserInfo = Depends(admin_user), st: ApiState = Depends(state)) -> CollectorList:
    """Every collector: state, last success, error rate, quarantine, paused."""
    rows = collectors.status(st.engine, st.settings)
    return CollectorList(items=[CollectorOut(**r) for r in rows])


@router.get("/quarantine", response_model=QuarantinePage, responses=ADMIN)
def quarantine(
    collector: str | None = Query(None, min_length=1, max_length=64),
    limit: int = Query(pagination.DEFAULT_LIMIT, ge=1, le=pagination.MAX_LIMIT),
    cursor: str | None = Query(None, max_length=512),
    _: UserInfo = Depends(admin_user),
    st: ApiState = Depends(state),
) -> QuarantinePage:
    """What failed validation, newest first, with the reason."""
    items, more = collectors.quarantine_page(
        st.engine, collector=collector, before=_before(cursor), limit=limit
    )
    nxt = pagination.encode(items[-1]["id"]) if more else None
    return QuarantinePage(items=[QuarantineOut(**i) for i in items], next_cursor=nxt)


@router.get("/{name}/runs", response_model=RunPage, responses=NAMED)
def runs(
    name: str,
    limit: int = Query(pagination.DEFAULT_LIMIT, ge=1, le=pagination.MAX_LIMIT),
    cursor: str | None = Query(None, max_length=512),
    _: UserInfo = Depends(admin_user),
    st: ApiState = Depends(state),
) -> RunPage:
    """The collector's runs, newest first."""
    items, more = collectors.runs_page(st.engine, _named(name), before=_before(cursor), limit=limit)
    nxt = pagination.encode(items[-1]["id"]) if more else None
    return RunPage(items=[RunOut(**i) for i in items], next_cursor=nxt)


@router.post("/{name}/run", response_model=Accepted, status_code=202, responses=NAMED)
def run(
    name: str,
    request: Request,
    user: UserInfo = Depends(admin_user),
    st: ApiState = Depends(state),
) -> Accepted:
    """Run the collector once now, in the server (see its runs for the outcome)."""
    try:
        collectors.run_now(st.engine, st.settings, _named(name))
    except ValueError as exc:
        raise ApiError(422, "invalid_input", " ".join(str(exc).split())) from None
    audit(
        st.engine,
        "collector_run",
        user.name,
        user_id=user.id,
        ip=client_ip(request),
        detail={"collector": name},
    )
    return Accepted(collector=name, status="started")


def _pause(
    name: str, paused: bool, body: PauseIn | None, request: Request, user: UserInfo, st: ApiState
) -> Accepted:
    reason = body.reason if body is not None else None
    set_paused(st.engine, _named(name), paused, reason=reason, by=user.name)
    detail: dict[str, Any] = {"collector": name, "reason": reason}
    audit(
        st.engine,
        "collector_paused" if paused else "collector_resumed",
        user.name,
        user_id=user.id,
        ip=client_ip(request),
        detail=detail,
    )
    return Accepted(collector=name, status="paused" if paused else "resumed")


@router.post("/{name}/pause", response_model=Accepted, responses=NAMED)
def pause(
    name: str,
    request: Request,
    body: PauseIn | None = None,
    user: UserInfo = Depends(admin_user),
    st: ApiState = Depends(state),
) -> Accepted:
    """Pause the collector: `omc collect` skips its runs until it is resumed."""
    return _pause(name, True, body, request, user, st)


@router.post("/{name}/resume", response_model=Accepted, responses=NAMED)
def resume(
    name: str,
    request: Request,
    body: PauseIn | None = None,
    user: UserInfo = Depends(admin_user),
    st: ApiState = Depends(state),
) -> Accepted:
    """Resume a paused collector."""
    return _pause(name, False, body, request, user, st)
