"""The in-process scheduler: every collector on its own interval (APScheduler).

Each job runs at most one instance at a time and missed runs are coalesced, so a slow source
never piles up work. Jobs that are not collectors (e.g. building candles from ticks) are
added with `add_job`.

Shutdown: Ctrl-C or SIGTERM (`terminate_as_exit`) stops the scheduler; every run still in
flight is recorded as `interrupted` at once (and stores nothing if its fetch returns later).
Runs a killed process left `running` are closed as `interrupted` when the scheduler starts.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from omc.core.time import utcnow
from omc.ledgers.collectors.base import Collector, CollectorRunner

log = logging.getLogger(__name__)


@contextmanager
def terminate_as_exit() -> Iterator[None]:
    """While inside, SIGTERM raises SystemExit(143) in the main thread (like Ctrl-C raises
    KeyboardInterrupt), so runs in flight are closed truthfully instead of left `running`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(143)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class CollectorScheduler:
    def __init__(self, runner: CollectorRunner) -> None:
        self.runner = runner
        self.scheduler = BlockingScheduler(timezone="UTC")
        self.collectors: list[Collector] = []

    def add_collector(self, collector: Collector) -> None:
        self.collectors.append(collector)
        self.scheduler.add_job(
            self._run,
            IntervalTrigger(seconds=collector.interval_s),
            args=[collector],
            id=f"collect:{collector.name}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(collector.interval_s)),
            next_run_time=utcnow(),
        )

    def _run(self, collector: Collector) -> object:
        """One scheduled run, skipped while an admin has paused the collector."""
        from omc.ledgers.collectors.controls import is_paused

        if is_paused(self.runner.engine, collector.name):
            log.info("%s is paused: run skipped", collector.name)
            return None
        return self.runner.run(collector)

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
        """Block, running jobs, until shutdown (Ctrl-C or SIGTERM)."""
        closed = self.runner.close_abandoned()
        if closed:
            log.warning("closed %d run(s) a killed process left running as interrupted", closed)
        reason = "shutdown"
        with terminate_as_exit():
            try:
                self.scheduler.start()
            except KeyboardInterrupt:
                reason = "shutdown (Ctrl-C)"
            except SystemExit:
                reason = "shutdown (SIGTERM)"
            finally:
                interrupted = self.runner.stop(reason)
                if interrupted:
                    log.warning("%s: %d run(s) in flight recorded interrupted", reason, interrupted)
                if self.scheduler.running:
                    self.scheduler.shutdown(wait=False)
                for collector in self.collectors:
                    collector.close()

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)
