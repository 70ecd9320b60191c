"""Target-weight sizing: how many coins a `{symbol: weight}` decision trades. One function,
used by the trading session (paper and live) and by the guarded backtest (`--guard`), so both
size every decision the same way:

* the target value is `weight × equity` (the book's equity at its latest marks), bought at the
  ask or sold at the bid, moved by the slippage model, with the taker fee on top;
* the change is rounded down to the instrument's quantity step (`InstrumentSpec`);
* a buy is clipped to the Guard's size headroom (`Guard.headroom`: order, position, share of
  equity, gross exposure, capital cap — working orders included), a sell to the position held
  less what working sells already offer (no shorting) and to the largest order value;
* a change below the instrument's minimums is not traded (the venue would refuse it).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from omc.floor.fills import SlippageModel
from omc.floor.instruments import InstrumentSpec
from omc.floor.venues.base import Side

if TYPE_CHECKING:
    from omc.floor.trading.guard import Guard
    from omc.floor.trading.journal import TradingState

ZERO = Decimal(0)


def target_delta(
    state: TradingState,
    guard: Guard,
    strategy: str,
    symbol: str,
    weight: Decimal,
    *,
    bid: Decimal,
    ask: Decimal,
    fee_rate: Decimal,
    instrument: InstrumentSpec,
    slippage: SlippageModel | None = None,
) -> Decimal:
    """The signed quantity (+ buy, − sell) that moves `symbol` towards `weight` of equity."""
    book = state.book
    equity = book.equity()
    pos = book.position(symbol)
    spec = instrument
    buy = weight * equity > pos * bid
    touch = ask if buy else bid
    if touch <= 0:
        return ZERO
    price = slippage.adjust(touch, buy) if slippage is not None else touch
    want = equity * weight / (price * (1 + fee_rate))
    delta = spec.floor_quantity(want - pos)
    if delta > 0:
        delta = min(delta, guard.headroom(state, strategy, symbol, price, spec))
    elif delta < 0:
        most = spec.floor_quantity(guard.limits.max_order_notional / price)
        # coins already offered by working sells are not sold twice
        working = state.open_orders(symbol)
        selling = sum((o.quantity - o.filled for o in working if o.side is Side.SELL), ZERO)
        delta = max(delta, -spec.floor_quantity(max(pos - selling, ZERO)), -most)
    if delta and not spec.meets_minimum(delta, price):
        return ZERO  # below the instrument's minimum: the venue would refuse it
    return delta
