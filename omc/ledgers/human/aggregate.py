"""The hourly per-coin sentiment aggregate, and the base class of the Human collectors.

`sentiment_hourly` holds, per coin and UTC hour: `count` (stories and posts), their mean
sentiment, and their engagement-weighted mean (weight 1 + ln(1 + engagement): CryptoPanic
votes, Reddit score; news feed items weigh 1). A *story* counts once however many outlets
carried it: news items sharing a `story_key` form one unit, scored by their mean sentiment,
weighted by their largest engagement, placed in the hour of their first publication, tagged
with the union of their coins. Each Reddit post or comment is a unit of its own.

How it stays up to date without a post-store hook in the runner: a Human collector's
`collect()` links its items to stored stories and then computes the aggregate rows of every
hour its items touch from *stored items plus the items of this run* (this run's version wins),
returning them as one more `Rows(update=[count, mean_sentiment, weighted_sentiment])`. The
runner stores items and aggregate in the same transaction, so they never disagree after a
run. Two Human collectors running at the same moment for the same hour could each miss the
other's uncommitted items; the next run of either repairs that hour, and
`rebuild_sentiment_hourly()` recomputes any range from the database alone (the body a runner
`after_store` hook would call).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, select

from omc.core.db import upsert
from omc.core.time import floor_time, utcnow
from omc.ledgers.collectors.base import Collected, Collector, Rows
from omc.ledgers.human.story import WINDOW, StoryIndex
from omc.ledgers.models import NewsItem, SentimentHourly, SocialPost

HOUR = timedelta(hours=1)
AGGREGATE_UPDATE = ("count", "mean_sentiment", "weighted_sentiment")

NEWS = cast(Table, NewsItem.__table__)
SOCIAL = cast(Table, SocialPost.__table__)
HOURLY = cast(Table, SentimentHourly.__table__)


def hour_of(value: datetime) -> datetime:
    return floor_time(value, 3600)


def news_engagement(row: dict[str, Any]) -> float:
    """Votes of a CryptoPanic item (from its raw payload); 0 for feed items."""
    raw = row.get("raw")
    if not isinstance(raw, dict):
        return 0.0
    votes = raw.get("votes")
    if not isinstance(votes, dict):
        return 0.0
    total = 0.0
    for name in ("positive", "negative", "important", "liked", "disliked", "lol", "toxic"):
        try:
            total += max(0.0, float(votes.get(name) or 0))
        except (TypeError, ValueError):
            continue
    return total


def weight(engagement: float) -> float:
    return 1.0 + math.log1p(max(0.0, engagement))


@dataclass
class Unit:
    """One counted thing: a story (all its outlets) or one social post / comment."""

    at: datetime
    coins: set[str] = field(default_factory=set)
    scores: list[float] = field(default_factory=list)
    weight: float = 1.0
    touched: bool = False  # holds an item of the current run


def build_units(
    news: Iterable[dict[str, Any]],
    social: Iterable[dict[str, Any]],
    touched: set[tuple[str, str, str]] = frozenset(),  # type: ignore[assignment]
) -> list[Unit]:
    """Stories from news rows (by story_key) and one unit per social row."""
    stories: dict[str, Unit] = {}
    units: list[Unit] = []
    for row in news:
        key = row.get("story_key") or f"{row['source']}:{row['source_id']}"
        unit = stories.get(key)
        if unit is None:
            unit = stories[key] = Unit(at=row["published_at"])
        unit.at = min(unit.at, row["published_at"])
        unit.coins.update(row.get("coins") or ())
        if row.get("sentiment") is not None:
            unit.scores.append(float(row["sentiment"]))
        unit.weight = max(unit.weight, weight(news_engagement(row)))
        unit.touched |= ("news", row["source"], row["source_id"]) in touched
    units.extend(stories.values())
    for row in social:
        unit = Unit(at=row["published_at"], coins=set(row.get("coins") or ()))
        if row.get("sentiment") is not None:
            unit.scores.append(float(row["sentiment"]))
        unit.weight = weight(float(max(0, row.get("score") or 0)))
        unit.touched = ("social", row["platform"], row["post_id"]) in touched
        units.append(unit)
    return units


def aggregate_rows(
    units: Iterable[Unit], hours: set[datetime] | None = None
) -> list[dict[str, Any]]:
    """`sentiment_hourly` rows of the units (only `hours`, when given)."""
    cells: dict[tuple[str, datetime], list[tuple[float, float]]] = defaultdict(list)
    for unit in units:
        if not unit.scores or not unit.coins:
            continue
        hour = hour_of(unit.at)
        if hours is not None and hour not in hours:
            continue
        score = sum(unit.scores) / len(unit.scores)
        for coin in unit.coins:
            cells[(coin, hour)].append((score, unit.weight))
    rows = []
    for (coin, hour), values in sorted(cells.items()):
        total_weight = sum(w for _, w in values)
        rows.append(
            {
                "coin": coin,
                "hour": hour,
                "count": len(values),
                "mean_sentiment": round(sum(s for s, _ in values) / len(values), 6),
                "weighted_sentiment": round(sum(s * w for s, w in values) / total_weight, 6),
            }
        )
    return rows


_NEWS_COLUMNS = ("source", "source_id", "url", "title", "published_at", "sentiment", "coins",
                 "story_key", "raw")  # fmt: skip
_SOCIAL_COLUMNS = ("platform", "post_id", "published_at", "sentiment", "coins", "score")


def load_news(engine: Engine, since: datetime, until: datetime) -> list[dict[str, Any]]:
    columns = [NEWS.c[name] for name in _NEWS_COLUMNS]
    query = select(*columns).where(NEWS.c.published_at >= since, NEWS.c.published_at < until)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query.order_by(NEWS.c.published_at))]


def load_social(engine: Engine, since: datetime, until: datetime) -> list[dict[str, Any]]:
    columns = [SOCIAL.c[name] for name in _SOCIAL_COLUMNS]
    query = select(*columns).where(SOCIAL.c.published_at >= since, SOCIAL.c.published_at < until)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def rebuild_sentiment_hourly(
    engine: Engine, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Recompute and store every aggregate row of the hours in [since, until) from stored items."""
    start = hour_of(since)
    end = hour_of(until) if until == hour_of(until) else hour_of(until) + HOUR
    news = load_news(engine, start - WINDOW, end + WINDOW)
    social = load_social(engine, start, end)
    hours = {start + i * HOUR for i in range(int((end - start) / HOUR))}
    rows = aggregate_rows(build_units(news, social), hours)
    upsert(engine, HOURLY, rows, update=AGGREGATE_UPDATE)
    return rows


