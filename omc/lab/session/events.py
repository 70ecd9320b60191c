"""A Lab session's event log: append-only, numbered 1, 2, … per session (`lab_events`).

`append(engine, session_id, kind, payload) -> seq` adds one event; `read(engine, session_id,
after_seq=0)` returns the events after `after_seq`, oldest first (a dashboard polls with the
last seq it saw). The number is taken inside the INSERT (`max(seq) + 1` of the session) and a
writer that loses a race to the unique (session, seq) key simply takes the next number, so
concurrent writers — threads or processes, SQLite or PostgreSQL — never share or skip a seq.
Nothing here updates or deletes an event, and the database's triggers refuse it anyway.

`emitter(engine, session_id)` binds `append` to a session: the `emit(kind, payload)` callable
the graph hands to its steps and the Lab's agents.

Payloads are JSON: values JSON cannot hold (times, Decimals, numpy numbers) are stored as their
string form.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, func, insert, literal, select
from sqlalchemy.exc import IntegrityError, OperationalError

from omc.core.time import utcnow
from omc.lab.models import LabEvent

Emit = Callable[[str, dict[str, Any]], None]
"""emit(kind, payload): record one event of the session it is bound to."""

_ATTEMPTS = 50


@dataclass(frozen=True)
class Event:
    seq: int
    at: datetime
    kind: str
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at.isoformat(), "kind": self.kind, **self.payload}


def _plain(payload: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(payload, default=str))
    return out


def append(
    engine: Engine, session_id: str, kind: str, payload: dict[str, Any] | None = None
) -> int:
    """Append one event to the log of `session_id`; returns its seq (1 for the first)."""
    if not kind or len(kind) > 40:
        raise ValueError(f"event kind must be 1..40 characters, not {kind!r}")
    body = _plain(payload or {})
    table: Table = LabEvent.__table__  # type: ignore[assignment]
    for attempt in range(_ATTEMPTS):
        statement = (
            insert(table)
            .from_select(
                ["session", "seq", "at", "kind", "payload"],
                select(
                    literal(session_id),
                    func.coalesce(func.max(table.c.seq), 0) + 1,
                    literal(utcnow(), LabEvent.at.type),
                    literal(kind),
                    literal(body, LabEvent.payload.type),
                ).where(table.c.session == session_id),
            )
            .returning(table.c.seq)
        )
        try:
            with engine.begin() as conn:
                return int(conn.execute(statement).scalar_one())
        except IntegrityError as exc:  # another writer took this seq first: take the next
            if "seq" not in str(exc) and "unique" not in str(exc).lower():
                raise
        except OperationalError as exc:  # SQLite past its busy timeout: try again
            if "locked" not in str(exc):
                raise
        time.sleep(0.002 * (attempt + 1))
    raise RuntimeError(f"could not append an event to Lab session {session_id}")


def read(engine: Engine, session_id: str, after_seq: int = 0) -> list[Event]:
    """The events of `session_id` with seq > `after_seq`, in order."""
    table = LabEvent.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(table.c.seq, table.c.at, table.c.kind, table.c.payload)
            .where(table.c.session == session_id, table.c.seq > after_seq)
            .order_by(table.c.seq)
        ).all()
    return [Event(int(r.seq), r.at, r.kind, dict(r.payload or {})) for r in rows]


def emitter(engine: Engine, session_id: str) -> Emit:
    """`emit(kind, payload)` appending to the log of `session_id`."""

    def emit(kind: str, payload: dict[str, Any]) -> None:
        append(engine, session_id, kind, payload)

    return emit
