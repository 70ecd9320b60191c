"""The one strategy context, shared by the backtester and the trading session.

* `MarketData` owns what a strategy can see: per-symbol OHLCV buffers that are filled bar by
  bar as bars close, and the indicator outputs, revealed the same way. A buffer (and so
  `Series.values.base`, or any view) never holds a bar after the current one. In a backtest
  (`source` given) indicators are computed once on the whole data and each value is copied in
  when its bar closes; the backtester then checks the whole strategy on prefixes
  (`omc.floor.lookahead`). In trading, indicators run on a trailing window at every bar.
* `make_context(market, executor)` builds the object handed to `Strategy.init` / `on_bar`. It
  offers exactly the `Context` protocol of `omc.floor.strategy` (plus `index`, the current bar
  number); it has no attributes of its own, and the executor behind it (the backtest engine or
  the trading session, with the full data, venue, order manager and journal) is not one of
  its attributes. Orders are validated here and passed to `Executor.place`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from omc.floor.data import Bars
from omc.floor.lookahead import check_causal
from omc.floor.orders import Order
from omc.floor.strategy import BarView, Clock, Context, LookAheadError, Series

FIELDS = ("open", "high", "low", "close", "volume")


def to_dec(value: Decimal | float | int | str) -> Decimal:
    """A number as an exact Decimal (floats by their shortest repr)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


class Executor(Protocol):
    """What the backtest engine or the trading session does behind a strategy's context."""

    @property
    def now(self) -> datetime: ...

    @property
    def cash(self) -> Decimal: ...

    @property
    def equity(self) -> Decimal: ...

    def position(self, symbol: str) -> Decimal: ...

    def place(
        self,
        symbol: str,
        quantity: Decimal | None,
        percent: Decimal | None,
        limit: Decimal | None,
        stop: Decimal | None,
        tag: str,
    ) -> Order:
        """A validated order: a quantity, or a target percent of equity (exactly one)."""
        ...

    def cancel(self, order: Order) -> None: ...

    def open_orders(self, symbol: str | None) -> list[Order]: ...


