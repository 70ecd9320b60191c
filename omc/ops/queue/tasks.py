"""The jobs the workers run, each a Celery task wrapped by `tracked` (the `ops_jobs` row).

* `omc.collect(source, slot)` — one run of a collector for a scheduled slot. Rows are
  stamped with the time of the fetch (see `omc.ops.queue.scheduler`), and written by
  upserts on their natural keys, so a run delivered twice leaves no duplicate. A failed
  run is retried, then dead-lettered.
* `omc.candles(timeframes)` — closed candles from stored ticks (idempotent by design).
* `omc.backfill(...)` — `omc backfill` as a job (resumable: it starts after what is stored).
* `omc.sweep_chunk(spec, chunk)` — part of a sweep (`omc.ops.queue.sweep`).
* `omc.notify(alert_id, notifier)` — one notifier delivery of a stored alert.
* `omc.backtest(job_id)` — an API backtest job; registered by `omc.api.queued`.

`tracked` counts each start (`journal.begin`: a job already done is not run again, a job
started too often is dead-lettered), records the outcome and the duration, and retries a
failure after `OMC_QUEUE_RETRY_DELAY_S` until `OMC_QUEUE_MAX_ATTEMPTS` starts were used.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine

from omc.core.config import Settings
from omc.core.time import parse_utc
from omc.ops.queue import journal
from omc.ops.queue.app import app, queue_settings, worker_engine

log = logging.getLogger("omc.ops.queue")


class JobFailed(RuntimeError):
    """The job ran and reported a failure (retried like any exception)."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


JobBody = Callable[..., Any]
DURATIONS: dict[str, list[float]] = {}  # kind -> seconds of this process's finished jobs


def run_tracked(
    task: Any, kind: str, body: JobBody, kwargs: dict[str, Any], pure: bool = False
) -> Any:
    """Run `body(engine, **kwargs)` as job `task.request.id` (see the module doc)."""
    engine = worker_engine()
    queue = queue_settings()
    job_id = str(task.request.id)
    start = journal.begin(
        engine, job_id, kind, kwargs, worker_name(), queue.queue_max_attempts, pure=pure
    )
    if not start.run:
        log.warning("job %s (%s) not run: %s", job_id, kind, start.reason)
        return None
    began = time.monotonic()
    try:
        result = body(engine, **kwargs)
    except Exception as exc:
        dead = start.attempt >= queue.queue_max_attempts
        journal.fail(engine, job_id, f"{type(exc).__name__}: {exc}", dead=dead)
        log.warning("job %s (%s) attempt %d failed%s", job_id, kind, start.attempt,
                    " — dead-lettered" if dead else "; retrying")  # fmt: skip
        if dead:
            raise
        raise task.retry(exc=exc, countdown=queue.queue_retry_delay_s, max_retries=None) from exc
    journal.finish(engine, job_id)
    DURATIONS.setdefault(kind, []).append(time.monotonic() - began)
    return result


def tracked(kind: str, *, pure: bool = False) -> Callable[[JobBody], Any]:
    """Register `body` as the task `omc.<kind>` (keyword arguments only, JSON); a `pure`
    job only returns its result and may run again after it was done."""

    def register(body: JobBody) -> Any:
        def task(self: Any, **kwargs: Any) -> Any:
            return run_tracked(self, kind, body, kwargs, pure)

        task.__doc__ = body.__doc__
        task.__name__ = body.__name__
        return app.task(name=f"omc.{kind}", bind=True)(task)

    return register


@lru_cache(maxsize=1)
def _alert_engine(engine: Engine) -> Any:
    """This process's bus and alert engine: listings raise alerts as soon as they are stored."""
    from omc.core.events import make_bus
    from omc.ledgers.catalyst.alerts import AlertEngine

    settings = Settings()
    bus = make_bus(settings)
    return AlertEngine.from_settings(engine, bus, settings).attach()


@tracked("collect")
def collect(engine: Engine, source: str, slot: str) -> dict[str, Any]:
    """One collector run of `source` for the slot starting at `slot` (ISO UTC; recorded on
    the job's row, the run observes the market when it runs)."""
    from omc.ledgers.collectors import registry
    from omc.ledgers.collectors.base import CollectorRunner

    collector = registry.build(source, Settings())
    runner = CollectorRunner(engine, _alert_engine(engine).bus)
    runner.close_abandoned()  # runs a dead worker of this host left `running`
    try:
        summary = runner.run(collector)
    finally:
        collector.close()
    if summary.status == "failed":
        raise JobFailed(f"{source}: {summary.error}")
    return {k: v for k, v in summary.as_dict().items() if k != "error"}


@tracked("candles")
def candles(
    engine: Engine, timeframes: list[str] | None = None, slot: str | None = None
) -> dict[str, Any]:
    """Closed candles from stored ticks (`slot`: when scheduled)."""
    from omc.ledgers.exchange.tick_candles import build_tick_candles

    report = build_tick_candles(engine, timeframes or Settings().tick_candle_timeframes)
    return {"report": str(report)}


@tracked("backfill")
def backfill(
    engine: Engine, exchange: str, symbol: str, timeframe: str, since: str, until: str | None
) -> dict[str, Any]:
    """OHLCV history of one market (resumes after what is stored)."""
    from omc.ledgers.exchange.backfill import backfill as run_backfill

    report = run_backfill(
        engine,
        exchange,
        symbol,
        timeframe,
        parse_utc(since),
        parse_utc(until) if until else None,
        settings=Settings(),
    )
    return {"status": report.status, "inserted": report.inserted, "fetched": report.fetched}


@tracked("notify")
def notify(engine: Engine, alert_id: int, notifier: str) -> dict[str, Any]:
    """Deliver stored alert `alert_id` through `notifier` (its outcome is on the alert)."""
    from sqlalchemy import select

    from omc.ledgers.catalyst.alerts import ALERTS, alert_dict

    alerts = _alert_engine(engine)
    with engine.connect() as conn:
        row = conn.execute(select(ALERTS).where(ALERTS.c.id == alert_id)).first()
    if row is None:
        raise LookupError(f"alert {alert_id} does not exist")
    alerts.deliver(alert_dict(row), [notifier])
    alerts.wait()
    return {"alert_id": alert_id, "notifier": notifier}


@tracked("sweep_chunk", pure=True)
def sweep_chunk(engine: Engine, spec: dict[str, Any], chunk: list[list[Any]]) -> list[Any]:
    """Rows of one chunk of a sweep: [[index, row or None], …]."""
    from omc.ops.queue.sweep import evaluate_chunk

    return evaluate_chunk(engine, spec, chunk)
