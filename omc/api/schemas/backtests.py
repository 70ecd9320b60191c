"""A backtest request, its job as answered, and a page of jobs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

Status = Literal["queued", "running", "done", "failed"]
ParamValue = StrictBool | StrictInt | StrictFloat | str


class BacktestIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    strategy: str = Field(min_length=1, max_length=64, examples=["sma_cross"])
    params: dict[str, ParamValue] = Field(
        default_factory=dict, max_length=64, examples=[{"fast": 10, "slow": 30}]
    )
    exchange: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Exchange of the stored candles (unset: the symbol's only exchange).",
    )
    symbol: str = Field(min_length=1, max_length=64, examples=["BTC/USDT"])
    timeframe: str = Field(default="5m", min_length=1, max_length=8)
    fee_bps: Decimal | None = Field(
        default=None, ge=0, le=10000, description="Maker and taker fee (bps); unset: CoinSpot's."
    )
    slippage_bps: Decimal = Field(default=Decimal(0), ge=0, le=10000)
    volume_share: Decimal | None = Field(default=None, gt=0, le=1)
    cash: Decimal = Field(default=Decimal(10000), gt=0, le=Decimal("1e15"))
    guard: bool = Field(default=False, description="Run the orders through the Guard limits.")


class BacktestCreated(BaseModel):
    id: str
    status: Status = "queued"


class BacktestOut(BaseModel):
    id: str
    status: Status
    strategy: str
    params: dict[str, Any]
    exchange: str | None
    symbol: str
    timeframe: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    metrics: dict[str, Any] | None = Field(
        description="When done: what `omc backtest` writes to metrics.json (final_equity, "
        "sharpe, max_drawdown, trades, buy_and_hold, …)."
    )
    error: str | None


class BacktestPage(BaseModel):
    items: list[BacktestOut]
    next_cursor: str | None


class EquityPoint(BaseModel):
    ts: datetime
    equity: Decimal
    drawdown: float = Field(description="Equity against its running peak, minus one (<= 0).")


class RoundTrip(BaseModel):
    entry_time: datetime
    exit_time: datetime | None
    side: str
    quantity: Decimal
    entry_price: Decimal
    exit_price: Decimal | None
    fees: Decimal
    pnl: Decimal
    symbol: str


class BacktestSeries(BaseModel):
    """What a done backtest's report charts: equity and drawdown over time, the trades."""

    equity: list[EquityPoint]
    trades: list[RoundTrip]
