"""The trading runner: one strategy, driven bar by bar (a replayed candle or a live tick),
through the Guard and the order manager to a venue (paper, CoinSpot or CCXT).

The strategy gets the shared context (`omc.floor.context`) with this session as its
`Executor`, so the very strategy objects that backtest run here unchanged. Per bar:

1. the bar joins the point-in-time buffers and every indicator gets its value for this bar
   (the indicator function runs on a trailing window of `window` bars; earlier values are
   kept as computed then, so nothing ever changes in hindsight);
2. the kill switch is read from the database (in a candle replay at most every 250 ms — the
   group-commit interval; the order manager still checks it before every order): when on,
   open orders are cancelled, positions flattened if asked, the account is `halted` and the
   session stops (a cleared kill switch makes a kill-halted account `active` again);
3. positions are marked at the latest quotes (a `bar` event, which also carries the resume
   point); the Guard's monitor may warn or move the trading state (`omc.floor.trading.modes`:
   a drawdown halt or the daily-loss limit cancels entry orders at once) — *before* resting
   paper orders are matched, so a resting buy never fills after a halt;
4. the strategy decides; target weights become orders sized by `sizing.target_delta` (buys
   clipped to the Guard's size headroom), each with a `decision` event carrying the reason
   (targets and the strategy's indicator values);
5. the journal commits by its group-commit policy (`journal.GroupCommit`, checked at the end
   of every bar and before the session waits): a paper session every 1,000 events or 250 ms,
   an external venue's session every bar — and it also commits each order before it is sent.

Why grouping loses nothing on the paper venue: the paper venue has no state outside this
process — its cash, positions and resting orders are rebuilt from the journal at start
(`restore_paper`) — so an event that was never committed is an order that never existed
anywhere; nothing needs reconciling. Grouped commits only happen at a bar's end (or at the
forced points — start, trading-state move, kill — which already came after the bar's `bar`
event), so the committed journal is always a prefix the uninterrupted run also wrote, ending
inside a bar that is complete up to its `bar` event; after a kill -9 the restart rebuilds
that state, re-feeds the bars up to the last committed one in shadow mode (the strategy's
own state and the orders it queued for the next open come back exactly) and continues as
the uninterrupted run did. A kill -9 costs at most one group of replay work, redone. Writes
outside the journal (staged capital) force a commit at the end of their bar, as before.
External venues hold state of their own: there every order is committed before it leaves
and every bar's events at its end (`EVERY_BAR`), as before grouping existed.

On live ticks (`run_ticks`) orders go out at once, at the current quote. A candle replay
(`replay`) follows the backtest's convention instead: what the strategy decides at bar i's
close is sized, checked by the Guard and filled at bar i+1's *open* (the replay quotes the
open, then the close of every bar), so a replay and a guarded backtest (`omc backtest
--guard`) make the same fills. Both phases of a bar are committed together.

Stop orders are refused on every venue (`orders.STOP_REFUSED`), as in the backtest.

The session is its account's one writer: it holds the account's lease
(`omc.floor.trading.lease`) from construction to `close()`, renewing it every bar; a second
session or `omc kill` on the same account cannot write its journal (`omc kill` sets the kill
switch and waits for this session to act on it, which it does at its next bar or poll — in
a fast replay within the group-commit interval). Every flush renews the lease in its own
transaction, so a writer that lost its lease writes nothing, group or not.

An external venue's balances are journaled in the first `start` event (the baseline); after a
restart `start()` reconciles with the venue (`OrderManager.reconcile`) and, when its balances
differ from the journal, sets `stopped` and trades nothing. Orders with an unknown outcome
are re-examined at every bar until the venue's evidence settles them.

After a crash, `start()` rebuilds the state from the journal; a replay re-feeds the bars it
had already processed to the strategy in *shadow* mode (its internal state evolves exactly as
before, its orders are dropped) and continues live from the first unprocessed bar.

`LiveSettings.live_trading` (`OMC_LIVE_TRADING`) is the explicit switch live mode needs.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine

from omc.core.events import Bus
from omc.core.time import utcnow
from omc.floor.context import MarketData, make_context
from omc.floor.context import to_dec as _dec
from omc.floor.data import Bars, align
from omc.floor.instruments import EIGHT_DECIMALS, InstrumentSpec
from omc.floor.orders import STOP_REFUSED, Order, OrderStatus, OrderType
from omc.floor.strategy import Strategy
from omc.floor.trading.guard import (
    BREACH_CODES,
    CapitalStages,
    Denial,
    Guard,
    KillState,
    KillSwitchStore,
)
from omc.floor.trading.journal import EVERY_BAR, GROUPED, GroupCommit, Journal, TradingState
from omc.floor.trading.lease import LEASE_TTL_S
from omc.floor.trading.modes import Mode, cancel_entries, entry_orders, set_mode
from omc.floor.trading.oms import ManagedOrder, OrderManager, OrderState
from omc.floor.trading.recovery import halt_message
from omc.floor.trading.sizing import target_delta
from omc.floor.venues.base import Quote, Side, Venue, VenueError, VenueOrder, VenueOrderType
from omc.floor.venues.paper import PaperVenue, ReplayQuotes

ZERO = Decimal(0)


class LiveSettings(BaseSettings):
    """The explicit live-trading switch (`OMC_LIVE_TRADING=true`)."""

    model_config = SettingsConfigDict(
        env_prefix="OMC_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    live_trading: bool = Field(
        default=False, description="Allow `omc trade live` to send real orders."
    )


@dataclass(slots=True)
class _Deferred:
    """An order decided at a bar's close, sent at the next bar's open (replay)."""

    order: Order
    weight: Decimal | None
    limit: Decimal | float | None
    tag: str
    reason: dict[str, Any]


class TradingSession:
    """Runs `strategy` on `symbols` against `venue` for journal `account` (see module doc)."""

    def __init__(
        self,
        engine: Engine,
        account: str,
        strategy: Strategy,
        symbols: tuple[str, ...],
        venue: Venue,
        guard: Guard | None = None,
        *,
        kill: KillSwitchStore | None = None,
        capital: CapitalStages | None = None,
        initial_cash: Decimal = Decimal(10000),
        clock: Callable[[], datetime] = utcnow,
        window: int | None = None,
        commit: GroupCommit | None = None,
        lease_ttl_s: float = LEASE_TTL_S,
        bus: Bus | None = None,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.account = account
        self.strategy = strategy
        self.strategy_name = strategy.name
        self._syms = tuple(symbols)
        self.venue = venue
        self.guard = guard or Guard()
        self.kill = kill if kill is not None else KillSwitchStore(engine, account=account)
        if capital is None and self.guard.limits.capital_initial is not None:
            capital = CapitalStages(engine, self.guard.limits)
        self.capital = capital
        self.journal = Journal.open(engine, account, write=True, lease_ttl_s=lease_ttl_s)
        self.state = self.journal.state
        self.oms = OrderManager(self.journal, venue, self.guard, self.kill)
        if commit is None:
            commit = EVERY_BAR if self.oms.external else GROUPED
        self.journal.commit = commit
        self.initial_cash = initial_cash
        self.clock_fn = clock
        self.window = window or max(256, 4 * strategy.warmup())
        self.market = MarketData(self._syms, window=self.window)
        self.clock = self.market.clock
        self.ctx = make_context(self.market, self)
        self._ts: list[datetime] = []
        self._orders: dict[str, Order] = {}
        self._shadow = False
        self._defer = False  # replay: orders wait for the next bar's open
        self._deferred: list[_Deferred] = []
        self._must_commit = False  # a write outside the journal happened this bar
        self._kill_state = KillState(False)
        self._kill_read = -1e18  # time.monotonic() of the last kill-switch read
        self.stopped: str | None = None
        self._initialised = False
        self._now: datetime | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Journal the start (first run) or restore after a restart; init the strategy."""
        now = self.now
        if self.state.started is None:
            data: dict[str, Any] = {
                "initial_cash": self.initial_cash,
                "venue": self.venue.name,
                "strategy": self.strategy_name,
                "params": {k: repr(v) for k, v in self.strategy.params.items()},
                "symbols": list(self._syms),
            }
            if self.oms.external:  # the baseline later balance checks compare against
                data["balances"] = {a: b.total for a, b in self.venue.balances().items()}
            self.journal.append("start", data, ts=now, strategy=self.strategy_name)
            self.journal.flush()
        if isinstance(self.venue, PaperVenue):
            restore_paper(self.venue, self.state)
        elif self.state.events > 1:
            report = self.oms.reconcile(now)
            self.journal.flush()
            if report["halted"]:
                self.stopped = f"halted at start-up: {halt_message(report)}"
                self._set_mode(Mode.HALTED, "reconcile_mismatch", now, message=halt_message(report))
        self._update_cap(now)
        self.journal.flush()
        if not self._initialised:
            self.strategy.init(self.ctx)
            self._initialised = True

    def _update_cap(self, now: datetime) -> None:
        """Staged capital: grow the cap if due, and put it into the Guard (journaled when it
        changes)."""
        if self.capital is None:
            return
        if self.state.book.drawdown() >= self.guard.limits.drawdown_warn_pct:
            self._breach(now, "drawdown_warn")  # not within limits while in drawdown
        cap = self.capital.advance(self.strategy_name, now)
        if cap is None or self.guard.caps.get(self.strategy_name) == cap:
            return
        before = self.guard.caps.get(self.strategy_name)
        self.guard.caps[self.strategy_name] = cap
        self._must_commit = True  # the stage advanced in its own table
        self.journal.append(
            "capital",
            {"cap": cap, "previous": before},
            ts=now,
            strategy=self.strategy_name,
        )

    def _breach(self, now: datetime, code: str) -> None:
        if self.capital is not None:
            self.capital.breach(self.strategy_name, now)
            self._must_commit = True

    def _set_mode(self, to: Mode, reason: str, now: datetime, **details: Any) -> None:
        set_mode(
            self.oms, to, reason, now, bus=self.bus, details=details, strategy=self.strategy_name
        )

    def close(self) -> None:
        """Flush and release the account's lease (the session writes nothing after)."""
        self.journal.close()

    # ------------------------------------------------------------------ Executor
    @property
    def now(self) -> datetime:
        return self._now or self.clock_fn()

    @property
    def cash(self) -> Decimal:
        return self.state.book.cash

    @property
    def equity(self) -> Decimal:
        return self.state.book.equity()

    def position(self, symbol: str) -> Decimal:
        return self.state.book.position(symbol)

    def place(
        self,
        symbol: str,
        quantity: Decimal | None,
        percent: Decimal | None,
        limit: Decimal | None,
        stop: Decimal | None,
        tag: str,
    ) -> Order:
        if quantity is not None:
            if self._refuse(symbol, stop, quantity, tag):
                return self._dummy(symbol, quantity, OrderStatus.CANCELLED, tag)
            if self._defer:
                return self._queue(symbol, quantity, None, limit, tag, {"tag": tag})
            return self._place(symbol, quantity, limit, tag, {"tag": tag})
        assert percent is not None
        reason = {"target_percent": percent, "tag": tag}
        if self._refuse(symbol, stop, None, tag):
            return self._dummy(symbol, None, OrderStatus.CANCELLED, tag)
        if self._defer:
            return self._queue(symbol, None, percent, limit, tag, reason)
        qty = self._target_delta(symbol, percent)
        if not qty:
            return self._dummy(symbol, None, OrderStatus.FILLED, tag)
        return self._place(symbol, qty, limit, tag, reason)

    def cancel(self, order: Order) -> None:
        for d in self._deferred:
            if d.order is order:
                self._deferred.remove(d)
                order.status = OrderStatus.CANCELLED
                return
        cid = next((c for c, o in self._orders.items() if o is order), None)
        if cid is not None and not self._shadow:
            self.oms.cancel(cid, self.now)
            self._sync_order(cid)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        out = [d.order for d in self._deferred if symbol is None or d.order.symbol == symbol]
        for o in self.state.open_orders(symbol):
            if o.client_order_id not in self._orders:  # placed before a restart
                self._orders[o.client_order_id] = self._adopt(o)
            self._sync_order(o.client_order_id)
            out.append(self._orders[o.client_order_id])
        return out

    def _adopt(self, managed: ManagedOrder) -> Order:
        """The strategy's view of an order the journal has from before a restart (so it can
        still see and cancel it, as the uninterrupted run could)."""
        signed = managed.quantity if managed.side is Side.BUY else -managed.quantity
        placed = max(bisect.bisect_right(self._ts, managed.created) - 1, 0)
        kind = OrderType.LIMIT if managed.limit_price is not None else OrderType.MARKET
        return Order(managed.number, managed.symbol, kind, placed, signed, None,
                     managed.limit_price, managed.tag)  # fmt: skip

    # ------------------------------------------------------------------ orders
    def _dummy(self, symbol: str, qty: Decimal | None, status: OrderStatus, tag: str) -> Order:
        return Order(-1, symbol, OrderType.MARKET, self.clock.i, qty, None, None, tag, ZERO, status)

    def _signals(self) -> dict[str, Any]:
        return self.market.values()

    def _target_delta(self, symbol: str, pct: Decimal) -> Decimal:
        try:
            q = self.venue.quote(symbol)
        except VenueError:
            return ZERO
        # no rules at the venue: size on 1e-8 and let the order manager deny (journaled)
        spec = self.oms.instrument(symbol) or InstrumentSpec(symbol, EIGHT_DECIMALS)
        fees = getattr(self.venue, "fees", None)
        rate = fees.rate(False) if fees is not None else Decimal(10) / 10000
        return target_delta(
            self.state,
            self.guard,
            self.strategy_name,
            symbol,
            pct,
            bid=q.bid,
            ask=q.ask,
            fee_rate=rate,
            instrument=spec,
            slippage=getattr(self.venue, "slippage", None),
        )

    def _refuse(
        self, symbol: str, stop: Decimal | float | None, qty: Decimal | None, tag: str
    ) -> bool:
        """Stop orders are refused on every venue (journaled as an `invalid_order` denial)."""
        if symbol not in self.market.views:
            raise KeyError(f"unknown symbol {symbol!r}")
        if stop is None:
            return False
        if not self._shadow:
            self.journal.append(
                "denial",
                {"code": "invalid_order", "message": STOP_REFUSED, "quantity": qty, "tag": tag},
                ts=self.now,
                strategy=self.strategy_name,
                symbol=symbol,
            )
        return True

    def _queue(
        self,
        symbol: str,
        qty: Decimal | None,
        weight: Decimal | None,
        limit: Decimal | float | None,
        tag: str,
        reason: dict[str, Any],
    ) -> Order:
        kind = OrderType.LIMIT if limit is not None else OrderType.MARKET
        price = _dec(limit) if limit is not None else None
        order = Order(-1, symbol, kind, self.clock.i, qty, weight, price, tag)
        self._deferred.append(_Deferred(order, weight, limit, tag, reason))
        return order

    def open_bar(self, ts: datetime) -> None:
        """The open of a replayed bar at `ts` (its open quote is set): resting paper orders are
        matched, then the orders decided at the previous bar's close are sized and sent."""
        self._now = ts
        if isinstance(self.venue, PaperVenue):
            for ack in self.venue.match():
                self.oms.record(ack, ts)
        due, self._deferred = self._deferred, []
        for d in due:
            order = d.order
            qty = order.quantity
            if d.weight is not None:
                qty = self._target_delta(order.symbol, d.weight)
                if not qty:
                    order.status = OrderStatus.FILLED
                    continue
            assert qty is not None
            self._place(order.symbol, qty, d.limit, d.tag, d.reason, order)

    def _place(
        self,
        symbol: str,
        qty: Decimal,
        limit: Decimal | float | None,
        tag: str,
        reason: dict[str, Any],
        order: Order | None = None,
    ) -> Order:
        """Send one order through the order manager; `order` (a queued placeholder) is updated
        in place, otherwise a new `Order` is returned."""
        if self._shadow:
            return self._dummy(symbol, qty, OrderStatus.CANCELLED, tag)
        now = self.now
        qty, limit_price = self._on_grid(symbol, qty, limit, reason)
        reason = {**reason, "signals": self._signals()}
        result = self.oms.place(
            self.strategy_name,
            symbol,
            Side.BUY if qty > 0 else Side.SELL,
            abs(qty),
            now=now,
            type=VenueOrderType.LIMIT if limit_price is not None else VenueOrderType.MARKET,
            limit_price=limit_price,
            tag=tag,
            reason=reason,
        )
        if order is None:
            order = Order(
                -1,
                symbol,
                OrderType.LIMIT if limit_price is not None else OrderType.MARKET,
                self.clock.i,
                qty,
                None,
                limit_price,
                tag,
            )
        order.quantity, order.price = qty, limit_price
        if isinstance(result, Denial):
            if result.code in BREACH_CODES:
                self._breach(now, str(result.code))
            order.status = OrderStatus.CANCELLED
            return order
        order.id = result.number
        self._orders[result.client_order_id] = order
        self._sync_order(result.client_order_id)
        return order

    def _on_grid(
        self,
        symbol: str,
        qty: Decimal,
        limit: Decimal | float | None,
        reason: dict[str, Any],
    ) -> tuple[Decimal, Decimal | None]:
        """A strategy's quantity rounded down to the instrument's step and its limit price
        to the tick (a buy down, a sell up: never a worse price); what was asked for goes
        into the decision's reason. An order that rounds to nothing is left for the Guard to
        deny."""
        price = _dec(limit) if limit is not None else None
        spec = self.oms.instrument(symbol)
        if spec is None:
            return qty, price
        rounded = spec.floor_quantity(qty) or qty
        on_tick = spec.round_price(price, buy=qty > 0) if price is not None else None
        if rounded != qty or on_tick != price:
            reason["requested"] = {"quantity": qty, "limit": price}
        return rounded, on_tick

    def _sync_order(self, cid: str) -> None:
        order, managed = self._orders.get(cid), self.state.orders.get(cid)
        if order is None or managed is None:
            return
        order.filled = managed.filled if managed.side is Side.BUY else -managed.filled
        if managed.state is OrderState.FILLED:
            order.status = OrderStatus.FILLED
        elif managed.state.final:
            order.status = OrderStatus.CANCELLED

    # ------------------------------------------------------------------ bars
    def _add_bar(self, ts: datetime, bar: Mapping[str, tuple[float, ...]]) -> int:
        self._ts.append(ts)
        return self.market.append(bar)

    def step(
        self, ts: datetime, bar: Mapping[str, tuple[float, ...]], *, shadow: bool = False
    ) -> None:
        """Process one closed bar at time `ts` (see module docstring)."""
        self._now = ts
        self.journal.heartbeat()
        i = self._add_bar(ts, bar)
        if shadow:
            self._deferred.clear()  # a re-fed bar's queued orders were sent before the crash
            self._shadow = True
            try:
                targets = self.strategy.on_bar(self.ctx)
                if targets and self._defer:  # queued for the next open, as when it ran live
                    for s, w in targets.items():
                        self.ctx.order_target_percent(s, w, tag="target")
            finally:
                self._shadow = False
            return
        if self.stopped:
            return
        kill = self._kill_switch()
        if kill.active:
            self._handle_kill(kill.flatten, kill.reason)
            return
        if self.state.trading == Mode.HALTED and self.state.trading_reason == "kill_switch":
            self._set_mode(Mode.ACTIVE, "kill_switch_cleared", ts)
        marks = {}
        for s in self._syms:
            q = self._quote(s)
            if q is not None:
                marks[s] = q.last if q.last > 0 else (q.bid + q.ask) / 2
        self.journal.append("bar", {"index": i, "marks": marks}, ts=ts)
        if self.oms.external and any(o.unsettled for o in self.state.open_orders()):
            self.oms.resolve(ts)
        for kind, data in self.guard.monitor(self.state):
            code = str(data.get("code", kind))
            if kind == "warning":
                self.journal.append(kind, data, ts=ts, strategy=self.strategy_name)
            else:
                self._set_mode(Mode(kind), code, ts, **data)
            if kind != Mode.ACTIVE:
                self._breach(ts, code)
        if self.state.trading != Mode.ACTIVE and entry_orders(self.state):
            cancel_entries(self.oms, ts)  # what the venue could not cancel at the move
        if isinstance(self.venue, PaperVenue):  # after a halt has cancelled entry orders
            for ack in self.venue.match():
                self.oms.record(ack, ts)
        self._update_cap(ts)
        targets = self.strategy.on_bar(self.ctx)
        if targets:
            self.journal.append(
                "decision",
                {
                    "targets": {s: _dec(w) for s, w in targets.items()},
                    "signals": self._signals(),
                    "bar": i,
                },
                ts=ts,
                strategy=self.strategy_name,
            )
            for s, w in targets.items():
                self.ctx.order_target_percent(s, w, tag="target")
        if self._must_commit:
            self.journal.flush()
            self._must_commit = False
        else:
            self.journal.flush_if_due()

    def _kill_switch(self) -> KillState:
        """The kill switch: read at every bar; in a candle replay at most every group-commit
        interval (`OrderManager.place` still reads it before every order)."""
        now = time.monotonic()
        if not self._defer or now - self._kill_read >= self.journal.commit.ms / 1000:
            self._kill_state, self._kill_read = self.kill.get(), now
        return self._kill_state

    def _quote(self, symbol: str) -> Quote | None:
        try:
            return self.venue.quote(symbol)
        except VenueError:
            return None

    def _handle_kill(self, flatten: bool, reason: str) -> None:
        now = self.now
        cancelled = self.oms.cancel_all(now)
        flattened = []
        if flatten:
            for sym, qty in self.state.book.symbol_positions().items():
                if qty > 0:
                    res = self.oms.place(
                        self.strategy_name,
                        sym,
                        Side.SELL,
                        qty,
                        now=now,
                        flatten=True,
                        reason={"kill": reason},
                    )
                    flattened.append({"symbol": sym, "result": _result(res)})
        lease = self.journal.lease
        self.journal.append(
            "kill",
            {
                "reason": reason,
                "cancelled": cancelled,
                "flattened": flattened,
                "holder": lease.holder if lease is not None else None,
            },
            ts=now,
            strategy=self.strategy_name,
        )
        self._set_mode(Mode.HALTED, "kill_switch", now)
        self.journal.flush()
        self.stopped = f"kill switch: {reason}"

    # ------------------------------------------------------------------ drivers
    def replay(
        self,
        data: Bars | Mapping[str, Bars],
        quotes: ReplayQuotes,
        *,
        speed: float | None = None,
        spread_bps: Decimal = ZERO,
        on_bar: Callable[[int], None] | None = None,
    ) -> None:
        """Replay candles. Bar i opens at its open time, quoting its open (± half
        `spread_bps`): the orders decided at bar i-1's close are sent (`open_bar`); it closes
        at open time + bar length, quoting its close, and the strategy decides (`step`).
        `speed`: bars arrive `speed` times faster than real time; None: as fast as possible.
        Resumes after the last bar the journal has (the bars before are re-fed in shadow mode,
        so the orders decided at the last one are still sent at the next open)."""
        bars = align({data.symbol: data} if isinstance(data, Bars) else dict(data))
        first = next(iter(bars.values()))
        n, step_s = len(first), first.bar_seconds
        half = spread_bps / 20000
        resume = self.state.last_bar
        self._defer = True

        def quote(ts: datetime, prices: dict[str, float]) -> None:
            for s, price in prices.items():
                c = Decimal(repr(float(price)))
                quotes.set(Quote(s, c * (1 - half), c * (1 + half), c, ts))

        try:
            for i in range(n):
                ts = first.time(i) + timedelta(seconds=step_s)
                row = {
                    s: (b.open[i], b.high[i], b.low[i], b.close[i], b.volume[i])
                    for s, b in bars.items()
                }
                if i <= resume:
                    self.step(ts, row, shadow=True)
                    continue
                if self._deferred or self.state.open_orders():
                    opened = first.time(i)
                    quote(opened, {s: b.open[i] for s, b in bars.items()})
                    self.open_bar(opened)
                quote(ts, {s: b.close[i] for s, b in bars.items()})
                self.step(ts, row)
                if on_bar is not None:
                    on_bar(i)
                if self.stopped:
                    break
                if speed:
                    self.journal.flush_if_due(wait_s=step_s / speed)
                    time.sleep(step_s / speed)
        finally:
            self._defer = False
            self._deferred.clear()
        self.journal.flush()

    def run_ticks(
        self,
        *,
        poll_s: float = 5.0,
        max_bars: int | None = None,
        stop: Callable[[], bool] = bool,
        on_wait: Callable[[list[str]], None] | None = None,
    ) -> None:
        """Live ticks: poll the venue's quotes; each new quote is a one-price bar at `last`.
        A poll with no new quote calls `on_wait(symbols that have no quote at all)`."""
        seen: dict[str, datetime] = {}
        bars = 0
        while not self.stopped and not stop() and (max_bars is None or bars < max_bars):
            fresh: dict[str, tuple[float, ...]] = {}
            latest = None
            missing = []
            for s in self._syms:
                q = self._quote(s)
                if q is None:
                    missing.append(s)
                    continue
                if seen.get(s) == q.ts:
                    continue
                seen[s] = q.ts
                p = float(q.last)
                fresh[s] = (p, p, p, p, 0.0)
                latest = q.ts if latest is None else max(latest, q.ts)
            if fresh and latest is not None:
                self.step(max(latest, self.clock_fn()), fresh)
                bars += 1
                continue
            if on_wait is not None:
                on_wait(missing)
            self.journal.heartbeat()
            kill = self.kill.get()  # a quiet market still obeys the kill switch at once
            if kill.active:
                self._handle_kill(kill.flatten, kill.reason)
            else:
                self.journal.flush_if_due(wait_s=poll_s)
                time.sleep(poll_s)
        self.journal.flush()


def restore_paper(venue: PaperVenue, state: TradingState) -> None:
    """Set a paper venue's cash, positions and resting orders from the journal's state."""
    venue.restore(
        state.book.cash,
        state.book.symbol_positions(),
        [
            VenueOrder(
                o.venue_order_id or f"P-{o.client_order_id}",
                o.client_order_id,
                o.symbol,
                o.side,
                o.type,
                o.quantity,
                o.limit_price,
                o.filled,
                _venue_status(o.state),
                o.created,
            )
            for o in state.open_orders()
        ],
    )


def _venue_status(state: OrderState) -> Any:
    from omc.floor.venues.base import VenueOrderStatus

    return (
        VenueOrderStatus.PARTIALLY_FILLED
        if state is OrderState.PARTIALLY_FILLED
        else VenueOrderStatus.SUBMITTED
    )


def _result(res: ManagedOrder | Denial) -> dict[str, Any]:
    if isinstance(res, Denial):
        return res.as_dict()
    return {"client_order_id": res.client_order_id, "state": str(res.state)}


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)
