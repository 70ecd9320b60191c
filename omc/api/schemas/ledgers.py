"""Ledger reads: candles and latest prices (exact decimals, as JSON strings)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel


class CandleOut(BaseModel):
    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    collected_at: datetime


class CandlePage(BaseModel):
    exchange: str
    symbol: str
    timeframe: str
    as_of: datetime
    items: list[CandleOut]
    next_cursor: str | None


class PriceOut(BaseModel):
    coin: str
    market: str
    source: str
    ts: datetime
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    volume: Decimal | None


class PricePage(BaseModel):
    as_of: datetime
    items: list[PriceOut]
    next_cursor: str | None
