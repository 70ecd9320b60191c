"""The base class of the Human collectors, and how the stored hourly aggregate stays current.

The aggregate itself (stories counted once, engagement weights) is `omc.ledgers.human.hourly`,
the one implementation shared with the point-in-time read `omc.ledgers.pit.sentiment_hourly`.

How `sentiment_hourly` stays up to date without a post-store hook in the runner: a Human
collector's `collect()` links its items to stored stories and then computes the aggregate rows
of every hour its items touch from *stored items plus the items of this run* (this run's
version wins), returning them as one more `Rows(update=[count, mean_sentiment,
weighted_sentiment])`. The runner stores items and aggregate in the same transaction, so they
never disagree after a run. Two Human collectors running at the same moment for the same hour
could each miss the other's uncommitted items; the next run of either repairs that hour, and
`rebuild_sentiment_hourly()` recomputes any range from the database alone (the body a runner
`after_store` hook would call).

Items whose fields a later collection overwrites (`news_update` / `social_update`) also get a
revision row for each new version seen (`omc.ledgers.human.revisions`), stored in the same
transaction, so point-in-time reads return the version current at the time asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine, Table

from omc.core.time import utcnow
from omc.core.upsert import upsert
from omc.ledgers.collectors.base import Collected, Collector, Rows
from omc.ledgers.human.hourly import (
    HOUR,
    NEWS,
    SOCIAL,
    aggregate_rows,
    build_units,
    hour_of,
    load_news,
    load_social,
    sentiment_rows,
)
from omc.ledgers.human.revisions import NEWS_REVISED, SOCIAL_REVISED, new_revisions
from omc.ledgers.human.story import WINDOW, StoryIndex
from omc.ledgers.models import SentimentHourly

AGGREGATE_UPDATE = ("count", "mean_sentiment", "weighted_sentiment")
HOURLY = cast(Table, SentimentHourly.__table__)


def rebuild_sentiment_hourly(
    engine: Engine, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Recompute and store every aggregate row of the hours in [since, until) from stored items."""
    start = hour_of(since)
    end = hour_of(until) if until == hour_of(until) else hour_of(until) + HOUR
    rows = sentiment_rows(engine, as_of=None, start=start, end=end - HOUR)
    for row in rows:
        del row["known_at"]  # the stored table keeps the aggregate; pit adds knowledge time
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
        stamp = utcnow()
        if news:
            self._link(news, stored_news)
            result.rows.append(Rows(NEWS, news, self.news_update))
            if self.news_update:  # overwritten fields: keep every version seen
                revisions = new_revisions(NEWS_REVISED, news, stored_news, stamp)
                result.rows.append(Rows(NEWS_REVISED.revisions, revisions))
        if social:
            result.rows.append(Rows(SOCIAL, social, self.social_update))
            if self.social_update:
                revisions = new_revisions(SOCIAL_REVISED, social, stored_social, stamp)
                result.rows.append(Rows(SOCIAL_REVISED.revisions, revisions))
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

    # columns a later collection overwrites: only fields with revisions
    # (`NEWS_REVISED.fields`, `SOCIAL_REVISED.fields`), so point-in-time reads stay exact
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
