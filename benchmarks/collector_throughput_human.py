"""Throughput of the Human collectors' own work: parse + score + tag + link + store (items/s).

Large generated payloads in each source's real shape (CryptoPanic `results`, Reddit Listing
children, an RSS 2.0 feed) are handed to the collectors' parsing functions, then linked,
aggregated and upserted into a fresh SQLite database (no network). Prints a small table.

    python benchmarks/collector_throughput_human.py [N]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from omc.core.db import make_engine
from omc.core.upsert import upsert
from omc.ledgers.collectors.base import Collected
from omc.ledgers.human.aggregate import HumanCollector
from omc.ledgers.human.cryptopanic import CryptoPanicCollector, post_row
from omc.ledgers.human.news import entry_row, feed_source, parse_feed
from omc.ledgers.human.reddit import RedditCollector
from omc.ledgers.human.reddit import post_row as reddit_row
from omc.migrations import upgrade

WORDS = [
    "Bitcoin",
    "surges",
    "ETH",
    "dumps",
    "Solana",
    "outage",
    "rally",
    "hack",
    "bullish",
    "whales",
    "SEC",
    "approves",
    "ETF",
    "XRP",
    "lawsuit",
    "Cardano",
    "upgrade",
    "rekt",
    "moon",
    "rug",
    "pull",
    "Chainlink",
    "LINK",
    "partnership",
    "record",
]
START = datetime(2026, 1, 1, tzinfo=UTC)
RFC822 = "%a, %d %b %Y %H:%M:%S +0000"


def headline(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12)))


def cryptopanic_items(n: int, rng: random.Random) -> list[dict[str, Any]]:
    return [
        {
            "id": 10_000_000 + i,
            "kind": "news",
            "title": headline(rng),
            "published_at": (START + timedelta(seconds=37 * i)).isoformat().replace("+00:00", "Z"),
            "url": f"https://cryptopanic.com/news/{i}/x",
            "source": {"url": f"https://outlet{i % 50}.example/a/{i}"},
            "currencies": [{"code": rng.choice(["BTC", "ETH", "SOL"])}],
            "votes": {"positive": rng.randint(0, 20), "negative": rng.randint(0, 20)},
        }
        for i in range(n)
    ]


def reddit_children(n: int, rng: random.Random) -> list[dict[str, Any]]:
    return [
        {
            "kind": "t3",
            "data": {
                "id": f"b{i}",
                "title": headline(rng),
                "selftext": headline(rng),
                "score": rng.randint(0, 5000),
                "num_comments": rng.randint(0, 300),
                "created_utc": START.timestamp() + 41 * i,
                "subreddit": "CryptoCurrency",
                "author": f"u{i}",
                "permalink": f"/r/CryptoCurrency/comments/b{i}/x/",
            },
        }
        for i in range(n)
    ]


def rss_feed(n: int, rng: random.Random) -> bytes:
    items = "".join(
        f"<item><title>{headline(rng)}</title><link>https://news.example/{i}?utm_source=rss</link>"
        f"<guid>news-{i}</guid>"
        f"<pubDate>{(START + timedelta(seconds=53 * i)).strftime(RFC822)}"
        f"</pubDate><description>{headline(rng)}</description></item>"
        for i in range(n)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Bench</title>'
        f"<link>https://news.example</link><description>b</description>{items}</channel></rss>"
    ).encode()


class _Bench(HumanCollector):
    name = "bench"

    def collect(self) -> Collected:  # pragma: no cover - not used
        return Collected()


def store(engine: Any, collected: Collected) -> None:
    with engine.begin() as conn:
        for batch in collected.rows:
            upsert(conn, batch.table, batch.rows, update=batch.update)


def main(n: int = 5000) -> None:
    rng = random.Random(7)
    payloads = {
        "cryptopanic": cryptopanic_items(n, rng),
        "reddit": reddit_children(n, rng),
        "news": rss_feed(n, rng),
    }
    print(
        f"{'source':<12} {'items':>7} {'parse+score+tag s':>18} "
        f"{'link+agg+store s':>17} {'items/s':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for source, payload in payloads.items():
            engine = make_engine(f"sqlite:///{Path(tmp) / (source + '.db')}")
            upgrade(engine)
            collector = _Bench(engine=engine)
            # the real collectors' overwritten columns: their items get revision rows
            if source == "cryptopanic":
                collector.news_update = CryptoPanicCollector.news_update
            collector.social_update = RedditCollector.social_update
            t0 = time.perf_counter()
            if source == "cryptopanic":
                news = [r for r in map(post_row, payload) if isinstance(r, dict)]
                social: list[dict[str, Any]] = []
            elif source == "reddit":
                news = []
                social = [
                    r
                    for r in (reddit_row(c, "CryptoCurrency") for c in payload)
                    if isinstance(r, dict)
                ]
            else:
                parsed, _ = parse_feed(payload, "https://news.example/rss", "application/rss+xml")
                name = feed_source("https://news.example/rss")
                news = [
                    r
                    for r in (entry_row(e, name, START) for e in parsed.entries)
                    if isinstance(r, dict)
                ]
                social = []
            t1 = time.perf_counter()
            store(engine, collector.finish(Collected(), news=news, social=social))
            t2 = time.perf_counter()
            engine.dispose()
            items = len(news) + len(social)
            print(
                f"{source:<12} {items:>7} {t1 - t0:>18.2f} "
                f"{t2 - t1:>17.2f} {items / (t2 - t0):>9.0f}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("items", nargs="?", type=int, default=5000, help="items per source")
    main(parser.parse_args().items)