@dataclass(eq=False)
class Indicator:
    """One declared indicator: its function and inputs, the visible series and its buffer;
    `full`: the whole-data output (backtest only, never visible)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    series: Series
    out: npt.NDArray[Any] | None = None
    full: npt.NDArray[Any] | None = None


class MarketData:
    """Point-in-time bar and indicator buffers for `symbols` (see module doc)."""

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        source: Mapping[str, Bars] | None = None,
        window: int = 256,
        check_lookahead: bool = True,
        warmup: int = 0,
    ) -> None:
        self.symbols = tuple(symbols)
        self.clock = Clock()
        self._source = source
        self.window = window
        self.check_lookahead = check_lookahead
        self.warmup = warmup
        self.n = len(next(iter(source.values()))) if source else 0
        self._cap = self.n if source else 1024
        self._buf = {s: {f: np.full(self._cap, np.nan) for f in FIELDS} for s in self.symbols}
        self.views: dict[str, BarView] = {}
        self._series: list[tuple[Series, str, str]] = []
        self._full: dict[int, npt.NDArray[Any]] = {}  # id(series) -> whole-data array
        self._copy: list[tuple[npt.NDArray[Any], npt.NDArray[Any]]] = []
        for s in self.symbols:
            view = object.__new__(BarView)
            view.symbol = s
            for f in FIELDS:
                ser = Series(self._buf[s][f], self.clock, f)
                setattr(view, f, ser)
                self._series.append((ser, s, f))
                if source is not None:
                    src = getattr(source[s], f)
                    self._full[id(ser)] = src
                    self._copy.append((self._buf[s][f], src))
            self.views[s] = view
        self.indicators: list[Indicator] = []

    # ------------------------------------------------------------------ bars
    def reveal_until(self, i: int) -> None:
        """Backtest: bars 0..i have closed (used once, for the history before the start)."""
        for dst, src in self._copy:
            dst[: i + 1] = src[: i + 1]
        for ind in self.indicators:
            assert ind.out is not None and ind.full is not None
            ind.out[: i + 1] = ind.full[: i + 1]
        self.clock.i = i

    def reveal(self, i: int) -> None:
        """Backtest: bar i has closed (the hot path: one copy per field and indicator)."""
        for dst, src in self._copy:
            dst[i] = src[i]
        for ind in self.indicators:
            ind.out[i] = ind.full[i]  # type: ignore[index]
        self.clock.i = i

    def append(self, rows: Mapping[str, Sequence[float]]) -> int:
        """Trading: the next bar has closed (symbols without a row carry their last close);
        every indicator gets its value for it. Returns the bar's index."""
        i = self.clock.i + 1
        if i >= self._cap:
            self._grow()
        for s in self.symbols:
            row = rows.get(s)
            buf = self._buf[s]
            if row is None:
                last = buf["close"][i - 1] if i else np.nan
                row = (last, last, last, last, 0.0)
            for f, v in zip(FIELDS, row, strict=True):
                buf[f][i] = v
        self.clock.i = i
        for ind in self.indicators:
            self._compute(ind, i)
        return i

    def _grow(self) -> None:
        self._cap *= 2
        for s in self.symbols:
            for f in FIELDS:
                old = self._buf[s][f]
                new = np.full(self._cap, np.nan)
                new[: len(old)] = old
                self._buf[s][f] = new
        for ser, s, f in self._series:
            ser._a = self._buf[s][f]
        for ind in self.indicators:
            if ind.out is not None:
                new = np.full((self._cap, *ind.out.shape[1:]), np.nan)
                new[: len(ind.out)] = ind.out
                ind.out = new
                ind.series._a = new

    # ------------------------------------------------------------------ indicators
    def indicator(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], name: str
    ) -> Series:
        label = name or getattr(fn, "__name__", "indicator")
        for a in args:
            if (
                isinstance(a, Series)
                and not any(a is s for s, _, _ in self._series)
                and not any(a is ind.series for ind in self.indicators)
            ):
                raise ValueError(f"indicator {label!r}: inputs must be series of this context")
        if self._source is None:
            ind = Indicator(fn, args, kwargs, Series(np.full(self._cap, np.nan), self.clock, label))
            self.indicators.append(ind)
            for i in range(self.clock.i + 1):  # declared mid-run: fill the bars so far
                self._compute(ind, i)
            return ind.series
        arrays = tuple(self._full[id(a)] if isinstance(a, Series) else a for a in args)
        full = np.asarray(fn(*arrays, **kwargs), dtype=np.float64)
        if len(full) != self.n:
            raise ValueError(f"indicator {label!r} returned {len(full)} rows for {self.n} bars")
        if self.check_lookahead:
            check_causal(fn, arrays, kwargs, full, label, self.warmup)
        full.flags.writeable = False
        out = np.full(full.shape, np.nan)
        out[: self.clock.i + 1] = full[: self.clock.i + 1]
        series = Series(out, self.clock, label)
        self._full[id(series)] = full
        self.indicators.append(Indicator(fn, args, kwargs, series, out, full))
        return series

    def _compute(self, ind: Indicator, i: int) -> None:
        lo = max(0, i + 1 - self.window)
        args = tuple(a._a[lo : i + 1] if isinstance(a, Series) else a for a in ind.args)
        res = np.asarray(ind.fn(*args, **ind.kwargs), dtype=np.float64)
        if ind.out is None:
            ind.out = np.full((self._cap, *res.shape[1:]), np.nan)
            ind.series._a = ind.out
        ind.out[i] = res[-1]

    def values(self) -> dict[str, Any]:
        """Every indicator's value on the current bar (a decision's reason)."""
        out: dict[str, Any] = {}
        i = self.clock.i
        for ind in self.indicators:
            if i < 0 or ind.out is None:
                continue
            value = ind.out[i]
            out[ind.series.name] = (
                float(value) if np.ndim(value) == 0 else [float(x) for x in np.ravel(value)]
            )
        return out


