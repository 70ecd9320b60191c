"""The schema of the four ledgers, plus collector runs, their pauses and the quarantine.

Every time-series table has a natural primary key (so every write is an idempotent upsert),
stores prices and sizes as exact decimals, and records when the world knew a fact
(`ts` / `published_at`) and when OMC stored it (`collected_at`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from omc.core.db_types import Base, ExactDecimal, UTCDateTime
from omc.core.time import utcnow

PK = BigInteger().with_variant(Integer, "sqlite")


class _Row(Base):
    """A time-series row: its natural key is its primary key (no surrogate id, one index)."""

    __abstract__ = True

    collected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


# ---------------------------------------------------------------- Exchange ledger


class Tick(_Row):
    """A price quote observed at `ts` (bid/ask/last; volume when the source gives one)."""

    __tablename__ = "ticks"
    # SQLite: the primary key is the table (no rowid + separate index): faster bulk writes
    __table_args__ = (
        PrimaryKeyConstraint("source", "coin", "market", "ts"),
        {"sqlite_with_rowid": False},
    )

    source: Mapped[str] = mapped_column(String(32))
    coin: Mapped[str] = mapped_column(String(32))
    market: Mapped[str] = mapped_column(String(16))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    bid: Mapped[Decimal] = mapped_column(ExactDecimal)
    ask: Mapped[Decimal] = mapped_column(ExactDecimal)
    last: Mapped[Decimal] = mapped_column(ExactDecimal)
    volume: Mapped[Decimal | None] = mapped_column(ExactDecimal, nullable=True)


class Candle(_Row):
    """An OHLCV candle that opened at `ts` (closed candles only)."""

    __tablename__ = "candles"
    __table_args__ = (
        PrimaryKeyConstraint("exchange", "symbol", "timeframe", "ts"),
        {"sqlite_with_rowid": False},
    )

    exchange: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    timeframe: Mapped[str] = mapped_column(String(8))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    open: Mapped[Decimal] = mapped_column(ExactDecimal)
    high: Mapped[Decimal] = mapped_column(ExactDecimal)
    low: Mapped[Decimal] = mapped_column(ExactDecimal)
    close: Mapped[Decimal] = mapped_column(ExactDecimal)
    volume: Mapped[Decimal | None] = mapped_column(ExactDecimal, nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="import")


class Trade(_Row):
    """A completed public trade. `trade_key` is the venue's id, or a digest of the fields."""

    __tablename__ = "trades"
    __table_args__ = (PrimaryKeyConstraint("exchange", "symbol", "trade_key"),)

    exchange: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    trade_key: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    side: Mapped[str] = mapped_column(String(4))
    price: Mapped[Decimal] = mapped_column(ExactDecimal)
    amount: Mapped[Decimal] = mapped_column(ExactDecimal)


# ---------------------------------------------------------------- Glass ledger


class ProtocolMetric(_Row):
    """A DeFi protocol figure (TVL, fees, revenue, …) for a chain ('' = all chains) at `ts`."""

    __tablename__ = "protocol_metrics"
    __table_args__ = (PrimaryKeyConstraint("source", "protocol", "chain", "metric", "ts"),)

    source: Mapped[str] = mapped_column(String(32))
    protocol: Mapped[str] = mapped_column(String(128))
    chain: Mapped[str] = mapped_column(String(64), default="")
    metric: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    value: Mapped[Decimal] = mapped_column(ExactDecimal)
    coins: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class OnchainMetric(_Row):
    """A chain-level figure (block height, gas price, transactions per block) at `ts`."""

    __tablename__ = "onchain_metrics"
    __table_args__ = (PrimaryKeyConstraint("chain", "metric", "ts"),)

    chain: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    value: Mapped[Decimal] = mapped_column(ExactDecimal)
    endpoint: Mapped[str | None] = mapped_column(String(256), nullable=True)


class ProtocolLatest(_Row):
    """The latest intraday snapshot of a protocol figure (overwritten each collection).

    History lives in `protocol_metrics` (one row per protocol, chain, metric and day); this
    table only answers "what is it now". Point-in-time reads use `protocol_metrics`.
    """

    __tablename__ = "protocol_latest"
    __table_args__ = (PrimaryKeyConstraint("source", "protocol", "chain", "metric"),)

    source: Mapped[str] = mapped_column(String(32))
    protocol: Mapped[str] = mapped_column(String(128))
    chain: Mapped[str] = mapped_column(String(64), default="")
    metric: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    value: Mapped[Decimal] = mapped_column(ExactDecimal)
    coins: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


# ---------------------------------------------------------------- Human ledger


class NewsItem(_Row):
    """A news story from an aggregator or feed, scored and tagged."""

    __tablename__ = "news_items"
    __table_args__ = (
        PrimaryKeyConstraint("source", "source_id"),
        Index("ix_news_items_published_at", "published_at"),
    )

    source: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(256))
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sentiment: Mapped[float | None] = mapped_column(Float, nullable=True)
    coins: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    story_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class SocialPost(_Row):
    """A social post or comment (Reddit, …), scored and tagged."""

    __tablename__ = "social_posts"
    __table_args__ = (
        PrimaryKeyConstraint("platform", "post_id"),
        Index("ix_social_posts_published_at", "published_at"),
    )

    platform: Mapped[str] = mapped_column(String(32))
    post_id: Mapped[str] = mapped_column(String(64))
    parent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    community: Mapped[str | None] = mapped_column(String(128), nullable=True)
    author: Mapped[str | None] = mapped_column(String(128), nullable=True)
    title: Mapped[str | None] = mapped_column(Text, nullable=True)
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    num_comments: Mapped[int | None] = mapped_column(Integer, nullable=True)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sentiment: Mapped[float | None] = mapped_column(Float, nullable=True)
    coins: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class NewsItemRevision(_Row):
    """Every observed version of a news item's mutable fields (insert-only), for
    point-in-time reads: `news_items` holds the latest; a collection that sees new values adds
    a row here stamped with its own `collected_at` (the first sighting included)."""

    __tablename__ = "news_item_revisions"
    __table_args__ = (PrimaryKeyConstraint("source", "source_id", "collected_at"),)

    source: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(256))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sentiment: Mapped[float | None] = mapped_column(Float, nullable=True)


