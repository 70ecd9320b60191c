"""The `ops_jobs` rows (see `omc.ops.models`): what the database knows of every queued job.

The database is the truth, the broker only carries messages:

* `claim` — a new job row; with a `slot_key` (one per scheduled slot) the insert is
  atomic on the unique key, so of any number of schedulers exactly one claims a slot.
* `begin` — a worker starts the job: one more attempt, atomically, unless the job is already
  `done` or `dead` (a message delivered twice runs once). A job started more than
  `max_attempts` times — its workers died each time, or it failed each time — is a poison job:
  it goes to the dead letters with its last error instead of running again.
* `finish` / `fail` — the outcome; a failure with attempts left is `retrying`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, func, select, update

from omc.core.masking import mask_text
from omc.core.time import utcnow
from omc.core.upsert import upsert
from omc.ops.models import OpsJob

JOBS = cast(Table, OpsJob.__table__)
FINAL = ("done", "dead")
MAX_ERROR = 500


def new_id() -> str:
    return uuid.uuid4().hex


def claim(
    engine: Engine,
    kind: str,
    args: dict[str, Any],
    *,
    slot_key: str | None = None,
    status: str = "queued",
    job_id: str | None = None,
) -> str | None:
    """Store a new job; its id, or None when `slot_key` was claimed already."""
    job_id = job_id or new_id()
    row = {
        "id": job_id,
        "kind": kind,
        "slot_key": slot_key,
        "args": args,
        "status": status,
        "attempts": 0,
        "worker": None,
        "error": None,
        "created_at": utcnow(),
        "started_at": None,
        "finished_at": None,
    }
    with engine.begin() as conn:
        key = ("slot_key",) if slot_key is not None else ("id",)
        inserted = upsert(conn, JOBS, [row], key=key).inserted
    return job_id if inserted else None


def set_status(engine: Engine, job_id: str, status: str, *, unless_final: bool = True) -> None:
    query = update(JOBS).where(JOBS.c.id == job_id)
    if unless_final:
        query = query.where(JOBS.c.status.not_in(FINAL))
    with engine.begin() as conn:
        conn.execute(query.values(status=status))


@dataclass(frozen=True)
class Start:
    """What `begin` decided: run (attempt n), or skip and why."""

    run: bool
    attempt: int
    reason: str = ""


def begin(
    engine: Engine,
    job_id: str,
    kind: str,
    args: dict[str, Any],
    worker: str,
    max_attempts: int,
    *,
    pure: bool = False,
) -> Start:
    """Count one more start of the job (see the module doc). A `pure` job (its result is
    returned, nothing is written) runs again when delivered again after it was done."""
    claim(engine, kind, args, job_id=job_id)  # a job sent without a row gets one
    now = utcnow()
    t = JOBS.c
    with engine.begin() as conn:
        started = conn.execute(
            update(JOBS)
            .where(t.id == job_id, t.status.not_in(("dead",) if pure else FINAL))
            .values(attempts=t.attempts + 1, status="running", worker=worker, started_at=now)
        ).rowcount
        row = conn.execute(select(t.status, t.attempts, t.error).where(t.id == job_id)).one()
    if not started:
        return Start(False, row.attempts, f"already {row.status}")
    if row.attempts > max_attempts:
        last = row.error or "its worker died while running it"
        error = mask_text(
            f"gave up after {max_attempts} attempts; last: {last}".splitlines()[0], MAX_ERROR
        )
        with engine.begin() as conn:
            conn.execute(
                update(JOBS)
                .where(t.id == job_id)
                .values(status="dead", error=error, finished_at=utcnow(), attempts=max_attempts)
            )
        return Start(False, max_attempts, "dead: " + error)
    return Start(True, row.attempts)


def finish(engine: Engine, job_id: str) -> bool:
    """Mark the job done; False when it was done already (a duplicate run)."""
    t = JOBS.c
    with engine.begin() as conn:
        return bool(
            conn.execute(
                update(JOBS)
                .where(t.id == job_id, t.status != "done")
                .values(status="done", error=None, finished_at=utcnow())
            ).rowcount
        )


def fail(engine: Engine, job_id: str, error: str, *, dead: bool) -> None:
    """Record a failure: `dead` (no attempt left) or `retrying`."""
    t = JOBS.c
    values: dict[str, Any] = {
        "status": "dead" if dead else "retrying",
        "error": mask_text(error.strip().splitlines()[0] if error.strip() else "error", MAX_ERROR),
    }
    if dead:
        values["finished_at"] = utcnow()
    with engine.begin() as conn:
        conn.execute(update(JOBS).where(t.id == job_id, t.status != "done").values(**values))


@dataclass(frozen=True)
class DeadLetter:
    id: str
    kind: str
    slot_key: str | None
    args: dict[str, Any]
    attempts: int
    error: str | None
    created_at: datetime
    finished_at: datetime | None


def dead_letters(engine: Engine, limit: int = 50) -> list[DeadLetter]:
    """The newest dead letters first."""
    t = JOBS.c
    query = (
        select(t.id, t.kind, t.slot_key, t.args, t.attempts, t.error, t.created_at, t.finished_at)
        .where(t.status == "dead")
        .order_by(t.created_at.desc(), t.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [DeadLetter(*row) for row in conn.execute(query)]


def counts(engine: Engine) -> dict[tuple[str, str], int]:
    """Jobs per (kind, status)."""
    t = JOBS.c
    with engine.connect() as conn:
        rows = conn.execute(select(t.kind, t.status, func.count()).group_by(t.kind, t.status))
        return {(kind, status): n for kind, status, n in rows}


def unsent(engine: Engine, older_than_s: float) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, kind, args) of slots a scheduler claimed but may not have sent (it died between
    the claim and the send)."""
    t = JOBS.c
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.id, t.kind, t.args).where(t.status == "pending", t.created_at < cutoff)
        )
        return [(row.id, row.kind, row.args) for row in rows]


def latest_slot(engine: Engine, schedule: str) -> str | None:
    """The latest slot key claimed for `schedule` (keys sort by time: `name@ISO`)."""
    t = JOBS.c
    with engine.connect() as conn:
        found = conn.execute(
            select(func.max(t.slot_key)).where(t.slot_key.like(f"{schedule}@%"))
        ).scalar()
    return None if found is None else str(found)
