"""The hourly per-coin sentiment aggregate: ONE implementation for the stored table and the
point-in-time read.

Per coin and UTC hour: `count` (stories and posts), their mean sentiment, and their
engagement-weighted mean (weight 1 + ln(1 + engagement): CryptoPanic votes, Reddit score;
news feed items weigh 1). A *story* counts once however many outlets carried it: news items
sharing a `story_key` form one unit, scored by their mean sentiment, weighted by their largest
engagement, placed in the hour of their first publication, tagged with the union of their
coins (upper case). Each Reddit post or comment is a unit of its own.

The collectors store these rows in `sentiment_hourly` (`omc.ledgers.human.aggregate`);
`omc.ledgers.pit.sentiment_hourly` computes them with `sentiment_rows` from the items stored
by `as_of` — the same functions, so the two agree on the same items — and adds each cell's
knowledge time (`known_at`): the end of the hour, or later when an item that changed the cell
was stored after it. As of a moment, an item's sentiment and score are those of its revision
current then (`omc.ledgers.human.revisions`), never a later collection's.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from omc.core.time import ensure_utc, floor_time
from omc.ledgers.human.revisions import (
    NEWS,
    NEWS_REVISED,
    REVISED_AT,
    SOCIAL,
    SOCIAL_REVISED,
    Revised,
    as_of_select,
)
from omc.ledgers.human.story import WINDOW

HOUR = timedelta(hours=1)
Cell = tuple[str, datetime]  # (coin, hour)


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
    return 1.0 + math.log1p(max(0.0, engagement)) if math.isfinite(engagement) else 1.0


def story_of(row: dict[str, Any]) -> str:
    """The unit a news row belongs to: its story, or the item itself."""
    return str(row.get("story_key") or f"{row['source']}:{row['source_id']}")


def _coins(row: dict[str, Any]) -> set[str]:
    return {str(c).upper() for c in row.get("coins") or () if c}


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
        key = story_of(row)
        unit = stories.get(key)
        if unit is None:
            unit = stories[key] = Unit(at=row["published_at"])
        unit.at = min(unit.at, row["published_at"])
        unit.coins.update(_coins(row))
        if row.get("sentiment") is not None:
            unit.scores.append(float(row["sentiment"]))
        unit.weight = max(unit.weight, weight(news_engagement(row)))
        unit.touched |= ("news", row["source"], row["source_id"]) in touched
    units.extend(stories.values())
    for row in social:
        unit = Unit(at=row["published_at"], coins=_coins(row))
        if row.get("sentiment") is not None:
            unit.scores.append(float(row["sentiment"]))
        unit.weight = weight(float(max(0, row.get("score") or 0)))
        unit.touched = ("social", row["platform"], row["post_id"]) in touched
        units.append(unit)
    return units


def aggregate_rows(
    units: Iterable[Unit], hours: set[datetime] | None = None
) -> list[dict[str, Any]]:
    """`sentiment_hourly` rows of the units (only `hours`, when given), by coin then hour."""
    cells: dict[Cell, list[tuple[float, float]]] = defaultdict(list)
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


def knowledge_times(
    news: Iterable[dict[str, Any]], social: Iterable[dict[str, Any]]
) -> dict[Cell, datetime]:
    """Per (coin, hour) cell, the latest `collected_at` of an item that changed it.

    A story's items are replayed in storage order: each one can move the story to an earlier
    hour (its first publication) or add coins, so it touches the cells the story left and
    the cells it is in now. A social item touches its own cells. A revision of an item's
    score or engagement (`revised_at`) touches the cells its unit is in."""
    known: dict[Cell, datetime] = {}

    def touch(cells: Iterable[Cell], when: datetime) -> None:
        for cell in cells:
            if cell not in known or when > known[cell]:
                known[cell] = when

    stories: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in news:
        stories[story_of(row)].append(row)
    for rows in stories.values():
        at: datetime | None = None
        coins: set[str] = set()
        for row in sorted(rows, key=lambda r: r["collected_at"]):
            before = {(c, hour_of(at)) for c in coins} if at is not None else set()
            at = row["published_at"] if at is None else min(at, row["published_at"])
            coins |= _coins(row)
            touch(before | {(c, hour_of(at)) for c in coins}, row["collected_at"])
        revised = [row[REVISED_AT] for row in rows if row.get(REVISED_AT) is not None]
        if revised and at is not None:
            touch({(c, hour_of(at)) for c in coins}, max(revised))
    for row in social:
        when = max(row["collected_at"], row.get(REVISED_AT) or row["collected_at"])
        touch({(c, hour_of(row["published_at"])) for c in _coins(row)}, when)
    return known


_NEWS_COLUMNS = ("source", "source_id", "url", "title", "published_at", "collected_at",
                 "sentiment", "coins", "story_key", "raw")  # fmt: skip
_SOCIAL_COLUMNS = ("platform", "post_id", "published_at", "collected_at", "sentiment", "coins",
                   "score", "num_comments")  # fmt: skip


def _load(
    revised: Revised,
    names: tuple[str, ...],
    engine: Engine,
    since: datetime,
    until: datetime,
    as_of: datetime | None,
) -> list[dict[str, Any]]:
    """Rows published in [since, until) as stored by `as_of` (the revision current then),
    with `revised_at`; None: the latest of everything stored."""
    table = revised.items
    wanted = names if as_of is None else (*names, REVISED_AT)
    query = as_of_select(revised, wanted, as_of).where(
        table.c.published_at >= since, table.c.published_at < until
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query.order_by(table.c.published_at))]


def load_news(
    engine: Engine, since: datetime, until: datetime, as_of: datetime | None = None
) -> list[dict[str, Any]]:
    """News rows published in [since, until) (as stored by `as_of`, when given)."""
    return _load(NEWS_REVISED, _NEWS_COLUMNS, engine, since, until, as_of)


def load_social(
    engine: Engine, since: datetime, until: datetime, as_of: datetime | None = None
) -> list[dict[str, Any]]:
    """Social rows published in [since, until) (as stored by `as_of`, when given)."""
    return _load(SOCIAL_REVISED, _SOCIAL_COLUMNS, engine, since, until, as_of)


def _time_range(engine: Engine, as_of: datetime | None) -> tuple[datetime, datetime] | None:
    """Earliest and latest publication of any stored item (None: no items)."""
    found: list[datetime] = []
    with engine.connect() as conn:
        for table in (NEWS, SOCIAL):
            query = select(func.min(table.c.published_at), func.max(table.c.published_at))
            if as_of is not None:
                query = query.where(table.c.collected_at <= ensure_utc(as_of))
            first, last = conn.execute(query).one()
            found += [ensure_utc(t) for t in (first, last) if t is not None]
    return (min(found), max(found)) if found else None


def sentiment_rows(
    engine: Engine,
    *,
    as_of: datetime | None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    """Aggregate rows of every hour in [start, end] (hour starts, inclusive; default: all
    stored) from the items stored by `as_of` (None: everything stored). Each row: coin, hour,
    count, mean_sentiment, weighted_sentiment, and known_at = max(hour end, latest
    collected_at of an item that changed the cell)."""
    # an open bound is closed by the stored items' range (both given: no query needed)
    span = _time_range(engine, as_of) if start is None or end is None else (start, end)
    if span is None:
        return []
    first = hour_of(ensure_utc(start)) if start is not None else hour_of(span[0])
    if start is not None and first < ensure_utc(start):
        first += HOUR  # the hour starting before `start` is not asked for
    last = hour_of(ensure_utc(end)) if end is not None else hour_of(span[1])
    if last < first:
        return []
    stop = last + HOUR
    news = load_news(engine, first - WINDOW, stop + WINDOW, as_of)
    social = load_social(engine, first, stop, as_of)
    hours = {first + i * HOUR for i in range(int((stop - first) / HOUR))}
    rows = aggregate_rows(build_units(news, social), hours)
    known = knowledge_times(news, social)
    for row in rows:
        ends = row["hour"] + HOUR
        row["known_at"] = max(ends, known.get((row["coin"], row["hour"]), ends))
    return rows