class HumanCollector(Collector):
    """A Human-ledger collector: subclasses parse and score; `finish()` links and aggregates."""

    def __init__(
        self,
        *,
        engine: Engine | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine  # the runner sets its own before each run
        self.clock = clock

    def finish(
        self,
        result: Collected,
        news: list[dict[str, Any]] | None = None,
        social: list[dict[str, Any]] | None = None,
    ) -> Collected:
        """Link `news` to stored stories, add the item rows and the touched hours' aggregate."""
        news = news or []
        social = social or []
        times = [row["published_at"] for row in (*news, *social)]
        if not times:
            return result
        engine = self.engine
        first, last = hour_of(min(times)), hour_of(max(times)) + HOUR
        stored_news = load_news(engine, first - 2 * WINDOW, last + 2 * WINDOW) if engine else []
        stored_social = load_social(engine, first - WINDOW, last + WINDOW) if engine else []
        if news:
            self._link(news, stored_news)
            result.rows.append(Rows(NEWS, news, self.news_update))
        if social:
            result.rows.append(Rows(SOCIAL, social, self.social_update))
        touched = {("news", r["source"], r["source_id"]) for r in news}
        touched |= {("social", r["platform"], r["post_id"]) for r in social}
        merged_news = {(r["source"], r["source_id"]): r for r in stored_news}
        merged_news.update({(r["source"], r["source_id"]): r for r in news})
        merged_social = {(r["platform"], r["post_id"]): r for r in stored_social}
        merged_social.update({(r["platform"], r["post_id"]): r for r in social})
        units = build_units(merged_news.values(), merged_social.values(), touched)
        hours = {hour_of(row["published_at"]) for row in (*news, *social)}
        hours |= {hour_of(unit.at) for unit in units if unit.touched}
        rows = aggregate_rows(units, hours)
        if rows:
            result.rows.append(Rows(HOURLY, rows, AGGREGATE_UPDATE))
        return result

    news_update: tuple[str, ...] = ()
    social_update: tuple[str, ...] = ()

    @staticmethod
    def _link(news: list[dict[str, Any]], stored: list[dict[str, Any]]) -> None:
        index = StoryIndex()
        known: dict[tuple[str, str], str] = {}
        for row in stored:
            if row.get("story_key"):
                index.add(row["story_key"], row.get("url"), row.get("title"), row["published_at"])
                known[(row["source"], row["source_id"])] = row["story_key"]
        for row in sorted(news, key=lambda r: r["published_at"]):
            key = known.get((row["source"], row["source_id"]))
            if key is None:
                seed = f"{row['source']}:{row['source_id']}"
                key = index.link(row.get("url"), row.get("title"), row["published_at"], seed)
            else:
                index.add(key, row.get("url"), row.get("title"), row["published_at"])
            row["story_key"] = key
