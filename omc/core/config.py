"""Settings: every knob OMC has, read from `OMC_*` environment variables or a `.env` file.

One `Settings` object (pydantic-settings) is the single source of configuration. The README's
configuration table is generated from the field descriptions here (`omc config --markdown`).
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def split_csv(value: object) -> object:
    """`a, b,c` -> ["a", "b", "c"]; a JSON list or a list passes through."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def split_csv_lower(value: object) -> object:
    parts = split_csv(value)
    return [str(p).lower() for p in parts] if isinstance(parts, list) else parts


def parse_json_mapping(value: object) -> object:
    if isinstance(value, str):
        return json.loads(value) if value.strip() else {}
    return value


CsvList = Annotated[list[str], NoDecode, BeforeValidator(split_csv)]
LowerCsvList = Annotated[list[str], NoDecode, BeforeValidator(split_csv_lower)]
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

JsonMapping = Annotated[dict[str, list[str]], NoDecode, BeforeValidator(parse_json_mapping)]


def default_data_dir() -> Path:
    """Local data directory used when nothing is configured: `./omc-data`."""
    return Path("omc-data")


class Settings(BaseSettings):
    """All OMC settings. Env var = `OMC_` + field name in upper case."""

    model_config = SettingsConfigDict(
        env_prefix="OMC_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Directory for the SQLite database, reports and exports.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Unset: SQLite file `<data_dir>/omc.db` (WAL mode). "
        "PostgreSQL: `postgresql+psycopg://user@host:5432/db`.",
    )
    redis_url: str | None = Field(
        default=None, description="Redis URL for the event bus. Unset: in-process bus."
    )
    log_level: str = Field(default="INFO", description="Logging level.")
    log_format: str = Field(
        default="text",
        description="`text` (for people) or `json` (one JSON object a line, for log "
        "collectors; secrets redacted).",
    )

    # --- HTTP behaviour shared by every collector -------------------------------------
    http_timeout_s: float = Field(default=10.0, gt=0, description="Per-request timeout (s).")
    http_max_retries: int = Field(
        default=4, ge=0, description="Retries on timeouts, resets, 5xx and 429."
    )
    http_backoff_base_s: float = Field(
        default=0.5, ge=0, description="First retry delay (s); doubles each retry, with jitter."
    )
    http_backoff_max_s: float = Field(
        default=30.0, ge=0, description="Longest wait between retries (s), Retry-After included."
    )

    # --- Exchange ledger: CoinSpot ----------------------------------------------------
    coinspot_base_url: str = Field(
        default="https://www.coinspot.com.au", description="CoinSpot API base URL."
    )
    coinspot_interval_s: float = Field(
        default=5.0, ge=1, description="Seconds between CoinSpot price collections (5–10 typical)."
    )
    coinspot_rate_per_s: float = Field(
        default=1.0, gt=0, description="Max requests per second to CoinSpot."
    )
    coinspot_trade_coins: LowerCsvList = Field(
        default_factory=list,
        description="Coins whose recent trades (`/orders/completed/{coin}`) are collected "
        "each run, comma separated (e.g. `btc,eth`). Empty: none.",
    )

    # --- Exchange ledger: CCXT backfill -----------------------------------------------
    ccxt_base_url: str | None = Field(
        default=None,
        description="Replace the host of every API URL of the CCXT exchange (tests, proxies).",
    )
    ccxt_page_limit: int = Field(
        default=1000, ge=1, description="Candles requested per backfill page."
    )
    tick_candle_timeframes: LowerCsvList = Field(
        default_factory=lambda: ["1m", "5m", "1h"],
        description="Timeframes of candles built from stored ticks.",
    )

    # --- Fees (CoinSpot's published schedule as default) ------------------------------
    fee_taker_bps: Decimal = Field(
        default=Decimal("10"),
        description="Taker fee in basis points (CoinSpot market orders 0.1 %).",
    )
    fee_maker_bps: Decimal = Field(
        default=Decimal("10"),
        description="Maker fee in basis points (CoinSpot market orders 0.1 %).",
    )

    # --- Glass ledger: DeFiLlama and on-chain ----------------------------------------
    defillama_base_url: str = Field(
        default="https://api.llama.fi", description="DeFiLlama API base URL."
    )
    defillama_interval_s: float = Field(
        default=3600.0, ge=60, description="Seconds between DeFiLlama collections."
    )
    defillama_protocols: CsvList = Field(
        default_factory=lambda: ["aave", "uniswap", "lido", "makerdao", "curve-dex", "hyperliquid"],
        description="Tracked DeFiLlama protocol slugs (history, fees, revenue), comma separated.",
    )
    defillama_chains: CsvList = Field(
        default_factory=lambda: ["Ethereum", "Solana", "Arbitrum"],
        description="Chains whose historical TVL is collected (`/v2/historicalChainTvl/{chain}`).",
    )
    defillama_protocol_coins: JsonMapping = Field(
        default_factory=lambda: {
            "aave": ["AAVE"],
            "uniswap": ["UNI"],
            "lido": ["LDO", "ETH"],
            "makerdao": ["MKR"],
            "curve-dex": ["CRV"],
            "hyperliquid": ["HYPE"],
        },
        description="JSON object: protocol slug -> coins it concerns.",
    )
    ethereum_rpc_urls: CsvList = Field(
        default_factory=lambda: ["https://ethereum-rpc.publicnode.com", "https://eth.llamarpc.com"],
        description="Ethereum JSON-RPC endpoints, tried in order when one fails.",
    )
    onchain_interval_s: float = Field(
        default=60.0, ge=5, description="Seconds between on-chain collections."
    )

    # --- Human ledger: news and social --------------------------------------------------
    cryptopanic_base_url: str = Field(
        default="https://cryptopanic.com", description="CryptoPanic API base URL."
    )
    cryptopanic_token: SecretStr | None = Field(
        default=None, description="CryptoPanic API auth token (required for that source)."
    )
    cryptopanic_interval_s: float = Field(
        default=300.0, ge=30, description="Seconds between CryptoPanic collections."
    )
    cryptopanic_currencies: LowerCsvList = Field(
        default_factory=list, description="Restrict CryptoPanic posts to these coins (empty: all)."
    )
    cryptopanic_filter: str | None = Field(
        default=None,
        description="CryptoPanic `filter` (rising, hot, bullish, bearish, important, …).",
    )
    cryptopanic_kind: str = Field(
        default="news", description="CryptoPanic `kind` (news, media, all)."
    )
    cryptopanic_max_pages: int = Field(
        default=5, ge=1, description="Pages followed through `next`."
    )
    reddit_base_url: str = Field(
        default="https://oauth.reddit.com", description="Reddit OAuth API base URL."
    )
    reddit_auth_base_url: str = Field(
        default="https://www.reddit.com", description="Reddit token endpoint base URL."
    )
    reddit_client_id: str | None = Field(default=None, description="Reddit app client id.")
    reddit_client_secret: SecretStr | None = Field(default=None, description="Reddit app secret.")
    reddit_user_agent: str = Field(
        default="python:oh-my-coins:0.1 (by /u/ohmycoins)", description="Reddit User-Agent."
    )
    reddit_subreddits: CsvList = Field(
        default_factory=lambda: ["CryptoCurrency", "Bitcoin", "ethereum"],
        description="Subreddits whose hot listings are collected.",
    )
    reddit_comment_score_threshold: int = Field(
        default=500, ge=0, description="Collect top comments of posts scoring at least this."
    )
    reddit_max_pages: int = Field(default=3, ge=1, description="Pages followed through `after`.")
    reddit_max_comment_fetches: int = Field(
        default=20, ge=0, description="Comment fetches per run at most (highest scores first)."
    )
    reddit_interval_s: float = Field(
        default=300.0, ge=30, description="Seconds between Reddit collections."
    )
    news_feeds: CsvList = Field(
        default_factory=lambda: [
            "https://www.coindesk.com/arc/outboundfeeds/rss/",
            "https://cointelegraph.com/rss",
            "https://decrypt.co/feed",
            "https://cryptoslate.com/feed/",
            "https://www.newsbtc.com/feed/",
        ],
        description="RSS/Atom feed URLs, comma separated.",
    )
    news_interval_s: float = Field(
        default=600.0, ge=30, description="Seconds between news feed collections."
    )

    # --- Catalyst ledger: SEC EDGAR and CoinSpot announcements -------------------------
    sec_base_url: str = Field(
        default="https://data.sec.gov", description="SEC EDGAR submissions API base URL."
    )
    sec_search_base_url: str = Field(
        default="https://efts.sec.gov", description="EDGAR full-text search base URL."
    )
    sec_user_agent: str = Field(
        default="OhMyCoins research contact@example.com",
        description="Descriptive User-Agent with a contact address (SEC requires one).",
    )
    sec_ciks: CsvList = Field(
        default_factory=lambda: ["1679788", "1507605", "1876042"],
        description="Company CIKs whose filings are collected (Coinbase, Marathon, …).",
    )
    sec_keywords: CsvList = Field(
        default_factory=lambda: ["bitcoin", "ethereum", "crypto asset"],
        description="Keywords searched in EDGAR full-text search.",
    )
    sec_rate_per_s: float = Field(
        default=8.0, gt=0, le=10, description="Max requests per second to the SEC (limit 10)."
    )
    sec_interval_s: float = Field(
        default=900.0, ge=60, description="Seconds between SEC collections."
    )
    announcements_base_url: str = Field(
        default="https://coinspot.zendesk.com",
        description="CoinSpot help centre (Zendesk) base URL.",
    )
    announcements_locale: str = Field(default="en-us", description="Help centre locale.")
    announcements_category_id: str = Field(
        default="115000579994", description="Zendesk category id of CoinSpot's Announcements."
    )
    announcements_interval_s: float = Field(
        default=20.0, ge=5, description="Seconds between announcement polls (5 s minimum)."
    )

    # --- Alerts --------------------------------------------------------------------------
    alert_webhook_urls: CsvList = Field(
        default_factory=list, description="URLs that receive each alert as a JSON POST."
    )
    slack_webhook_url: SecretStr | None = Field(
        default=None, description="Slack incoming-webhook URL for alerts."
    )
    telegram_bot_token: SecretStr | None = Field(
        default=None, description="Telegram bot token for alerts."
    )
    telegram_chat_id: str | None = Field(default=None, description="Telegram chat id for alerts.")
    telegram_base_url: str = Field(
        default="https://api.telegram.org", description="Telegram Bot API base URL."
    )

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown logging level {value!r} (one of {', '.join(LOG_LEVELS)})")
        return level

    @field_validator("log_format")
    @classmethod
    def _known_log_format(cls, value: str) -> str:
        fmt = value.strip().lower()
        if fmt not in ("text", "json"):
            raise ValueError(f"unknown log format {value!r} (text or json)")
        return fmt

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        from sqlalchemy.engine import make_url  # the error never echoes the URL (a password)
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL (e.g. sqlite:///omc-data/omc.db or "
                "postgresql+psycopg://user@host:5432/db)"
            ) from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(REDIS_SCHEMES):
            raise ValueError(
                f"a Redis URL starts with {', '.join(REDIS_SCHEMES)} (e.g. redis://localhost:6379/0)"
            )
        return value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'omc.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings (cached). Tests build `Settings(...)` directly instead."""
    return Settings()
