"""Backtests as background jobs: rows in `api_backtest_jobs`, run by a thread pool in the
server process — or, when a broker is configured (`OMC_BROKER_URL`), by the queue's workers
(`omc.backtest`, `omc.api.queued`): `submit` stores the row and sends the job id.

`submit` checks the request (a registered strategy and its parameters; ValueError, one line,
otherwise), stores the job `queued` and hands it to the pool. A worker marks it `running`,
loads the candles point-in-time and runs it through `omc.floor.backtest.single` — the code
path of `omc backtest`, so the numbers are the same — then stores `done` with the metrics
document (what `omc backtest` writes to metrics.json), or `failed` with one masked line. The
job's trades.csv, equity.csv and metrics.json are written as `omc backtest` writes them, to
`<data_dir>/api-backtests/<id>/`, where `series` reads the charts' data back.

The database row is the truth: at start-up (`recover`) a job still `running` was cut off by
a stop of the server and is marked `failed` ("interrupted"); a job still `queued` is queued
again. One server process per database runs jobs. With workers, a restart of the server
touches nothing (the workers own the jobs): a job whose worker died is delivered again to
another worker, which takes it over from `running`.
"""

from __future__ import annotations

import csv
import logging
import math
import secrets
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update

from omc.api.models import JOBS
from omc.core.config import Settings
from omc.core.masking import mask_text
from omc.core.time import parse_utc, utcnow

log = logging.getLogger("omc.api.jobs")

INTERRUPTED = "interrupted: the server stopped while this backtest ran; submit it again"
SERIES_POINTS = 4000
API_STRATEGIES_NOTE = "strategy files and models run from the command line only"


@dataclass(frozen=True)
class JobView:
    id: str
    status: str
    request: dict[str, Any]
    metrics: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def _view(row: Any) -> JobView:
    return JobView(
        row.id,
        row.status,
        row.request,
        row.metrics,
        row.error,
        row.created_at,
        row.started_at,
        row.finished_at,
    )


