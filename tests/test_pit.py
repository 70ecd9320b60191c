"""Point-in-time access: an item collected at T is invisible to every function as of < T."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, select

from omc.core.upsert import upsert
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


def test_candles_and_metrics_carry_collected_at(engine: Engine) -> None:
    seed(engine)
    stored = [pd.Timestamp(EARLY), pd.Timestamp(LATE), pd.Timestamp(LATE)]
    frame = pit.candles(engine, "x", "ETH/AUD", "1h", as_of=LATE)
    assert frame["collected_at"].tolist() == stored
    assert str(frame["collected_at"].dtype).endswith("UTC]")
    exact = pit.candles(engine, "x", "ETH/AUD", "1h", as_of=LATE, exact=True)
    assert exact["collected_at"].tolist() == stored
    protocol = pit.protocol_metrics(engine, as_of=LATE, protocol="lido")
    assert list(protocol.columns) == pit.PROTOCOL_COLUMNS
    assert protocol["collected_at"].tolist() == stored[:2]
    onchain = pit.onchain_metrics(engine, as_of=LATE)
    assert list(onchain.columns) == pit.ONCHAIN_COLUMNS
    assert onchain["collected_at"].tolist() == stored[:2]
    # the Floor's reader keeps working on the wider frame
    from omc.floor.data import load_db

    bars = load_db(engine, "ETH/AUD", "1h", exchange="x", as_of=LATE)
    assert len(bars.ts) == 3 and bars.close.tolist() == [1.5, 1.5, 1.5]


def _news(i: int, published: datetime, collected: datetime, **extra: Any) -> dict[str, Any]:
    row = {
        "source": "feed",
        "source_id": str(i),
        "url": None,
        "title": f"BTC story {i}",
        "summary": None,
        "published_at": published,
        "sentiment": 0.5,
        "coins": ["BTC"],
        "story_key": None,
        "raw": None,
        "collected_at": collected,
    }
    return row | extra


def _post(i: int, published: datetime, collected: datetime, **extra: Any) -> dict[str, Any]:
    row = {
        "platform": "reddit",
        "post_id": f"s{i}",
        "parent_id": None,
        "community": "bitcoin",
        "author": "a",
        "title": "btc",
        "body": None,
        "url": None,
        "score": 10,
        "num_comments": 0,
        "published_at": published,
        "sentiment": -0.2,
        "coins": ["BTC"],
        "raw": None,
        "collected_at": collected,
    }
    return row | extra


def test_sentiment_hourly_counts_only_items_stored_by_as_of_and_says_when_known(
    engine: Engine,
) -> None:
    hour = T0
    end = hour + timedelta(hours=1)
    late_at = hour + timedelta(hours=3)
    upsert(
        engine,
        NewsItem.__table__,  # type: ignore[arg-type]
        [
            _news(1, hour + timedelta(minutes=5), hour + timedelta(minutes=6), sentiment=0.4),
            # published in the hour, stored three hours later
            _news(2, hour + timedelta(minutes=50), late_at, sentiment=-0.8),
        ],
    )
    at_end = pit.sentiment_hourly(engine, as_of=end, coin="btc")
    assert at_end["count"].tolist() == [1] and at_end["mean_sentiment"].tolist() == [0.4]
    # known when the hour ended (its only item was stored before then)
    assert at_end["known_at"].tolist() == [pd.Timestamp(end)]
    assert pit.sentiment_hourly(engine, as_of=late_at - SEC)["count"].tolist() == [1]
    later = pit.sentiment_hourly(engine, as_of=late_at)
    assert later["count"].tolist() == [2]
    assert later["mean_sentiment"].iloc[0] == pytest.approx(-0.2)
    # the revised answer is known only when the late item was stored
    assert later["known_at"].tolist() == [pd.Timestamp(late_at)]
    assert list(later.columns) == pit.SENTIMENT_COLUMNS
    # start / end bound the hour (its start), inclusive
    assert pit.sentiment_hourly(engine, as_of=late_at, start=hour + SEC).empty
    assert len(pit.sentiment_hourly(engine, as_of=late_at, start=hour, end=hour)) == 1


def test_stored_and_point_in_time_hourly_sentiment_agree(engine: Engine) -> None:
    """One implementation: the table the collectors write and pit's answer, same items."""
    from omc.ledgers.human.aggregate import HOURLY, rebuild_sentiment_hourly

    h = timedelta(hours=1)
    m = timedelta(minutes=1)
    votes = {"votes": {"positive": 20, "negative": 3, "important": 4}}
    news = [
        # one story carried by three outlets (one story_key): counts once, in the hour of its
        # first publication, scored by its mean, weighted by its largest engagement
        _news(1, T0 + 10 * m, T0 + 11 * m, story_key="k1", sentiment=0.9, raw=votes),
        _news(2, T0 + 70 * m, T0 + 71 * m, story_key="k1", sentiment=0.3, coins=["ETH"]),
        _news(3, T0 + 20 * m, T0 + 5 * h, story_key="k1", sentiment=0.6, source="cryptopanic"),
        _news(4, T0 + 80 * m, T0 + 81 * m, sentiment=-0.4),
        _news(5, T0 + 30 * m, T0 + 31 * m, sentiment=None),
    ]
    posts = [
        _post(1, T0 + 15 * m, T0 + 16 * m, score=250),
        _post(2, T0 + 75 * m, T0 + 76 * m, score=-5, coins=["btc", "ETH"]),
    ]
    upsert(engine, NewsItem.__table__, news)  # type: ignore[arg-type]
    upsert(engine, SocialPost.__table__, posts)  # type: ignore[arg-type]
    now = T0 + 10 * h
    rebuild_sentiment_hourly(engine, T0 - h, now)
    with engine.connect() as conn:
        stored = {
            (r.hour, r.coin): (r.count, r.mean_sentiment, r.weighted_sentiment)
            for r in conn.execute(select(HOURLY))
        }
    live = pit.sentiment_hourly(engine, as_of=now)
    answered = {
        (r.hour.to_pydatetime(), r.coin): (r.count, r.mean_sentiment, r.weighted_sentiment)
        for r in live.itertuples()
    }
    assert answered == stored
    # and the numbers are the story-level ones (not one unit per outlet)
    first = answered[(T0, "BTC")]
    assert first[0] == 2  # the story (3 outlets) + one post
    assert first[1] == pytest.approx(((0.9 + 0.3 + 0.6) / 3 + -0.2) / 2, abs=1e-6)
    assert answered[(T0, "ETH")][0] == 1  # the story's union of coins
    assert answered[(T0 + h, "BTC")][0] == 2 and answered[(T0 + h, "ETH")][0] == 1
    # the story's hour was revised when its third outlet was stored at T0 + 5 h
    known = live.set_index(["hour", "coin"])["known_at"]
    assert known[(pd.Timestamp(T0), "BTC")] == pd.Timestamp(T0 + 5 * h)
    assert known[(pd.Timestamp(T0 + h), "BTC")] == pd.Timestamp(T0 + 2 * h)
    # as of before the third outlet was stored, pit answers what was known then
    before = pit.sentiment_hourly(engine, as_of=T0 + 5 * h - SEC, coin="BTC")
    assert before.set_index("hour")["mean_sentiment"][pd.Timestamp(T0)] == pytest.approx(
        ((0.9 + 0.3) / 2 + -0.2) / 2, abs=1e-6
    )


def test_empty_answers_keep_their_columns(engine: Engine) -> None:
    seed(engine)
    nothing = EARLY - SEC
    assert list(pit.news(engine, as_of=nothing, coin="ETH").columns) == pit.NEWS_COLUMNS
    assert list(pit.social(engine, as_of=nothing, coin="ETH").columns) == pit.SOCIAL_COLUMNS
    assert list(pit.events(engine, as_of=nothing, coin="PEPE").columns) == pit.EVENT_COLUMNS
    assert list(pit.candles(engine, "x", "NO/NE", "1h", as_of=LATE).columns) == (pit.CANDLE_COLUMNS)
    assert list(pit.sentiment_hourly(engine, as_of=nothing).columns) == pit.SENTIMENT_COLUMNS
