"""The Guard in a backtest (`run_backtest(..., guard=Guard(limits))`, `omc backtest --guard`).

The backtest's orders go through the very sizing (`trading.sizing.target_delta`), pre-trade
checks (`Guard.check`) and drawdown monitor (`Guard.monitor`) of paper and live trading, on a
`TradingState` fed the events a paper session journals — in memory, no database. So a
guarded backtest and a paper replay (`omc trade paper --replay`) of the same candles make the
same fills. Per bar i, as in the replay:

* at bar i's open, each order decided at an earlier close and not yet seen is sized (target
  weights) and checked at the open price; a denial cancels it and is counted by reason code;
* every fill is booked as the paper venue's would be;
* at bar i's close the book is marked and the monitor may warn or move the trading state
  (`omc.floor.trading.modes`: halted at the drawdown halt, reducing at the daily-loss limit —
  both allow only reducing orders); entering either cancels the working entry orders at once,
  as in paper trading.

Not simulated: the kill switch and staged capital (both live in the trading database).
Arithmetic uses the default 28-digit decimal context, like the trading session.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from omc.floor.fills import SlippageModel
from omc.floor.instruments import InstrumentSpec, uniform_rules
from omc.floor.orders import Order, OrderStatus, OrderType
from omc.floor.trading.guard import Guard, guard_report
from omc.floor.trading.journal import Event, TradingState, encode
from omc.floor.trading.modes import Mode, entry_orders
from omc.floor.trading.sizing import target_delta
from omc.floor.venues.base import Side

ZERO = Decimal(0)


def _ctx() -> decimal.Context:
    return decimal.Context(prec=28)


class BacktestGuard:
    """The Guard's view of one backtest (see module docstring)."""

    def __init__(
        self,
        guard: Guard,
        strategy: str,
        cash: Decimal,
        ts: datetime,
        instruments: Callable[[str], InstrumentSpec] | None = None,
    ) -> None:
        self.guard = guard
        # the paper venue's rules by default (CoinSpot precision: 8 decimals, no minimum)
        self.instruments = instruments or uniform_rules(source="CoinSpot precision (default)")
        self.strategy = strategy
        self.state = TradingState()
        self._ordinal = 0
        self._seen: set[int] = set()
        self._cid: dict[int, str] = {}
        self._by_cid: dict[str, Order] = {}
        self._notional: dict[int, tuple[Decimal, Decimal]] = {}
        self._apply("start", {"initial_cash": cash}, ts)

    def _apply(
        self, kind: str, data: dict[str, Any], ts: datetime, symbol: str | None = None,
        cid: str | None = None,
    ) -> None:  # fmt: skip
        data = json.loads(encode(data))  # exactly what a journal would replay
        self.state.apply(
            Event(self._ordinal, "backtest", ts, kind, data, self.strategy, symbol, cid)
        )
        self._ordinal += 1

    def admit(
        self, order: Order, open_price: Decimal, ts: datetime, taker_rate: Decimal,
        slippage: SlippageModel,
    ) -> bool:  # fmt: skip
        """At the order's first eligible open: size it (target weight) and check it. False
        when it is done already (nothing to trade, or denied)."""
        if order.id in self._seen:
            return True
        self._seen.add(order.id)
        spec = self.instruments(order.symbol)
        with decimal.localcontext(_ctx()):
            qty = order.quantity
            if qty is None:
                assert order.target_percent is not None
                qty = target_delta(
                    self.state, self.guard, self.strategy, order.symbol, order.target_percent,
                    bid=open_price, ask=open_price, fee_rate=taker_rate, instrument=spec,
                    slippage=slippage,
                )  # fmt: skip
                if not qty:
                    order.status = OrderStatus.FILLED
                    return False
            else:  # on the instrument's grid, as the trading session puts it
                qty = spec.floor_quantity(qty) or qty
            side = Side.BUY if qty > 0 else Side.SELL
            limit = order.price if order.type is OrderType.LIMIT else None
            if limit is not None:
                limit = spec.round_price(limit, buy=side is Side.BUY)
                order.price = limit
            order.quantity = qty
            price = open_price
            if limit is not None:
                price = min(price, limit) if side is Side.BUY else max(price, limit)
            denial = self.guard.check(
                self.state, strategy=self.strategy, symbol=order.symbol, side=side,
                quantity=abs(qty), price=price, quote_ts=ts, now=ts, kill_active=False,
                limit_price=limit, instrument=spec,
            )  # fmt: skip
            if denial is not None:
                self._apply(
                    "denial",
                    {
                        "code": str(denial.code),
                        "message": denial.message,
                        "side": str(side),
                        "quantity": abs(qty),
                        "limit_price": limit,
                        "reason": {"tag": order.tag},
                    },
                    ts,
                    order.symbol,
                )
                order.status = OrderStatus.CANCELLED
                return False
            cid = f"backtest-{order.id}"
            self._cid[order.id] = cid
            self._by_cid[cid] = order
            self._notional[order.id] = (ZERO, ZERO)
            self._apply(
                "order",
                {
                    "client_order_id": cid,
                    "side": str(side),
                    "quantity": abs(qty),
                    "type": "limit" if limit is not None else "market",
                    "limit_price": limit,
                    "tag": order.tag,
                    "reason": {},
                },
                ts,
                order.symbol,
                cid,
            )
        return True

    def fill(self, order: Order, qty: Decimal, price: Decimal, fee: Decimal) -> None:
        if order.id in self._notional:
            notional, fees = self._notional[order.id]
            self._notional[order.id] = (notional + abs(qty) * price, fees + fee)

    def sync(self, order: Order, ts: datetime) -> None:
        """Book the order's fills and state after the engine handled it on a bar."""
        cid = self._cid.get(order.id)
        if cid is None:
            return
        managed = self.state.orders[cid]
        filled = abs(order.filled)
        notional, fee = self._notional[order.id]
        if order.status is OrderStatus.OPEN:
            status = "partially_filled" if filled else "submitted"
        elif filled >= managed.quantity:
            status = "filled"
        else:
            status = "cancelled"
        if status == str(managed.state) and filled == managed.filled:
            return
        with decimal.localcontext(_ctx()):
            self._apply(
                "order_update",
                {
                    "client_order_id": cid,
                    "status": status,
                    "venue_order_id": None,
                    "filled": filled,
                    "notional": notional,
                    "fee": fee,
                    "reason": None,
                    "message": "",
                },
                ts,
                order.symbol,
                cid,
            )
        if status in ("filled", "cancelled"):
            del self._cid[order.id], self._notional[order.id], self._by_cid[cid]

    def mark(self, index: int, ts: datetime, marks: dict[str, Decimal]) -> None:
        """A bar closed at `ts`: mark the book; the monitor may warn or move the trading state
        (entering reducing/halted cancels the working entry orders)."""
        with decimal.localcontext(_ctx()):
            self._apply("bar", {"index": index, "marks": marks}, ts)
            for kind, data in self.guard.monitor(self.state):
                if kind == "warning":
                    self._apply(kind, data, ts)
                    continue
                move = {"from": self.state.trading, "to": kind, "reason": data.get("code", kind)}
                self._apply("trading_state", {**data, **move}, ts)
                if kind != Mode.ACTIVE:
                    for managed in entry_orders(self.state):
                        order = self._by_cid[managed.client_order_id]
                        order.status = OrderStatus.CANCELLED
                        self.sync(order, ts)

    def report(self) -> dict[str, Any]:
        return guard_report(self.state)
