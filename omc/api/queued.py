"""`omc.backtest`: an API backtest job run by a queue worker (`omc worker` imports this).

The job's row in `api_backtest_jobs` is the truth; the task only carries its id, and runs it
with the code path of the in-process pool (`BacktestJobs.run_queued`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from omc.api.jobs import BacktestJobs
from omc.core.config import Settings
from omc.ops.queue.tasks import tracked


def send_backtest(job_id: str) -> None:
    """Hand stored job `job_id` to the workers."""
    from omc.ops.queue.app import app

    app.send_task("omc.backtest", kwargs={"job_id": job_id})


@tracked("backtest")
def backtest(engine: Engine, job_id: str) -> dict[str, Any]:
    """Run API backtest job `job_id` (its outcome is on its row)."""
    jobs = BacktestJobs(engine, Settings(), workers=1)
    try:
        jobs.run_queued(job_id)
    finally:
        jobs.shutdown(wait=False)
    return {"job_id": job_id}
