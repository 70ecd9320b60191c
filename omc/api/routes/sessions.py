"""Paper sessions on replayed candles (`omc.api.services.paper`): start one on an account of
yours (`POST /accounts/{name}/sessions`), list them, read one with its progress, pause,
resume or stop it. Another user's session answers 404."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from omc.api import pagination
from omc.api.auth.deps import client_ip, current_user, state
from omc.api.auth.users import UserInfo, audit
from omc.api.errors import ApiError
from omc.api.routes.accounts import NOT_YOURS, owned_account
from omc.api.schemas.common import ERRORS, ErrorBody
from omc.api.schemas.floor import SessionCreated, SessionIn, SessionOut, SessionPage
from omc.api.services.accounts import AccountRow
from omc.api.services.paper import Busy, SessionView
from omc.api.state import ApiState

router = APIRouter(tags=["floor"])
NO_SESSION = {**ERRORS, 404: {"model": ErrorBody, "description": "No such session of yours"}}


def _out(v: SessionView) -> SessionOut:
    r = v.request
    return SessionOut(
        id=v.id,
        account=v.account,
        status=v.status,  # type: ignore[arg-type]
        strategy=r["strategy"],
        params=r.get("params") or {},
        exchange=r["exchange"],
        symbol=r["symbol"],
        timeframe=r["timeframe"],
        bars_per_second=r.get("bars_per_second"),
        bars_done=v.bars_done,
        bars_total=v.bars_total,
        summary=v.summary,
        error=v.error,
        created_at=v.created_at,
        started_at=v.started_at,
        finished_at=v.finished_at,
    )


@router.post(
    "/accounts/{name}/sessions",
    response_model=SessionCreated,
    status_code=202,
    responses={
        **NOT_YOURS,
        409: {
            "model": ErrorBody,
            "description": "A session runs already, or the kill switch is on",
        },
    },
)
def start(
    body: SessionIn,
    request: Request,
    row: AccountRow = Depends(owned_account),
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> SessionCreated:
    """Start a paper session replaying stored candles; poll `GET /sessions/{id}` or watch
    `/stream` for its fills."""
    try:
        session_id = st.paper.submit(user.id, row, body.model_dump(mode="json"))
    except Busy as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except ValueError as exc:
        raise ApiError(422, "invalid_input", str(exc)) from None
    audit(
        st.engine,
        "session_started",
        user.name,
        user_id=user.id,
        ip=client_ip(request),
        detail={"id": session_id, "account": row.name},
    )
    return SessionCreated(id=session_id)


def _page(
    st: ApiState, user: UserInfo, limit: int, cursor: str | None, account: str | None
) -> SessionPage:
    after = None
    if cursor is not None:
        when, last = pagination.decode(cursor, 2)
        after = (str(when), str(last))
    try:
        rows, more = st.paper.page(user.id, limit=limit, account=account, after=after)
    except ValueError:
        pagination.invalid()
    nxt = pagination.encode(rows[-1].created_at.isoformat(), rows[-1].id) if more else None
    return SessionPage(items=[_out(r) for r in rows], next_cursor=nxt)


@router.get("/accounts/{name}/sessions", response_model=SessionPage, responses=NOT_YOURS)
def account_sessions(
    limit: int = Query(pagination.DEFAULT_LIMIT, ge=1, le=pagination.MAX_LIMIT),
    cursor: str | None = Query(None, max_length=512),
    row: AccountRow = Depends(owned_account),
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> SessionPage:
    """The account's sessions, newest first."""
    return _page(st, user, limit, cursor, row.name)


@router.get("/sessions", response_model=SessionPage, responses=ERRORS)
def all_sessions(
    limit: int = Query(pagination.DEFAULT_LIMIT, ge=1, le=pagination.MAX_LIMIT),
    cursor: str | None = Query(None, max_length=512),
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> SessionPage:
    """All your sessions, newest first."""
    return _page(st, user, limit, cursor, None)


@router.get("/sessions/{session_id}", response_model=SessionOut, responses=NO_SESSION)
def read(
    session_id: str, user: UserInfo = Depends(current_user), st: ApiState = Depends(state)
) -> SessionOut:
    """One of your sessions: status, progress (bars done of total), the summary once over."""
    found = st.paper.get(user.id, session_id) if len(session_id) <= 64 else None
    if found is None:
        raise ApiError(404, "not_found", "no such session")
    return _out(found)


def _control(
    action: str, session_id: str, request: Request, user: UserInfo, st: ApiState
) -> SessionOut:
    found = st.paper.control(user.id, session_id, action) if len(session_id) <= 64 else None
    if found is None:
        raise ApiError(404, "not_found", "no such session")
    audit(
        st.engine,
        f"session_{action}",
        user.name,
        user_id=user.id,
        ip=client_ip(request),
        detail={"id": session_id, "account": found.account},
    )
    return _out(found)


@router.post("/sessions/{session_id}/pause", response_model=SessionOut, responses=NO_SESSION)
def pause(
    session_id: str,
    request: Request,
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> SessionOut:
    """Pause at the next bar (it keeps the account and obeys the kill switch)."""
    return _control("pause", session_id, request, user, st)


@router.post("/sessions/{session_id}/resume", response_model=SessionOut, responses=NO_SESSION)
def resume(
    session_id: str,
    request: Request,
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> SessionOut:
    """Resume a paused session."""
    return _control("resume", session_id, request, user, st)


@router.post("/sessions/{session_id}/stop", response_model=SessionOut, responses=NO_SESSION)
def stop(
    session_id: str,
    request: Request,
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> SessionOut:
    """Stop at the next bar (its journal stays; a new session on the account resumes)."""
    return _control("stop", session_id, request, user, st)
