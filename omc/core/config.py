"""Settings: every knob OMC has, read from `OMC_*` environment variables or a `.env` file.

One `Settings` object (pydantic-settings) is the single source of configuration. The README's
configuration table is generated from the field descriptions here (`omc config --markdown`).
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


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
    coinspot_trade_coins: Annotated[list[str], NoDecode] = Field(
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
    tick_candle_timeframes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["1m", "5m", "1h"],
        description="Timeframes of candles built from stored ticks.",
    )

    # --- Fees (CoinSpot's published schedule as default) ------------------------------
    fee_taker_bps: Decimal = Field(
        default=Decimal("10"), description="Taker fee in basis points (CoinSpot market orders 0.1 %)."
    )
    fee_maker_bps: Decimal = Field(
        default=Decimal("10"), description="Maker fee in basis points (CoinSpot market orders 0.1 %)."
    )

    @field_validator("coinspot_trade_coins", "tick_candle_timeframes", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
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