class ContextAccessError(LookAheadError, AttributeError):
    """A strategy reached for the engine behind its context (e.g. `ctx.bars`)."""


PUBLIC = (
    "now",
    "symbols",
    "index",
    "cash",
    "equity",
    "data",
    "position",
    "indicator",
    "order",
    "order_target_percent",
    "cancel",
    "open_orders",
)

# names of engine/session internals: reaching for them is reaching for later bars
INTERNALS = frozenset(
    {
        "bars",
        "engine",
        "executor",
        "market",
        "session",
        "venue",
        "oms",
        "journal",
        "state",
        "guard",
        "strategy",
        "clock",
        "orders",
        "fills",
        "trades",
        "n",
        "source",
    }
)


def make_context(market: MarketData, executor: Executor) -> Context:
    """The narrow context a strategy receives (see module doc)."""
    views, syms, clock = market.views, market.symbols, market.clock
    ex = executor

    def place(
        symbol: str,
        quantity: Decimal | None,
        percent: Decimal | None,
        limit: Decimal | float | None,
        stop: Decimal | float | None,
        tag: str,
    ) -> Order:
        if symbol not in views:
            raise KeyError(f"unknown symbol {symbol!r}; this run has {list(syms)}")
        if limit is not None and stop is not None:
            raise ValueError("an order is a limit or a stop order, not both")
        return ex.place(
            symbol,
            quantity,
            percent,
            None if limit is None else to_dec(limit),
            None if stop is None else to_dec(stop),
            tag,
        )

    class StrategyContext:
        """What a strategy may see and do (the `Context` protocol)."""

        __slots__ = ()

        @property
        def now(self) -> datetime:
            return ex.now

        @property
        def symbols(self) -> tuple[str, ...]:
            return syms

        @property
        def index(self) -> int:
            return clock.i

        @property
        def cash(self) -> Decimal:
            return ex.cash

        @property
        def equity(self) -> Decimal:
            return ex.equity

        def data(self, symbol: str) -> BarView:
            view = views.get(symbol)
            if view is None:
                raise KeyError(f"unknown symbol {symbol!r}; this run has {list(syms)}")
            return view

        def position(self, symbol: str) -> Decimal:
            return ex.position(symbol)

        def indicator(
            self, fn: Callable[..., Any], *args: Any, name: str = "", **kwargs: Any
        ) -> Series:
            return market.indicator(fn, args, kwargs, name)

        def order(
            self,
            symbol: str,
            quantity: Decimal | float,
            *,
            limit: Decimal | float | None = None,
            stop: Decimal | float | None = None,
            tag: str = "",
        ) -> Order:
            q = to_dec(quantity)
            if not q:
                raise ValueError("order quantity must be non-zero")
            return place(symbol, q, None, limit, stop, tag)

        def order_target_percent(
            self,
            symbol: str,
            percent: Decimal | float,
            *,
            limit: Decimal | float | None = None,
            stop: Decimal | float | None = None,
            tag: str = "",
        ) -> Order:
            return place(symbol, None, to_dec(percent), limit, stop, tag)

        def cancel(self, order: Order) -> None:
            ex.cancel(order)

        def open_orders(self, symbol: str | None = None) -> list[Order]:
            return ex.open_orders(symbol)

        def __getattr__(self, name: str) -> Any:
            hint = f"the strategy context has no {name!r}; it offers {', '.join(PUBLIC)}"
            if name.startswith("_") or name in INTERNALS:
                raise ContextAccessError(
                    f"{hint} — the engine behind it (all bars, venue, orders, journal) is out "
                    "of a strategy's reach"
                )
            raise AttributeError(hint)

        def __dir__(self) -> list[str]:
            return list(PUBLIC)

        def __repr__(self) -> str:
            return f"Context(symbols={list(syms)}, bar={clock.i})"

    return StrategyContext()
