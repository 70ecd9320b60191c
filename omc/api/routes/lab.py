"""`/api/v1/lab/sessions`: Lab studies of the caller (another user's id answers 404) — start
one from a goal in words (it runs in the server), list, read, its event log, answer the
planner's question, send it back with instructions (revise), approve or reject its model at
the approval gate, its report (HTML) and report.json — the Lab's graph
(`omc.api.services.lab`, over `omc.lab.graph.driver`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from omc.api import pagination
from omc.api.auth.deps import client_ip, current_user, state
from omc.api.auth.users import UserInfo, audit
from omc.api.errors import ApiError
from omc.api.jobs import json_safe
from omc.api.schemas.common import ERRORS, ErrorBody
from omc.api.services.lab import NotAsked
from omc.api.state import ApiState

router = APIRouter(prefix="/lab/sessions", tags=["lab"])
NO_SESSION = {**ERRORS, 404: {"model": ErrorBody, "description": "No such Lab session of yours"}}
WAITING = {**NO_SESSION, 409: {"model": ErrorBody, "description": "Not waiting for this"}}
DECIDE = {**NO_SESSION, 409: {"model": ErrorBody, "description": "Refused (not done, no edge)"}}


class StudyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    goal: str = Field(
        min_length=1, max_length=2000, examples=["Predict whether BTC/USDT closes higher next bar"]
    )
    answers: list[str] = Field(
        default_factory=list, max_length=5, description="Answers to the planner's questions."
    )
    symbol: str | None = Field(default=None, min_length=1, max_length=64)
    timeframe: str | None = Field(default=None, min_length=1, max_length=8)
    exchange: str | None = Field(default=None, min_length=1, max_length=64)
    horizon_bars: int | None = Field(default=None, ge=1, le=10_000)
    trials: int | None = Field(default=None, ge=1, le=1000)
    as_of: AwareDatetime | None = None


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: str = Field(min_length=1, max_length=500)


class ReviseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instructions: str = Field(
        min_length=1,
        max_length=2000,
        description="Words for the planner, or a JSON object of plan fields.",
    )


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=1000)
    force: bool = Field(default=False, description="Approve a no_edge study (needs a reason).")


class StudyAccepted(BaseModel):
    id: str
    status: str = Field(description="It runs in the server: poll the session or watch /stream.")


class LabSessionOut(BaseModel):
    id: str
    goal: str
    status: str = Field(description="planned, running, asked, pending_approval, done, failed, …")
    step: str | None
    created_at: datetime
    updated_at: datetime
    as_of: datetime | None
    question: str | None
    verdict: str | None
    reasons: list[str]
    oos: dict[str, Any]
    baseline: dict[str, Any]
    n_trials: int
    approval: str
    decision_reason: str | None
    decided_at: datetime | None
    error: str | None
    plan: dict[str, Any] | None
    report: str | None = Field(description="The report's URL, once written.")


class LabSessionPage(BaseModel):
    items: list[LabSessionOut]
    next_cursor: str | None


class LabEventOut(BaseModel):
    seq: int
    at: datetime
    kind: str = Field(description="step, plan, question, answer, decision, revision, …")
    payload: dict[str, Any]


class LabEvents(BaseModel):
    id: str
    status: str
    step: str | None
    items: list[LabEventOut]
    next_cursor: str | None


SKIP = ("report", "oos", "baseline")


def _out(st: ApiState, r: Any) -> LabSessionOut:
    has_report = st.lab.report_file(r) is not None
    return LabSessionOut(
        **{k: getattr(r, k) for k in LabSessionOut.model_fields if k not in SKIP},
        oos=json_safe(r.oos),
        baseline=json_safe(r.baseline),
        report=f"/api/v1/lab/sessions/{r.id}/report" if has_report else None,
    )


def owned_study(
    session_id: str, user: UserInfo = Depends(current_user), st: ApiState = Depends(state)
) -> Any:
    found = st.lab.record(user.id, session_id) if len(session_id) <= 32 else None
    if found is None:
        raise ApiError(404, "not_found", "no such Lab session")
    return found


def _audit(st: ApiState, action: str, user: UserInfo, request: Request, sid: str) -> None:
    audit(st.engine, action, user.name, user_id=user.id, ip=client_ip(request), detail={"id": sid})


@router.post("", response_model=StudyAccepted, status_code=202, responses=ERRORS)
def start(
    body: StudyIn,
    request: Request,
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> StudyAccepted:
    """Start a study of the goal: it runs in the server until the planner asks a question
    (status `asked`: answer it), the approval gate (`pending_approval`: approve, reject or
    revise) or its end. The planner plans against the stored candles."""
    options = body.model_dump(exclude={"goal", "answers"}, exclude_none=True)
    answers = [a.strip() for a in body.answers if a.strip()]
    sid = st.lab.start(user.id, body.goal.strip(), answers=answers, options=options)
    _audit(st, "lab_started", user, request, sid)
    return StudyAccepted(id=sid, status="planned")


@router.get("", response_model=LabSessionPage, responses=ERRORS)
def page(
    limit: int = Query(pagination.DEFAULT_LIMIT, ge=1, le=pagination.MAX_LIMIT),
    cursor: str | None = Query(None, max_length=512),
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> LabSessionPage:
    """Your Lab sessions, newest first."""
    before = None
    if cursor is not None:
        when, last = pagination.decode(cursor, 2)
        before = (str(when), str(last))
    try:
        rows, more = st.lab.page(user.id, limit=limit, before=before)
    except ValueError:
        pagination.invalid()
    nxt = pagination.encode(rows[-1].created_at.isoformat(), rows[-1].id) if more else None
    return LabSessionPage(items=[_out(st, r) for r in rows], next_cursor=nxt)


@router.get("/{session_id}", response_model=LabSessionOut, responses=NO_SESSION)
def read(record: Any = Depends(owned_study), st: ApiState = Depends(state)) -> LabSessionOut:
    """One study: goal, plan, status and step, question, verdict, metrics, decision."""
    return _out(st, record)


@router.get("/{session_id}/events", response_model=LabEvents, responses=NO_SESSION)
def events(
    cursor: str | None = Query(None, max_length=512),
    record: Any = Depends(owned_study),
    st: ApiState = Depends(state),
) -> LabEvents:
    """The study's event log (append-only): steps, plan, questions, answers, decisions,
    oldest first; pass `next_cursor` back for the ones after."""
    after = 0
    if cursor is not None:
        value = pagination.decode(cursor, 1)[0]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            pagination.invalid()
        after = value
    found = st.lab.events(record.id, after)
    last = found[-1].seq if found else after
    items = [
        LabEventOut(seq=e.seq, at=e.at, kind=e.kind, payload=json_safe(e.payload)) for e in found
    ]
    return LabEvents(
        id=record.id,
        status=record.status,
        step=record.step,
        items=items,
        next_cursor=pagination.encode(last),
    )


@router.post(
    "/{session_id}/answer", response_model=StudyAccepted, status_code=202, responses=WAITING
)
def answer(
    body: AnswerIn,
    request: Request,
    record: Any = Depends(owned_study),
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> StudyAccepted:
    """Answer the planner's question: the study runs on (in the server)."""
    try:
        st.lab.answer(record.id, body.answer.strip())
    except NotAsked as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    _audit(st, "lab_answered", user, request, record.id)
    return StudyAccepted(id=record.id, status="running")


