"""`omc scheduler`: puts every scheduled job on the queue once per slot; one is active.

Exactly one scheduler is active: the one holding the lease `ops:scheduler` (the database
lease of `omc.floor.trading.lease`, the same atomic take-over that keeps one writer per
account). The others wait as standbys, trying to take the lease every third of its TTL;
when the active one dies on this host a standby takes over at its next try (a dead pid
frees the lease), on another host when the lease expires (`OMC_SCHEDULER_LEASE_S`).

Each job's time is cut into slots of its interval (`collect:coinspot` every 5 s: slots
13:40:00, 13:40:05, …). For each new slot the active scheduler claims the slot's row in
`ops_jobs` (unique `slot_key`, so even two schedulers that both believe they are active —
a stalled one that lost its lease — claim a slot once), sends the job, and marks it
`queued`. A slot claimed but never sent (the scheduler died in between) is sent by the
next active scheduler. Slots missed while no scheduler was active (a failover) or while
this one was slow are caught up, back to the last claimed slot but never older than
`catch_up_s` (default: the lease TTL, the longest failover): beyond that, like the
in-process scheduler, missed runs are coalesced into the next one.

A collector stamps what it fetched with the time it fetched it (floored to its interval),
never with the slot's start: a slot run late, or retried after its worker died, observes
the market when it runs, so nothing is dated before it was known. Two runs that land in the
same interval write the same keys, and the upserts keep one row.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from omc.core.time import iso_utc, parse_utc, utcnow
from omc.floor.trading.lease import Lease, LeaseHeld, LeaseLost
from omc.ops.queue import journal

log = logging.getLogger("omc.ops.queue.scheduler")

LEASE_NAME = "ops:scheduler"
Send = Callable[[str, str, dict[str, Any]], None]  # (kind, job id, kwargs)


@dataclass(frozen=True)
class Schedule:
    """A job run every `interval_s`: task `omc.<kind>` with `args` plus its `slot`."""

    name: str
    kind: str
    interval_s: float
    args: dict[str, Any] = field(default_factory=dict)


def slot_start(moment: datetime, interval_s: float) -> datetime:
    """The start of the slot of `interval_s` that holds `moment` (slots start at the epoch)."""
    ts = moment.timestamp()
    return datetime.fromtimestamp(ts - ts % interval_s, UTC)


def celery_send(kind: str, job_id: str, kwargs: dict[str, Any]) -> None:
    from omc.ops.queue.app import app

    app.send_task(f"omc.{kind}", kwargs=kwargs, task_id=job_id)


class Scheduler:
    """One scheduler process (see the module doc)."""

    def __init__(
        self,
        engine: Engine,
        schedules: list[Schedule],
        *,
        lease_s: float,
        send: Send = celery_send,
        clock: Callable[[], datetime] = utcnow,
        report: Callable[[str], None] = log.info,
        catch_up_s: float | None = None,
    ) -> None:
        self.engine = engine
        self.schedules = schedules
        self.lease_s = lease_s
        self.catch_up_s = lease_s if catch_up_s is None else catch_up_s
        self.send = send
        self.clock = clock
        self.report = report
        self.lease: Lease | None = None
        self.last: dict[str, datetime] = {}
        self._standby_said = False

    @property
    def active(self) -> bool:
        return self.lease is not None

    def _hold(self) -> None:
        """Take the lease (standby: try again later) or renew it."""
        if self.lease is None:
            try:
                self.lease = Lease.acquire(self.engine, LEASE_NAME, ttl_s=self.lease_s)
            except LeaseHeld as exc:
                if not self._standby_said:
                    self.report(f"standby: {exc}")
                    self._standby_said = True
                return
            self.report(f"active (lease {LEASE_NAME} held by {self.lease.holder})")
            self._standby_said = False
            self._send_unsent()
            for schedule in self.schedules:
                key = journal.latest_slot(self.engine, schedule.name)
                if key is not None:
                    self.last[schedule.name] = parse_utc(key.rpartition("@")[2])
            return
        try:
            self.lease.heartbeat()
        except LeaseLost as exc:
            self.report(f"lost the lease, standing by: {exc}")
            self.lease = None
            self.last.clear()

    def _send_unsent(self) -> None:
        for job_id, kind, args in journal.unsent(self.engine, older_than_s=0):
            self.send(kind, job_id, args)
            journal.set_status(self.engine, job_id, "queued")

    def step(self) -> None:
        """One pass: hold the lease, then put every new slot on the queue."""
        self._hold()
        if self.lease is None:
            return
        now = self.clock()
        for schedule in self.schedules:
            for slot in self._due(schedule, now):
                self.last[schedule.name] = slot
                self._put(schedule, slot)

    def _due(self, schedule: Schedule, now: datetime) -> list[datetime]:
        """The slots of `schedule` to put on the queue now, oldest first."""
        step = timedelta(seconds=schedule.interval_s)
        current = slot_start(now, schedule.interval_s)
        last = self.last.get(schedule.name)
        if last is None:
            return [current]
        oldest = slot_start(now - timedelta(seconds=self.catch_up_s), schedule.interval_s)
        slot = max(last + step, oldest)
        due = []
        while slot <= current:
            due.append(slot)
            slot += step
        return due

    def _put(self, schedule: Schedule, slot: datetime) -> None:
        args = {**schedule.args, "slot": iso_utc(slot)}
        key = f"{schedule.name}@{iso_utc(slot)}"
        job_id = journal.claim(self.engine, schedule.kind, args, slot_key=key, status="pending")
        if job_id is None:
            return  # claimed already (by us before a restart, or by another scheduler)
        self.send(schedule.kind, job_id, args)
        journal.set_status(self.engine, job_id, "queued")

    def run(self, stop: threading.Event, tick_s: float = 0.2) -> None:
        """Step until `stop` is set; release the lease on the way out."""
        try:
            while not stop.is_set():
                try:
                    self.step()
                except Exception as exc:  # the database or the broker is away: try again
                    self.report(f"scheduler step failed, retrying: {type(exc).__name__}: {exc}")
                stop.wait(min(tick_s, self.lease_s / 3))
        finally:
            if self.lease is not None:
                self.lease.release()
                self.lease = None
