"""Orders and fills: what a strategy asks for, and what the market gave it (exact decimals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


# Stop orders are refused everywhere — backtest, paper and live — so a strategy behaves the same
# on every venue: CoinSpot's API has no stop orders, CCXT exchanges differ in whether and how
# they take them, and a stop simulated only in backtests would promise a protection live
# trading does not give.
STOP_REFUSED = (
    "stop orders are not supported on any venue (backtest, paper, CoinSpot, CCXT): exit with a "
    "market or limit order when your own stop level is crossed"
)


class OrderStatus(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"


@dataclass(eq=False, slots=True)
class Order:
    """A working order. `quantity` is signed (+ buy, − sell); a target-percent order has
    `target_percent` set and gets its quantity when it first fills, at the fill price."""

    id: int
    symbol: str
    type: OrderType
    placed_index: int
    quantity: Decimal | None = None
    target_percent: Decimal | None = None
    price: Decimal | None = None
    tag: str = ""
    filled: Decimal = Decimal(0)
    status: OrderStatus = OrderStatus.OPEN

    @property
    def remaining(self) -> Decimal | None:
        return None if self.quantity is None else self.quantity - self.filled


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. `quantity` signed; `fee` in quote currency; `maker` for limit fills."""

    order_id: int
    symbol: str
    index: int
    time: datetime
    quantity: Decimal
    price: Decimal
    fee: Decimal
    maker: bool


@dataclass(slots=True)
class TradeRecord:
    """A round trip: from flat to flat in one symbol. Prices are volume-weighted averages;
    `pnl` is the exact cash result net of all fees; an open trade has no exit yet."""

    symbol: str
    side: str
    entry_index: int
    entry_time: datetime
    quantity: Decimal = Decimal(0)
    entry_value: Decimal = Decimal(0)
    exit_quantity: Decimal = Decimal(0)
    exit_value: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    exit_index: int | None = None
    exit_time: datetime | None = None
    pnl: Decimal = Decimal(0)
    fills: list[Fill] = field(default_factory=list)

    @property
    def entry_price(self) -> Decimal:
        return self.entry_value / self.quantity if self.quantity else Decimal(0)

    @property
    def exit_price(self) -> Decimal | None:
        return self.exit_value / self.exit_quantity if self.exit_quantity else None

    @property
    def closed(self) -> bool:
        return self.exit_index is not None

    @property
    def return_pct(self) -> float:
        return float(self.pnl / self.entry_value) if self.entry_value else 0.0
