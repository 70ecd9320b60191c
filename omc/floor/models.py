"""Floor tables: the append-only trading journal, its leases, the kill switch and staged capital.

* `floor_journal` — every decision, order, order update (fill), denial, warning, kill and
  reconciliation of every trading account, in `seq` order. Rows are only ever inserted
  (`omc.floor.trading.journal.Journal`, only while holding the account's lease); `event_id`
  is unique, so re-writing an event after a crash or a retry never duplicates it. Positions,
  cash and open orders are rebuilt from it (`omc.floor.trading.journal.rebuild`).
* `floor_account_leases` — one row per account being written: its one writer (`holder`,
  `host:pid:token`), when it took the lease and until when it holds it
  (`omc.floor.trading.lease`).
* `floor_kill_switch` — one row per scope (`global`, or `account:<name>`): on/off, why, since
  when. Survives restarts; every order path reads it.
* `floor_guard_limits` — per account: the Guard limits that differ from the configured ones
  (`OMC_GUARD_*`), as JSON, and when they were last changed (`omc.floor.trading.limits`).
* `floor_capital_stages` — per strategy: current capital stage, cap, when the stage began and
  when its limits were last breached (staged capital, see `omc.floor.trading.guard`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from omc.core.db_types import Base, ExactDecimal, UTCDateTime

SEQ = BigInteger().with_variant(Integer, "sqlite")


class JournalEntry(Base):
    """One journal event. `data` is JSON text (decimals as strings)."""

    __tablename__ = "floor_journal"
    __table_args__ = (
        UniqueConstraint("event_id"),
        Index("ix_floor_journal_account_seq", "account", "seq"),
    )

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128))
    account: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(24))
    strategy: Mapped[str | None] = mapped_column(String(64), nullable=True)
    symbol: Mapped[str | None] = mapped_column(String(32), nullable=True)
    client_order_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    data: Mapped[str] = mapped_column(Text)


class AccountLease(Base):
    """The lease of an account's journal: its one writer until `expires_at`."""

    __tablename__ = "floor_account_leases"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(160))
    token: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class KillSwitch(Base):
    """The kill switch of one scope (`global`)."""

    __tablename__ = "floor_kill_switch"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean)
    flatten: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GuardLimitOverride(Base):
    """One account's Guard limits that differ from the configured ones."""

    __tablename__ = "floor_guard_limits"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    limits: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CapitalStage(Base):
    """A strategy's staged capital: `cap` grows by steps after clean periods."""

    __tablename__ = "floor_capital_stages"

    strategy: Mapped[str] = mapped_column(String(64), primary_key=True)
    stage: Mapped[int] = mapped_column(Integer)
    cap: Mapped[Decimal] = mapped_column(ExactDecimal)
    stage_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_breach_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


from omc.floor.book.models import StrategyChange, StrategyRecord  # noqa: E402  (book tables)

__all__ = [
    "AccountLease",
    "CapitalStage",
    "JournalEntry",
    "KillSwitch",
    "StrategyChange",
    "StrategyRecord",
]
