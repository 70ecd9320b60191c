"""The fast ingest path of `upsert`: timestamp encoding, batching and the new-rows fast path.

On PostgreSQL a batch of new rows is first merged with a plain INSERT in a savepoint and
falls back to ON CONFLICT DO NOTHING when any key is already stored or repeats in the batch;
these tests pin that the counts and stored rows stay exact on both backends, inside an
engine (one transaction per batch) and inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

import omc.core.upsert as write_path
from omc.core.upsert import upsert
from omc.ledgers.models import Candle, Tick

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def candles(start: int, stop: int) -> Iterator[dict[str, object]]:
    """Candles `start..stop-1`, three symbols sharing each timestamp (a generator)."""
    for i in range(start, stop):
        yield {
            "exchange": "binance",
            "symbol": SYMBOLS[i % 3],
            "timeframe": "1m",
            "ts": T0 + timedelta(minutes=i // 3),
            "open": Decimal("0.00005330"),
            "high": Decimal(i).scaleb(-8),
            "low": Decimal("1"),
            "close": Decimal("42000.10"),
            "volume": Decimal("0.5") if i % 2 else None,
            "source": "test",
        }


@pytest.fixture(autouse=True)
def plain_insert_on_small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the small batches below take PostgreSQL's plain-insert fast path too."""
    monkeypatch.setattr(write_path, "PLAIN_INSERT_MIN_ROWS", 1)


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Candle.__table__)).scalar_one())


def test_one_batch_larger_than_the_default(engine: Engine) -> None:
    result = upsert(engine, Candle.__table__, candles(0, 45_000), batch_size=100_000)
    assert (result.inserted, result.unchanged) == (45_000, 0)
    again = upsert(engine, Candle.__table__, candles(0, 45_000), batch_size=100_000)
    assert (again.inserted, again.unchanged) == (0, 45_000)
    assert stored(engine) == 45_000
    with engine.connect() as conn:
        high = conn.execute(
            select(Candle.high).where(
                Candle.symbol == "ETH/USDT", Candle.ts == T0 + timedelta(minutes=14_000)
            )
        ).scalar_one()
    assert high == Decimal("0.00042001")


def test_new_batches_then_stored_keys_count_exactly(engine: Engine) -> None:
    upsert(engine, Candle.__table__, candles(900, 1_000))
    batches: list[tuple[int, int, int]] = []
    result = upsert(
        engine,
        Candle.__table__,
        candles(0, 1_200),
        batch_size=250,
        on_batch=lambda r: batches.append((r.inserted, r.updated, r.unchanged)),
    )
    assert (result.inserted, result.updated, result.unchanged) == (1_100, 0, 100)
    assert batches == [(250, 0, 0)] * 3 + [(150, 0, 100), (200, 0, 0)]
    assert stored(engine) == 1_200


def test_repeated_keys_inside_one_batch_insert_once(engine: Engine) -> None:
    rows = list(candles(0, 10)) + list(candles(5, 15))
    result = upsert(engine, Candle.__table__, rows)
    assert (result.inserted, result.unchanged) == (15, 5)
    assert stored(engine) == 15


def test_fallback_inside_the_callers_transaction_keeps_earlier_batches(engine: Engine) -> None:
    upsert(engine, Candle.__table__, candles(300, 310))
    with engine.begin() as conn:
        result = upsert(conn, Candle.__table__, candles(0, 400), batch_size=150)
    assert (result.inserted, result.unchanged) == (390, 10)
    assert stored(engine) == 400


def test_timestamps_keep_instant_and_microseconds_in_any_zone(engine: Engine) -> None:
    plus10 = timezone(timedelta(hours=10))
    instants = [
        datetime(2024, 3, 1, 10, 0, tzinfo=plus10),  # 00:00 UTC, no microseconds
        datetime(2024, 3, 1, 0, 0, 1, 123_456, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ]
    rows = [
        {
            "source": "coinspot",
            "coin": coin,
            "market": "AUD",
            "ts": ts,
            "bid": Decimal("1.10"),
            "ask": Decimal("1.20"),
            "last": Decimal("1.15"),
            "volume": None,
        }
        for ts in instants
        for coin in ("BTC", "ETH")  # repeated timestamps take the format-once path
    ]
    assert upsert(engine, Tick.__table__, rows).inserted == 6
    with engine.connect() as conn:
        got = sorted(conn.execute(select(Tick.ts).where(Tick.coin == "ETH")).scalars())
    assert got == sorted(ts.astimezone(UTC) for ts in instants)
    assert all(ts.tzinfo is not None for ts in got)
    again = upsert(engine, Tick.__table__, rows)
    assert (again.inserted, again.unchanged) == (0, 6)


def test_update_mode_after_new_rows_still_updates(engine: Engine) -> None:
    upsert(engine, Candle.__table__, candles(0, 30))
    changed = [row | {"close": Decimal("1.5")} for row in candles(20, 40)]
    result = upsert(engine, Candle.__table__, changed, update=["close"], batch_size=7)
    assert (result.inserted, result.updated, result.unchanged) == (10, 10, 0)
    with engine.connect() as conn:
        closes = conn.execute(select(Candle.close).where(Candle.close == Decimal("1.5"))).all()
    assert len(closes) == 20


def test_update_mode_compares_json_columns(engine: Engine) -> None:
    from omc.ledgers.models import CatalystEvent

    event = {
        "source": "announcements",
        "event_id": "1",
        "kind": "listing",
        "title": "PEPE listed",
        "url": None,
        "coins": ["PEPE"],
        "impact": 0.5,
        "published_at": datetime(2024, 1, 1, tzinfo=UTC),
        "payload": {"a": 1},
    }
    table = CatalystEvent.__table__
    assert upsert(engine, table, [event]).inserted == 1
    same = upsert(engine, table, [event], update=["title", "coins", "payload"])
    assert (same.updated, same.unchanged) == (0, 1)
    edited = upsert(
        engine, table, [event | {"coins": ["PEPE", "WIF"]}], update=["title", "coins", "payload"]
    )
    assert edited.updated == 1
    with engine.connect() as conn:
        assert conn.execute(select(table.c.coins)).scalar_one() == ["PEPE", "WIF"]
