"""Operations tables: the job journal of the queue (`ops_jobs`).

* `ops_jobs` — one row per queued job (its Celery task id): `kind` (collect, candles,
  backfill, backtest, sweep, notify), its JSON `args`, `status` (`pending` claimed by a
  scheduler but not yet sent, `queued`, `running`, `retrying`, `done`, `dead`), how many times
  a worker started it (`attempts`, counting starts cut off by a dead worker), the worker
  that ran it last, the last error (masked) and times. `slot_key` is unique: a scheduled
  job of one slot (`collect:coinspot@2026-12-03T13:40:05Z`) is claimed by exactly one
  scheduler, however many run. Rows in status `dead` are the dead letters (`omc status`,
  `GET /api/v1/ops/dead-letters`).

Written only through `omc.ops.queue.journal`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from omc.core.db_types import Base, UTCDateTime

JOB_STATUSES = ("pending", "queued", "running", "retrying", "done", "dead")


class OpsJob(Base):
    """One job of the queue, as the database knows it (the row is the truth)."""

    __tablename__ = "ops_jobs"
    __table_args__ = (Index("ix_ops_jobs_status", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    slot_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    args: Mapped[Any] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(160), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
