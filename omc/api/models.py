"""API tables: users, the audit log of security-relevant actions, and backtest jobs.

* `api_users` — one row per person: unique `name`, argon2 `password_hash`, `is_admin`,
  `disabled`, and `token_version`: every token carries it, and bumping it (disable, logout)
  revokes every access and refresh token issued before.
* `api_audit` — who did what, when, from where (`login`, `login_failed`, `user_created`,
  `user_disabled`, `logout`, `backtest_submitted`, …). `detail` never holds a secret.
* `api_backtest_jobs` — one row per submitted backtest: its owner, request (JSON), status
  (`queued`, `running`, `done`, `failed`), metrics (JSON) or the one-line error, and times.
  The row is the truth: status survives a restart (see `omc.api.jobs`).
* `api_accounts` — which user owns which trading account (the journal's account name, unique
  across users), its mode (`paper`) and starting cash (`omc.api.services.accounts`).
* `api_paper_sessions` — one row per paper session started over the API on replayed candles:
  its owner and account, request (JSON), status (`queued`, `running`, `paused`, `done`,
  `stopped`, `failed`), progress (bars done of total), the P&L summary or the one-line error
  (`omc.api.services.paper`).
* `api_credentials` — a user's exchange and LLM keys (bring your own keys): `kind`
  (`coinspot`, `ccxt:<exchange>`, `llm:<provider>`), a `name` unique per user, the Fernet
  token of the key material (`ciphertext`: key, secret, endpoint — never stored in clear), a
  masked `hint` (`****abcd`) and when it was created, rotated, last checked and last used.

* `api_lab_owners` — which user started which Lab session (`lab_sessions.id`)
  (`omc.api.services.lab`).

Written only through `omc.api.auth.users`, `omc.api.jobs`, `omc.api.services`
and `omc.api.vault`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from omc.core.db_types import Base, ExactDecimal, UTCDateTime

JOB_STATUSES = ("queued", "running", "done", "failed")


class User(Base):
    """A person who may log in to the API."""

    __tablename__ = "api_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """One security-relevant action."""

    __tablename__ = "api_audit"
    __table_args__ = (Index("ix_api_audit_ts", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class BacktestJob(Base):
    """A backtest submitted over the API, and its outcome."""

    __tablename__ = "api_backtest_jobs"
    __table_args__ = (Index("ix_api_backtest_jobs_owner_created", "owner_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("api_users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Account(Base):
    """A trading account and the user who owns it."""

    __tablename__ = "api_accounts"
    __table_args__ = (Index("ix_api_accounts_owner", "owner_id"),)

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("api_users.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(16))
    cash: Mapped[Decimal] = mapped_column(ExactDecimal)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PaperSession(Base):
    """A paper session on replayed candles, run by the server."""

    __tablename__ = "api_paper_sessions"
    __table_args__ = (
        Index("ix_api_paper_sessions_owner_created", "owner_id", "created_at"),
        Index("ix_api_paper_sessions_account", "account"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("api_users.id", ondelete="CASCADE"))
    account: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    bars_done: Mapped[int] = mapped_column(Integer, default=0)
    bars_total: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Credential(Base):
    """One stored API key of a user, encrypted."""

    __tablename__ = "api_credentials"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("api_users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[str] = mapped_column(Text)
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LabOwner(Base):
    """The user a Lab session belongs to."""

    __tablename__ = "api_lab_owners"
    __table_args__ = (Index("ix_api_lab_owners_owner", "owner_id"),)

    session_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("api_users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


USERS: Table = User.__table__  # type: ignore[assignment]
AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]
JOBS: Table = BacktestJob.__table__  # type: ignore[assignment]
ACCOUNTS: Table = Account.__table__  # type: ignore[assignment]
PAPER_SESSIONS: Table = PaperSession.__table__  # type: ignore[assignment]
CREDENTIALS: Table = Credential.__table__  # type: ignore[assignment]
LAB_OWNERS: Table = LabOwner.__table__  # type: ignore[assignment]
