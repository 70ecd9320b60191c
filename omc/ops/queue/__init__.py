"""The job queue: OMC's work on Celery workers (broker: Redis by default, RabbitMQ optional).

It lives in `omc.ops` because it is operations machinery that drives every inner context
(collectors of the Ledgers, backtests and sweeps of the Floor) and is wired by the shell
(`omc worker`, `omc scheduler`, `omc serve`); nothing inside the contexts imports it.

* `settings` — `OMC_BROKER_URL` and the queue's knobs; unset broker: everything runs in
  process as before.
* `app` — the one Celery app (acks late, requeue on a lost worker, visibility timeout).
* `journal` — the `ops_jobs` rows: claims of scheduled slots, attempts, dead letters.
* `tasks` — the jobs: collector runs, candles, backfills, sweep chunks, notifier deliveries.
* `scheduler` — the one active scheduler (a lease in the database) and its standbys.
* `sweep` — a sweep split over the workers and gathered.
"""
