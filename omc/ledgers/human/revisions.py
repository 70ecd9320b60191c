"""Revisions of the Human ledger's mutable fields, and the one way to read items as of a moment.

A later collection can change some fields of an item it saw before: CryptoPanic's `sentiment`
(blended with the crowd votes), Reddit's `score`, `num_comments` and `sentiment`. The item row
(`news_items` / `social_posts`) holds the latest values and keeps its first `collected_at`;
every observed version of those fields is also a row of `news_item_revisions` /
`social_post_revisions`, stamped with the `collected_at` of the collection that saw it — the
first sighting included — and a collection that sees the same values again adds none. (The
catalyst ledger does the same with `catalyst_event_revisions`.)

`as_of_select` reads items as of a moment: the item rows stored by then, their mutable fields
from the revision current then. An item without revisions (a source whose items never change,
such as news feeds) keeps its row's values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, and_, case, func, select

from omc.core.time import ensure_utc
from omc.ledgers.models import NewsItem, NewsItemRevision, SocialPost, SocialPostRevision

NEWS = cast(Table, NewsItem.__table__)
SOCIAL = cast(Table, SocialPost.__table__)
REVISED_AT = "revised_at"  # as_of_select: when the revision read was collected (None: none)


@dataclass(frozen=True)
class Revised:
    """An item table, its revision table, the item key and the fields a revision holds."""

    items: Table
    revisions: Table
    key: tuple[str, str]
    fields: tuple[str, ...]

    def key_of(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[name] for name in self.key)


NEWS_REVISED = Revised(
    NEWS, cast(Table, NewsItemRevision.__table__), ("source", "source_id"), ("sentiment",)
)
SOCIAL_REVISED = Revised(
    SOCIAL,
    cast(Table, SocialPostRevision.__table__),
    ("platform", "post_id"),
    ("score", "num_comments", "sentiment"),
)


def new_revisions(
    revised: Revised,
    rows: Iterable[dict[str, Any]],
    stored: Iterable[dict[str, Any]],
    at: datetime,
) -> list[dict[str, Any]]:
    """Revision rows, stamped `at`, for this collection's `rows` that are new or whose
    mutable fields differ from their `stored` (latest) version. Each of `rows` gets
    `collected_at` = `at` too (used when it is a new item: its first revision and the item
    then share one stamp)."""
    known = {revised.key_of(row): row for row in stored}
    out = []
    for row in rows:
        row["collected_at"] = at
        before = known.get(revised.key_of(row))
        if before is not None and all(before.get(f) == row.get(f) for f in revised.fields):
            continue
        published = before["published_at"] if before is not None else row["published_at"]
        out.append(
            {
                **dict(zip(revised.key, revised.key_of(row), strict=True)),
                "collected_at": at,
                "published_at": published,
                **{name: row.get(name) for name in revised.fields},
            }
        )
    return out


def as_of_select(revised: Revised, names: Sequence[str], as_of: datetime | None) -> Select[Any]:
    """SELECT `names` of the items stored by `as_of`, the mutable fields as of then (None:
    every item, latest values). `revised_at` may be named when `as_of` is given. Callers add
    their filters and order on `revised.items`' columns."""
    items = revised.items
    if as_of is None:
        return select(*(items.c[name] for name in names))
    moment = ensure_utc(as_of)
    revisions = revised.revisions
    current = revisions.alias("current_revision")
    latest = (
        select(func.max(revisions.c.collected_at))
        .where(
            *(revisions.c[k] == items.c[k] for k in revised.key),
            revisions.c.collected_at <= moment,
        )
        .correlate(items)
        .scalar_subquery()
    )
    joined = items.outerjoin(
        current,
        and_(*(current.c[k] == items.c[k] for k in revised.key), current.c.collected_at == latest),
    )
    missing = current.c.collected_at.is_(None)

    def column(name: str) -> Any:
        if name == REVISED_AT:
            return current.c.collected_at.label(REVISED_AT)
        if name in revised.fields:
            return case((missing, items.c[name]), else_=current.c[name]).label(name)
        return items.c[name]

    return (
        select(*(column(name) for name in names))
        .select_from(joined)
        .where(items.c.collected_at <= moment)
    )
