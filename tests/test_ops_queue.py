"""The fleet on loopback (real PostgreSQL and Redis, `omc` subprocesses): a scheduler, a
standby scheduler and two workers collect CoinSpot every 1 s slot from the fake server. The
active scheduler and the worker in the middle of a job are SIGKILLed: the standby takes
over, the killed job finishes on the other worker, every slot ran exactly once, and the
ticks are all there, once each."""

from __future__ import annotations

import itertools
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from omc.core.db import make_engine
from omc.core.time import parse_utc
from omc.ops.queue.journal import JOBS
from tests.fakes.coinspot_server import Fault, running_coinspot
from tests.queue_support import Fleet, broker_url, fleet_database, wait_for

BROKER_DB = 14  # this test's own Redis database
fake_coinspot = contextmanager(running_coinspot)
pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def lease_holder_pid(engine: object) -> int | None:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        holder = conn.execute(
            text("select holder from floor_account_leases where account = 'ops:scheduler'")
        ).scalar()
    return int(holder.split(":")[1]) if holder else None


def test_kill_the_scheduler_and_a_worker_mid_job(tmp_path: Path) -> None:
    with fleet_database(BROKER_DB) as url, fake_coinspot() as fake:
        engine = make_engine(url)
        fleet = Fleet(
            {
                "OMC_DATABASE_URL": url,
                "OMC_BROKER_URL": broker_url(BROKER_DB),
                "OMC_DATA_DIR": str(tmp_path),
                "OMC_COINSPOT_BASE_URL": fake.url,
                "OMC_COINSPOT_INTERVAL_S": "1",
                "OMC_COINSPOT_TRADE_COINS": "",
                "OMC_QUEUE_VISIBILITY_S": "4",
                "OMC_QUEUE_RETRY_DELAY_S": "0.2",
                "OMC_SCHEDULER_LEASE_S": "3",
                "OMC_LOG_LEVEL": "WARNING",
            },
            tmp_path,
        )
        try:
            for name in ("worker1", "worker2"):
                fleet.start(name, "worker", "--queues", "collect", "--pool", "solo")
            active = fleet.start("scheduler1", "scheduler", "--sources", "coinspot")
            wait_for("scheduler1 active", lambda: lease_holder_pid(engine) == active.pid, 30, fleet)
            standby = fleet.start("scheduler2", "scheduler", "--sources", "coinspot")
            wait_for("a collected slot", lambda: done_slots(engine) >= 2, 30, fleet)
            time.sleep(1.5)  # the standby is up and waiting
            fake.inject(Fault("delay", path="/pubapi/v2/latest", seconds=2.5))
            victim = wait_for("the slow job", lambda: running_job(engine, fake), 10, fleet)
            job_id, worker_pid = victim
            killed = next(n for n in ("worker1", "worker2") if fleet.procs[n].pid == worker_pid)
            fleet.kill(killed)
            fleet.kill("scheduler1")
            wait_for(
                "the standby active", lambda: lease_holder_pid(engine) == standby.pid, 10, fleet
            )
            time.sleep(3)  # the new active scheduler schedules a few slots
            fleet.kill("scheduler2")
            wait_for("every slot done", lambda: all_done(engine), 20, fleet)
        finally:
            fleet.kill_all()
        with engine.connect() as conn:
            jobs = conn.execute(select(JOBS).where(JOBS.c.kind == "collect")).all()
            ticks = conn.execute(
                text(
                    "select ts, count(*), count(distinct coin || '/' || market) from ticks "
                    "group by ts"
                )
            ).all()
            runs_ok = conn.execute(
                text("select count(*) from collector_runs where status = 'ok'")
            ).scalar()
        engine.dispose()
    slots = sorted(parse_utc(job.args["slot"]) for job in jobs)
    assert len(slots) == len(set(slots)) >= 6  # one job per slot ...
    assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(slots))
    assert all(job.status == "done" for job in jobs), [(j.slot_key, j.status) for j in jobs]
    # ... which ran to the end once (a run delivered twice would add an `ok` run)
    killed_job = next(job for job in jobs if job.id == job_id)
    assert killed_job.attempts >= 2 and not killed_job.worker.endswith(f":{worker_pid}")
    assert runs_ok >= len(slots)
    # every fetch stored all its quotes, once each (no duplicate, nothing partial)
    sizes = {(n, distinct) for _ts, n, distinct in ticks}
    assert len(sizes) == 1 and next(iter(sizes))[0] == next(iter(sizes))[1] > 0


def done_slots(engine: object) -> int:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(
            conn.execute(
                text("select count(*) from ops_jobs where kind = 'collect' and status = 'done'")
            ).scalar()
        )


def running_job(engine: object, fake: object) -> tuple[str, int] | None:
    if fake.pending_faults():  # type: ignore[attr-defined]
        return None  # the slow request has not arrived yet
    with engine.connect() as conn:  # type: ignore[attr-defined]
        row = conn.execute(
            text(
                "select id, worker from ops_jobs where kind = 'collect' and status = 'running' "
                "order by started_at limit 1"
            )
        ).first()
    return (row.id, int(row.worker.rsplit(":", 1)[1])) if row else None


def all_done(engine: object) -> bool:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        left = conn.execute(
            text("select count(*) from ops_jobs where kind = 'collect' and status <> 'done'")
        ).scalar()
    return left == 0
