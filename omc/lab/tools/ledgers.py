"""The data tools over the four ledgers: each one a pydantic input and one `omc.ledgers.pit` read.

Exchange: `list_candle_series`, `get_candles`, `get_ticks`. Glass: `get_protocol_metrics`,
`get_onchain_metrics`. Human: `get_news`, `get_social_posts`, `get_hourly_sentiment`.
Catalyst: `get_catalyst_events`. Overview: `list_coins`, `ledger_coverage`. All read-only,
all at the session's as_of (or an earlier one the input asks for), all bounded. An input's
fields (other than as_of, limit, keep) are the keyword arguments of its pit function.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import Engine

from omc.core.time import timeframe_seconds
from omc.lab.tools.base import DEFAULT_LIMIT, MAX_LIMIT, Tool, ToolInput, WindowInput
from omc.ledgers import pit

NAME = r"^[A-Za-z0-9][A-Za-z0-9 ._:/-]{0,63}$"


def _name(description: str, default: str | None = None) -> Any:
    return Field(default=default, pattern=NAME, description=description)


COIN = "Coin symbol, e.g. BTC or ETH (case-insensitive)."


class ListInput(ToolInput):
    """A row cap for listing tools."""

    limit: int = Field(
        default=DEFAULT_LIMIT,
        ge=1,
        le=MAX_LIMIT,
        description=f"At most this many rows are returned (1..{MAX_LIMIT}).",
    )


class CandlesInput(WindowInput):
    exchange: str = Field(pattern=NAME, description="Exchange id, e.g. binance or coinspot.")
    symbol: str = Field(pattern=NAME, description="Pair, e.g. BTC/USDT.")
    timeframe: str = Field(
        pattern=r"^[0-9]+[mhdw]$", description="Bar length, e.g. 1m, 5m, 1h, 4h, 1d."
    )

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, value: str) -> str:
        timeframe_seconds(value)
        return value


class TicksInput(WindowInput):
    coin: str | None = _name(COIN + " Default: every coin.")
    market: str | None = _name("Quote market, e.g. aud. Default: every market.")
    source: str = _name("The ticker source.", "coinspot")


class ProtocolInput(WindowInput):
    protocol: str | None = _name("DeFiLlama protocol slug, e.g. lido or aave.")
    metric: str | None = _name("Metric, e.g. tvl, fees or revenue. Default: every metric.")
    chain: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9 ._-]{0,64}$",
        description="Chain, e.g. Ethereum; an empty string means all chains together.",
    )


class OnchainInput(WindowInput):
    chain: str | None = _name("Chain, e.g. ethereum. Default: every chain.")
    metric: str | None = _name("Metric, e.g. gas_price or block_height. Default: every metric.")


class NewsInput(WindowInput):
    coin: str | None = _name(COIN + " Default: every coin.")
    source: str | None = _name("News source, e.g. cryptopanic. Default: every source.")


class SocialInput(WindowInput):
    coin: str | None = _name(COIN + " Default: every coin.")
    platform: str | None = _name("Platform, e.g. reddit. Default: every platform.")


class SentimentInput(WindowInput):
    coin: str | None = _name(COIN + " Default: every coin.")


class EventsInput(WindowInput):
    coin: str | None = _name(COIN + " Default: every coin.")
    kind: str | None = _name("Event kind, e.g. listing, delisting or filing. Default: all.")
    source: str | None = _name("Event source, e.g. announcements or sec. Default: all.")


def _candles(engine: Engine, *, exchange: str, symbol: str, timeframe: str, **kw: Any) -> Any:
    return pit.candles(engine, exchange, symbol, timeframe, **kw)


KNOWN = "Only what OMC had stored by the session's as_of is visible."
WINDOWED = " Bounded by start/end (the rows' own time) and limit; `truncated` says when rows "
WINDOWED += "were left out and `total` counts them all."

LEDGER_TOOLS: tuple[Tool, ...] = (
    Tool(
        "list_candle_series",
        "Exchange ledger: which candle series (exchange, symbol, timeframe) are stored, with "
        "bar counts and first/last bar open times. " + KNOWN,
        ListInput,
        pit.candle_series,
    ),
    Tool(
        "get_candles",
        "Exchange ledger: OHLCV candles of one series (ts = bar open, UTC; collected_at = when "
        "OMC stored it). " + KNOWN + WINDOWED,
        CandlesInput,
        _candles,
    ),
    Tool(
        "get_ticks",
        "Exchange ledger: price quotes (bid, ask, last, volume) observed at ts. "
        + KNOWN
        + WINDOWED,
        TicksInput,
        pit.ticks,
    ),
    Tool(
        "get_protocol_metrics",
        "Glass ledger: daily DeFi protocol figures (TVL, fees, revenue) per chain. "
        + KNOWN
        + WINDOWED,
        ProtocolInput,
        pit.protocol_metrics,
    ),
    Tool(
        "get_onchain_metrics",
        "Glass ledger: chain figures (block height, gas price, transactions per block). "
        + KNOWN
        + WINDOWED,
        OnchainInput,
        pit.onchain_metrics,
    ),
    Tool(
        "get_news",
        "Human ledger: news items with sentiment in [-1, 1], tagged coins and story_key (one "
        "story across outlets); published_at and collected_at. Long titles are cut. "
        + KNOWN
        + WINDOWED,
        NewsInput,
        pit.news,
    ),
    Tool(
        "get_social_posts",
        "Human ledger: social posts and comments (Reddit) with score, sentiment and tagged "
        "coins. Long texts are cut. " + KNOWN + WINDOWED,
        SocialInput,
        pit.social,
    ),
    Tool(
        "get_hourly_sentiment",
        "Human ledger: hourly per-coin sentiment (count of stories and posts, mean and "
        "engagement-weighted sentiment), computed from the items stored by as_of; known_at is "
        "when each hour's figure became known (its end, or later for late items). "
        + KNOWN
        + WINDOWED,
        SentimentInput,
        pit.sentiment_hourly,
    ),
    Tool(
        "get_catalyst_events",
        "Catalyst ledger: listings, delistings, filings and other events that can move a "
        "price, as they read at as_of (the revision current then). " + KNOWN + WINDOWED,
        EventsInput,
        pit.events,
    ),
    Tool(
        "list_coins",
        "Every coin any ledger mentions, with the ledgers that mention it and when OMC first "
        "stored something about it. " + KNOWN,
        ListInput,
        pit.available_coins,
    ),
    Tool(
        "ledger_coverage",
        "Per ledger table: how many rows were stored and the time span they cover (first, "
        "last). " + KNOWN,
        ToolInput,
        pit.ledger_stats,
    ),
)
