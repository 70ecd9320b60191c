"""Committed exposure: what an account holds *plus* what its working orders may still add.

The Guard counts working orders (open, not final: `new`, `submitted`, `partially_filled`, or
any other open state) in every limit, as an exchange's risk engine does — a resting order is
exposure already committed to; it can fill at any moment without asking again. For one coin
with signed position `p` (valued at the market price `P`) and working orders, each remaining
quantity valued at its limit price (what it pays or receives; a market order at `P`):

    long   = p·P + Σ working buys      (every buy fills, no sell does)
    short  = Σ working sells − p·P     (every sell fills, no buy does)
    committed value = max(long, short, 0)

*Reserved cash* is every working buy's remaining notional at its limit (a market order at
`P`) plus the fee. An order *reduces* only while the working orders on its side, itself
included, do not exceed the position: two resting sells can never both count as reducing
the same coins (and together flip a long short).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from omc.floor.venues.base import Side

if TYPE_CHECKING:
    from omc.floor.trading.journal import TradingState

ZERO = Decimal(0)


@dataclass(slots=True)
class Committed:
    """One coin: signed position (quantity and value) and its working orders."""

    position: Decimal = ZERO
    position_value: Decimal = ZERO
    buy_qty: Decimal = ZERO
    sell_qty: Decimal = ZERO
    buy_value: Decimal = ZERO
    sell_value: Decimal = ZERO

    @property
    def value(self) -> Decimal:
        long = self.position_value + self.buy_value
        short = self.sell_value - self.position_value
        return max(long, short, ZERO)

    @property
    def working(self) -> bool:
        return bool(self.buy_qty or self.sell_qty)

    def reduces(self, side: Side, quantity: Decimal) -> bool:
        """Would an order of `quantity` on `side` only reduce the position, even if every
        working order on the same side fills too?"""
        if side is Side.SELL:
            return self.position > 0 and self.sell_qty + quantity <= self.position
        return self.position < 0 and self.buy_qty + quantity <= -self.position

    def plus(self, side: Side, quantity: Decimal, price: Decimal) -> Committed:
        """This coin with one more working order (valued at `price`)."""
        if side is Side.BUY:
            return replace(
                self, buy_qty=self.buy_qty + quantity, buy_value=self.buy_value + quantity * price
            )
        return replace(
            self, sell_qty=self.sell_qty + quantity, sell_value=self.sell_value + quantity * price
        )


def committed(
    state: TradingState,
    *,
    strategy: str | None = None,
    symbol: str | None = None,
    price: Decimal | None = None,
) -> dict[str, Committed]:
    """Committed exposure per coin (of `strategy`, or the whole account), marking at the
    book's marks — and `symbol` at `price` when given (the order being checked)."""
    book = state.book

    def mark(sym: str, fallback: Decimal) -> Decimal:
        if sym == symbol and price is not None:
            return price
        return book.marks.get(sym, fallback)

    out: dict[str, Committed] = {}
    for (strat, sym), pos in book.positions.items():
        if not pos.quantity or (strategy is not None and strat != strategy):
            continue
        c = out.setdefault(sym, Committed())
        c.position += pos.quantity
        c.position_value += pos.quantity * mark(sym, pos.avg_cost)
    for order in state.working.values():
        rest = order.quantity - order.filled
        if not order.open or rest <= 0 or (strategy is not None and order.strategy != strategy):
            continue
        px = order.limit_price if order.limit_price is not None else mark(order.symbol, ZERO)
        c = out.setdefault(order.symbol, Committed())
        if order.side is Side.BUY:
            c.buy_qty += rest
            c.buy_value += rest * px
        else:
            c.sell_qty += rest
            c.sell_value += rest * px
    return out


def reserved_cash(state: TradingState, fee_rate: Decimal) -> Decimal:
    """Cash the working buys hold: remaining quantity × limit (market: mark) × (1 + fee)."""
    total = ZERO
    for order in state.working.values():
        rest = order.quantity - order.filled
        if not order.open or rest <= 0 or order.side is not Side.BUY:
            continue
        px = order.limit_price or state.book.marks.get(order.symbol, ZERO)
        total += rest * px
    return total * (1 + fee_rate)


def open_symbols(exposure: dict[str, Committed]) -> set[str]:
    """Coins held or with working orders (each counts against `max_open_positions`)."""
    return {s for s, c in exposure.items() if c.position or c.working}
