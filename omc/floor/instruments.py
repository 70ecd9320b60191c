"""Per-instrument trading rules: price tick, quantity step, minimum quantity and notional.

An `InstrumentSpec` holds the rules of one symbol at one venue. Every venue says what they
are (`Venue.instrument(symbol)`):

* `CcxtVenue` — from CCXT's `load_markets()` (`spec_from_ccxt_market`): `precision.amount`
  and `precision.price` in the exchange's `precisionMode` (TICK_SIZE: the step itself;
  DECIMAL_PLACES: a number of decimals), `limits.amount.min` and `limits.cost.min` (on
  Binance these are the LOT_SIZE `stepSize`/`minQty`, PRICE_FILTER `tickSize` and
  NOTIONAL/MIN_NOTIONAL `minNotional` filters). SIGNIFICANT_DIGITS exchanges have no fixed
  step and are refused (`ValueError`).
* `CoinSpotVenue` — CoinSpot's published precision: amounts and rates to 8 decimal places;
  CoinSpot documents no minimum order size, so none is assumed (CoinSpot's own refusal of a
  too-small order still comes back as `below_minimum`).
* `PaperVenue` — configured (`OMC_PAPER_QUANTITY_STEP`, `OMC_PAPER_PRICE_TICK`,
  `OMC_PAPER_MIN_QUANTITY`, `OMC_PAPER_MIN_NOTIONAL`), by default CoinSpot's rules, the venue
  paper trading simulates.

Who uses them: the trading session sizes orders with the spec (quantities rounded *down* to
the step, limit prices to the tick — buys down, sells up, so never a worse price; an order
below the minimums is not placed), the Guard denies an order that still breaks a rule
(`below_instrument_minimum`, `off_step`, `off_tick`) before any venue sees it, and every
venue refuses one as an exchange would. All arithmetic is exact (`Decimal`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import Any

ZERO = Decimal(0)
EIGHT_DECIMALS = Decimal("0.00000001")

# CCXT's `precisionMode` values (ccxt.DECIMAL_PLACES, ccxt.SIGNIFICANT_DIGITS, ccxt.TICK_SIZE)
CCXT_DECIMAL_PLACES = 2
CCXT_SIGNIFICANT_DIGITS = 3
CCXT_TICK_SIZE = 4

# violation codes (the Guard's deny codes and the journal use the same strings)
BELOW_INSTRUMENT_MINIMUM = "below_instrument_minimum"
OFF_STEP = "off_step"
OFF_TICK = "off_tick"


@dataclass(frozen=True, slots=True)
class Violation:
    """A broken instrument rule: `code` is one of the codes above, `message` says which."""

    code: str
    message: str


def _multiple(value: Decimal, step: Decimal) -> bool:
    ratio = value / step
    return ratio == ratio.to_integral_value()


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """The trading rules of `symbol` at one venue (see module docstring).

    `price_tick` None: any positive price. `min_quantity` / `min_notional` 0: no minimum.
    `source` says where the rules came from (shown in denials and `omc` output)."""

    symbol: str
    quantity_step: Decimal
    price_tick: Decimal | None = None
    min_quantity: Decimal = ZERO
    min_notional: Decimal = ZERO
    source: str = ""

    def __post_init__(self) -> None:
        if self.quantity_step <= 0:
            raise ValueError(f"{self.symbol}: quantity step must be positive")
        if self.price_tick is not None and self.price_tick <= 0:
            raise ValueError(f"{self.symbol}: price tick must be positive")
        if self.min_quantity < 0 or self.min_notional < 0:
            raise ValueError(f"{self.symbol}: minimums must not be negative")

    # ------------------------------------------------------------------ rounding
    def floor_quantity(self, quantity: Decimal) -> Decimal:
        """`quantity` rounded toward zero to a whole number of steps (sign kept)."""
        steps = (quantity / self.quantity_step).to_integral_value(rounding=ROUND_DOWN)
        return steps * self.quantity_step

    def round_price(self, price: Decimal, *, buy: bool) -> Decimal:
        """`price` on the tick, never worse for the order: a buy rounds down, a sell up."""
        if self.price_tick is None:
            return price
        mode = ROUND_FLOOR if buy else ROUND_CEILING
        return (price / self.price_tick).to_integral_value(rounding=mode) * self.price_tick

    # ------------------------------------------------------------------ checks
    def meets_minimum(self, quantity: Decimal, price: Decimal | None) -> bool:
        return self.minimum_violation(quantity, price) is None

    def minimum_violation(self, quantity: Decimal, price: Decimal | None) -> Violation | None:
        """Below the minimum quantity, or (when `price` is known) the minimum notional."""
        quantity = abs(quantity)
        if quantity < self.min_quantity:
            return Violation(
                BELOW_INSTRUMENT_MINIMUM,
                f"{self.symbol}: quantity {quantity} below the minimum {self.min_quantity}",
            )
        if price is not None and quantity * price < self.min_notional:
            return Violation(
                BELOW_INSTRUMENT_MINIMUM,
                f"{self.symbol}: order value {quantity * price:.8f} below the minimum "
                f"{self.min_notional}",
            )
        return None

    def violation(
        self,
        quantity: Decimal,
        *,
        limit_price: Decimal | None = None,
        price: Decimal | None = None,
    ) -> Violation | None:
        """The first rule `quantity` (at `limit_price`, valued at `price`) breaks, or None.

        Checked in order: minimum quantity, quantity step, price tick of the limit price,
        minimum notional (only when a `price` is given)."""
        minimum = self.minimum_violation(quantity, None)
        if minimum is not None:
            return minimum
        if not _multiple(abs(quantity), self.quantity_step):
            return Violation(
                OFF_STEP,
                f"{self.symbol}: quantity {quantity} is not a multiple of {self.quantity_step}",
            )
        if (
            limit_price is not None
            and self.price_tick is not None
            and not _multiple(limit_price, self.price_tick)
        ):
            return Violation(
                OFF_TICK,
                f"{self.symbol}: limit price {limit_price} is not a multiple of the tick "
                f"{self.price_tick}",
            )
        return self.minimum_violation(quantity, price) if price is not None else None


def uniform_rules(
    *,
    quantity_step: Decimal = EIGHT_DECIMALS,
    price_tick: Decimal | None = EIGHT_DECIMALS,
    min_quantity: Decimal = ZERO,
    min_notional: Decimal = ZERO,
    source: str = "configured",
    overrides: Mapping[str, InstrumentSpec] | None = None,
) -> Callable[[str], InstrumentSpec]:
    """Rules for any symbol: the same step/tick/minimums for all (`overrides` per symbol)."""
    extra = dict(overrides or {})
    cache: dict[str, InstrumentSpec] = {}

    def rules(symbol: str) -> InstrumentSpec:
        spec = extra.get(symbol) or cache.get(symbol)
        if spec is None:
            spec = InstrumentSpec(
                symbol, quantity_step, price_tick, min_quantity, min_notional, source
            )
            cache[symbol] = spec
        return spec

    return rules


def _ccxt_step(value: Any, mode: int, what: str) -> Decimal | None:
    if value is None:
        return None
    if mode == CCXT_TICK_SIZE:
        return Decimal(str(value))
    if mode == CCXT_DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(value))
    raise ValueError(f"{what}: CCXT precision mode {mode} has no fixed step (not supported)")


def _ccxt_min(limits: Mapping[str, Any], key: str) -> Decimal:
    value = (limits.get(key) or {}).get("min")
    return Decimal(str(value)) if value else ZERO


def spec_from_ccxt_market(
    market: Mapping[str, Any], precision_mode: int, source: str = ""
) -> InstrumentSpec:
    """The `InstrumentSpec` of one CCXT unified market (`exchange.market(symbol)`)."""
    symbol = str(market["symbol"])
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    step = _ccxt_step(precision.get("amount"), precision_mode, symbol)
    if step is None:
        raise ValueError(f"{symbol}: the exchange publishes no amount precision")
    return InstrumentSpec(
        symbol,
        step,
        _ccxt_step(precision.get("price"), precision_mode, symbol),
        _ccxt_min(limits, "amount"),
        _ccxt_min(limits, "cost"),
        source,
    )


__all__ = [
    "BELOW_INSTRUMENT_MINIMUM",
    "OFF_STEP",
    "OFF_TICK",
    "InstrumentSpec",
    "Violation",
    "spec_from_ccxt_market",
    "uniform_rules",
]
