"""Point-in-time access to the four ledgers: the only way the Lab and the Floor read them.

Every function takes `as_of` (an aware datetime) and returns only what OMC had **stored** at
that moment: rows with `collected_at <= as_of`, and for revised items (catalyst events; the
sentiment and scores of news and social items) the revision that was current then — never a
later one. So a training set or a backtest built "as of" a date cannot see the future.
Optional `start` / `end` bound the rows' own time (`ts`, `published_at` or `hour`), inclusive.

Each function returns a pandas DataFrame with the columns listed in its docstring, sorted by
time. Timestamps are `datetime64[ns, UTC]`. Prices and values are float64 (research use);
pass `exact=True` to `candles`, `ticks`, `protocol_metrics` or `onchain_metrics` to get
`Decimal` objects instead. This module only reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    DateTime,
    Engine,
    Float,
    Select,
    String,
    Table,
    cast,
    func,
    select,
    type_coerce,
    union_all,
)

from omc.core.time import ensure_utc
from omc.ledgers.human.hourly import sentiment_rows
from omc.ledgers.human.revisions import NEWS_REVISED, SOCIAL_REVISED, as_of_select
from omc.ledgers.models import (
    LEDGER_TABLES,
    Candle,
    CatalystEvent,
    CatalystEventRevision,
    NewsItem,
    OnchainMetric,
    ProtocolMetric,
    SocialPost,
    Tick,
)

PRICE_COLUMNS = ["open", "high", "low", "close", "volume"]
CANDLE_COLUMNS = ["ts", *PRICE_COLUMNS, "collected_at"]
TICK_COLUMNS = ["ts", "source", "coin", "market", "bid", "ask", "last", "volume"]
PROTOCOL_COLUMNS = ["ts", "source", "protocol", "chain", "metric", "value", "collected_at"]
ONCHAIN_COLUMNS = ["ts", "chain", "metric", "value", "collected_at"]
NEWS_COLUMNS = [
    "published_at",
    "collected_at",
    "source",
    "source_id",
    "title",
    "url",
    "sentiment",
    "coins",
    "story_key",
]
SOCIAL_COLUMNS = [
    "published_at",
    "collected_at",
    "platform",
    "post_id",
    "parent_id",
    "community",
    "title",
    "body",
    "url",
    "score",
    "num_comments",
    "sentiment",
    "coins",
]
SENTIMENT_COLUMNS = ["hour", "coin", "count", "mean_sentiment", "weighted_sentiment", "known_at"]
EVENT_COLUMNS = [
    "published_at",
    "collected_at",
    "source",
    "event_id",
    "kind",
    "title",
    "url",
    "coins",
    "impact",
]
COIN_COLUMNS = ["coin", "ledgers", "first_seen"]
STATS_COLUMNS = ["ledger", "table", "rows", "first", "last"]
SERIES_COLUMNS = ["exchange", "symbol", "timeframe", "bars", "first", "last"]


def _as_of(as_of: datetime) -> datetime:
    return ensure_utc(as_of)


def _bounded(
    query: Select[Any], column: Any, start: datetime | None, end: datetime | None
) -> Select[Any]:
    if start is not None:
        query = query.where(column >= ensure_utc(start))
    if end is not None:
        query = query.where(column <= ensure_utc(end))
    return query


def _frame(
    engine: Engine, query: Select[Any], columns: Sequence[str], times: Sequence[str]
) -> pd.DataFrame:
    """Run `query` and build a frame; text timestamps (SQLite) are parsed vectorised."""
    with engine.connect() as conn:
        rows = conn.execute(query).fetchall()
    # columnar construction from plain tuples: pandas probing SQLAlchemy Row objects per row
    # costs more than the query itself
    data = list(zip(*map(tuple, rows), strict=True)) if rows else [()] * len(columns)
    frame = pd.DataFrame(dict(zip(columns, data, strict=True)))
    for name in times:
        if pd.api.types.is_integer_dtype(frame[name]):
            frame[name] = pd.to_datetime(frame[name], unit="us", utc=True)
        else:
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    return frame


def _time(engine: Engine, column: Any) -> Any:
    """A time column fetched raw — ISO text on SQLite, epoch microseconds on PostgreSQL —
    and parsed vectorised by pandas afterwards: far cheaper than datetimes row by row."""
    if engine.dialect.name == "sqlite":
        return type_coerce(column, String()).label(column.key)
    micros = func.extract("epoch", type_coerce(column, DateTime(timezone=True))) * 1_000_000
    return cast(func.round(micros), BigInteger).label(column.key)


def _number(column: Any, exact: bool) -> Any:
    """A numeric column: a float cast done by the database, or the exact Decimal."""
    return column if exact else cast(column, Float).label(column.key)


def _floats(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    for name in names:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame


# ----------------------------------------------------------------------------- Exchange


def candles(
    engine: Engine,
    exchange: str,
    symbol: str,
    timeframe: str,
    *,
    as_of: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    exact: bool = False,
    limit: int | None = None,
) -> pd.DataFrame:
    """Candles of one series known at `as_of` (the first `limit` of them, when given).
    Columns: ts (candle open), open, high, low, close, volume, collected_at (when OMC stored
    the candle)."""
    t: Table = Candle.__table__  # type: ignore[assignment]
    query: Select[Any] = select(
        _time(engine, t.c.ts),
        *(_number(t.c[name], exact) for name in PRICE_COLUMNS),
        _time(engine, t.c.collected_at),
    ).where(
        t.c.exchange == exchange,
        t.c.symbol == symbol,
        t.c.timeframe == timeframe,
        t.c.collected_at <= _as_of(as_of),
    )
    query = _bounded(query, t.c.ts, start, end).order_by(t.c.ts)
    if limit is not None:
        query = query.limit(limit)
    frame = _frame(engine, query, CANDLE_COLUMNS, ["ts", "collected_at"])
    return frame if exact else _floats(frame, PRICE_COLUMNS)


def ticks(
    engine: Engine,
    *,
    as_of: datetime,
    coin: str | None = None,
    source: str = "coinspot",
    market: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    exact: bool = False,
) -> pd.DataFrame:
    """Ticks known at `as_of`. Columns: ts, source, coin, market, bid, ask, last, volume."""
    t: Table = Tick.__table__  # type: ignore[assignment]
    query = select(
        _time(engine, t.c.ts),
        t.c.source,
        t.c.coin,
        t.c.market,
        *(_number(t.c[name], exact) for name in ("bid", "ask", "last", "volume")),
    ).where(t.c.source == source, t.c.collected_at <= _as_of(as_of))
    if coin is not None:
        query = query.where(t.c.coin == coin.lower())
    if market is not None:
        query = query.where(t.c.market == market.lower())
    query = _bounded(query, t.c.ts, start, end).order_by(t.c.ts, t.c.coin, t.c.market)
    frame = _frame(engine, query, TICK_COLUMNS, ["ts"])
    return frame if exact else _floats(frame, ["bid", "ask", "last", "volume"])


# ----------------------------------------------------------------------------- Glass


def protocol_metrics(
    engine: Engine,
    *,
    as_of: datetime,
    protocol: str | None = None,
    metric: str | None = None,
    chain: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    exact: bool = False,
) -> pd.DataFrame:
    """Daily protocol figures known at `as_of` (TVL, fees, revenue, …; chain '' = all chains).
    Columns: ts, source, protocol, chain, metric, value, collected_at."""
    t: Table = ProtocolMetric.__table__  # type: ignore[assignment]
    query: Select[Any] = select(
        _time(engine, t.c.ts),
        t.c.source,
        t.c.protocol,
        t.c.chain,
        t.c.metric,
        _number(t.c.value, exact),
        _time(engine, t.c.collected_at),
    ).where(t.c.collected_at <= _as_of(as_of))
    for column, value in (("protocol", protocol), ("metric", metric), ("chain", chain)):
        if value is not None:
            query = query.where(t.c[column] == value)
    query = _bounded(query, t.c.ts, start, end).order_by(
        t.c.ts, t.c.protocol, t.c.chain, t.c.metric
    )
    frame = _frame(engine, query, PROTOCOL_COLUMNS, ["ts", "collected_at"])
    return frame if exact else _floats(frame, ["value"])


def onchain_metrics(
    engine: Engine,
    *,
    as_of: datetime,
    chain: str | None = None,
    metric: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    exact: bool = False,
) -> pd.DataFrame:
    """Chain figures known at `as_of` (block height, gas price, transactions per block).
    Columns: ts, chain, metric, value, collected_at."""
    t: Table = OnchainMetric.__table__  # type: ignore[assignment]
    query: Select[Any] = select(
        _time(engine, t.c.ts),
        t.c.chain,
        t.c.metric,
        _number(t.c.value, exact),
        _time(engine, t.c.collected_at),
    ).where(t.c.collected_at <= _as_of(as_of))
    if chain is not None:
        query = query.where(t.c.chain == chain)
    if metric is not None:
        query = query.where(t.c.metric == metric)
    query = _bounded(query, t.c.ts, start, end).order_by(t.c.ts, t.c.chain, t.c.metric)
    frame = _frame(engine, query, ONCHAIN_COLUMNS, ["ts", "collected_at"])
    return frame if exact else _floats(frame, ["value"])


# ----------------------------------------------------------------------------- Human


def _has_coin(coins: Any, coin: str) -> bool:
    return isinstance(coins, list) and coin.upper() in (str(c).upper() for c in coins)


def _with_coin(frame: pd.DataFrame, coin: str) -> pd.DataFrame:
    """Rows whose `coins` list names `coin` (an empty frame keeps its columns)."""
    mask = frame["coins"].map(lambda coins: _has_coin(coins, coin)).astype(bool)
    return frame[mask]


def news(
    engine: Engine,
    *,
    as_of: datetime,
    coin: str | None = None,
    source: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """News items known at `as_of`, their sentiment as collected by then (a later revision
    never shows). Columns: published_at, collected_at (first stored), source, source_id,
    title, url, sentiment, coins (list of symbols), story_key (same story across outlets)."""
    t = NEWS_REVISED.items
    query = as_of_select(NEWS_REVISED, NEWS_COLUMNS, _as_of(as_of))
    if source is not None:
        query = query.where(t.c.source == source)
    query = _bounded(query, t.c.published_at, start, end).order_by(t.c.published_at, t.c.source_id)
    frame = _frame(engine, query, NEWS_COLUMNS, [])
    frame = _times(frame, ["published_at", "collected_at"])
    return frame if coin is None else _with_coin(frame, coin).reset_index(drop=True)


def social(
    engine: Engine,
    *,
    as_of: datetime,
    coin: str | None = None,
    platform: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Social posts and comments known at `as_of`, their score, comment count and sentiment
    as collected by then (a later revision never shows). Columns: published_at,
    collected_at (first stored), platform, post_id, parent_id, community, title, body, url,
    score, num_comments, sentiment, coins."""
    t = SOCIAL_REVISED.items
    query = as_of_select(SOCIAL_REVISED, SOCIAL_COLUMNS, _as_of(as_of))
    if platform is not None:
        query = query.where(t.c.platform == platform)
    query = _bounded(query, t.c.published_at, start, end).order_by(t.c.published_at, t.c.post_id)
    frame = _times(_frame(engine, query, SOCIAL_COLUMNS, []), ["published_at", "collected_at"])
    return frame if coin is None else _with_coin(frame, coin).reset_index(drop=True)


