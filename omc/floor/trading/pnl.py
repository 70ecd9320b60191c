"""Profit and loss: the book of one trading account, in exact decimals.

**Method: average cost.** A position's cost basis is the quantity-weighted average of its
entry prices (fees excluded). Reducing a position realises `closed_qty × (exit − average)`
(sign-adjusted for shorts); the average of what remains is unchanged; a fill that crosses
through zero closes the old position and opens the rest at the fill price. Fees are tracked
separately (quote currency), so for every account at every moment:

    equity = cash + Σ quantity × mark = initial cash + realised + unrealised − fees

where unrealised = Σ quantity × (mark − average cost), marked at the latest quotes (the bid
for longs would be more conservative; OMC marks at `last`, or mid when no last is known).
Realised P&L, fees and fill counts are kept per strategy, coin and UTC day.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)


@dataclass(slots=True)
class Position:
    """Signed quantity and its average cost (quote units per base unit)."""

    quantity: Decimal = ZERO
    avg_cost: Decimal = ZERO

    def apply(self, qty: Decimal, price: Decimal) -> Decimal:
        """Apply a signed fill; return the P&L it realises."""
        q = self.quantity
        if not q or (q > 0) == (qty > 0):  # opening or adding
            new = q + qty
            self.avg_cost = (q * self.avg_cost + qty * price) / new
            self.quantity = new
            return ZERO
        closing = min(abs(qty), abs(q))
        sign = 1 if q > 0 else -1
        realised = closing * (price - self.avg_cost) * sign
        rest = abs(qty) - closing
        new = q + qty
        if rest:  # crossed through zero: the remainder opens at the fill price
            self.avg_cost = price
        elif not new:
            self.avg_cost = ZERO
        self.quantity = new
        return realised


@dataclass
class Book:
    """Cash, positions (per strategy and symbol), marks, realised P&L, fees, equity curve."""

    initial_cash: Decimal = ZERO
    cash: Decimal = ZERO
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    marks: dict[str, Decimal] = field(default_factory=dict)
    realised: dict[tuple[str, str, date], Decimal] = field(
        default_factory=lambda: defaultdict(Decimal)
    )
    fees: dict[tuple[str, str, date], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    fills: dict[tuple[str, str, date], int] = field(default_factory=lambda: defaultdict(int))
    traded_notional: Decimal = ZERO
    equity_curve: list[tuple[datetime, Decimal]] = field(default_factory=list)
    peak_equity: Decimal = ZERO
    day: date | None = None
    day_start_equity: Decimal = ZERO
    last_loss_at: datetime | None = None

    def fund(self, cash: Decimal) -> None:
        self.initial_cash += cash
        self.cash += cash
        self.peak_equity = max(self.peak_equity, self.equity())

    # ---------------------------------------------------------------- updates
    def apply_fill(
        self,
        strategy: str,
        symbol: str,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        ts: datetime,
    ) -> Decimal:
        """A signed fill (+ buy, − sell) at `price` with `fee`; returns realised P&L."""
        pos = self.positions.setdefault((strategy, symbol), Position())
        realised = pos.apply(quantity, price) if quantity else ZERO
        self.cash -= quantity * price + fee
        key = (strategy, symbol, ts.date())
        self.realised[key] += realised
        self.fees[key] += fee
        self.fills[key] += 1
        self.traded_notional += abs(quantity) * price
        self.marks.setdefault(symbol, price)
        if realised < 0:
            self.last_loss_at = ts
        return realised

    def mark(self, symbol: str, price: Decimal) -> None:
        self.marks[symbol] = price

    def snapshot(self, ts: datetime) -> Decimal:
        """Record the equity at `ts` (equity curve, peak, start-of-day equity)."""
        eq = self.equity()
        if self.day != ts.date():
            self.day = ts.date()
            self.day_start_equity = eq if not self.equity_curve else self.equity_curve[-1][1]
        self.equity_curve.append((ts, eq))
        self.peak_equity = max(self.peak_equity, eq)
        return eq

    # ---------------------------------------------------------------- reads
    def position(self, symbol: str, strategy: str | None = None) -> Decimal:
        return sum(
            (
                p.quantity
                for (s, sym), p in self.positions.items()
                if sym == symbol and (strategy is None or s == strategy)
            ),
            ZERO,
        )

    def symbol_positions(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = defaultdict(Decimal)
        for (_, sym), p in self.positions.items():
            out[sym] += p.quantity
        return {s: q for s, q in out.items() if q}

    def equity(self) -> Decimal:
        eq = self.cash
        for (_, sym), p in self.positions.items():
            if p.quantity:
                eq += p.quantity * self.marks.get(sym, p.avg_cost)
        return eq

    def unrealised(self, symbol: str | None = None, strategy: str | None = None) -> Decimal:
        return sum(
            (
                p.quantity * (self.marks.get(sym, p.avg_cost) - p.avg_cost)
                for (s, sym), p in self.positions.items()
                if p.quantity
                and (symbol is None or sym == symbol)
                and (strategy is None or s == strategy)
            ),
            ZERO,
        )

    def gross_exposure(self, strategy: str | None = None) -> Decimal:
        return sum(
            (
                abs(p.quantity) * self.marks.get(sym, p.avg_cost)
                for (s, sym), p in self.positions.items()
                if p.quantity and (strategy is None or s == strategy)
            ),
            ZERO,
        )

    def total_realised(self) -> Decimal:
        return sum(self.realised.values(), ZERO)

    def total_fees(self) -> Decimal:
        return sum(self.fees.values(), ZERO)

    def drawdown(self) -> Decimal:
        """Fractional drawdown of the current equity from its peak (0 at a new high)."""
        peak = self.peak_equity
        return (peak - self.equity()) / peak if peak > 0 else ZERO

    def daily_loss(self) -> Decimal:
        """Loss since the start of the current UTC day (realised + unrealised, net of fees)."""
        if self.day is None:
            return ZERO
        return max(self.day_start_equity - self.equity(), ZERO)

    def breakdown(self) -> list[dict[str, Any]]:
        """Realised P&L, fees and fills per strategy, coin and day (sorted)."""
        keys = sorted(set(self.realised) | set(self.fees), key=lambda k: (k[2], k[0], k[1]))
        return [
            {
                "day": k[2].isoformat(),
                "strategy": k[0],
                "symbol": k[1],
                "realised": self.realised.get(k, ZERO),
                "fees": self.fees.get(k, ZERO),
                "fills": self.fills.get(k, 0),
            }
            for k in keys
        ]

    def summary(self) -> dict[str, Any]:
        """Everything `omc pnl` / `--json` print (decimals stay exact)."""
        positions = []
        for (strategy, sym), p in sorted(self.positions.items()):
            if not p.quantity:
                continue
            mark = self.marks.get(sym, p.avg_cost)
            positions.append(
                {
                    "strategy": strategy,
                    "symbol": sym,
                    "quantity": p.quantity,
                    "avg_cost": p.avg_cost,
                    "mark": mark,
                    "value": p.quantity * mark,
                    "unrealised": p.quantity * (mark - p.avg_cost),
                }
            )
        realised, unrealised, fees = self.total_realised(), self.unrealised(), self.total_fees()
        return {
            "method": "average cost",
            "initial_cash": self.initial_cash,
            "cash": self.cash,
            "equity": self.equity(),
            "realised_pnl": realised,
            "unrealised_pnl": unrealised,
            "fees": fees,
            "net_pnl": realised + unrealised - fees,
            "trades": sum(self.fills.values()),
            "traded_notional": self.traded_notional,
            "peak_equity": self.peak_equity,
            "drawdown": self.drawdown(),
            "positions": positions,
            "by_strategy_coin_day": self.breakdown(),
        }
