"""`omc worker` (run queued jobs) and `omc scheduler` (put scheduled jobs on the queue; one
active, the others standby) — both need `OMC_BROKER_URL` (see `omc.ops.queue`)."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

import typer

from omc.cli.context import console, engine, err_console, fail, settings

CANDLES_INTERVAL_S = 60.0


def _app() -> object:
    from omc.ops.queue.app import configure

    try:
        return configure()
    except ValueError as exc:
        fail(str(exc))


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker(
        queues: str = typer.Option(
            "collect,compute,notify", "--queues", help="Comma-separated queues to take jobs from."
        ),
        concurrency: int = typer.Option(
            0, "--concurrency", min=0, help="Jobs at once (processes; 0: one per core)."
        ),
        pool: str = typer.Option(
            "prefork", "--pool", help="prefork (processes), threads or solo (one job at a time)."
        ),
        metrics_port: int = typer.Option(
            0, "--metrics-port", min=0, max=65535, help="Serve Prometheus metrics on this port."
        ),
    ) -> None:
        """Run jobs from the queue (collector runs, candles, backfills, backtests, sweeps,
        notifier deliveries) until stopped."""
        from omc.ops.queue.settings import QUEUES

        wanted = [q.strip() for q in queues.split(",") if q.strip()]
        unknown = sorted(set(wanted) - set(QUEUES))
        if unknown or not wanted:
            fail(f"--queues: unknown {unknown or wanted}; known: {', '.join(QUEUES)}")
        if pool not in ("prefork", "threads", "solo"):
            fail(f"--pool: {pool!r} is not one of prefork, threads, solo")
        celery = _app()
        engine()  # the schema is brought up to date before any job runs
        import omc.api.queued
        import omc.ops.queue.tasks  # noqa: F401  (registers the tasks)

        argv = [
            "worker",
            f"--queues={','.join(wanted)}",
            f"--pool={pool}",
            f"--hostname=omc-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            f"--loglevel={settings().log_level.upper()}",
        ]
        if concurrency:
            argv.append(f"--concurrency={concurrency}")
        from omc.ops.queue.app import queue_settings, redeliver_forever

        if metrics_port:
            from omc.floor.trading.guard import GuardSettings
            from omc.ops.metrics import registry, serve

            serve(registry(engine(), settings(), GuardSettings()), "0.0.0.0", metrics_port)

        stop = threading.Event()
        threading.Thread(
            target=redeliver_forever, args=(queue_settings(), stop), daemon=True
        ).start()
        err_console.print(f"worker on queues {', '.join(wanted)} ({pool})")
        try:
            celery.worker_main(argv)  # type: ignore[attr-defined]
        finally:
            stop.set()

    @app.command("scheduler")
    def scheduler(
        sources: str | None = typer.Option(
            None, help="Comma-separated collectors to schedule (default: all that can run)."
        ),
    ) -> None:
        """Put every collector run (and candle building) on the queue once per slot. Start
        two: one is active, the other waits as standby and takes over when it dies."""
        from omc.ledgers.collectors import registry
        from omc.ops.queue.scheduler import Schedule, Scheduler
        from omc.ops.queue.settings import QueueSettings

        _app()
        config = settings()
        requested = [s.strip() for s in sources.split(",") if s.strip()] if sources else None
        schedules = []
        for name in requested or registry.available():
            try:
                collector = registry.build(name, config)
            except ValueError as exc:
                if requested:
                    fail(str(exc))
                err_console.print(f"[yellow]not scheduling {name}:[/] {exc}")
                continue
            schedules.append(
                Schedule(f"collect:{name}", "collect", collector.interval_s, {"source": name})
            )
            collector.close()
        if not schedules:
            fail("no collector can run with the current settings")
        schedules.append(Schedule("candles:ticks", "candles", CANDLES_INTERVAL_S))
        stop = threading.Event()

        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        names = ", ".join(f"{s.name} every {s.interval_s:g} s" for s in schedules)
        console.print(f"scheduler: {names}", highlight=False)
        Scheduler(
            engine(),
            schedules,
            lease_s=QueueSettings().scheduler_lease_s,
            report=lambda line: err_console.print(line, highlight=False),
        ).run(stop)