class SocialPostRevision(_Row):
    """Every observed version of a social post's mutable fields (score, comment count,
    sentiment), insert-only, like `NewsItemRevision`."""

    __tablename__ = "social_post_revisions"
    __table_args__ = (PrimaryKeyConstraint("platform", "post_id", "collected_at"),)

    platform: Mapped[str] = mapped_column(String(32))
    post_id: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    num_comments: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sentiment: Mapped[float | None] = mapped_column(Float, nullable=True)


class SentimentHourly(_Row):
    """Hourly per-coin sentiment aggregate over news and social items."""

    __tablename__ = "sentiment_hourly"
    __table_args__ = (PrimaryKeyConstraint("coin", "hour"),)

    coin: Mapped[str] = mapped_column(String(32))
    hour: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer)
    mean_sentiment: Mapped[float] = mapped_column(Float)
    weighted_sentiment: Mapped[float] = mapped_column(Float)


# ---------------------------------------------------------------- Catalyst ledger


class CatalystEvent(_Row):
    """An event that can move a price: a filing, a listing, a delisting, a halt, …"""

    __tablename__ = "catalyst_events"
    __table_args__ = (
        PrimaryKeyConstraint("source", "event_id"),
        Index("ix_catalyst_events_published_at", "published_at"),
    )

    source: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    coins: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    impact: Mapped[float | None] = mapped_column(Float, nullable=True)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class CatalystEventRevision(_Row):
    """Every version of an event as OMC saw it (insert-only), for point-in-time reads.

    `catalyst_events` holds the latest version; an edited source item adds a revision here
    (keyed by the source's own update time) and updates that row, never duplicates it.
    """

    __tablename__ = "catalyst_event_revisions"
    __table_args__ = (PrimaryKeyConstraint("source", "event_id", "revision"),)

    source: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(128))
    revision: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    coins: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    impact: Mapped[float | None] = mapped_column(Float, nullable=True)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Alert(Base):
    """An alert raised from a catalyst event (e.g. a new CoinSpot listing), and its delivery.

    `coin` is '' for the alert raised when the event is first seen (it names all its `coins`);
    a coin added to the event by a later edit gets its own alert with `coin` set to it.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("source", "event_id", "kind", "coin"),
        Index("ix_alerts_raised_at", "raised_at"),
    )

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    coin: Mapped[str] = mapped_column(String(32), default="", server_default="")
    title: Mapped[str] = mapped_column(Text)
    coins: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deliveries: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class HttpValidator(Base):
    """ETag / Last-Modified of the last good response per source and URL (conditional GETs)."""

    __tablename__ = "http_validators"
    __table_args__ = (PrimaryKeyConstraint("source", "url"),)

    source: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(512))
    etag: Mapped[str | None] = mapped_column(String(256), nullable=True)
    last_modified: Mapped[str | None] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# ---------------------------------------------------------------- Collector bookkeeping


class CollectorRun(Base):
    """One run of one collector: when, how it ended, and what it counted.

    `status`: `running`, then `ok`, `partial`, `failed` or `interrupted` (shutdown, or the
    process died: closed at the next start). `owner` is `host:pid:token` of the process
    running it, so a later start can tell a dead run from one another process is running.
    """

    __tablename__ = "collector_runs"
    __table_args__ = (Index("ix_collector_runs_collector_started", "collector", "started_at"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    collector: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="running")
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)


class CollectorControl(Base):
    """A collector paused by an admin (`omc.ledgers.collectors.controls`): the scheduler skips
    its runs until it is resumed."""

    __tablename__ = "collector_controls"

    collector: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class QuarantinedItem(Base):
    """A payload or item that failed validation, kept with the reason.

    The payload is stored verbatim up to a size cap (`payload_size` is the full size in bytes,
    `payload_hash` the SHA-256 of the full payload). The same bad payload seen again is
    counted (`occurrences`), not stored twice.
    """

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("collector", "payload_hash", "reason"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    collector: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    payload_hash: Mapped[str] = mapped_column(String(64))
    payload_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)


LEDGER_TABLES: dict[str, dict[str, Any]] = {
    "exchange": {"ticks": Tick, "candles": Candle, "trades": Trade},
    "glass": {
        "protocol_metrics": ProtocolMetric,
        "protocol_latest": ProtocolLatest,
        "onchain_metrics": OnchainMetric,
    },
    "human": {
        "news_items": NewsItem,
        "news_item_revisions": NewsItemRevision,
        "social_posts": SocialPost,
        "social_post_revisions": SocialPostRevision,
        "sentiment_hourly": SentimentHourly,
    },
    "catalyst": {
        "catalyst_events": CatalystEvent,
        "catalyst_event_revisions": CatalystEventRevision,
        "alerts": Alert,
    },
}
