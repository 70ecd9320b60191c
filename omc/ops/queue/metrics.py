"""Prometheus metrics of the job queue, read at scrape time, so one scrape of any process
(the API's `/metrics`, `omc metrics serve`) shows the whole fleet:

* `omc_queue_jobs{kind,status}` — jobs in `ops_jobs` per kind and status;
* `omc_queue_dead_letters` — jobs given up on (the `OmcDeadLetters` alert);
* `omc_job_duration_seconds_mean|max{kind}` — of the jobs finished in the last hour;
* `omc_queue_depth{queue}` — messages waiting in the broker per queue (Redis broker; the
  autoscaling signal of the workers, and the `OmcQueueBacklog` alert).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import timedelta

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from omc.core.time import utcnow
from omc.ops.queue.journal import JOBS, counts
from omc.ops.queue.settings import QUEUES, QueueSettings

log = logging.getLogger("omc.ops.queue.metrics")
WINDOW = timedelta(hours=1)


def queue_depths(broker_url: str | None) -> dict[str, int] | None:
    """Messages waiting per queue (None: no Redis broker, or it did not answer)."""
    if broker_url is None or not broker_url.startswith(("redis://", "rediss://")):
        return None
    import redis

    try:
        client = redis.Redis.from_url(broker_url, socket_timeout=2)
        return {queue: int(client.llen(queue)) for queue in QUEUES}
    except redis.RedisError as exc:
        log.warning("metrics: broker not readable: %s", type(exc).__name__)
        return None


class QueueCollector(Collector):
    def __init__(self, engine: Engine, queue: QueueSettings | None = None) -> None:
        self.engine = engine
        self.queue = queue or QueueSettings()

    def describe(self) -> Iterable[Metric]:
        return []  # nothing is read when the collector is registered

    def collect(self) -> Iterator[Metric]:
        try:
            families = list(self._families())
        except SQLAlchemyError as exc:  # `omc_database_up` reports the database itself
            log.warning("metrics: queue journal not readable: %s", type(exc).__name__)
            return
        yield from families

    def _families(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("omc_queue_jobs", "Jobs of the queue.", labels=["kind", "status"])
        dead = GaugeMetricFamily("omc_queue_dead_letters", "Jobs given up on (dead letters).")
        total_dead = 0
        for (kind, status), n in sorted(counts(self.engine).items()):
            jobs.add_metric([kind, status], n)
            total_dead += n if status == "dead" else 0
        dead.add_metric([], total_dead)
        yield jobs
        yield dead
        t = JOBS.c
        since = utcnow() - WINDOW
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.kind, t.started_at, t.finished_at).where(
                    t.status == "done", t.finished_at >= since, t.started_at.is_not(None)
                )
            ).all()
        took: dict[str, list[float]] = {}
        for kind, started, finished in rows:
            took.setdefault(kind, []).append(max((finished - started).total_seconds(), 0.0))
        mean = GaugeMetricFamily(
            "omc_job_duration_seconds_mean", "Mean run time of jobs done in the last hour.",
            labels=["kind"],
        )  # fmt: skip
        high = GaugeMetricFamily(
            "omc_job_duration_seconds_max", "Longest run time of jobs done in the last hour.",
            labels=["kind"],
        )  # fmt: skip
        for kind, values in sorted(took.items()):
            mean.add_metric([kind], sum(values) / len(values))
            high.add_metric([kind], max(values))
        yield mean
        yield high
        depths = queue_depths(self.queue.broker_url)
        if depths is not None:
            depth = GaugeMetricFamily(
                "omc_queue_depth", "Messages waiting in the broker.", labels=["queue"]
            )
            for queue, n in depths.items():
                depth.add_metric([queue], n)
            yield depth