def json_safe(value: Any) -> Any:
    """A metrics document as JSON any database stores: NaN/inf -> None, Decimals -> text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return json_safe(value.item())
    return str(value)


def spec_of(request: Mapping[str, Any]) -> Any:
    """The `BacktestSpec` of a stored request (decimals kept exact as text)."""
    from omc.floor.backtest.single import BacktestSpec

    def dec(key: str) -> Decimal | None:
        value = request.get(key)
        return None if value is None else Decimal(str(value))

    return BacktestSpec(
        strategy=request["strategy"],
        params=dict(request.get("params") or {}),
        cash=dec("cash") or Decimal(10000),
        fee_bps=dec("fee_bps"),
        slippage_bps=dec("slippage_bps") or Decimal(0),
        volume_share=dec("volume_share"),
        guard=bool(request.get("guard", False)),
    )


def check_request(request: Mapping[str, Any]) -> None:
    """ValueError (one line) unless the request names a registered strategy whose
    parameters it accepts and a known timeframe."""
    from omc.core.time import timeframe_seconds
    from omc.floor.backtest.single import check
    from omc.floor.strategies import STRATEGIES

    if request["strategy"] not in STRATEGIES:
        raise ValueError(
            f"strategy: unknown {request['strategy']!r}; known: {sorted(STRATEGIES)} "
            f"({API_STRATEGIES_NOTE})"
        )
    try:
        timeframe_seconds(request["timeframe"])
    except ValueError as exc:
        raise ValueError(f"timeframe: {exc}") from None
    try:
        check(spec_of(request))
    except ValueError as exc:
        raise ValueError(f"params: {exc}") from None


Send = Callable[[str], None]  # hands a stored job id to the queue's workers


class BacktestJobs:
    def __init__(
        self, engine: Engine, settings: Settings, workers: int, send: Send | None = None
    ) -> None:
        self.engine = engine
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="omc-backtest")
        self._table = JOBS
        self._send = send

    # ------------------------------------------------------------------ lifecycle
    def recover(self) -> tuple[int, int]:
        """(interrupted, requeued) after a restart (see the module doc)."""
        if self._send is not None:
            return 0, 0
        t = self._table
        with self.engine.begin() as conn:
            cut = conn.execute(
                update(t)
                .where(t.c.status == "running")
                .values(status="failed", error=INTERRUPTED, finished_at=utcnow())
            ).rowcount
            queued = list(conn.execute(select(t.c.id).where(t.c.status == "queued")).scalars())
        for job_id in queued:
            self._pool.submit(self._run, job_id)
        return max(cut or 0, 0), len(queued)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)

    # ------------------------------------------------------------------ API
    def submit(self, owner_id: int, request: dict[str, Any]) -> str:
        check_request(request)
        job_id = secrets.token_hex(12)
        with self.engine.begin() as conn:
            conn.execute(
                self._table.insert().values(
                    id=job_id,
                    owner_id=owner_id,
                    status="queued",
                    request=request,
                    created_at=utcnow(),
                )
            )
        if self._send is not None:
            self._send(job_id)
        else:
            self._pool.submit(self._run, job_id)
        return job_id

    def get(self, owner_id: int, job_id: str) -> JobView | None:
        t = self._table
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.id == job_id, t.c.owner_id == owner_id)).first()
        return None if row is None else _view(row)

    def page(
        self,
        owner_id: int,
        *,
        limit: int,
        after: tuple[str, str] | None = None,
        status: str | None = None,
    ) -> tuple[list[JobView], bool]:
        """The owner's jobs, newest first, after the (created_at, id) of the last one seen;
        and whether more follow."""
        t = self._table
        query = select(t).where(t.c.owner_id == owner_id)
        if status is not None:
            query = query.where(t.c.status == status)
        if after is not None:
            when = parse_utc(after[0])
            query = query.where(
                or_(t.c.created_at < when, and_(t.c.created_at == when, t.c.id < after[1]))
            )
        query = query.order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = [_view(r) for r in conn.execute(query)]
        return rows[:limit], len(rows) > limit

    def folder(self, job_id: str) -> Path:
        return self.settings.data_dir / "api-backtests" / job_id

    def series(self, owner_id: int, job_id: str) -> dict[str, Any] | None:
        """A done job's equity curve (with drawdown; at most SERIES_POINTS points, evenly
        thinned, the last one kept) and its round-trip trades, as text cells; None if the
        job is not the owner's, not done, or its files are gone."""
        job = self.get(owner_id, job_id)
        folder = self.folder(job_id)
        if job is None or job.status != "done" or not (folder / "equity.csv").is_file():
            return None
        with (folder / "equity.csv").open(newline="") as fh:
            equity = list(csv.DictReader(fh))
        step = max(1, math.ceil(len(equity) / SERIES_POINTS))
        thinned = equity[::step] + ([equity[-1]] if (len(equity) - 1) % step else [])
        with (folder / "trades.csv").open(newline="") as fh:
            trades = list(csv.DictReader(fh))
        return {
            "equity": [
                {"ts": r["timestamp"], "equity": r["equity"], "drawdown": r["drawdown"]}
                for r in thinned
            ],
            "trades": trades,
        }

    # ------------------------------------------------------------------ worker
    def _set(self, job_id: str, **values: Any) -> None:
        t = self._table
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.id == job_id).values(**values))

    def _run(self, job_id: str, *, take_over: bool = False) -> None:
        """Run a stored job; `take_over`: also one left `running` (by a worker that died:
        the queue delivers a job again only when its first delivery was never finished)."""
        t = self._table
        runnable = ("queued", "running") if take_over else ("queued",)
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(t)
                .where(t.c.id == job_id, t.c.status.in_(runnable))
                .values(status="running", started_at=utcnow())
            ).rowcount
            row = conn.execute(select(t.c.request).where(t.c.id == job_id)).first()
        if not claimed or row is None:
            return
        try:
            metrics = self._backtest(job_id, row.request)
        except Exception as exc:
            self._set(job_id, status="failed", error=self._reason(exc), finished_at=utcnow())
            return
        self._set(job_id, status="done", metrics=metrics, finished_at=utcnow())

    def run_queued(self, job_id: str) -> None:
        """Run a job the queue delivered (in a worker process)."""
        self._run(job_id, take_over=True)

    def _backtest(self, job_id: str, request: Mapping[str, Any]) -> dict[str, Any]:
        from omc.floor.backtest import single
        from omc.floor.backtest.export import metrics_document, write_all
        from omc.floor.data import load_db

        bars = load_db(self.engine, request["symbol"], request["timeframe"], request["exchange"])
        result = single.run(spec_of(request), bars, self.settings)
        write_all(result, self.folder(job_id))
        safe: dict[str, Any] = json_safe(metrics_document(result))
        return safe

    @staticmethod
    def _reason(exc: Exception) -> str:
        from omc.floor.strategy import LookAheadError

        if isinstance(exc, LookAheadError):
            return mask_text(f"look-ahead: {exc}", 500)
        if isinstance(exc, LookupError | ValueError):
            return mask_text(
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, 500
            )
        log.error("backtest job crashed: %s", mask_text(repr(exc), 500))
        return f"internal error ({type(exc).__name__})"
