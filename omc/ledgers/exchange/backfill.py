"""OHLCV backfill from any CCXT exchange into the `candles` table (`omc backfill`).

This module owns talking to CCXT for history: building the exchange (rate limit on, API hosts
optionally redirected by `OMC_CCXT_BASE_URL`), paging `fetch_ohlcv` forward from `since`,
retrying transient failures (429 with Retry-After, 5xx, timeouts), storing closed candles
only, and recording each backfill as a `collector_runs` row named `backfill:<exchange>`.

Resumable by construction: every page is committed as soon as it is fetched, and a new run
for the same exchange/symbol/timeframe starts after the newest stored candle in the
requested range, so a killed backfill restarted with the same arguments continues where it
stopped, without a gap and (natural keys + `upsert`) without a duplicate.

Prices are exact: while fetching candles the exchange parses numbers as strings (CCXT's
`number = str`), which are turned into `Decimal` (numbers that only exist as floats go
through their shortest repr).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, cast
from urllib.parse import urlsplit

import ccxt
from sqlalchemy import Engine, Table, func, insert, select, update

from omc.core.clients import retry_policy
from omc.core.config import Settings, get_settings
from omc.core.db_types import decimal_text, to_decimal
from omc.core.http import RetryPolicy, parse_retry_after
from omc.core.time import (
    ensure_utc,
    floor_time,
    from_epoch_ms,
    timeframe_seconds,
    to_epoch_ms,
    utcnow,
)
from omc.core.upsert import UpsertResult, upsert
from omc.ledgers.collectors.base import quarantine, run_owner
from omc.ledgers.exchange.candle_files import candle_problem
from omc.ledgers.models import Candle, CollectorRun

log = logging.getLogger(__name__)

SOURCE = "backfill"

# Per-exchange CCXT options: load only the spot markets a candle backfill needs.
EXCHANGE_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {"fetchMarkets": {"types": ["spot"]}, "defaultType": "spot"},
}

ProgressCallback = Callable[[int, int], None]


class BackfillInputError(ValueError):
    """The request cannot be served: unknown exchange, symbol or timeframe, bad range."""


class BackfillError(RuntimeError):
    """The exchange failed for good (after retries) or answered something unusable."""


@dataclass
class BackfillReport:
    """What one backfill did."""

    exchange: str
    symbol: str
    timeframe: str
    start: datetime
    end: datetime
    resumed_from: datetime | None = None
    pages: int = 0
    fetched: int = 0
    inserted: int = 0
    duplicates: int = 0
    not_closed: int = 0
    quarantined: int = 0
    retries: int = 0
    first: datetime | None = None
    last: datetime | None = None
    run_id: int | None = None
    status: str = "running"
    error: str | None = None
    requests: list[int] = field(default_factory=list)


def collector_name(exchange_id: str) -> str:
    return f"backfill:{exchange_id}"


def rewrite_api_urls(urls: Any, base_url: str) -> Any:
    """Replace scheme+host of every URL in a (nested) CCXT `urls['api']` with `base_url`."""
    if isinstance(urls, dict):
        return {key: rewrite_api_urls(value, base_url) for key, value in urls.items()}
    if isinstance(urls, list):
        return [rewrite_api_urls(value, base_url) for value in urls]
    if isinstance(urls, str) and "://" in urls:
        parts = urlsplit(urls)
        return base_url.rstrip("/") + urls[len(f"{parts.scheme}://{parts.netloc}") :]
    return urls


def make_exchange(exchange_id: str, settings: Settings | None = None) -> ccxt.Exchange:
    """A CCXT exchange with its rate limiter on and, if configured, API hosts redirected."""
    settings = settings or get_settings()
    exchange_id = exchange_id.strip().lower()
    if exchange_id not in ccxt.exchanges:
        raise BackfillInputError(f"unknown exchange {exchange_id!r} (CCXT does not support it)")
    config: dict[str, Any] = {
        "enableRateLimit": True,
        "timeout": int(settings.http_timeout_s * 1000),
        "options": dict(EXCHANGE_OPTIONS.get(exchange_id, {})),
    }
    exchange: ccxt.Exchange = getattr(ccxt, exchange_id)(config)
    if settings.ccxt_base_url:
        exchange.urls["api"] = rewrite_api_urls(exchange.urls["api"], settings.ccxt_base_url)
    return exchange


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers or {}).items():
        if str(key).lower() == name.lower():
            return str(value)
    return None


class _Caller:
    """Runs CCXT calls with OMC's retry policy on network errors, 429s and 5xx answers."""

    def __init__(
        self, exchange: ccxt.Exchange, policy: RetryPolicy, sleep: Callable[[float], None]
    ) -> None:
        self.exchange = exchange
        self.policy = policy
        self.sleep = sleep
        self.retries = 0

    def __call__(self, what: str, fn: Callable[[], Any]) -> Any:
        attempt = 0
        while True:
            try:
                return fn()
            except ccxt.BadSymbol as exc:
                raise BackfillInputError(str(exc)) from exc
            except ccxt.NetworkError as exc:  # includes 429 (DDoSProtection), 5xx, timeouts
                if attempt >= self.policy.max_retries:
                    raise BackfillError(
                        f"{what}: gave up after {attempt + 1} attempts: {type(exc).__name__}: {exc}"
                    ) from exc
                headers = getattr(self.exchange, "last_response_headers", None)
                retry_after = parse_retry_after(_header(headers, "Retry-After"))
                if retry_after is not None:
                    retry_after = min(retry_after, self.policy.backoff_max_s)
                wait = self.policy.delay(attempt, retry_after)
                log.warning("%s: %s, retry in %.2fs", what, type(exc).__name__, wait)
                self.sleep(wait)
                attempt += 1
                self.retries += 1
            except ccxt.BaseError as exc:
                raise BackfillError(f"{what}: {type(exc).__name__}: {exc}") from exc


