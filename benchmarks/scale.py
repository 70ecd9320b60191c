"""The job queue at scale on this machine: jobs/s and end-to-end collector latency with 1, 2
and 4 worker processes, and a sweep's wall time on 1 vs 2 workers.

Real PostgreSQL and Redis (a scratch schema, Redis database 12), real `omc worker`
subprocesses (`--pool solo`: one job at a time each), the real CoinSpot collector against
the local fake server (`tests/fakes`).

* **jobs/s** — `--jobs` collector runs sent at once (each one: claim its `ops_jobs` row,
  fetch `/latest`, validate, upsert ~70 ticks, record the run); rate = jobs / time until
  the last is done.
* **latency** — `--probes` collector runs sent one a second to otherwise idle workers; latency =
  the job's `finished_at` - its `created_at` (claimed by the sender -> stored): queueing,
  delivery, the fetch, the upserts and the bookkeeping, end to end.
* **sweep** — `sma_cross` over an 80-combination grid on `--bars` 5-minute candles (fills
  capped at half a bar's volume, so every combination runs the event-driven engine), split
  into 8 chunks over 1 and 2 workers; the single-process sweep is timed for reference and the
  rows are checked equal first.

Run: `python benchmarks/scale.py [--jobs 120] [--probes 20] [--bars 20000]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the local fake servers

from sqlalchemy import Engine, text

from omc.core.db import make_engine
from omc.core.time import iso_utc, utcnow
from omc.floor.backtest.sweep import run_sweep
from omc.floor.data import load_db
from omc.ops.queue import journal
from omc.ops.queue.app import configure
from omc.ops.queue.settings import QueueSettings
from omc.ops.queue.sweep import sweep_on_workers
from tests.fakes.coinspot_server import running_coinspot
from tests.queue_support import Fleet, broker_url, fleet_database, wait_for
from tests.test_api_backtests import import_candles

BROKER_DB = 12
COSTS: dict[str, Any] = {"volume_share": 0.5}  # fills capped: the event-driven engine (heavier)
GRID = {
    "fast": [5, 10, 15, 20, 25, 30, 35, 40],
    "slow": [20, 40, 60, 80, 100, 120, 140, 160, 180, 200],
}


def send_collect(engine: Engine, app: Any, n: int, prefix: str = "bench:") -> None:
    job_id = journal.claim(engine, "collect", {"source": "coinspot"}, slot_key=f"{prefix}{n}")
    args = {"source": "coinspot", "slot": iso_utc(utcnow())}
    app.send_task("omc.collect", kwargs=args, task_id=job_id)


def done_count(engine: Engine, prefix: str = "bench:") -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("select count(*) from ops_jobs where slot_key like :p and status = 'done'"),
                {"p": f"{prefix}%"},
            ).scalar()
            or 0
        )


def start_workers(fleet: Fleet, app: Any, n: int, queues: str) -> list[str]:
    names = [f"{queues}-{n}-{i}" for i in range(n)]
    for name in names:
        fleet.start(name, "worker", "--queues", queues, "--pool", "solo")
    wait_for(
        f"{n} workers",
        lambda: len(app.control.inspect(timeout=0.5).ping() or {}) >= n,
        120,
        fleet,
    )
    return names


def queue_round(
    engine: Engine, app: Any, fleet: Fleet, workers: int, jobs: int, probes: int
) -> dict[str, Any]:
    names = start_workers(fleet, app, workers, "collect")
    try:
        with engine.begin() as conn:
            conn.execute(text("delete from ops_jobs"))
        for i in range(3):  # warm up every worker's imports and connections
            send_collect(engine, app, -1 - i)
        wait_for("warm-up", lambda: done_count(engine) >= 3, 60, fleet)
        started = time.perf_counter()
        for i in range(jobs):
            send_collect(engine, app, i)
        wait_for("the burst", lambda: done_count(engine) >= jobs + 3, 600, fleet)
        rate = jobs / (time.perf_counter() - started)
        for i in range(probes):
            send_collect(engine, app, i, prefix="probe:")
            time.sleep(1.0)
        wait_for("the probes", lambda: done_count(engine, "probe:") >= probes, 120, fleet)
        with engine.connect() as conn:
            rows = conn.execute(
                text("select created_at, finished_at from ops_jobs where slot_key like 'probe:%'")
            ).all()
        latencies = sorted((f - c).total_seconds() * 1000 for c, f in rows)
    finally:
        for name in names:
            fleet.kill(name)
    return {
        "workers": workers,
        "jobs_per_s": rate,
        "p50_ms": statistics.median(latencies),
        "p95_ms": latencies[max(0, int(len(latencies) * 0.95) - 1)],
    }


def sweep_round(engine: Engine, app: Any, fleet: Fleet, workers: int) -> float:
    names = start_workers(fleet, app, workers, "compute")
    try:
        warm = {"fast": [5, 10, 15, 20], "slow": [40, 60]}  # every worker loads the bars once
        sweep_on_workers("sma_cross", "BTC/USDT", "5m", warm, exchange="demo", chunks=8)
        started = time.perf_counter()
        sweep_on_workers("sma_cross", "BTC/USDT", "5m", GRID, exchange="demo", chunks=8, **COSTS)
        return time.perf_counter() - started
    finally:
        for name in names:
            fleet.kill(name)


@contextmanager
def fake_coinspot() -> Any:
    yield from running_coinspot()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=120)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--bars", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        fleet_database(BROKER_DB) as url,
        fake_coinspot() as fake,
    ):
        tmp_path = Path(tmp)
        env = {
            "OMC_DATABASE_URL": url,
            "OMC_BROKER_URL": broker_url(BROKER_DB),
            "OMC_DATA_DIR": tmp,
            "OMC_COINSPOT_BASE_URL": fake.url,
            "OMC_COINSPOT_TRADE_COINS": "",
            "OMC_LOG_LEVEL": "WARNING",
        }
        fleet = Fleet(env, tmp_path)
        app = configure(QueueSettings(broker_url=broker_url(BROKER_DB)))
        engine = make_engine(url)
        try:
            rounds = [
                queue_round(engine, app, fleet, int(n), args.jobs, args.probes)
                for n in args.workers.split(",")
            ]
            import_candles(url, tmp_path, rows=args.bars)
            bars = load_db(engine, "BTC/USDT", "5m", "demo")
            run_sweep("sma_cross", bars, {"fast": [5], "slow": [20]}, workers=1, **COSTS)
            started = time.perf_counter()
            single = run_sweep("sma_cross", bars, GRID, workers=1, **COSTS)
            single_s = time.perf_counter() - started
            sweeps = {n: sweep_round(engine, app, fleet, n) for n in (1, 2)}
            names = start_workers(fleet, app, 2, "compute")
            spread = sweep_on_workers(
                "sma_cross", "BTC/USDT", "5m", GRID, exchange="demo", chunks=8, **COSTS
            )
            for name in names:
                fleet.kill(name)
            same = json.dumps(spread, default=lambda v: v.item()) == json.dumps(
                single, default=lambda v: v.item()
            )
        finally:
            fleet.kill_all()
            engine.dispose()
    print(f"{'workers':>8} {'jobs/s':>8} {'p50 ms':>8} {'p95 ms':>8}")
    for r in rounds:
        print(f"{r['workers']:>8} {r['jobs_per_s']:>8.1f} {r['p50_ms']:>8.0f} {r['p95_ms']:>8.0f}")
    combos = len(single)
    print(
        f"sweep sma_cross, {combos} valid of 80 combinations on {len(bars.close)} bars: "
        f"single process {single_s:.2f} s; 1 worker {sweeps[1]:.2f} s; "
        f"2 workers {sweeps[2]:.2f} s; "
        f"rows equal to the single-process sweep: {same}"
    )


if __name__ == "__main__":
    main()
