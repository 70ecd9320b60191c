"""The strategy interface: the one contract shared by backtest, paper and live trading.

A strategy is a `Strategy` subclass with two hooks:

* `init(ctx)` — once, before the first bar: declare indicators with `ctx.indicator(fn, ...)`.
  `fn` is any vectorised, *causal* function of the inputs (SMA, RSI, an ML feature pipeline).
* `on_bar(ctx)` — after every bar closes (a tick is a one-price bar). Return target weights
  `{symbol: fraction_of_equity}` (executed as market orders at the next bar's open), or place
  orders with `ctx.order(...)` / `ctx.order_target_percent(...)`, or return None.

Everything the strategy can see is point-in-time. The context it gets (`omc.floor.context`)
offers exactly the `Context` protocol below — no handle to the engine, its data, the venue,
the order manager or the journal. `ctx.data(symbol).close`, and every indicator, are
`Series` views that end at the current bar: `s[-1]` is now, `s[-2]` the bar before, `s[k]`
for k beyond now raises `LookAheadError`, and `s.values` is a read-only array ending now;
the buffers behind them are filled bar by bar, so they never hold a later bar. The
backtester also recomputes every indicator on prefixes of the data, and reruns the whole
strategy on prefixes, and raises `LookAheadError` if any value or decision changes when later
bars are added (`omc.floor.lookahead`): a `shift(-1)`, a centred window, or any route around
the context is caught. The fast path checks `signals(bars)` the same way.

Optionally a strategy implements `signals(bars)`: the same decisions as `on_bar`, as arrays
(NaN = no order at that bar). The vectorised/compiled fast path and parameter sweeps use it;
tests assert it agrees with `on_bar` through the event-driven engine.

Backtest, paper and live each implement `Context`; the strategy never changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from omc.floor.data import Bars
    from omc.floor.orders import Order

FloatArray = npt.NDArray[np.float64]


class LookAheadError(RuntimeError):
    """A strategy or indicator tried to use data from after the current bar."""


class Clock:
    """The index of the bar that just closed; shared by every `Series` of one run."""

    __slots__ = ("i",)

    def __init__(self) -> None:
        self.i = -1


class Series:
    """A point-in-time view of a per-bar array: nothing after the clock's bar is reachable."""

    __slots__ = ("_a", "_clock", "name")

    def __init__(self, array: npt.NDArray[Any], clock: Clock, name: str = "") -> None:
        self._a = array
        self._clock = clock
        self.name = name

    def __getitem__(self, key: int | slice) -> Any:
        if type(key) is int and key < 0:  # the hot path: s[-1], s[-2]
            idx = self._clock.i + 1 + key
            if idx >= 0:
                return self._a[idx]
        return self._get(key)

    def _get(self, key: int | slice) -> Any:
        now = self._clock.i
        if isinstance(key, slice):
            return self.values[key]
        idx = now + 1 + key if key < 0 else key
        if idx > now:
            raise LookAheadError(
                f"{self.name or 'series'}[{key}] is bar {idx}, after the current bar {now}"
            )
        if idx < 0:
            raise IndexError(f"{self.name or 'series'}[{key}] is before the first bar")
        return self._a[idx]

    def __len__(self) -> int:
        return self._clock.i + 1

    @property
    def values(self) -> npt.NDArray[Any]:
        """A read-only array of the values up to and including the current bar."""
        view = self._a[: self._clock.i + 1].view()
        view.flags.writeable = False
        return view

    def __repr__(self) -> str:
        return f"Series({self.name!r}, now={self._clock.i})"


class BarView:
    """One symbol's point-in-time OHLCV."""

    __slots__ = ("close", "high", "low", "open", "symbol", "volume")

    def __init__(self, bars: Bars, clock: Clock) -> None:
        self.symbol = bars.symbol
        self.open = Series(bars.open, clock, "open")
        self.high = Series(bars.high, clock, "high")
        self.low = Series(bars.low, clock, "low")
        self.close = Series(bars.close, clock, "close")
        self.volume = Series(bars.volume, clock, "volume")


class Context(Protocol):
    """What a strategy may see and do. Implemented by the backtester, paper and live."""

    @property
    def now(self) -> datetime: ...

    @property
    def symbols(self) -> tuple[str, ...]: ...

    @property
    def cash(self) -> Decimal: ...

    @property
    def equity(self) -> Decimal: ...

    def data(self, symbol: str) -> BarView: ...

    def position(self, symbol: str) -> Decimal: ...

    def indicator(
        self, fn: Callable[..., Any], *args: Any, name: str = "", **kwargs: Any
    ) -> Series: ...

    def order(
        self,
        symbol: str,
        quantity: Decimal | float,
        *,
        limit: Decimal | float | None = None,
        stop: Decimal | float | None = None,
        tag: str = "",
    ) -> Order: ...

    def order_target_percent(
        self,
        symbol: str,
        percent: Decimal | float,
        *,
        limit: Decimal | float | None = None,
        stop: Decimal | float | None = None,
        tag: str = "",
    ) -> Order: ...

    def cancel(self, order: Order) -> None: ...

    def open_orders(self, symbol: str | None = None) -> list[Order]: ...


Targets = Mapping[str, float | Decimal]


class Strategy(ABC):
    """Base class. Subclasses set `name`, `defaults` (parameter -> default) and the hooks."""

    name: ClassVar[str] = "strategy"
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ValueError(
                f"{self.name}: unknown parameter(s) {sorted(unknown)}; "
                f"known: {sorted(self.defaults)}"
            )
        self.params: dict[str, Any] = {**self.defaults, **params}
        self.validate()

    def validate(self) -> None:  # noqa: B027 - optional hook
        """Check `self.params`; raise ValueError when they make no sense."""

    def init(self, ctx: Context) -> None:  # noqa: B027 - optional hook
        """Declare indicators (`ctx.indicator`) before the first bar."""

    @abstractmethod
    def on_bar(self, ctx: Context) -> Targets | None:
        """Decide after a bar closes: target weights, orders via `ctx`, or None."""

    def signals(self, bars: Mapping[str, Bars]) -> dict[str, FloatArray] | None:
        """Vectorised `on_bar` (target weight per bar, NaN = no order), or None if unsupported.

        Only for strategies whose `on_bar` returns target weights that depend on data alone
        (not on fills or cash); used by the fast path and sweeps."""
        return None

    def warmup(self) -> int:
        """Bars of history the strategy needs before its first decision (walk-forward)."""
        return 0

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"
