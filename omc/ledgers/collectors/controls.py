"""Collectors paused by an admin (`collector_controls`): `omc collect`'s scheduler skips a
paused collector's runs until it is resumed (`omc collect --once` and a run asked for over
the API still run: they are explicit)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from omc.core.time import utcnow
from omc.core.upsert import upsert
from omc.ledgers.models import CollectorControl

TABLE = CollectorControl.__table__


def controls(engine: Engine) -> dict[str, dict[str, Any]]:
    """Per collector with a stored control: paused, reason, updated_by, updated_at."""
    with engine.connect() as conn:
        rows = conn.execute(select(TABLE)).all()
    return {r.collector: dict(r._mapping) for r in rows}


def is_paused(engine: Engine, collector: str) -> bool:
    with engine.connect() as conn:
        found = conn.execute(select(TABLE.c.paused).where(TABLE.c.collector == collector)).scalar()
    return bool(found)


def set_paused(
    engine: Engine,
    collector: str,
    paused: bool,
    *,
    reason: str | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    row = {
        "collector": collector,
        "paused": paused,
        "reason": reason,
        "updated_by": by,
        "updated_at": utcnow(),
    }
    upsert(engine, TABLE, [row], update=("paused", "reason", "updated_by", "updated_at"))  # type: ignore[arg-type]
    return row
