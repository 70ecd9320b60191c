"""`/api/v1/lab/sessions`: Lab studies of the caller (another user's id answers 404) —
start one from a goal in words (it runs in the server), list, read, its step events, answer
the planner's question, approve or reject its model, its report (HTML) and report.json.
`revise` follows when the Lab's graph lands (answer/revise/resume)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

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
DECIDE = {**NO_SESSION, 409: {"model": ErrorBody, "description": "Refused (not done, no edge)"}}


class StudyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str | None = Field(default=None, min_length=1, max_length=64)
    timeframe: str | None = Field(default=None, min_length=1, max_length=8)
    exchange: str | None = Field(default=None, min_length=1, max_length=64)
    horizon_bars: int | None = Field(default=None, ge=1, le=10_000)
    trials: int | None = Field(default=None, ge=1, le=1000)
    as_of: AwareDatetime | None = None


class StudyIn(StudyOptions):
    goal: str = Field(
        min_length=1, max_length=2000, examples=["Predict whether BTC/USDT closes higher next bar"]
    )
    answers: list[str] = Field(
        default_factory=list,
        max_length=5,
        description="Answers to the planner's questions, in order.",
    )


class AnswerIn(StudyOptions):
    answer: str = Field(min_length=1, max_length=500)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=1000)
    force: bool = Field(default=False, description="Approve a no_edge study (needs a reason).")


class StudyCreated(BaseModel):
    id: str
    status: Literal["planned", "asked"]
    question: str | None = None


class LabSessionOut(BaseModel):
    id: str
    goal: str
    status: str
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
    ts: datetime
    step: str
    done: int
    total: int


class LabEvents(BaseModel):
    id: str
    status: str
    step: str | None
    items: list[LabEventOut]
    next_cursor: str | None


def _out(st: ApiState, r: Any) -> LabSessionOut:
    has_report = st.lab.report_file(r) is not None
    return LabSessionOut(
        **{
            k: getattr(r, k)
            for k in LabSessionOut.model_fields
            if k not in ("report", "oos", "baseline")
        },
        oos=json_safe(r.oos),
        baseline=json_safe(r.baseline),
        report=f"/api/v1/lab/sessions/{r.id}/report" if has_report else None,
    )


def _options(body: StudyOptions) -> dict[str, Any]:
    return {
        "symbol": body.symbol,
        "timeframe": body.timeframe,
        "exchange": body.exchange,
        "horizon_bars": body.horizon_bars,
        "trials": body.trials,
        "as_of": body.as_of,
    }


def owned_study(
    session_id: str, user: UserInfo = Depends(current_user), st: ApiState = Depends(state)
) -> Any:
    found = st.lab.record(user.id, session_id) if len(session_id) <= 32 else None
    if found is None:
        raise ApiError(404, "not_found", "no such Lab session")
    return found


@router.post("", response_model=StudyCreated, status_code=202, responses=ERRORS)
def start(
    body: StudyIn,
    request: Request,
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> StudyCreated:
    """Plan the goal against the stored candles and run the study in the server — or store
    the planner's question (status `asked`; answer it with `POST …/answer`)."""
    answer = "; ".join(a.strip() for a in body.answers if a.strip()) or None
    try:
        sid, status, question = st.lab.start(
            user.id, body.goal.strip(), answer=answer, options=_options(body)
        )
    except ValueError as exc:
        raise ApiError(422, "invalid_input", " ".join(str(exc).split())) from None
    audit(
        st.engine,
        "lab_started",
        user.name,
        user_id=user.id,
        ip=client_ip(request),
        detail={"id": sid},
    )
    return StudyCreated(id=sid, status=status, question=question)  # type: ignore[arg-type]


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
    """One study: goal, plan, status and step, verdict, out-of-sample metrics, decision."""
    return _out(st, record)


@router.get("/{session_id}/events", response_model=LabEvents, responses=NO_SESSION)
def events(
    cursor: str | None = Query(None, max_length=512),
    record: Any = Depends(owned_study),
    st: ApiState = Depends(state),
) -> LabEvents:
    """The study's steps as they ran (inputs … store; search reports trials done), oldest
    first; pass `next_cursor` back for the ones after."""
    after = -1
    if cursor is not None:
        value = pagination.decode(cursor, 1)[0]
        if not isinstance(value, int) or isinstance(value, bool):
            pagination.invalid()
        after = value
    found = st.lab.events(record.id, after)
    last = found[-1].seq if found else after
    return LabEvents(
        id=record.id,
        status=record.status,
        step=record.step,
        items=[LabEventOut(**vars(e)) for e in found],
        next_cursor=pagination.encode(last),
    )


@router.post(
    "/{session_id}/answer",
    response_model=StudyCreated,
    status_code=202,
    responses={**NO_SESSION, 409: {"model": ErrorBody, "description": "Not asked"}},
)
def answer(
    body: AnswerIn,
    request: Request,
    record: Any = Depends(owned_study),
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> StudyCreated:
    """Answer the planner's question: the study is planned again with it and runs under the
    same id (or the planner asks its next question)."""
    try:
        status, question = st.lab.answer(record, body.answer.strip(), _options(body))
    except NotAsked as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except ValueError as exc:
        raise ApiError(422, "invalid_input", " ".join(str(exc).split())) from None
    audit(
        st.engine,
        "lab_answered",
        user.name,
        user_id=user.id,
        ip=client_ip(request),
        detail={"id": record.id},
    )
    return StudyCreated(id=record.id, status=status, question=question)  # type: ignore[arg-type]


def _decide(
    approval: str,
    body: DecisionIn | None,
    request: Request,
    record: Any,
    user: UserInfo,
    st: ApiState,
) -> LabSessionOut:
    from omc.lab.session.store import ApprovalRefused

    body = body or DecisionIn()
    try:
        decided = st.lab.decide(record, approval, body.reason, body.force)
    except ApprovalRefused as exc:
        raise ApiError(
            409, "refused", str(exc).replace("--reason", "a reason").replace("--force", "force")
        ) from None
    audit(
        st.engine,
        f"lab_{approval}",
        user.name,
        user_id=user.id,
        ip=client_ip(request),
        detail={"id": record.id, "reason": (body.reason or "")[:200]},
    )
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
    that is not done, or found no edge unless `force` with a reason)."""
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
