"""The database layer: migrations, exact decimals, aware timestamps, the upsert helper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select

from omc.core.upsert import upsert
from omc.ledgers.models import Candle
from omc.migrations import current_revision, upgrade

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def candle(i: int, close: str = "1.7") -> dict[str, object]:
    return {
        "exchange": "binance",
        "symbol": "BTC/USDT",
        "timeframe": "5m",
        "ts": T0 + timedelta(minutes=5 * i),
        "open": Decimal("0.00005330"),
        "high": Decimal("123456789.123456789012345678"),
        "low": Decimal("1"),
        "close": Decimal(close),
        "volume": None,
        "source": "test",
    }


def test_migrations_are_idempotent(engine: Engine) -> None:
    upgrade(engine)
    assert current_revision(engine) is not None


def test_decimals_and_timestamps_round_trip_exactly(engine: Engine) -> None:
    tz = timezone(timedelta(hours=10))
    row = candle(0) | {"ts": datetime(2024, 1, 1, 10, 0, tzinfo=tz)}
    upsert(engine, Candle.__table__, [row])
    with engine.connect() as conn:
        stored = conn.execute(select(Candle.__table__)).one()
    assert stored.open == Decimal("0.0000533")
    assert stored.high == Decimal("123456789.123456789012345678")
    assert stored.ts == T0 and stored.ts.tzinfo is not None
    assert stored.collected_at.tzinfo is not None


def test_upsert_is_idempotent_and_counts(engine: Engine) -> None:
    rows = [candle(i) for i in range(1000)]
    first = upsert(engine, Candle.__table__, rows, batch_size=300)
    assert (first.inserted, first.updated, first.unchanged) == (1000, 0, 0)
    again = upsert(engine, Candle.__table__, rows, batch_size=300)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 1000)
    mixed = upsert(engine, Candle.__table__, [candle(i) for i in range(990, 1010)])
    assert (mixed.inserted, mixed.unchanged) == (10, 10)
    with engine.connect() as conn:
        assert conn.execute(select(Candle.__table__)).all().__len__() == 1010


def test_upsert_update_mode_overwrites_only_changed_rows(engine: Engine) -> None:
    upsert(engine, Candle.__table__, [candle(i) for i in range(3)])
    result = upsert(
        engine,
        Candle.__table__,
        [candle(0), candle(1, close="2.5"), candle(1, close="2.6"), candle(3)],
        update=["close"],
    )
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 2)
    with engine.connect() as conn:
        closes = [r.close for r in conn.execute(select(Candle.__table__).order_by(Candle.ts))]
    assert closes == [Decimal("1.7"), Decimal("2.6"), Decimal("1.7"), Decimal("1.7")]


def test_upsert_refuses_naive_timestamps_and_bad_numbers(engine: Engine) -> None:
    with pytest.raises(ValueError, match="naive"):
        upsert(engine, Candle.__table__, [candle(0) | {"ts": datetime(2024, 1, 1)}])
    with pytest.raises(ValueError, match=r"finite|decimal"):
        upsert(engine, Candle.__table__, [candle(0) | {"close": "NaN"}])


def test_text_with_copy_special_characters_survives(engine: Engine) -> None:
    row = candle(0) | {"source": "a\tb\\c\nd"}
    upsert(engine, Candle.__table__, [row])
    with engine.connect() as conn:
        assert conn.execute(select(Candle.source)).scalar() == "a\tb\\c\nd"


def test_migrations_match_the_models(engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    import omc.api.models
    import omc.floor.models
    import omc.lab.models
    import omc.ledgers.models
    import omc.ops.models  # noqa: F401
    from omc.core.db_types import Base

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
