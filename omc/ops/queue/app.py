"""The one Celery app of OMC and how it is configured.

Every job is acknowledged late (after it ran, `task_acks_late`), so a worker that dies in the
middle leaves its message unacknowledged: the prefork pool requeues it when a child is lost
(`task_reject_on_worker_lost`), and a Redis broker delivers it again to another worker once
`OMC_QUEUE_VISIBILITY_S` has passed when the whole worker died. Workers take one message
at a time (`worker_prefetch_multiplier=1`), so nothing waits behind a long job in a busy
worker. Messages are JSON (never pickle).

Queues: `collect` (collector runs, candles, backfills), `compute` (backtests, sweep chunks)
and `notify` (notifier deliveries); `omc worker --queues` picks some.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from celery import Celery
from sqlalchemy import Engine

from omc.core.config import Settings
from omc.ops.queue.settings import QueueSettings

ROUTES = {
    "omc.collect": "collect",
    "omc.candles": "collect",
    "omc.backfill": "collect",
    "omc.backtest": "compute",
    "omc.sweep_chunk": "compute",
    "omc.notify": "notify",
}

app = Celery("omc", set_as_current=False)


def configure(queue: QueueSettings | None = None) -> Celery:
    """The app, pointed at the configured broker (ValueError when none is)."""
    queue = queue or QueueSettings()
    if queue.broker_url is None:
        raise ValueError("no broker configured: set OMC_BROKER_URL (e.g. redis://localhost:6379/0)")
    conf: dict[str, Any] = {
        "broker_url": queue.broker_url,
        "result_backend": queue.effective_result_backend,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": {"visibility_timeout": queue.queue_visibility_s},
        "result_backend_transport_options": {"visibility_timeout": queue.queue_visibility_s},
        "result_expires": 24 * 3600,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": "compute",
        "task_routes": {name: {"queue": q} for name, q in ROUTES.items()},
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "enable_utc": True,
        "timezone": "UTC",
    }
    app.conf.update(conf)
    app.conf.omc_queue = queue
    return app


def queue_settings() -> QueueSettings:
    found = app.conf.get("omc_queue")
    return found if isinstance(found, QueueSettings) else QueueSettings()


@lru_cache(maxsize=4)
def _engine(url: str, pid: int) -> Engine:
    from omc.core.db import make_engine

    return make_engine(url)


def worker_engine() -> Engine:
    """This worker process's engine (one per process: a forked child never reuses its
    parent's connections)."""
    return _engine(Settings().effective_database_url, os.getpid())


def broker_problem(url: str, timeout_s: float = 2.0) -> str | None:
    """None when the broker at `url` answers, else why not (one line, no secret)."""
    from kombu import Connection

    from omc.core.masking import mask_text

    try:
        with Connection(url, connect_timeout=timeout_s) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout_s)
    except Exception as exc:  # any failure to connect means "not ready"
        return mask_text(f"{type(exc).__name__}: {exc}", 200)
    return None


def worker_alive_here(timeout_s: float = 5.0) -> bool:
    """A worker of this host answers a ping (the container healthcheck of `omc worker`)."""
    import socket

    replies = configure().control.inspect(timeout=timeout_s).ping() or {}
    return any(name.endswith("@" + socket.gethostname()) for name in replies)


def redeliver_forever(queue: QueueSettings, stop: Any) -> None:
    """Redis broker: every quarter of the visibility timeout (at most 10 s), put back on
    their queues the messages delivered longer ago than `OMC_QUEUE_VISIBILITY_S` and never
    acknowledged (their worker died). Kombu restores them by itself only every ~100 s; this
    makes the visibility timeout the delay that counts. Runs until `stop` (an Event) is set;
    every worker runs one, and a Redis mutex lets one restore at a time."""
    import logging

    from kombu import Connection

    if queue.broker_url is None or not queue.broker_url.startswith(("redis://", "rediss://")):
        return
    every = min(queue.queue_visibility_s / 4, 10.0)
    options = {"visibility_timeout": queue.queue_visibility_s}
    while not stop.wait(every):
        try:
            with Connection(queue.broker_url, transport_options=options) as conn:
                conn.default_channel.qos.restore_visible(num=100, interval=1)
        except Exception as exc:  # the broker is away: the worker reports it; try again
            logging.getLogger("omc.ops.queue").warning("redelivery pass failed: %s", exc)
