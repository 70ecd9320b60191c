"""The event-driven backtester: bars in time order, orders filled by `fills`, cash and
positions in exact decimals; the `Executor` behind the shared strategy context
(`omc.floor.context`), which reveals each bar to the strategy as it closes.

Per bar i: (1) working orders placed on earlier bars are matched against bar i;
(2) the book is marked at bar i's close; (3) the strategy sees data up to bar i and decides.
So an order can never fill on the bar whose close produced it.

With `guard=Guard(limits)` the orders also pass the paper/live Guard (`backtest.guarded`):
sized and checked at the open they first meet, the book marked at every close, so the run
makes the fills a paper replay of the same candles makes. Stop orders are refused
(`orders.STOP_REFUSED`), as on every venue.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from omc.floor.context import MarketData, make_context, to_dec
from omc.floor.data import Bars, FloatArray, align, to_decimal
from omc.floor.fills import FeeModel, SlippageModel, match
from omc.floor.lookahead import Trace, check_prefixes, first_log_difference, fresh, prefix_copy
from omc.floor.orders import STOP_REFUSED, Fill, Order, OrderStatus, OrderType, TradeRecord
from omc.floor.strategy import LookAheadError, Strategy

if TYPE_CHECKING:
    from omc.floor.backtest.guarded import BacktestGuard
    from omc.floor.instruments import InstrumentSpec
    from omc.floor.trading.guard import Guard

DEFAULT_LOT = Decimal("0.00000001")


@dataclass
class BacktestResult:
    """Everything a run produced. `equity` is the close-of-bar equity for bars `start..n-1`
    (floats derived from the exact book); `final_equity` and trade P&L are exact."""

    strategy: str
    params: dict[str, Any]
    bars: dict[str, Bars]
    start: int
    initial_cash: Decimal
    equity: FloatArray
    ts: np.ndarray
    trades: list[TradeRecord]
    fills: list[Fill]
    cash: Decimal
    positions: dict[str, Decimal]
    final_equity: Decimal
    fees_paid: Decimal
    traded_notional: Decimal
    bars_in_market: int
    fees: FeeModel
    slippage: SlippageModel
    metrics: dict[str, Any] = field(default_factory=dict)
    benchmark: dict[str, Any] = field(default_factory=dict)
    guard: dict[str, Any] | None = None  # what the Guard did (`guard_report`), when guarded

    @property
    def bar_seconds(self) -> float:
        return next(iter(self.bars.values())).bar_seconds


class Backtest:
    """One event-driven run; the strategy gets `self.ctx`, never the engine itself. With
    `check_lookahead`, `run()` also runs fresh copies of the strategy on prefixes of the data
    and fails with `LookAheadError` if any decision changes (`omc.floor.lookahead`)."""

    def __init__(
        self,
        strategy: Strategy,
        data: Bars | Mapping[str, Bars],
        *,
        cash: Decimal | float | str = Decimal(10000),
        fees: FeeModel | None = None,
        slippage: SlippageModel | None = None,
        start: int = 0,
        lot_size: Decimal = DEFAULT_LOT,
        allow_short: bool = False,
        check_lookahead: bool = True,
        guard: Guard | None = None,
        instruments: Callable[[str], InstrumentSpec] | None = None,
    ) -> None:
        if guard is not None and allow_short:
            raise ValueError("a guarded backtest is long-only, like paper trading")
        raw = {data.symbol: data} if isinstance(data, Bars) else dict(data)
        if not raw:
            raise ValueError("no data")
        self.bars = align(raw)
        self._syms = tuple(self.bars)
        self.n = len(next(iter(self.bars.values())))
        self._bar_len = timedelta(seconds=next(iter(self.bars.values())).bar_seconds)
        if not 0 <= start < self.n:
            raise ValueError(f"start={start} outside 0..{self.n - 1}")
        self.strategy = strategy
        self.start = start
        self.initial_cash = to_dec(cash)
        self.fee_model = fees or FeeModel.from_settings()
        self.slip = slippage or SlippageModel()
        self.lot = lot_size
        self.allow_short = allow_short
        self.check_lookahead = check_lookahead
        self.market = MarketData(
            self._syms, source=self.bars, check_lookahead=check_lookahead, warmup=strategy.warmup()
        )
        self.clock = self.market.clock
        self.ctx = make_context(self.market, self)
        self._log: list[tuple[Any, ...]] | None = None  # decisions, for the look-ahead check
        self._cash = self.initial_cash
        self._pos: dict[str, Decimal] = {s: Decimal(0) for s in self._syms}
        self._cash_f = float(self._cash)
        self._pos_f: dict[str, float] = {s: 0.0 for s in self._syms}
        self._orders: list[Order] = []
        self._next_id = 1
        self._open: dict[str, TradeRecord | None] = {s: None for s in self._syms}
        self.trades: list[TradeRecord] = []
        self.fills: list[Fill] = []
        self.fees_paid = Decimal(0)
        self.traded_notional = Decimal(0)
        self.guard = guard
        self.instruments = instruments
        self._gb: BacktestGuard | None = None

    # ------------------------------------------------------------------ Executor
    @property
    def now(self) -> datetime:
        """When the current bar closed (its open time + the bar length), as in trading,
        where a bar's decision is taken at its close; before the first bar, the start's."""
        return self.bars[self._syms[0]].time(max(self.clock.i, 0)) + self._bar_len

    @property
    def cash(self) -> Decimal:
        return self._cash

    @property
    def equity(self) -> Decimal:
        i = self.clock.i
        return self._cash + sum(
            (q * to_decimal(self.bars[s].close[i]) for s, q in self._pos.items() if q),
            Decimal(0),
        )

    def position(self, symbol: str) -> Decimal:
        return self._pos[symbol]

    def place(
        self,
        symbol: str,
        quantity: Decimal | None,
        percent: Decimal | None,
        limit: Decimal | None,
        stop: Decimal | None,
        tag: str,
    ) -> Order:
        if stop is not None:
            raise ValueError(STOP_REFUSED)
        kind = OrderType.LIMIT if limit is not None else OrderType.MARKET
        price = limit
        order = Order(self._next_id, symbol, kind, self.clock.i, quantity, percent, price, tag)
        self._next_id += 1
        self._orders.append(order)
        if self._log is not None:
            self._log.append(
                (self.clock.i, "order", order.id, symbol, kind, quantity, percent, price, tag)
            )
        return order

    def cancel(self, order: Order) -> None:
        if self._log is not None:
            self._log.append((self.clock.i, "cancel", order.id))
        if order.status is OrderStatus.OPEN:
            order.status = OrderStatus.CANCELLED
            if self._gb is not None:
                self._gb.sync(order, self.now)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [
            o
            for o in self._orders
            if o.status is OrderStatus.OPEN and (symbol is None or o.symbol == symbol)
        ]

    # ------------------------------------------------------------------ execution
    def _floor_lot(self, q: Decimal) -> Decimal:
        return (q / self.lot).to_integral_value(rounding=ROUND_DOWN) * self.lot

    def _process(self, i: int) -> None:
        working: list[Order] = []
        for order in self._orders:
            if order.status is not OrderStatus.OPEN:
                continue
            if order.placed_index >= i:
                working.append(order)
                continue
            if self._try_fill(order, i):
                working.append(order)
            if self._gb is not None:
                self._gb.sync(order, self.bars[order.symbol].time(i))
        self._orders = working

    def _try_fill(self, order: Order, i: int) -> bool:
        """Match `order` on bar i; True while it keeps working."""
        sym = order.symbol
        b = self.bars[sym]
        o, h, lo, v = b.open[i], b.high[i], b.low[i], b.volume[i]
        pos = self._pos[sym]
        if self._gb is not None and not self._gb.admit(
            order, to_decimal(o), b.time(i), self.fee_model.rate(False), self.slip
        ):
            return False
        if order.quantity is None:
            assert order.target_percent is not None
            # direction from the current value against the target (exact size at fill price)
            eq_open = self._equity_at(i)
            cur = pos * to_decimal(o)
            want = eq_open * order.target_percent
            if want == cur or (order.target_percent == 0 and not pos):
                order.status = OrderStatus.FILLED
                return False
            buy = want > cur
        else:
            buy = order.quantity > 0
        m = match(order, buy, o, h, lo)
        if m is None:
            return True
        price, maker = m
        if not maker:
            price = self.slip.adjust(price, buy)
        rate = self.fee_model.rate(maker)
        if order.quantity is None:
            assert order.target_percent is not None
            pct = order.target_percent
            if pct == 0:
                target = Decimal(0)
            else:
                raw = self._equity_at(i) * abs(pct) / (price * (1 + rate))
                target = self._floor_lot(raw).copy_sign(pct)
            delta = target - pos
            if not delta or (delta > 0) != buy:
                order.status = OrderStatus.FILLED
                return False
            order.quantity = delta
        remaining = order.quantity - order.filled
        qty = remaining
        capped = False
        cap = self.slip.cap(v)
        if cap is not None:
            c = self._floor_lot(cap)
            if abs(qty) > c:
                qty = c.copy_sign(qty)
                capped = True
        clipped = False
        if qty > 0:
            afford = self._floor_lot(self._cash / (price * (1 + rate)))
            if qty > afford:
                qty, clipped = max(afford, Decimal(0)), True
        elif qty < 0 and not self.allow_short and -qty > pos:
            qty, clipped = -max(pos, Decimal(0)), True
        if qty:
            self._execute(order, i, qty, price, rate, maker)
        if clipped or order.filled == order.quantity:
            order.status = OrderStatus.FILLED
            return False
        return capped

    def _equity_at(self, i: int) -> Decimal:
        eq = self._cash
        for s, q in self._pos.items():
            if q:
                eq += q * to_decimal(self.bars[s].open[i])
        return eq

    def _execute(
        self, order: Order, i: int, qty: Decimal, price: Decimal, rate: Decimal, maker: bool
    ) -> None:
        sym = order.symbol
        notional = abs(qty) * price
        fee = notional * rate
        self._cash -= qty * price + fee
        self._cash_f = float(self._cash)
        old = self._pos[sym]
        new = old + qty
        self._pos[sym] = new
        self._pos_f[sym] = float(new)
        order.filled += qty
        self.fees_paid += fee
        self.traded_notional += notional
        when = self.bars[sym].time(i)
        fill = Fill(order.id, sym, i, when, qty, price, fee, maker)
        self.fills.append(fill)
        if self._gb is not None:
            self._gb.fill(order, qty, price, fee)
        # round-trip bookkeeping (split a fill that flips the position through zero)
        parts: list[tuple[Decimal, Decimal]] = []
        if old and (new == 0 or (old > 0) != (new > 0)):
            parts.append((-old, fee * abs(old) / abs(qty)))
            if new:
                parts.append((new, fee - parts[0][1]))
        else:
            parts.append((qty, fee))
        cur = old
        for q, f in parts:
            tr = self._open[sym]
            if tr is None:
                tr = TradeRecord(sym, "long" if q > 0 else "short", i, when)
                self._open[sym] = tr
            tr.fills.append(fill)
            tr.fees += f
            if (q > 0) == (tr.side == "long"):
                tr.quantity += abs(q)
                tr.entry_value += abs(q) * price
            else:
                tr.exit_quantity += abs(q)
                tr.exit_value += abs(q) * price
            cur += q
            if cur == 0:
                tr.exit_index, tr.exit_time = i, when
                tr.pnl = self._pnl(tr, Decimal(0))
                self.trades.append(tr)
                self._open[sym] = None

    @staticmethod
    def _pnl(tr: TradeRecord, open_value: Decimal) -> Decimal:
        gross = tr.exit_value + open_value - tr.entry_value
        return (gross if tr.side == "long" else -gross) - tr.fees

    # ------------------------------------------------------------------ run
    def run(self) -> BacktestResult:
        """The run; with `check_lookahead` also on prefixes of the data (`lookahead`)."""
        with decimal.localcontext() as dctx:
            dctx.prec = 40
            if not self.check_lookahead:
                return self._run()
            result: BacktestResult = check_prefixes(
                self._attempt,
                first_log_difference,
                n=self.n,
                start=self.start,
                warmup=self.strategy.warmup(),
                what=f"strategy {self.strategy.name!r}",
                when=self._when,
            )
            return result

    def _when(self, i: int) -> str:
        if i < self.start:
            return "in init, before the first bar"
        return f"{self.bars[self._syms[0]].time(i):%Y-%m-%d %H:%M} UTC"

    def _attempt(self, cut: int | None) -> Trace:
        """This run (`cut` None) or a fresh one on the first `cut` bars, with its decisions."""
        bt = self
        if cut is not None:
            bt = Backtest(
                fresh(self.strategy),
                {s: prefix_copy(b, cut) for s, b in self.bars.items()},
                cash=self.initial_cash,
                fees=self.fee_model,
                slippage=self.slip,
                start=self.start,
                lot_size=self.lot,
                allow_short=self.allow_short,
                check_lookahead=False,
                guard=self.guard,
                instruments=self.instruments,
            )
        log: list[tuple[Any, ...]] = []
        bt._log = log
        try:
            result = bt._run()
        except LookAheadError as exc:
            return Trace(cut, error=exc)
        except Exception as exc:  # compared with the full run below
            at = bt.clock.i
            return Trace(
                cut, error=exc, error_bar=at, inconclusive=cut is not None and at < bt.start
            )
        finally:
            bt._log = None
        return Trace(cut, bars=[d[0] for d in log], decisions=log, result=result)

    def _run(self) -> BacktestResult:
        strategy = self.strategy
        n, start = self.n, self.start
        if start:
            self.market.reveal_until(start - 1)
        if self.guard is not None:
            from omc.floor.backtest.guarded import BacktestGuard

            self._gb = BacktestGuard(
                self.guard,
                strategy.name,
                self.initial_cash,
                self.bars[self._syms[0]].time(start),
                self.instruments,
            )
        bar_len = self._bar_len
        ctx = self.ctx
        strategy.init(ctx)
        reveal = self.market.reveal
        equity = np.empty(n - start)
        syms = self._syms
        closes = [self.bars[s].close for s in syms]
        single = len(syms) == 1
        sym0 = syms[0]
        close0 = closes[0]
        pos_f = self._pos_f
        on_bar = strategy.on_bar
        in_market = 0
        for i in range(start, n):
            reveal(i)
            if self._orders:
                self._process(i)
            if single:
                p = pos_f[sym0]
                equity[i - start] = self._cash_f + p * close0[i]
                if p:
                    in_market += 1
            else:
                e = self._cash_f
                held = False
                for s, c in zip(syms, closes, strict=True):
                    p = pos_f[s]
                    if p:
                        e += p * c[i]
                        held = True
                equity[i - start] = e
                in_market += held
            if self._gb is not None:
                self._gb.mark(
                    i,
                    self.bars[sym0].time(i) + bar_len,
                    {s: to_decimal(c[i]) for s, c in zip(syms, closes, strict=True)},
                )
            out = on_bar(ctx)
            if out:
                self._targets(out)
        last = n - 1
        final = self._cash
        positions = dict(self._pos)
        for s, q in positions.items():
            if q:
                final += q * to_decimal(self.bars[s].close[last])
        trades = list(self.trades)
        for s, tr in self._open.items():
            if tr is not None:
                value = abs(self._pos[s]) * to_decimal(self.bars[s].close[last])
                tr.pnl = self._pnl(tr, value)
                trades.append(tr)
        trades.sort(key=lambda t: (t.entry_index, t.symbol))
        ts = next(iter(self.bars.values())).ts[start:]
        return BacktestResult(
            strategy=strategy.name,
            params=dict(strategy.params),
            bars=self.bars,
            start=start,
            initial_cash=self.initial_cash,
            equity=equity,
            ts=ts,
            trades=trades,
            fills=self.fills,
            cash=self._cash,
            positions=positions,
            final_equity=final,
            fees_paid=self.fees_paid,
            traded_notional=self.traded_notional,
            bars_in_market=in_market,
            fees=self.fee_model,
            slippage=self.slip,
            guard=self._gb.report() if self._gb is not None else None,
        )

    def _targets(self, targets: Mapping[str, float | Decimal]) -> None:
        for sym, weight in targets.items():
            for o in self._orders:
                if (
                    o.symbol == sym
                    and o.status is OrderStatus.OPEN
                    and o.target_percent is not None
                    and o.type is OrderType.MARKET
                ):
                    o.status = OrderStatus.CANCELLED
            self.ctx.order_target_percent(sym, weight)


def run_backtest(
    strategy: Strategy,
    data: Bars | Mapping[str, Bars],
    *,
    cash: Decimal | float | str = Decimal(10000),
    fees: FeeModel | None = None,
    slippage: SlippageModel | None = None,
    start: int = 0,
    lot_size: Decimal = DEFAULT_LOT,
    allow_short: bool = False,
    check_lookahead: bool = True,
    with_metrics: bool = True,
    guard: Guard | None = None,
    instruments: Callable[[str], InstrumentSpec] | None = None,
) -> BacktestResult:
    """Run `strategy` over `data` event by event; metrics and buy-and-hold baseline attached."""
    result = Backtest(
        strategy,
        data,
        cash=cash,
        fees=fees,
        slippage=slippage,
        start=start,
        lot_size=lot_size,
        allow_short=allow_short,
        check_lookahead=check_lookahead,
        guard=guard,
        instruments=instruments,
    ).run()
    if with_metrics:
        from omc.floor.backtest.metrics import attach_metrics

        attach_metrics(result)
    return result