@router.post(
    "/{session_id}/revise", response_model=StudyAccepted, status_code=202, responses=WAITING
)
def revise(
    body: ReviseIn,
    request: Request,
    record: Any = Depends(owned_study),
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> StudyAccepted:
    """Send a study at the approval gate back with instructions: planned again and re-run
    from the first step the change touches (its sealed holdout is then flagged as seen)."""
    try:
        st.lab.revise(record.id, body.instructions.strip())
    except NotAsked as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    _audit(st, "lab_revised", user, request, record.id)
    return StudyAccepted(id=record.id, status="running")


def _decide(
    approval: str,
    body: DecisionIn | None,
    request: Request,
    record: Any,
    user: UserInfo,
    st: ApiState,
) -> LabSessionOut:
    from omc.lab.graph.driver import SessionBusy
    from omc.lab.session.store import ApprovalRefused

    body = body or DecisionIn()
    try:
        decided = st.lab.decide(record, approval, body.reason, body.force)
    except (ApprovalRefused, SessionBusy) as exc:
        message = str(exc).replace("--reason", "a reason").replace("--force", "force")
        raise ApiError(409, "refused", message) from None
    _audit(st, f"lab_{approval}", user, request, record.id)
    return _out(st, decided)


@router.post("/{session_id}/approve", response_model=LabSessionOut, responses=DECIDE)
def approve(
    request: Request,
    body: DecisionIn | None = None,
    record: Any = Depends(owned_study),
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> LabSessionOut:
    """Approve the study's model: the Floor may then trade `model:<id>` (refused for a study
    that is not finished, or found no edge unless `force` with a reason)."""
    return _decide("approved", body, request, record, user, st)


@router.post("/{session_id}/reject", response_model=LabSessionOut, responses=DECIDE)
def reject(
    request: Request,
    body: DecisionIn | None = None,
    record: Any = Depends(owned_study),
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> LabSessionOut:
    """Reject the study's model (a reason is required)."""
    return _decide("rejected", body, request, record, user, st)


@router.get(
    "/{session_id}/report",
    response_class=FileResponse,
    responses={**NO_SESSION, 200: {"content": {"text/html": {}}}},
)
def report(record: Any = Depends(owned_study), st: ApiState = Depends(state)) -> FileResponse:
    """The study's report (self-contained HTML)."""
    path = st.lab.report_file(record)
    if path is None:
        raise ApiError(404, "not_found", "this study has no report yet")
    return FileResponse(path, media_type="text/html")


@router.get("/{session_id}/report.json", responses=NO_SESSION)
def report_json(record: Any = Depends(owned_study), st: ApiState = Depends(state)) -> Any:
    """The study as data: the session and every trial of its search."""
    from omc.lab.session.store import trials_of

    body = _out(st, record).model_dump(mode="json")
    return {**body, "trials": json_safe(trials_of(st.engine, record.id))}
