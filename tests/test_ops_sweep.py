"""Work fanned out to two `omc worker` processes (real PostgreSQL and Redis): a sweep split
into chunks gives exactly the single-process sweep's rows, in the same order, and an API
backtest job sent to the queue ends `done` with the metrics of the in-process pool, and
`omc backtest --grid … --on-workers` writes the sweep.csv of the local sweep."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from omc.api.auth.users import create_user
from omc.api.jobs import BacktestJobs
from omc.api.queued import send_backtest
from omc.core.config import Settings
from omc.core.db import make_engine
from omc.floor.backtest.sweep import run_sweep
from omc.floor.data import load_db
from omc.ops.queue.app import configure
from omc.ops.queue.settings import QueueSettings
from omc.ops.queue.sweep import sweep_on_workers
from tests.api_support import run_omc
from tests.queue_support import Fleet, broker_url, fleet_database, wait_for
from tests.test_api_backtests import import_candles

BROKER_DB = 13  # this test's own Redis database
pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
GRID = {"fast": [5, 10, 20, 40], "slow": [20, 50, 100]}


def as_json(rows: list[dict[str, Any]]) -> str:
    """Rows compared exactly (NaN equal to NaN, numpy scalars as numbers)."""
    return json.dumps(rows, default=lambda v: v.item())


def test_sweep_over_two_workers_and_a_queued_backtest(tmp_path: Path) -> None:
    with fleet_database(BROKER_DB) as url:
        import_candles(url, tmp_path, rows=1500)
        env = {
            "OMC_DATABASE_URL": url,
            "OMC_BROKER_URL": broker_url(BROKER_DB),
            "OMC_DATA_DIR": str(tmp_path),
        }
        fleet = Fleet({**env, "OMC_LOG_LEVEL": "WARNING"}, tmp_path)
        app = configure(QueueSettings(broker_url=broker_url(BROKER_DB)))
        engine = make_engine(url)
        try:
            for name in ("worker1", "worker2"):
                fleet.start(name, "worker", "--queues", "compute", "--pool", "solo")
            wait_for(
                "two workers",
                lambda: len(app.control.inspect(timeout=0.5).ping() or {}) == 2,
                60,
                fleet,
            )
            spread = sweep_on_workers(
                "sma_cross", "BTC/USDT", "5m", GRID, exchange="demo", chunks=6, timeout_s=120
            )
            bars = load_db(engine, "BTC/USDT", "5m", "demo")
            single = run_sweep("sma_cross", bars, GRID, workers=1)
            assert len(single) == 10 and as_json(spread) == as_json(single)
            with engine.connect() as conn:
                workers = conn.execute(
                    text("select count(distinct worker) from ops_jobs where kind = 'sweep_chunk'")
                ).scalar()
            assert workers == 2  # both took part

            settings = Settings(data_dir=tmp_path, database_url=url)
            owner = create_user(engine, "alice", "alice-pass-Zq81!x", admin=True)
            request = {
                "strategy": "sma_cross", "params": {"fast": 10, "slow": 50}, "symbol": "BTC/USDT",
                "timeframe": "5m", "exchange": "demo", "cash": "10000",
            }  # fmt: skip
            queued = BacktestJobs(engine, settings, 1, send=send_backtest)
            job_id = queued.submit(owner.id, request)
            deadline = time.monotonic() + 60
            while (job := queued.get(owner.id, job_id)) and job.status not in ("done", "failed"):
                assert time.monotonic() < deadline, job
                time.sleep(0.1)
            assert job is not None and job.status == "done", job
            in_process = BacktestJobs(engine, settings, 1)
            assert job.metrics == json.loads(json.dumps(in_process._backtest(job_id, request)))
            in_process.shutdown()
            queued.shutdown()

            # `omc backtest --grid … --on-workers` writes the sweep.csv of the local sweep
            cli = ["backtest", "--symbol", "BTC/USDT", "--exchange", "demo", "--timeframe", "5m",
                   "--grid", "fast=5,10,20", "--grid", "slow=20,50", "--workers", "1"]  # fmt: skip
            for flag, folder in (([], "here"), (["--on-workers"], "there")):
                res = run_omc([*cli, *flag, "--out", str(tmp_path / folder)], env)
                assert res.exit_code == 0, res.output
            here, there = ((tmp_path / f / "sweep.csv").read_text() for f in ("here", "there"))
            assert here == there and len(here.splitlines()) == 6
        finally:
            fleet.kill_all()
            engine.dispose()
