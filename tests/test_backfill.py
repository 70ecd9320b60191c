"""CCXT backfill against a local server speaking Binance's spot REST API (tests/fakes).

Covers: exact candles in range, pagination, closed candles only, 429 (Retry-After) and 5xx
survived, giving up, resume, bad input — and a real SIGKILL halfway through `omc backfill`
(a subprocess) followed by a restart, compared with an uninterrupted run.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select

from omc.core.config import Settings
from omc.core.time import to_epoch_ms
from omc.ledgers.exchange.backfill import (
    BackfillError,
    BackfillInputError,
    backfill,
    rewrite_api_urls,
)
from omc.ledgers.models import Candle, CollectorRun
from tests.fakes.binance_server import FakeBinance

STEP = timedelta(minutes=5)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[FakeBinance]:
    fake = FakeBinance().start()
    yield fake
    fake.stop()


def make_settings(server: FakeBinance, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "ccxt_base_url": server.url,
        "ccxt_page_limit": 100,
        "http_backoff_base_s": 0.01,
        "http_backoff_max_s": 5,
        "http_max_retries": 3,
    }
    values.update(overrides)
    return Settings(**values)


def table_rows(engine: Engine) -> list[tuple[Any, ...]]:
    c = Candle.__table__.c
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(
                    c.exchange, c.symbol, c.timeframe, c.ts, c.open, c.high, c.low, c.close,
                    c.volume, c.source,
                ).order_by(c.ts)
            )
        ]  # fmt: skip


def expected_rows(server: FakeBinance, start: datetime, end: datetime) -> list[tuple[Any, ...]]:
    return [
        (
            "binance",
            "BTC/USDT",
            "5m",
            datetime.fromtimestamp(k[0] / 1000, UTC),
            *(Decimal(v) for v in k[1:6]),
            "backfill",
        )
        for k in server.klines_between(to_epoch_ms(start), to_epoch_ms(end))
    ]


def test_rewrite_api_urls_is_recursive() -> None:
    urls = {"public": "https://api.binance.com/api/v3", "x": ["https://a.b/c?d=1", 5]}
    assert rewrite_api_urls(urls, "http://127.0.0.1:9/") == {
        "public": "http://127.0.0.1:9/api/v3",
        "x": ["http://127.0.0.1:9/c?d=1", 5],
    }


def test_backfill_stores_exactly_the_candles_in_range(engine: Engine, server: FakeBinance) -> None:
    start, end = utc("2023-01-03T00:00"), utc("2023-01-05T00:00")
    report = backfill(
        engine, "binance", "BTC/USDT", "5m", start, end, settings=make_settings(server)
    )
    rows = table_rows(engine)
    assert len(rows) == 576
    assert rows == expected_rows(server, start, end)
    assert str(rows[0][4]) == "16665.9"  # exact: '16665.90000000' on the wire
    assert (report.inserted, report.duplicates, report.status) == (576, 0, "ok")
    assert (report.first, report.last) == (start, end - STEP)
    # pagination: 6 pages of 100 candles, each starting after the previous one
    starts = [int(q["startTime"]) for q in server.klines_requests]
    assert starts == [to_epoch_ms(start + i * 100 * STEP) for i in range(6)]
    assert {q["limit"] for q in server.klines_requests} == {"100"}
    assert server.requests[0].startswith("/api/v3/exchangeInfo")
    with engine.connect() as conn:
        run = conn.execute(select(CollectorRun.__table__)).one()
    assert (run.collector, run.status, run.inserted, run.duplicates) == (
        "backfill:binance",
        "ok",
        576,
        0,
    )
    assert run.fetched == report.fetched >= 576


def test_only_closed_candles_are_stored(engine: Engine, server: FakeBinance) -> None:
    now = utc("2023-01-02T17:02")  # the 17:00 candle is still open
    report = backfill(
        engine,
        "binance",
        "BTC/USDT",
        "5m",
        utc("2023-01-02T16:45"),
        settings=make_settings(server),
        now=now,
    )
    assert [r[3] for r in table_rows(engine)] == [
        utc("2023-01-02T16:45"),
        utc("2023-01-02T16:50"),
        utc("2023-01-02T16:55"),
    ]
    assert report.not_closed == 1


def test_429_with_retry_after_and_5xx_are_survived(engine: Engine, server: FakeBinance) -> None:
    server.fail = [(429, {"Retry-After": "2"}), (503, {}), (502, {})]
    waits: list[float] = []
    start, end = utc("2023-01-03T00:00"), utc("2023-01-03T12:00")
    report = backfill(
        engine,
        "binance",
        "BTC/USDT",
        "5m",
        start,
        end,
        settings=make_settings(server),
        sleep=waits.append,
    )
    assert report.retries == 3
    assert waits[0] == 2.0  # Retry-After honoured
    assert all(w <= 0.04 for w in waits[1:])  # exponential backoff from 0.01 s
    assert table_rows(engine) == expected_rows(server, start, end)


def test_gives_up_after_max_retries_and_records_failure(
    engine: Engine, server: FakeBinance
) -> None:
    start = utc("2023-01-03T00:00")
    settings = make_settings(server, http_max_retries=2)
    server.fail = [(500, {})] * 3
    with pytest.raises(BackfillError, match="gave up after 3 attempts"):
        backfill(
            engine, "binance", "BTC/USDT", "5m", start, settings=settings, sleep=lambda s: None
        )
    with engine.connect() as conn:
        run = conn.execute(select(CollectorRun.__table__)).one()
    assert (run.collector, run.status) == ("backfill:binance", "failed")
    assert "ExchangeNotAvailable" in run.error


def test_restart_resumes_after_the_newest_stored_candle(
    engine: Engine, server: FakeBinance
) -> None:
    settings = make_settings(server)
    start, middle, end = utc("2023-01-03T00:00"), utc("2023-01-03T10:00"), utc("2023-01-04T00:00")
    backfill(engine, "binance", "BTC/USDT", "5m", start, middle, settings=settings)
    server.klines_requests.clear()
    report = backfill(engine, "binance", "BTC/USDT", "5m", start, end, settings=settings)
    assert report.resumed_from == middle
    assert int(server.klines_requests[0]["startTime"]) == to_epoch_ms(middle)
    assert (report.inserted, report.duplicates) == (168, 0)
    assert table_rows(engine) == expected_rows(server, start, end)
    again = backfill(engine, "binance", "BTC/USDT", "5m", start, end, settings=settings)
    assert (again.inserted, again.pages) == (0, 0)


def test_bad_input(engine: Engine, server: FakeBinance) -> None:
    settings = make_settings(server)
    since = utc("2023-01-03T00:00")
    with pytest.raises(BackfillInputError, match="unknown exchange"):
        backfill(engine, "nosuchexchange", "BTC/USDT", "5m", since, settings=settings)
    with pytest.raises(BackfillInputError, match="no market"):
        backfill(engine, "binance", "DOGE/XYZ", "5m", since, settings=settings)
    with pytest.raises(BackfillInputError, match="timeframe"):
        backfill(engine, "binance", "BTC/USDT", "7m", since, settings=settings)
    with pytest.raises(BackfillInputError, match="empty range"):
        backfill(engine, "binance", "BTC/USDT", "5m", since, since, settings=settings)


# ---------------------------------------------------------------------------- real kill


def omc_command() -> list[str]:
    script = Path(sys.executable).parent / "omc"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from omc.cli.app import main; main()"]


def test_killed_backfill_restarted_equals_uninterrupted_run(
    engine: Engine, db_url: str, server: FakeBinance, tmp_path: Path
) -> None:
    start, end = utc("2023-01-03T00:00"), utc("2023-01-06T00:00")  # 864 candles, 9 pages
    args = [
        *omc_command(),
        "backfill",
        "--exchange", "binance",
        "--symbol", "BTC/USDT",
        "--timeframe", "5m",
        "--since", "2023-01-03",
        "--until", "2023-01-06",
    ]  # fmt: skip
    env = {
        **os.environ,
        "OMC_DATABASE_URL": db_url,
        "OMC_CCXT_BASE_URL": server.url,
        "OMC_CCXT_PAGE_LIMIT": "100",
        "OMC_DATA_DIR": str(tmp_path),
        "OMC_LOG_LEVEL": "WARNING",
    }
    server.block_on_klines = 4  # pages 1-3 are stored, the 4th request hangs
    process = subprocess.Popen(
        args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        assert server.blocked.wait(60), "the backfill never reached the 4th page"
        assert len(table_rows(engine)) == 300
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    server.release()
    server.block_on_klines = None
    before_restart = len(server.klines_requests)

    restarted = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert "resumed at 2023-01-04T01:00:00Z" in " ".join(restarted.stdout.split())
    # the restart continued where the killed run stopped: no page fetched twice
    resumed = [int(q["startTime"]) for q in server.klines_requests[before_restart:]]
    assert resumed == [to_epoch_ms(start + i * 100 * STEP) for i in range(3, 9)]
    after_restart = table_rows(engine)

    with engine.begin() as conn:
        conn.execute(delete(Candle.__table__))
    settings = make_settings(server)
    backfill(engine, "binance", "BTC/USDT", "5m", start, end, settings=settings)
    uninterrupted = table_rows(engine)

    assert after_restart == uninterrupted == expected_rows(server, start, end)
    timestamps = [row[3] for row in after_restart]
    assert len(timestamps) == len(set(timestamps)) == 864  # no duplicate
    assert all(b - a == STEP for a, b in itertools.pairwise(timestamps))  # no gap
