"""Lab tables: research sessions, every trial of their searches, and sealed-holdout openings.

* `lab_sessions` — one row per study: the goal, its status (`planned`, `asked`, `running`,
  `done`, `failed`), the plan (JSON), the planner's question when it asked one, the verdict,
  the out-of-sample and baseline metrics (JSON), the report path and the model artifact's
  content hash, the approval state (`none`, `approved`, `rejected`) with the reason and time
  of the decision, and the one clear error of a failed study.
* `lab_trials` — every trial of a session's hyper-parameter search (nothing is discarded):
  model, parameters, fold scores, score and time. Keyed by (session, number): storing a
  session again overwrites its trials instead of duplicating them.
* `lab_holdout_openings` — each time a study scores a sealed holdout: which data (source,
  window and holdout range, hashed into `dataset_key`), which session, when. A second
  session opening the same holdout is recorded and flagged in its report. Keyed by
  (dataset_key, session), so re-storing one session never counts as a second look.
* `lab_events` — the append-only, sequence-numbered event log of each session (`seq` 1, 2,
  … per session; step starts and ends, the plan, questions, answers, decisions, and what the
  agents emit). Database triggers refuse every UPDATE and DELETE.

Written only through `omc.lab.session.store`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from omc.core.db_types import Base, UTCDateTime

SESSION_STATUSES = (
    "planned",
    "asked",
    "running",
    "pending_approval",
    "done",
    "failed",
    "interrupted",
)
APPROVAL_STATES = ("none", "approved", "rejected")


class LabSession(Base):
    """One research study and its outcome."""

    __tablename__ = "lab_sessions"
    __table_args__ = (Index("ix_lab_sessions_created_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    goal: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    step: Mapped[str | None] = mapped_column(String(32), nullable=True)
    as_of: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    source: Mapped[str | None] = mapped_column(Text, nullable=True)
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    question: Mapped[str | None] = mapped_column(Text, nullable=True)
    verdict: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reasons: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    oos: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    baseline: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    n_trials: Mapped[int] = mapped_column(Integer, default=0)
    report_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    artifact_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    artifact_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approval: Mapped[str] = mapped_column(String(16), default="none")
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # `host:pid:token` of the process running the study (`omc.core.process`)
    owner: Mapped[str | None] = mapped_column(String(120), nullable=True)


class LabTrial(Base):
    """One trial of a session's search: what was tried and how it scored out of sample."""

    __tablename__ = "lab_trials"

    session: Mapped[str] = mapped_column(
        String(32), ForeignKey("lab_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    model: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    fold_scores: Mapped[list[Any]] = mapped_column(JSON)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    seconds: Mapped[float] = mapped_column(Float)


class HoldoutOpening(Base):
    """A study scored the sealed holdout of `dataset_key` (source + window + holdout range)."""

    __tablename__ = "lab_holdout_openings"
    __table_args__ = (UniqueConstraint("dataset_key", "session"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_key: Mapped[str] = mapped_column(String(64))
    dataset: Mapped[str] = mapped_column(Text)
    session: Mapped[str] = mapped_column(
        String(32), ForeignKey("lab_sessions.id", ondelete="CASCADE")
    )
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LabEvent(Base):
    """One event of a session's log: `seq` is 1, 2, … within the session (never reused)."""

    __tablename__ = "lab_events"
    __table_args__ = (UniqueConstraint("session", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session: Mapped[str] = mapped_column(String(32), ForeignKey("lab_sessions.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
