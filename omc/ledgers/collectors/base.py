"""A collector is fetch -> validate -> upsert; the runner records every run and quarantines.

A `Collector` only talks to its source and validates what comes back (Pydantic models of the
real payloads), returning `Collected`: rows per table, and the items it refused with the
reason. The `CollectorRunner` owns the database side: it opens a `collector_runs` record,
upserts the rows (idempotently), stores refused items in the quarantine, and closes the record
with the counts and the status:

* `ok` — everything fetched was stored;
* `partial` — the primary output was stored, but something was quarantined or a secondary
  part of the fetch failed (named in `error`); not a success for freshness;
* `failed` — the primary output is missing: nothing usable came back, every item of it was
  quarantined (the quarantine reason is the error), the collector set `Collected.failure`
  (e.g. an empty snapshot from a source that never returns empty), or the write failed;
* `interrupted` — the process was asked to stop (Ctrl-C, SIGTERM) while the run was in
  flight, or died (kill -9) and the run was closed at the next start (`close_abandoned`).

The counts written are those of the committed transaction only: a failed write records zero
inserted rows, never the rows it rolled back. The rows and the closing of the run record are
one transaction, claimed only while the record is still `running`, so a run that shutdown
already recorded as interrupted never stores anything afterwards.

Quarantined payloads are stored up to `QUARANTINE_MAX_BYTES` (with the full size and the
SHA-256 of the full payload); the same payload for the same reason is counted, not stored
again. `PageTrail` is the one pagination-loop guard every paging collector uses.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from omc.core.db_types import clean_control
from omc.core.events import EventBus
from omc.core.http import PayloadError, RequestFailed
from omc.core.masking import mask_text
from omc.core.process import owner_gone, owner_pid, process_owner
from omc.core.time import utcnow
from omc.core.upsert import UpsertResult, upsert
from omc.ledgers.models import CollectorRun, QuarantinedItem

log = logging.getLogger(__name__)


def run_owner() -> str:
    """This process, as recorded in `collector_runs.owner` (`omc.core.process`)."""
    return process_owner()


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
    `failure` says the source's primary output is missing (every quote quarantined, an empty
    snapshot, every company request failed): whatever rows there are are still stored, and
    the run is `failed` with this error.
    """

    rows: list[Rows] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    fetched: int = 0
    errors: list[str] = field(default_factory=list)
    failure: str | None = None

    def fail_if_none_stored(self, what: str, stored: int, rejected: Sequence[Rejected]) -> None:
        """Set `failure` when no `what` was stored although some were refused."""
        if stored == 0 and rejected and self.failure is None:
            self.failure = f"no {what} stored: {quarantine_summary(rejected)}"


def quarantine_summary(rejected: Sequence[Rejected], limit: int = 3) -> str:
    """`all 14 quarantined: btc: invalid quote: … (x1); …` — the reasons, most common first."""
    reasons = Counter(item.reason for item in rejected)
    shown = "; ".join(
        mask_text(reason, 200) + (f" (x{n})" if n > 1 else "")
        for reason, n in reasons.most_common(limit)
    )
    more = f"; … {len(reasons) - limit} more reason(s)" if len(reasons) > limit else ""
    return f"all {len(rejected)} quarantined: {shown}{more}"