def _ceil_time(value: datetime, seconds: int) -> datetime:
    floored = floor_time(value, seconds)
    return floored if floored == value else floored + timedelta(seconds=seconds)


def _stored_resume_point(
    engine: Engine, exchange: str, symbol: str, timeframe: str, start: datetime, end: datetime
) -> datetime | None:
    table = cast(Table, Candle.__table__)
    with engine.connect() as conn:
        newest: datetime | None = conn.execute(
            select(func.max(table.c.ts)).where(
                table.c.exchange == exchange,
                table.c.symbol == symbol,
                table.c.timeframe == timeframe,
                table.c.ts >= start,
                table.c.ts < end,
            )
        ).scalar()
    return newest


def backfill(
    engine: Engine,
    exchange_id: str,
    symbol: str,
    timeframe: str,
    since: datetime,
    until: datetime | None = None,
    *,
    settings: Settings | None = None,
    exchange: ccxt.Exchange | None = None,
    progress: ProgressCallback | None = None,
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> BackfillReport:
    """Fetch closed `timeframe` candles of `symbol` from `since` (to `until` or now) and store them.

    Resumes after the newest stored candle in the range. `progress(done, total)` is called
    with candle-period counts after every page. Raises `BackfillInputError` for requests the
    exchange cannot serve and `BackfillError` when the exchange keeps failing (the run is
    recorded as failed; pages stored before the failure stay stored).
    """
    settings = settings or get_settings()
    exchange_id = exchange_id.strip().lower()
    try:
        step_s = timeframe_seconds(timeframe)
    except ValueError as exc:
        raise BackfillInputError(str(exc)) from exc
    step = timedelta(seconds=step_s)
    now = ensure_utc(now) if now else utcnow()
    start = _ceil_time(ensure_utc(since), step_s)
    closed_end = floor_time(now, step_s)  # candles opening before this have closed
    end = closed_end
    if until is not None:
        end = min(end, _ceil_time(ensure_utc(until), step_s))
    if start >= end:
        raise BackfillInputError(
            f"empty range: since {start.isoformat()} is not before {end.isoformat()} "
            "(only closed candles are stored)"
        )
    ex = exchange or make_exchange(exchange_id, settings)
    if timeframe not in (getattr(ex, "timeframes", None) or {timeframe: timeframe}):
        known = ", ".join(ex.timeframes)
        raise BackfillInputError(f"{exchange_id} has no timeframe {timeframe!r} (known: {known})")
    if not ex.has.get("fetchOHLCV"):
        raise BackfillInputError(f"{exchange_id} does not provide OHLCV candles")
    policy = retry_policy(settings)
    call = _Caller(ex, policy, sleep)
    call(f"{exchange_id} load_markets", ex.load_markets)
    if symbol not in ex.markets:
        raise BackfillInputError(f"{exchange_id} has no market {symbol!r}")

    report = BackfillReport(exchange_id, symbol, timeframe, start, end)
    resume = _stored_resume_point(engine, exchange_id, symbol, timeframe, start, end)
    cursor = start
    if resume is not None:
        cursor = resume + step
        report.resumed_from = cursor
    total = (end - start) // step

    runs = cast(Table, CollectorRun.__table__)
    name = collector_name(exchange_id)
    with engine.begin() as conn:
        report.run_id = conn.execute(
            insert(runs)
            .values(collector=name, started_at=utcnow(), status="running", owner=run_owner())
            .returning(runs.c.id)
        ).scalar_one()

    result = UpsertResult()
    try:
        if progress:
            progress((cursor - start) // step, total)
        while cursor < end:
            since_ms = to_epoch_ms(cursor)
            report.requests.append(since_ms)
            page = call(
                f"{exchange_id} fetch_ohlcv {symbol} {timeframe}",
                partial(_fetch_exact, ex, symbol, timeframe, since_ms, settings.ccxt_page_limit),
            )
            report.pages += 1
            report.fetched += len(page)
            rows: list[dict[str, Any]] = []
            bad: list[tuple[str, list[Any]]] = []
            beyond = False
            for raw in page:
                ts = from_epoch_ms(int(raw[0]))
                if ts < cursor:
                    continue
                if ts >= end:
                    beyond = True
                    report.not_closed += ts == closed_end  # the candle still open now
                    continue
                values = _values(raw)
                problem = candle_problem(values) if values else "unparseable candle"
                if problem or values is None:
                    bad.append((problem or "unparseable candle", raw))
                    continue
                rows.append(
                    {
                        "exchange": exchange_id,
                        "symbol": symbol,
                        "timeframe": timeframe,
                        "ts": ts,
                        **values,
                        "source": SOURCE,
                    }
                )
            if bad:
                with engine.begin() as conn:
                    for problem, raw in bad:
                        quarantine(conn, name, problem, [str(v) for v in raw], report.run_id)
                report.quarantined += len(bad)
            newest = max(
                [from_epoch_ms(int(raw[0])) for raw in page if int(raw[0]) >= since_ms],
                default=None,
            )
            if rows:
                result += upsert(engine, cast(Table, Candle.__table__), rows)
                report.first = report.first or rows[0]["ts"]
                report.last = rows[-1]["ts"]
            if newest is None or beyond:
                break  # no more data after the cursor, or we passed the end
            cursor = newest + step
            if progress:
                progress(min((cursor - start) // step, total), total)
        report.status = "partial" if report.quarantined else "ok"
        if progress:
            progress(total, total)
    except Exception as exc:
        report.status = "failed"
        report.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        report.inserted, report.duplicates = result.inserted, result.unchanged
        report.retries = call.retries
        with engine.begin() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id == report.run_id)
                .values(
                    finished_at=utcnow(),
                    status=report.status,
                    fetched=report.fetched,
                    inserted=report.inserted,
                    duplicates=report.duplicates,
                    quarantined=report.quarantined,
                    error=report.error,
                )
            )
    return report


def _fetch_exact(
    exchange: ccxt.Exchange, symbol: str, timeframe: str, since_ms: int, limit: int
) -> list[list[Any]]:
    """`fetch_ohlcv` with numbers parsed as strings (exact), whatever the exchange's default."""
    previous = exchange.number
    exchange.number = str
    try:
        return list(exchange.fetch_ohlcv(symbol, timeframe, since=since_ms, limit=limit))
    finally:
        exchange.number = previous


def _exact(value: Any) -> Decimal:
    """An exact decimal without the exchange's padding ('16665.90000000' -> 16665.9)."""
    return Decimal(decimal_text(to_decimal(value)))


def _values(raw: list[Any]) -> dict[str, Decimal | None] | None:
    try:
        return {
            "open": _exact(raw[1]),
            "high": _exact(raw[2]),
            "low": _exact(raw[3]),
            "close": _exact(raw[4]),
            "volume": None if len(raw) < 6 or raw[5] is None else _exact(raw[5]),
        }
    except (ValueError, IndexError, TypeError):
        return None
