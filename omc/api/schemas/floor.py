"""The Floor over HTTP: accounts, paper sessions, positions, orders, fills, P&L, the
journal, Guard limits and the kill switch (exact decimals, as JSON strings)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from omc.api.schemas.backtests import ParamValue
from omc.floor.trading.guard import GuardLimits

ACCOUNT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SessionStatus = Literal["queued", "running", "paused", "done", "stopped", "failed"]


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(pattern=ACCOUNT_NAME, examples=["paper-main"])
    mode: Literal["paper"] = "paper"
    cash: Decimal = Field(default=Decimal(10000), gt=0, le=Decimal("1e15"))


class AccountOut(BaseModel):
    name: str
    mode: str
    cash: Decimal = Field(description="Starting cash.")
    created_at: datetime
    equity: Decimal | None = Field(description="Equity now (None before its first session).")
    trading: str = Field(description="active, reduce_only or halted (the Guard's state).")
    kill: bool = Field(description="Whether the account's kill switch (or the global) is on.")


class AccountPage(BaseModel):
    items: list[AccountOut]
    next_cursor: str | None


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    strategy: str = Field(min_length=1, max_length=64, examples=["sma_cross"])
    params: dict[str, ParamValue] = Field(
        default_factory=dict, max_length=64, examples=[{"fast": 10, "slow": 30}]
    )
    exchange: str = Field(min_length=1, max_length=64, examples=["demo"])
    symbol: str = Field(min_length=1, max_length=64, examples=["BTC/USDT"])
    timeframe: str = Field(default="5m", min_length=1, max_length=8)
    replay: Literal[True] = Field(
        default=True, description="Replay the stored candles (the only kind the API starts)."
    )
    bars_per_second: float | None = Field(
        default=None, gt=0, le=100000, description="Replay pace; unset: as fast as it can."
    )
    max_bars: int | None = Field(default=None, ge=1, le=10_000_000)
    spread_bps: Decimal = Field(default=Decimal(0), ge=0, le=1000)


class SessionCreated(BaseModel):
    id: str
    status: SessionStatus = "queued"


class SessionOut(BaseModel):
    id: str
    account: str
    status: SessionStatus
    strategy: str
    params: dict[str, Any]
    exchange: str
    symbol: str
    timeframe: str
    bars_per_second: float | None
    bars_done: int
    bars_total: int
    summary: dict[str, Any] | None = Field(description="When finished: the P&L summary.")
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class SessionPage(BaseModel):
    items: list[SessionOut]
    next_cursor: str | None


class PositionOut(BaseModel):
    strategy: str
    symbol: str
    quantity: Decimal
    avg_cost: Decimal
    mark: Decimal
    value: Decimal
    unrealised: Decimal


class PositionList(BaseModel):
    account: str
    items: list[PositionOut]
    next_cursor: str | None = None


class OrderOut(BaseModel):
    client_order_id: str
    venue_order_id: str | None
    strategy: str
    symbol: str
    side: str
    type: str
    quantity: Decimal
    limit_price: Decimal | None
    state: str
    open: bool
    filled: Decimal
    average_price: Decimal | None
    fee: Decimal
    reason: Any = Field(description="Why it was placed: the decision's targets and signals.")
    venue_reason: str | None = Field(description="What the venue said (a rejection).")
    created: datetime | None


class OrderList(BaseModel):
    account: str
    items: list[OrderOut]
    next_cursor: str | None = None


class FillOut(BaseModel):
    seq: int
    ts: datetime
    client_order_id: str
    strategy: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal


class FillPage(BaseModel):
    account: str
    items: list[FillOut]
    next_cursor: str | None


class EquityPoint(BaseModel):
    ts: datetime
    equity: Decimal


class PnlOut(BaseModel):
    account: str
    method: str
    initial_cash: Decimal
    cash: Decimal
    equity: Decimal
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    fees: Decimal
    net_pnl: Decimal
    trades: int
    drawdown: Decimal
    peak_equity: Decimal
    trading: str
    trading_reason: str
    last_bar_ts: datetime | None
    positions: list[PositionOut]
    by_strategy_coin_day: list[dict[str, Any]]
    equity_series: list[EquityPoint]


class JournalEntryOut(BaseModel):
    seq: int
    ts: datetime
    kind: str
    strategy: str | None
    symbol: str | None
    client_order_id: str | None
    data: dict[str, Any] = Field(description="decision: targets, signals; order: reason; …")


class JournalPage(BaseModel):
    account: str
    items: list[JournalEntryOut]
    next_cursor: str | None


class LimitsOut(BaseModel):
    account: str
    limits: dict[str, Any] = Field(description="The Guard limits the account's sessions use.")
    overridden: list[str] = Field(description="Limits set for this account (others: defaults).")


def _optional(name: str) -> tuple[Any, Any]:
    info = GuardLimits.model_fields[name]
    kind: Any = info.annotation
    return (kind | None, Field(default=None, description=info.description))


LimitsIn: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "LimitsIn",
    __config__=ConfigDict(extra="forbid", allow_inf_nan=False),
    **{name: _optional(name) for name in GuardLimits.model_fields},
)
"""A change of some Guard limits (the others stay); checked by `GuardLimits`."""


class KillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: bool
    flatten: bool = False
    confirm: str = Field(max_length=64, description="The account's name, typed to confirm.")
    reason: str = Field(default="manual", min_length=1, max_length=200)


class KillOut(BaseModel):
    account: str
    active: bool
    flatten: bool = False
    reason: str = ""
    updated_at: datetime | None = None
    cancelled: int | None = None
    flattened: list[dict[str, Any]] | None = None
    acknowledged: bool | None = None
    error: str | None = None
