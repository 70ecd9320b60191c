"""Candles built from stored ticks: hand-checked OHLC, closed buckets only, idempotent, extends."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from omc.core.upsert import upsert
from omc.ledgers.exchange.tick_candles import build_tick_candles
from omc.ledgers.models import Candle, Tick


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def add_ticks(engine: Engine, coin: str, ticks: list[tuple[str, str]], market: str = "aud") -> None:
    rows = [
        {
            "source": "coinspot",
            "coin": coin,
            "market": market,
            "ts": utc(ts),
            "bid": Decimal(last) - 1,
            "ask": Decimal(last) + 1,
            "last": Decimal(last),
            "volume": Decimal("12345.6"),  # a rolling 24 h volume: never a candle volume
        }
        for ts, last in ticks
    ]
    upsert(engine, Tick.__table__, rows)


def candles(engine: Engine, symbol: str = "BTC/AUD") -> dict[tuple[str, datetime], Any]:
    table = Candle.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(table).where(table.c.symbol == symbol).order_by(table.c.timeframe, table.c.ts)
        ).all()
    return {(r.timeframe, r.ts): r for r in rows}


def ohlc(row: Any) -> tuple[str, str, str, str]:
    return (str(row.open), str(row.high), str(row.low), str(row.close))


BTC_TICKS = [
    ("2024-03-01T10:00:05", "100"),
    ("2024-03-01T10:00:30", "105"),
    ("2024-03-01T10:00:55", "98"),
    ("2024-03-01T10:01:10", "101"),
    ("2024-03-01T10:01:50", "99.5"),
    ("2024-03-01T10:04:59", "102"),
    ("2024-03-01T10:05:00", "103"),
]


def test_hand_checked_candles_closed_buckets_only(engine: Engine) -> None:
    add_ticks(engine, "btc", BTC_TICKS)
    add_ticks(engine, "eth", [("2024-03-01T10:02:00", "5.5"), ("2024-03-01T10:02:30", "5.25")])
    report = build_tick_candles(engine, ["1m", "5m", "1h"], now=utc("2024-03-01T10:05:30"))
    assert report.series == 2
    assert report.inserted == {"1m": 4, "5m": 2, "1h": 0}
    built = candles(engine)
    assert {k: ohlc(v) for k, v in built.items()} == {
        ("1m", utc("2024-03-01T10:00")): ("100", "105", "98", "98"),
        ("1m", utc("2024-03-01T10:01")): ("101", "101", "99.5", "99.5"),
        ("1m", utc("2024-03-01T10:04")): ("102", "102", "102", "102"),
        ("5m", utc("2024-03-01T10:00")): ("100", "105", "98", "102"),
        # 10:05 buckets (1m and 5m) and the 10:00 hour are still open: not built
    }
    row = built[("5m", utc("2024-03-01T10:00"))]
    assert (row.exchange, row.symbol, row.source, row.volume) == (
        "coinspot",
        "BTC/AUD",
        "ticks",
        None,
    )
    eth = candles(engine, "ETH/AUD")
    assert {k: ohlc(v) for k, v in eth.items()} == {
        ("1m", utc("2024-03-01T10:02")): ("5.5", "5.5", "5.25", "5.25"),
        ("5m", utc("2024-03-01T10:00")): ("5.5", "5.5", "5.25", "5.25"),
    }


def test_idempotent_and_a_later_run_extends(engine: Engine) -> None:
    add_ticks(engine, "btc", BTC_TICKS)
    now = utc("2024-03-01T10:05:30")
    build_tick_candles(engine, ["1m", "5m", "1h"], now=now)
    first = {k: ohlc(v) for k, v in candles(engine).items()}
    again = build_tick_candles(engine, ["1m", "5m", "1h"], now=now)
    assert again.total == 0
    assert {k: ohlc(v) for k, v in candles(engine).items()} == first

    add_ticks(engine, "btc", [("2024-03-01T10:05:40", "104"), ("2024-03-01T10:59:00", "110")])
    later = build_tick_candles(engine, ["1m", "5m", "1h"], now=utc("2024-03-01T11:00:00"))
    assert later.inserted == {"1m": 2, "5m": 2, "1h": 1}
    built = {k: ohlc(v) for k, v in candles(engine).items()}
    assert built[("1m", utc("2024-03-01T10:05"))] == ("103", "104", "103", "104")
    assert built[("1m", utc("2024-03-01T10:59"))] == ("110", "110", "110", "110")
    assert built[("5m", utc("2024-03-01T10:05"))] == ("103", "104", "103", "104")
    assert built[("5m", utc("2024-03-01T10:55"))] == ("110", "110", "110", "110")
    assert built[("1h", utc("2024-03-01T10:00"))] == ("100", "110", "98", "110")
    assert {k: v for k, v in built.items() if k in first} == first  # nothing rewritten
    assert build_tick_candles(engine, ["1m", "5m", "1h"], now=utc("2024-03-01T11:00")).total == 0


def test_bad_timeframe_raises(engine: Engine) -> None:
    with pytest.raises(ValueError, match="timeframe"):
        build_tick_candles(engine, ["5x"])


def test_cli_build_candles(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from omc.cli import data
    from omc.cli.app import app

    monkeypatch.setattr(data, "engine", lambda: engine)
    add_ticks(engine, "btc", BTC_TICKS)
    runner = CliRunner()
    result = runner.invoke(app, ["data", "build-candles", "--timeframe", "1m"])
    assert result.exit_code == 0, result.output
    assert "1m=4" in result.output  # 10:00, 10:01, 10:04 and (closed by now) 10:05
    assert set(tf for tf, _ in candles(engine)) == {"1m"}
    bad = runner.invoke(app, ["data", "build-candles", "--timeframe", "bogus"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