class PageTrail:
    """Pagination-loop guard: every page a walk visits (URL, cursor, or first item) once.

    `seen(key)` is True when `key` was already visited in this walk (and records it
    otherwise): the caller stops paging and reports `loop(key)` on the run.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.keys: set[str] = set()

    def seen(self, key: str) -> bool:
        if key in self.keys:
            return True
        self.keys.add(key)
        return False

    def loop(self, key: str) -> str:
        return f"{self.what}: pagination loop (page {key[:200]} already fetched in this walk)"


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
# A quarantined payload is kept verbatim up to this many bytes (UTF-8), then cut.
QUARANTINE_MAX_BYTES = 64 * 1024
MAX_ERROR = 4000


def _payload_text(payload: Any) -> str:
    if isinstance(payload, str):
        return payload
    if isinstance(payload, bytes):
        return payload.decode("utf-8", "replace")
    return json.dumps(payload, sort_keys=True, default=str)


def quarantine(
    conn: Connection, collector: str, reason: str, payload: Any, run_id: int | None = None
) -> None:
    """Store a refused payload with its reason; the same payload again only bumps a counter.

    The stored text is cut at `QUARANTINE_MAX_BYTES`; `payload_size` and `payload_hash` are
    those of the full payload (so two payloads differing after the cut stay two items).
    """
    text = _payload_text(payload)
    raw = text.encode("utf-8", "surrogatepass")
    kept = text
    if len(raw) > QUARANTINE_MAX_BYTES:
        kept = raw[:QUARANTINE_MAX_BYTES].decode("utf-8", "ignore")
    now = utcnow()
    table = cast(Table, QuarantinedItem.__table__)
    values = {
        "collector": collector,
        "run_id": run_id,
        "reason": clean_control(reason)[:MAX_REASON],
        "payload": clean_control(kept),
        "payload_hash": hashlib.sha256(raw).hexdigest(),
        "payload_size": len(raw),
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


class _Interrupted(Exception):
    """Shutdown was requested while the run was in flight."""


RUNS = cast(Table, CollectorRun.__table__)


class CollectorRunner:
    """Runs collectors against one database and records every run."""

    def __init__(self, engine: Engine, bus: EventBus | None = None) -> None:
        self.engine = engine
        self.bus = bus
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._in_flight: dict[int, str] = {}

    # ------------------------------------------------------------------ shutdown

    def stop(self, reason: str = "shutdown") -> int:
        """Ask every run to stop; record the ones in flight as interrupted. Returns how many.

        A run whose fetch returns after this stores nothing (its record is already closed).
        """
        self.stopping.set()
        with self._lock:
            in_flight = list(self._in_flight)
        closed = 0
        for run_id in in_flight:
            closed += self._close_interrupted(run_id, f"interrupted: {reason}")
        return closed

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no run is in flight in this process; False if some still are."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._in_flight:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def _close_interrupted(self, run_id: int, error: str) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                update(RUNS)
                .where(RUNS.c.id == run_id, RUNS.c.status == "running")
                .values(status="interrupted", finished_at=utcnow(), error=error)
            ).rowcount

    def close_abandoned(self) -> int:
        """Close runs left `running` by a process of this host that is gone (kill -9, crash).

        They are recorded as `interrupted`; runs of live processes, of other hosts, and
        without an owner (older versions) are left alone. Returns how many were closed.
        """
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(RUNS.c.id, RUNS.c.owner).where(
                    RUNS.c.status == "running", RUNS.c.owner.is_not(None)
                )
            ).all()
        closed = 0
        for run_id, owner in rows:
            if not owner_gone(str(owner)):
                continue
            closed += self._close_interrupted(
                run_id,
                f"interrupted: process {owner_pid(str(owner))} ended without closing this run "
                "(killed?); closed at the next start",
            )
        return closed

    # ------------------------------------------------------------------ one run

    def run(self, collector: Collector) -> RunSummary:
        started = utcnow()
        with self.engine.begin() as conn:
            run_id = conn.execute(
                insert(RUNS)
                .values(
                    collector=collector.name,
                    started_at=started,
                    status="running",
                    owner=run_owner(),
                )
                .returning(RUNS.c.id)
            ).scalar_one()
        with self._lock:
            self._in_flight[run_id] = collector.name
        try:
            summary = self._run(collector, run_id, started)
        except BaseException as exc:  # Ctrl-C / SIGTERM in this thread: record, then go on
            what = "SIGTERM" if isinstance(exc, SystemExit) else type(exc).__name__
            self._close_interrupted(run_id, f"interrupted: {what}")
            raise
        finally:
            with self._lock:
                self._in_flight.pop(run_id, None)
        if summary.error:
            log.warning("collector %s %s: %s", collector.name, summary.status, summary.error)
        if self.bus is not None:
            self.bus.publish("collector.run", summary.as_dict())
        return summary

    def _run(self, collector: Collector, run_id: int, started: datetime) -> RunSummary:
        summary = RunSummary(run_id, collector.name, "ok", 0, 0, 0, 0, 0, None, started, started)
        collector.engine = self.engine
        try:
            collected = collector.collect()
            summary.fetched = collected.fetched
            if self.stopping.is_set():
                raise _Interrupted
            with self.engine.begin() as conn:
                written = UpsertResult()
                for batch in collected.rows:
                    if batch.rows:
                        written += upsert(conn, batch.table, batch.rows, update=batch.update)
                for item in collected.rejected:
                    quarantine(conn, collector.name, item.reason, item.payload, run_id)
                summary.inserted = written.inserted
                summary.updated = written.updated
                summary.duplicates = written.unchanged
                summary.quarantined = len(collected.rejected)
                summary.status, summary.error = _judge(collected)
                if not self._finish(conn, summary):
                    raise _Interrupted  # shutdown closed the record meanwhile: roll back
            return summary
        except _Interrupted:
            return self._stored(summary)
        except PayloadError as exc:
            summary.status, summary.error = "failed", f"bad payload: {exc.reason}"
            try:
                with self.engine.begin() as conn:
                    quarantine(conn, collector.name, exc.reason, exc.raw, run_id)
                summary.quarantined = 1
            except Exception as db_exc:  # the run record must still be closed
                log.exception("collector %s: could not quarantine", collector.name)
                summary.error += f" (not quarantined: {type(db_exc).__name__}: {db_exc})"
        except RequestFailed as exc:
            summary.status, summary.error = "failed", str(exc)
        except Exception as exc:  # a run must always be closed, whatever happened
            log.exception("collector %s crashed", collector.name)
            summary.status, summary.error = "failed", f"{type(exc).__name__}: {exc}"
        # a failed write counts nothing: it was rolled back
        summary.inserted = summary.updated = summary.duplicates = 0
        with self.engine.begin() as conn:
            if not self._finish(conn, summary):
                return self._stored(summary)
        return summary

    def _finish(self, conn: Connection, summary: RunSummary) -> bool:
        """Close the run record (only while it is still `running`); False if it was not."""
        summary.finished_at = utcnow()
        if summary.error:
            summary.error = mask_text(clean_control(summary.error), MAX_ERROR)
        claimed = conn.execute(
            update(RUNS)
            .where(RUNS.c.id == summary.run_id, RUNS.c.status == "running")
            .values(
                finished_at=summary.finished_at,
                status=summary.status,
                fetched=summary.fetched,
                inserted=summary.inserted,
                updated=summary.updated,
                duplicates=summary.duplicates,
                quarantined=summary.quarantined,
                error=summary.error,
            )
        ).rowcount
        return bool(claimed)

    def _stored(self, summary: RunSummary) -> RunSummary:
        """The run as its record says (closed by shutdown): interrupted, nothing stored."""
        if self.stopping.is_set():
            self._close_interrupted(summary.run_id, "interrupted: shutdown")
        with self.engine.connect() as conn:
            row = conn.execute(
                select(RUNS.c.status, RUNS.c.error, RUNS.c.finished_at).where(
                    RUNS.c.id == summary.run_id
                )
            ).one()
        summary.status, summary.error = row.status, row.error
        summary.finished_at = row.finished_at or utcnow()
        summary.inserted = summary.updated = summary.duplicates = summary.quarantined = 0
        return summary


def _judge(collected: Collected) -> tuple[str, str | None]:
    """The status and error of a run whose rows were written."""
    stored = sum(len(batch.rows) for batch in collected.rows)
    quarantined = len(collected.rejected)
    if collected.failure:
        others = [e for e in collected.errors if e != collected.failure]
        return "failed", "; ".join([collected.failure, *others])
    if quarantined and not stored:
        error = f"nothing usable: all {quarantined} item(s) quarantined"
        if collected.errors:
            error += "; " + "; ".join(collected.errors)
        return "failed", error
    if quarantined or collected.errors:
        return "partial", "; ".join(collected.errors) or None
    return "ok", None
