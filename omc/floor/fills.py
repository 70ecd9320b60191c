"""Fill rules, fees and slippage: when and at what price a working order executes on a bar.

Rules (a bar is open/high/low/close/volume; an order placed after bar i closes is first
eligible on bar i+1 — never on the bar that produced the signal):

* market: fills at the bar's open (± slippage), taker fee;
* limit buy at L: open ≤ L gaps through and fills at the open, else fills at L if low ≤ L;
  limit sell mirrors with high; maker fee, no slippage;
* stop orders are refused on every venue (`orders.STOP_REFUSED`);
* a volume cap (`SlippageModel.volume_share`) limits a fill to that share of the bar's volume;
  the rest stays working (partial fills).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from omc.core.config import Settings, get_settings
from omc.floor.data import to_decimal
from omc.floor.orders import Order, OrderType

BPS = Decimal(10000)


@dataclass(frozen=True, slots=True)
class FeeModel:
    """Maker/taker fees in basis points of traded notional."""

    maker_bps: Decimal = Decimal(10)
    taker_bps: Decimal = Decimal(10)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> FeeModel:
        """CoinSpot's published fees (the configured `fee_maker_bps`/`fee_taker_bps`)."""
        s = settings or get_settings()
        return cls(Decimal(s.fee_maker_bps), Decimal(s.fee_taker_bps))

    @classmethod
    def flat(cls, bps: Decimal | float | str) -> FeeModel:
        b = Decimal(str(bps))
        return cls(b, b)

    def rate(self, maker: bool) -> Decimal:
        return (self.maker_bps if maker else self.taker_bps) / BPS


@dataclass(frozen=True, slots=True)
class SlippageModel:
    """Adverse price move in bps on taker fills; optional cap at a share of bar volume."""

    bps: Decimal = Decimal(0)
    volume_share: Decimal | None = None

    def adjust(self, price: Decimal, buy: bool) -> Decimal:
        if not self.bps:
            return price
        k = self.bps / BPS
        return price * (1 + k) if buy else price * (1 - k)

    def cap(self, volume: float) -> Decimal | None:
        """Most quantity that may fill on a bar with `volume`, or None (no cap)."""
        if self.volume_share is None or volume != volume:  # NaN volume: unknown, no cap
            return None
        return self.volume_share * to_decimal(volume)


def match(order: Order, buy: bool, o: float, h: float, lo: float) -> tuple[Decimal, bool] | None:
    """(fill price before slippage, is_maker) if `order` executes on this bar, else None."""
    if order.type is OrderType.MARKET:
        return to_decimal(o), False
    assert order.price is not None
    p = order.price
    pf = float(p)
    # a limit order (the only other type)
    if buy:
        if o <= pf:
            return to_decimal(o), True
        if lo <= pf:
            return p, True
    else:
        if o >= pf:
            return to_decimal(o), True
        if h >= pf:
            return p, True
    return None
