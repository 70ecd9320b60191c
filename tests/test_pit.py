"""Point-in-time access: an item collected at T is invisible to every function as of < T."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from omc.core.db import upsert
from omc.ledgers import pit
from omc.ledgers.models import (
    Candle,
    CatalystEvent,
    CatalystEventRevision,
    NewsItem,
    OnchainMetric,
    ProtocolMetric,
    SocialPost,
    Tick,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
EARLY = T0 + timedelta(hours=1)  # first batch stored
LATE = T0 + timedelta(hours=5)  # second batch stored
SEC = timedelta(seconds=1)


def seed(engine: Engine) -> None:
    def store(model: Any, rows: list[dict[str, Any]], **kw: Any) -> None:
        upsert(engine, model.__table__, rows, **kw)

    store(
        Candle,
        [
            {
                "exchange": "x",
                "symbol": "ETH/AUD",
                "timeframe": "1h",
                "ts": T0 + timedelta(hours=i),
                "open": Decimal("1.1"),
                "high": Decimal("2"),
                "low": Decimal("1"),
                "close": Decimal("1.5"),
                "volume": Decimal("10"),
                "source": "t",
                "collected_at": EARLY if i == 0 else LATE,
            }
            for i in range(3)
        ],
    )
    store(
        Tick,
        [
            {
                "source": "coinspot",
                "coin": "eth",
                "market": "aud",
                "ts": T0 + timedelta(minutes=i),
                "bid": Decimal("1"),
                "ask": Decimal("1.01"),
                "last": Decimal("1.005"),
                "volume": None,
                "collected_at": EARLY if i == 0 else LATE,
            }
            for i in range(2)
        ],
    )
    store(
        ProtocolMetric,
        [
            {
                "source": "defillama",
                "protocol": "lido",
                "chain": "",
                "metric": "tvl",
                "ts": T0 + timedelta(days=i),
                "value": Decimal("123.5"),
                "coins": ["LDO"],
                "collected_at": EARLY if i == 0 else LATE,
            }
            for i in range(2)
        ],
    )
    store(
        OnchainMetric,
        [
            {
                "chain": "ethereum",
                "metric": "gas_price",
                "ts": T0 + timedelta(minutes=i),
                "value": Decimal(i + 1),
                "endpoint": None,
                "collected_at": EARLY if i == 0 else LATE,
            }
            for i in range(2)
        ],
    )
    store(
        NewsItem,
        [
            {
                "source": "cryptopanic",
                "source_id": str(i),
                "url": None,
                "title": f"ETH news {i}",
                "summary": None,
                "published_at": T0 + timedelta(minutes=10 * i),
                "sentiment": 0.5 if i == 0 else -0.5,
                "coins": ["ETH"],
                "story_key": None,
                "raw": None,
                "collected_at": EARLY if i == 0 else LATE,
            }
            for i in range(2)
        ],
    )
    store(
        SocialPost,
        [
            {
                "platform": "reddit",
                "post_id": f"p{i}",
                "parent_id": None,
                "community": "ethereum",
                "author": "a",
                "title": "eth",
                "body": None,
                "url": None,
                "score": 100,
                "num_comments": 1,
                "published_at": T0 + timedelta(minutes=5 + 10 * i),
                "sentiment": 0.25,
                "coins": ["ETH"],
                "raw": None,
                "collected_at": EARLY if i == 0 else LATE,
            }
            for i in range(2)
        ],
    )
    event = {
        "source": "announcements",
        "event_id": "42",
        "kind": "listing",
        "url": None,
        "coins": ["PEPE"],
        "impact": 0.9,
        "published_at": T0,
        "payload": None,
    }
    store(CatalystEvent, [event | {"title": "PEPE listed (edited)", "collected_at": EARLY}])
    store(
        CatalystEventRevision,
        [
            event | {"revision": T0, "title": "PEPE listed", "collected_at": EARLY},
            event
            | {
                "revision": T0 + timedelta(hours=2),
                "title": "PEPE listed (edited)",
                "collected_at": LATE,
            },
        ],
    )


def test_every_function_hides_what_was_stored_later(engine: Engine) -> None:
    seed(engine)
    calls = {
        "candles": lambda at: pit.candles(engine, "x", "ETH/AUD", "1h", as_of=at),
        "ticks": lambda at: pit.ticks(engine, as_of=at, coin="ETH"),
        "protocol_metrics": lambda at: pit.protocol_metrics(engine, as_of=at, protocol="lido"),
        "onchain_metrics": lambda at: pit.onchain_metrics(engine, as_of=at),
        "news": lambda at: pit.news(engine, as_of=at, coin="eth"),
        "social": lambda at: pit.social(engine, as_of=at, coin="ETH"),
        "events": lambda at: pit.events(engine, as_of=at),
    }
    for name, call in calls.items():
        assert len(call(EARLY - SEC)) == 0, name
        early, late = call(EARLY), call(LATE)
        assert len(early) == 1, name
        assert len(late) > len(early) or name == "events", name
    # an edited event: before the edit was collected, the old title
    assert pit.events(engine, as_of=EARLY)["title"].tolist() == ["PEPE listed"]
    assert pit.events(engine, as_of=LATE)["title"].tolist() == ["PEPE listed (edited)"]
    assert pit.sentiment_hourly(engine, as_of=EARLY - SEC).empty
    early = pit.sentiment_hourly(engine, as_of=EARLY)
    assert early["count"].tolist() == [2] and early["coin"].tolist() == ["ETH"]
    late = pit.sentiment_hourly(engine, as_of=LATE)
    assert late["count"].tolist() == [4]
    coins = pit.available_coins(engine, as_of=EARLY - SEC)
    assert coins.empty
    coins = pit.available_coins(engine, as_of=LATE)
    assert set(coins["coin"]) >= {"ETH", "LDO", "PEPE"}
    stats = pit.ledger_stats(engine, as_of=EARLY).set_index("table")
    assert stats.loc["candles", "rows"] == 1 and stats.loc["news_items", "rows"] == 1
    assert pit.ledger_stats(engine, as_of=LATE).set_index("table").loc["candles", "rows"] == 3


def test_frames_have_documented_columns_and_types(engine: Engine) -> None:
    seed(engine)
    frame = pit.candles(engine, "x", "ETH/AUD", "1h", as_of=LATE)
    assert list(frame.columns) == pit.CANDLE_COLUMNS
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]" or str(frame["ts"].dtype).endswith(
        "UTC]"
    )
    assert frame["close"].dtype == "float64" and frame["close"].iloc[0] == 1.5
    exact = pit.candles(engine, "x", "ETH/AUD", "1h", as_of=LATE, exact=True)
    assert exact["open"].iloc[0] == Decimal("1.1")
    assert list(pit.ticks(engine, as_of=LATE).columns) == pit.TICK_COLUMNS
    assert list(pit.news(engine, as_of=LATE).columns) == pit.NEWS_COLUMNS
    assert list(pit.events(engine, as_of=LATE).columns) == pit.EVENT_COLUMNS
    bounded = pit.candles(
        engine,
        "x",
        "ETH/AUD",
        "1h",
        as_of=LATE,
        start=T0 + timedelta(hours=1),
        end=T0 + timedelta(hours=1),
    )
    assert bounded["ts"].tolist() == [pd.Timestamp(T0 + timedelta(hours=1))]
