"""The Lab's session store: the one write path of `lab_sessions`, `lab_trials` and
`lab_holdout_openings`, and the reads behind `omc lab sessions|show`.

Every write is idempotent: a session row is merged by id, trials are upserted by
(session, number) with their values overwritten, a holdout opening is keyed by
(dataset, session). Approval and rejection are stored here with their reason and time;
approving a `no_edge` study is refused unless forced with a reason (`ApprovalRefused`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from omc.core.process import owner_gone, owner_pid, process_owner
from omc.core.time import ensure_utc, utcnow
from omc.core.upsert import upsert
from omc.lab.models import APPROVAL_STATES, SESSION_STATUSES, HoldoutOpening, LabSession, LabTrial

SESSION_ID = re.compile(r"^L\d{8}-[0-9a-f]{6}$")


class UnknownSession(LookupError):
    """No session has this id."""


class ApprovalRefused(ValueError):
    """The decision is not allowed (a `no_edge` study approved without --force --reason, ...)."""


def new_session_id(now: datetime | None = None) -> str:
    """A short, URL- and CLI-safe id: `L<yyyymmdd>-<6 hex>`, e.g. `L20261203-3f2a9c`."""
    day = ensure_utc(now or utcnow()).strftime("%Y%m%d")
    return f"L{day}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class SessionRecord:
    """A stored session, detached from the database."""

    id: str
    created_at: datetime
    updated_at: datetime
    goal: str
    status: str
    step: str | None
    as_of: datetime | None
    source: str | None
    plan: dict[str, Any] | None
    question: str | None
    verdict: str | None
    reasons: list[str]
    oos: dict[str, Any]
    baseline: dict[str, Any]
    n_trials: int
    report_path: str | None
    artifact_dir: str | None
    artifact_hash: str | None
    approval: str
    decision_reason: str | None
    decided_at: datetime | None
    error: str | None

    @classmethod
    def of(cls, row: LabSession) -> SessionRecord:
        return cls(
            id=row.id,
            created_at=row.created_at,
            updated_at=row.updated_at,
            goal=row.goal,
            status=row.status,
            step=row.step,
            as_of=row.as_of,
            source=row.source,
            plan=row.plan,
            question=row.question,
            verdict=row.verdict,
            reasons=list(row.reasons or []),
            oos=dict(row.oos or {}),
            baseline=dict(row.baseline or {}),
            n_trials=row.n_trials,
            report_path=row.report_path,
            artifact_dir=row.artifact_dir,
            artifact_hash=row.artifact_hash,
            approval=row.approval,
            decision_reason=row.decision_reason,
            decided_at=row.decided_at,
            error=row.error,
        )


_FIELDS = {c.name for c in LabSession.__table__.columns} - {"id", "created_at"}


def save_session(
    engine: Engine, session_id: str, *, goal: str | None = None, **fields: Any
) -> SessionRecord:
    """Create the session `session_id` or update the given fields (idempotent)."""
    unknown = set(fields) - _FIELDS
    if unknown:
        raise ValueError(f"not a session field: {', '.join(sorted(unknown))}")
    if "status" in fields and fields["status"] not in SESSION_STATUSES:
        raise ValueError(f"unknown session status {fields['status']!r}")
    now = utcnow()
    with Session(engine, expire_on_commit=False) as db, db.begin():
        row = db.get(LabSession, session_id)
        if row is None:
            if goal is None:
                raise UnknownSession(f"no Lab session {session_id}")
            row = LabSession(
                id=session_id,
                created_at=now,
                goal=goal,
                status="planned",
                n_trials=0,
                approval="none",
            )
            db.add(row)
        elif goal is not None:
            row.goal = goal
        for name, value in fields.items():
            setattr(row, name, value)
        if fields.get("status") == "running":
            row.owner = process_owner()
        row.updated_at = now
    return SessionRecord.of(row)


def close_abandoned(engine: Engine) -> int:
    """Record sessions a killed process left `running` (kill -9, crash) as `interrupted`,
    with the step they reached; sessions of live processes and other hosts are left alone.
    Returns how many were closed."""
    with Session(engine) as db, db.begin():
        rows = db.scalars(select(LabSession).where(LabSession.status == "running")).all()
        closed = 0
        for row in rows:
            if owner_gone(row.owner):
                row.status = "interrupted"
                row.error = (
                    f"interrupted at step {row.step}: process {owner_pid(row.owner or '')} "
                    "ended without finishing the study (killed?)"
                )
                row.updated_at = utcnow()
                closed += 1
    return closed


def store_trials(
    engine: Engine, session_id: str, trials: Iterable[Mapping[str, Any]], offset: int = 0
) -> int:
    """Every trial of the session's search (number, model, params, fold_scores, score,
    seconds), stored as number `offset + number`; a trial stored before is overwritten, and
    trials numbered `offset` or more that are no longer present removed (a revised study's
    search keeps the earlier searches' trials below `offset`)."""
    rows = [
        {
            "session": session_id,
            "number": offset + int(t["number"]),
            "model": str(t["model"]),
            "params": dict(t["params"]),
            "fold_scores": list(t["fold_scores"]),
            "score": None if t.get("score") is None else float(t["score"]),
            "seconds": float(t["seconds"]),
        }
        for t in trials
    ]
    with engine.begin() as conn:
        conn.execute(
            delete(LabTrial).where(
                LabTrial.session == session_id,
                LabTrial.number >= offset,
                LabTrial.number.not_in([r["number"] for r in rows] or [-1]),
            )
        )
        upsert(
            conn,
            LabTrial.__table__,  # type: ignore[arg-type]
            rows,
            update=["model", "params", "fold_scores", "score", "seconds"],
        )
    return len(rows)


def trials_of(engine: Engine, session_id: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(LabTrial).where(LabTrial.session == session_id).order_by(LabTrial.number)
        ).mappings()
        return [{k: v for k, v in row.items() if k != "session"} for row in map(dict, rows)]


def dataset_key(description: str) -> str:
    return hashlib.sha256(description.encode()).hexdigest()


def open_holdout(engine: Engine, session_id: str, dataset: str) -> int:
    """Record that `session_id` scores the sealed holdout described by `dataset` (data source
    + window + holdout range). Returns how many other sessions opened it before (0 = first
    look). Idempotent: the same session opening it again is not a new look."""
    key = dataset_key(dataset)
    with Session(engine) as db, db.begin():
        mine = db.scalar(
            select(HoldoutOpening).where(
                HoldoutOpening.dataset_key == key, HoldoutOpening.session == session_id
            )
        )
        if mine is None:
            mine = HoldoutOpening(
                dataset_key=key, dataset=dataset, session=session_id, opened_at=utcnow()
            )
            db.add(mine)
            db.flush()
        before = db.scalar(
            select(func.count())
            .select_from(HoldoutOpening)
            .where(
                HoldoutOpening.dataset_key == key,
                HoldoutOpening.session != session_id,
                HoldoutOpening.id < mine.id,
            )
        )
    return int(before or 0)


def get_session(engine: Engine, session_id: str) -> SessionRecord:
    with Session(engine) as db:
        row = db.get(LabSession, session_id)
        if row is None:
            raise UnknownSession(f"no Lab session {session_id!r} (see `omc lab sessions`)")
        return SessionRecord.of(row)


def list_sessions(engine: Engine, limit: int = 50) -> list[SessionRecord]:
    with Session(engine) as db:
        rows = db.scalars(
            select(LabSession).order_by(LabSession.created_at.desc(), LabSession.id).limit(limit)
        )
        return [SessionRecord.of(row) for row in rows]


def decide(
    engine: Engine,
    session_id: str,
    approval: str,
    *,
    reason: str | None = None,
    force: bool = False,
) -> SessionRecord:
    """Store a person's decision on a finished study: `approved` or `rejected`, with the
    reason and the time. Approving a study whose verdict is not `edge` needs `force` and a
    reason; a study that did not finish cannot be approved; a rejection needs a reason."""
    record = get_session(engine, session_id)
    reason = check_decision(record, approval, reason=reason, force=force)
    return save_session(
        engine, session_id, approval=approval, decision_reason=reason, decided_at=utcnow()
    )


def check_decision(
    record: SessionRecord, approval: str, *, reason: str | None = None, force: bool = False
) -> str | None:
    """The rules of `decide`, without storing: raises ApprovalRefused (or ValueError for an
    unknown decision) and returns the cleaned reason. A study waiting at the approval gate
    (`pending_approval`) or done may be decided."""
    if approval not in APPROVAL_STATES or approval == "none":
        raise ValueError(f"unknown decision {approval!r}")
    session_id = record.id
    reason = (reason or "").strip() or None
    if approval == "rejected" and reason is None:
        raise ApprovalRefused("a rejection needs --reason")
    if approval == "approved":
        if record.status not in ("done", "pending_approval"):
            raise ApprovalRefused(
                f"session {session_id} is {record.status}, not done: nothing to approve"
            )
        if record.verdict != "edge" and (not force or reason is None):
            raise ApprovalRefused(
                f"session {session_id} found no edge (verdict {record.verdict}): "
                "approving it needs --force --reason TEXT"
            )
    return reason
