"""The in-process scheduler: every collector on its own interval (APScheduler).

Each job runs at most one instance at a time and missed runs are coalesced, so a slow source
never piles up work. Jobs that are not collectors (e.g. building candles from ticks) are
added with `add_job`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from omc.core.time import utcnow
from omc.ledgers.collectors.base import Collector, CollectorRunner

log = logging.getLogger(__name__)


class CollectorScheduler:
    def __init__(self, runner: CollectorRunner) -> None:
        self.runner = runner
        self.scheduler = BlockingScheduler(timezone="UTC")
        self.collectors: list[Collector] = []

    def add_collector(self, collector: Collector) -> None:
        self.collectors.append(collector)
        self.scheduler.add_job(
            self.runner.run,
            IntervalTrigger(seconds=collector.interval_s),
            args=[collector],
            id=f"collect:{collector.name}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(collector.interval_s)),
            next_run_time=utcnow(),
        )

    def add_job(self, name: str, fn: Callable[[], object], interval_s: float) -> None:
        self.scheduler.add_job(
            fn,
            IntervalTrigger(seconds=interval_s),
            id=name,
            max_instances=1,
            coalesce=True,
            next_run_time=utcnow(),
        )

    def start(self) -> None:
        """Block, running jobs, until shutdown (Ctrl-C)."""
        try:
            self.scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            for collector in self.collectors:
                collector.close()

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)
