"""Data quality in `omc status`: volume against expectation, duplicate rate, null rates of
key fields and z-score anomalies — each able to fail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, insert

from omc.core.config import Settings
from omc.core.upsert import upsert
from omc.ledgers import quality
from omc.ledgers.models import CollectorRun, NewsItem, Tick
from omc.ledgers.status import ledger_status

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def ticks(prices: list[str], coin: str = "btc") -> list[dict[str, object]]:
    return [
        {
            "source": "coinspot",
            "coin": coin,
            "market": "aud",
            "ts": NOW - timedelta(seconds=5 * (len(prices) - i)),
            "bid": Decimal(p) - 1,
            "ask": Decimal(p) + 1,
            "last": Decimal(p),
            "volume": None,
        }
        for i, p in enumerate(prices)
    ]


def test_a_price_spike_is_an_anomaly_and_calm_series_are_not(engine: Engine) -> None:
    calm = [str(100000 + (i % 7) * 10) for i in range(200)]
    upsert(engine, Tick.__table__, ticks(calm, "eth"))
    upsert(engine, Tick.__table__, ticks([*calm[:-1], "150000"], "btc"))
    found = quality.anomalies(engine)
    assert [a["series"] for a in found] == ["ticks coinspot btc aud"]
    assert found[0]["measure"] == "return" and found[0]["z"] > quality.Z_LIMIT


def test_null_rates_of_key_fields(engine: Engine) -> None:
    upsert(
        engine,
        NewsItem.__table__,
        [
            {
                "source": "rss",
                "source_id": str(i),
                "url": None if i % 2 else "https://x/y",
                "title": "t",
                "summary": None,
                "published_at": NOW,
                "sentiment": 0.1,
                "coins": ["BTC"],
                "story_key": None,
                "raw": None,
            }
            for i in range(4)
        ],
    )
    rates = {(r["table"], r["field"]): r["null_rate"] for r in quality.null_rates(engine)}
    assert rates[("news_items", "url")] == 0.5
    assert rates[("news_items", "sentiment")] == 0.0


def test_volume_against_expectation_and_duplicate_rate(engine: Engine) -> None:
    settings = Settings(_env_file=None, coinspot_interval_s=10)
    with engine.begin() as conn:
        for i in range(3):  # 3 runs in the last minute where 7 were due
            conn.execute(
                insert(CollectorRun.__table__).values(
                    collector="coinspot",
                    started_at=NOW - timedelta(seconds=60 - 20 * i),
                    finished_at=NOW - timedelta(seconds=59 - 20 * i),
                    status="ok",
                    fetched=10,
                    inserted=2,
                    updated=0,
                    duplicates=8,
                    quarantined=0,
                )
            )
    (row,) = [
        r
        for r in quality.collector_volume(engine, settings, now=NOW)
        if r["collector"] == "coinspot"
    ]
    assert (row["runs_24h"], row["expected_runs_24h"]) == (3, 7)
    assert row["duplicate_rate_24h"] == 0.8 and row["fetched_24h"] == 30
    assert "quality" in ledger_status(engine, settings)
