"""Book tables: the strategy registry and its append-only history of changes.

* `floor_strategies` — one row per strategy instance (a strategy name with its parameters in
  one journal account): version, origin, expectations (the out-of-sample metrics it was
  approved on), its stage, when it entered that stage and where the account's journal stood
  then (`stage_mark`: the last journal ordinal before the stage, so evidence for the next
  promotion is read from the journal after it).
* `floor_strategy_changes` — every registration, stage move and expectation change: who, why,
  from which stage to which, with details (JSON). Rows are only ever inserted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from omc.core.db_types import Base, UTCDateTime

SEQ = BigInteger().with_variant(Integer, "sqlite")


class StrategyRecord(Base):
    """One registered strategy instance. `params`, `origin`, `expectations` are JSON text."""

    __tablename__ = "floor_strategies"
    __table_args__ = (Index("ix_floor_strategies_account", "account"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    params: Mapped[str] = mapped_column(Text)
    account: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(Text)
    expectations: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(16))
    stage_since: Mapped[datetime] = mapped_column(UTCDateTime)
    stage_mark: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StrategyChange(Base):
    """One change of a registered strategy: who did what, why."""

    __tablename__ = "floor_strategy_changes"
    __table_args__ = (Index("ix_floor_strategy_changes_strategy", "strategy_id", "seq"),)

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    strategy_id: Mapped[str] = mapped_column(String(32))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(24))
    from_stage: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_stage: Mapped[str | None] = mapped_column(String(16), nullable=True)
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    data: Mapped[str] = mapped_column(Text)
