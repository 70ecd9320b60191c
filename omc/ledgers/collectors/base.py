"""A collector is fetch -> validate -> upsert; the runner records every run and quarantines.

A `Collector` only talks to its source and validates what comes back (Pydantic models of the
real payloads), returning `Collected`: rows per table, and the items it refused with the
reason. The `CollectorRunner` owns the database side: it opens a `collector_runs` record,
upserts the rows (idempotently), stores refused items in the quarantine, and closes the record
with the counts and the status (`ok`, `partial` when something was quarantined or a secondary
part of the fetch failed, `failed` when nothing usable came back or the write failed).
The counts written are those of the committed transaction only: a failed write records zero
inserted rows, never the rows it rolled back.
"""

from __future__ import annotations

import hashlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from omc.core.db import UpsertResult, upsert
from omc.core.events import EventBus
from omc.core.http import HttpError, PayloadError
from omc.core.time import utcnow
from omc.ledgers.models import CollectorRun, QuarantinedItem

log = logging.getLogger(__name__)


@dataclass
class Rejected:
    """An item that failed validation: why, and the item exactly as received."""

    reason: str
    payload: Any


@dataclass
class Rows:
    """Validated rows for one table; `update` names columns a newer value may overwrite."""

    table: Table
    rows: list[dict[str, Any]]
    update: Sequence[str] = ()


@dataclass
class Collected:
    """What one fetch produced: rows to store, items refused, and how many items came in.

    `errors` names secondary parts of the fetch that failed while the rest succeeded (e.g. the
    trades of one coin): the good part is stored and the run is `partial` with these errors.
    """

    rows: list[Rows] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    fetched: int = 0
    errors: list[str] = field(default_factory=list)


class Collector(ABC):
    """One source. Subclasses set `name` and `interval_s` and implement `collect()`."""

    name: str = "collector"
    interval_s: float = 60.0
    # the database the runner stores into; set by the runner before each `collect()`, for
    # collectors that read what is already stored (conditional requests, dedupe, aggregates)
    engine: Engine | None = None

    @abstractmethod
    def collect(self) -> Collected:
        """Fetch from the source and validate. Raise HttpError/PayloadError on failure."""

    def close(self) -> None:  # noqa: B027 - optional hook, most collectors hold no resources
        """Release network resources."""


@dataclass
class RunSummary:
    run_id: int
    collector: str
    status: str
    fetched: int
    inserted: int
    updated: int
    duplicates: int
    quarantined: int
    error: str | None
    started_at: datetime
    finished_at: datetime

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat()
        return data


# Reasons are part of a unique index: keep them well under PostgreSQL's btree row limit.
MAX_REASON = 500


def _payload_text(payload: Any) -> str:
    if isinstance(payload, str):
        return payload
    return json.dumps(payload, sort_keys=True, default=str)


def quarantine(
    conn: Connection, collector: str, reason: str, payload: Any, run_id: int | None = None
) -> None:
    """Store a refused payload with its reason; the same payload again only bumps a counter."""
    text = _payload_text(payload)
    now = utcnow()
    table = cast(Table, QuarantinedItem.__table__)
    values = {
        "collector": collector,
        "run_id": run_id,
        "reason": reason[:MAX_REASON],
        "payload": text,
        "payload_hash": hashlib.sha256(text.encode()).hexdigest(),
        "first_seen": now,
        "last_seen": now,
        "occurrences": 1,
    }
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = dialect_insert(table).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["collector", "payload_hash", "reason"],
        set_={
            "occurrences": table.c.occurrences + 1,
            "last_seen": statement.excluded.last_seen,
            "run_id": statement.excluded.run_id,
        },
    )
    conn.execute(statement)


class CollectorRunner:
    """Runs collectors against one database and records every run."""

    def __init__(self, engine: Engine, bus: EventBus | None = None) -> None:
        self.engine = engine
        self.bus = bus

    def run(self, collector: Collector) -> RunSummary:
        started = utcnow()
        runs = cast(Table, CollectorRun.__table__)
        with self.engine.begin() as conn:
            run_id = conn.execute(
                insert(runs)
                .values(collector=collector.name, started_at=started, status="running")
                .returning(runs.c.id)
            ).scalar_one()
        result = UpsertResult()
        fetched = quarantined = 0
        status, error = "ok", None
        collector.engine = self.engine
        try:
            collected = collector.collect()
            fetched = collected.fetched
            written = UpsertResult()
            with self.engine.begin() as conn:
                for batch in collected.rows:
                    if batch.rows:
                        written += upsert(conn, batch.table, batch.rows, update=batch.update)
                for item in collected.rejected:
                    quarantine(conn, collector.name, item.reason, item.payload, run_id)
            result = written  # only now committed: a rolled-back write counts nothing
            quarantined = len(collected.rejected)
            stored = sum(len(batch.rows) for batch in collected.rows)
            if quarantined and not stored:
                status = "failed"
                error = f"nothing usable: all {quarantined} item(s) quarantined"
                if collected.errors:
                    error += "; " + "; ".join(collected.errors)
            elif quarantined or collected.errors:
                status = "partial"
                error = "; ".join(collected.errors) or None
        except PayloadError as exc:
            status, error = "failed", f"bad payload: {exc.reason}"
            try:
                with self.engine.begin() as conn:
                    quarantine(conn, collector.name, exc.reason, exc.raw, run_id)
                quarantined = 1
            except Exception as db_exc:  # the run record must still be closed
                log.exception("collector %s: could not quarantine", collector.name)
                error += f" (not quarantined: {type(db_exc).__name__}: {db_exc})"
        except HttpError as exc:
            status, error = "failed", str(exc)
        except Exception as exc:  # a run must always be closed, whatever happened
            log.exception("collector %s crashed", collector.name)
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        finished = utcnow()
        summary = RunSummary(
            run_id=run_id,
            collector=collector.name,
            status=status,
            fetched=fetched,
            inserted=result.inserted,
            updated=result.updated,
            duplicates=result.unchanged,
            quarantined=quarantined,
            error=error,
            started_at=started,
            finished_at=finished,
        )
        with self.engine.begin() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    finished_at=finished,
                    status=status,
                    fetched=fetched,
                    inserted=result.inserted,
                    updated=result.updated,
                    duplicates=result.unchanged,
                    quarantined=quarantined,
                    error=error,
                )
            )
        if error:
            log.warning("collector %s %s: %s", collector.name, status, error)
        if self.bus is not None:
            self.bus.publish("collector.run", summary.as_dict())
        return summary