def sentiment_hourly(
    engine: Engine,
    *,
    as_of: datetime,
    coin: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Hourly per-coin sentiment computed from the news and social items stored by `as_of`
    (an item stored later never counts), by the same code that writes the stored
    `sentiment_hourly` table (`omc.ledgers.human.hourly`: a story counts once, engagement
    weights). `start` / `end` bound the hour (its start), inclusive.
    Columns: hour, coin, count, mean_sentiment, weighted_sentiment, known_at — when this
    answer for the hour became known: the hour's end, or later when an item that changed it
    was stored after the hour (a late item)."""
    rows = sentiment_rows(engine, as_of=_as_of(as_of), start=start, end=end)
    if coin is not None:
        rows = [row for row in rows if row["coin"] == coin.upper()]
    frame = pd.DataFrame(
        {
            "hour": pd.to_datetime([r["hour"] for r in rows], utc=True),
            "coin": pd.Series([r["coin"] for r in rows], dtype="object"),
            "count": pd.Series([r["count"] for r in rows], dtype="int64"),
            "mean_sentiment": pd.Series([r["mean_sentiment"] for r in rows], dtype="float64"),
            "weighted_sentiment": pd.Series(
                [r["weighted_sentiment"] for r in rows], dtype="float64"
            ),
            "known_at": pd.to_datetime([r["known_at"] for r in rows], utc=True),
        }
    )
    return frame.sort_values(["hour", "coin"], kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------- Catalyst


def events(
    engine: Engine,
    *,
    as_of: datetime,
    source: str | None = None,
    kind: str | None = None,
    coin: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Catalyst events as they were known at `as_of`: for an edited event, the latest revision
    collected by then. Columns: published_at, collected_at, source, event_id, kind, title,
    url, coins, impact."""
    moment = _as_of(as_of)
    rev: Table = CatalystEventRevision.__table__  # type: ignore[assignment]
    ev: Table = CatalystEvent.__table__  # type: ignore[assignment]
    revisions = select(*(rev.c[name] for name in EVENT_COLUMNS)).where(rev.c.collected_at <= moment)
    without_revisions = select(*(ev.c[name] for name in EVENT_COLUMNS)).where(
        ev.c.collected_at <= moment,
        ~select(rev.c.event_id)
        .where(rev.c.source == ev.c.source, rev.c.event_id == ev.c.event_id)
        .exists(),
    )
    query = union_all(revisions, without_revisions)
    with engine.connect() as conn:
        frame = pd.DataFrame([tuple(row) for row in conn.execute(query)], columns=EVENT_COLUMNS)
    frame = _times(frame, ["published_at", "collected_at"])
    if not frame.empty:
        frame = (
            frame.sort_values("collected_at")
            .groupby(["source", "event_id"], as_index=False, sort=False)
            .last()
        )
    for column, value in (("source", source), ("kind", kind)):
        if value is not None:
            frame = frame[frame[column] == value]
    if start is not None:
        frame = frame[frame["published_at"] >= pd.Timestamp(ensure_utc(start))]
    if end is not None:
        frame = frame[frame["published_at"] <= pd.Timestamp(ensure_utc(end))]
    if coin is not None:
        frame = _with_coin(frame, coin)
    return frame.sort_values(["published_at", "event_id"]).reset_index(drop=True)[EVENT_COLUMNS]


# ----------------------------------------------------------------------------- Overview


def available_coins(engine: Engine, *, as_of: datetime) -> pd.DataFrame:
    """Coins any ledger knows of at `as_of`. Columns: coin (upper case), ledgers (sorted list
    of ledger names that mention it), first_seen (earliest collected_at)."""
    moment = _as_of(as_of)
    seen: dict[str, dict[str, Any]] = {}

    def add(coin: str, ledger: str, when: Any) -> None:
        if not coin:
            return
        entry = seen.setdefault(coin.upper(), {"ledgers": set(), "first_seen": when})
        entry["ledgers"].add(ledger)
        if when is not None and (entry["first_seen"] is None or when < entry["first_seen"]):
            entry["first_seen"] = when

    t: Table = Tick.__table__  # type: ignore[assignment]
    c: Table = Candle.__table__  # type: ignore[assignment]
    with engine.connect() as conn:
        for coin, when in conn.execute(
            select(t.c.coin, func.min(t.c.collected_at))
            .where(t.c.collected_at <= moment)
            .group_by(t.c.coin)
        ):
            add(coin, "exchange", when)
        for symbol, when in conn.execute(
            select(c.c.symbol, func.min(c.c.collected_at))
            .where(c.c.collected_at <= moment)
            .group_by(c.c.symbol)
        ):
            add(str(symbol).split("/")[0], "exchange", when)
        tagged = (
            (NewsItem.__table__, "human"),
            (SocialPost.__table__, "human"),
            (CatalystEvent.__table__, "catalyst"),
            (ProtocolMetric.__table__, "glass"),
        )
        for table, ledger in tagged:
            tt: Table = table  # type: ignore[assignment]
            for coins, when in conn.execute(
                select(tt.c.coins, tt.c.collected_at).where(
                    tt.c.collected_at <= moment, tt.c.coins.is_not(None)
                )
            ):
                for coin in coins or []:
                    add(str(coin), ledger, when)
    rows = [
        {"coin": coin, "ledgers": sorted(entry["ledgers"]), "first_seen": entry["first_seen"]}
        for coin, entry in sorted(seen.items())
    ]
    frame = pd.DataFrame(rows, columns=COIN_COLUMNS)
    frame["first_seen"] = pd.to_datetime(frame["first_seen"], utc=True)
    return frame


def ledger_stats(engine: Engine, *, as_of: datetime) -> pd.DataFrame:
    """Per ledger table, what was stored by `as_of`. Columns: ledger, table, rows, first,
    last (the rows' own time: ts / published_at / hour / raised_at)."""
    moment = _as_of(as_of)
    rows = []
    with engine.connect() as conn:
        for ledger, tables in LEDGER_TABLES.items():
            for name, model in tables.items():
                table: Table = model.__table__
                time_column = next(
                    table.c[col]
                    for col in ("ts", "published_at", "hour", "raised_at")
                    if col in table.c
                )
                stored = (
                    table.c.collected_at if "collected_at" in table.c else table.c.get("raised_at")
                )
                query = select(
                    func.count(), func.min(time_column), func.max(time_column)
                ).select_from(table)
                if stored is not None:
                    query = query.where(stored <= moment)
                count, first, last = conn.execute(query).one()
                rows.append(
                    {"ledger": ledger, "table": name, "rows": count, "first": first, "last": last}
                )
    frame = pd.DataFrame(rows, columns=STATS_COLUMNS)
    return _times(frame, ["first", "last"])


def candle_series(engine: Engine, *, as_of: datetime) -> pd.DataFrame:
    """The candle series stored by `as_of`, one row per (exchange, symbol, timeframe).
    Columns: exchange, symbol, timeframe, bars (candles known at `as_of`), first, last
    (open time of the first / last of them); sorted by exchange, symbol, timeframe."""
    t: Table = Candle.__table__  # type: ignore[assignment]
    key = (t.c.exchange, t.c.symbol, t.c.timeframe)
    query = (
        select(*key, func.count(), func.min(t.c.ts), func.max(t.c.ts))
        .where(t.c.collected_at <= _as_of(as_of))
        .group_by(*key)
        .order_by(*key)
    )
    with engine.connect() as conn:
        rows = [tuple(row) for row in conn.execute(query)]
    frame = pd.DataFrame(rows, columns=SERIES_COLUMNS).astype({"bars": "int64"})
    return _times(frame, ["first", "last"])


def _times(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    for name in names:
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    return frame


__all__ = [
    "available_coins",
    "candle_series",
    "candles",
    "events",
    "ledger_stats",
    "news",
    "onchain_metrics",
    "protocol_metrics",
    "sentiment_hourly",
    "social",
    "ticks",
]
