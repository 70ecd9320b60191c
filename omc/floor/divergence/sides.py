"""The two sides of a divergence comparison, as lists of executions: a trading account's
fills read from its journal, and the backtest of the same strategy on the same period.

An *execution* is one order's fills aggregated (total quantity, volume-weighted price, total
fee, time of its first fill), so an order filled in several parts on one side still pairs
with one order on the other. Account fills are the deltas of the journal's cumulative
`order_update` events, applied through the journal's own `TradingState` so the book (and its
equity curve) is exactly the one `omc pnl` shows.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import Engine

from omc.floor.backtest.engine import run_backtest
from omc.floor.data import Bars, load_db
from omc.floor.fills import BPS, FeeModel, SlippageModel
from omc.floor.strategies import make_strategy
from omc.floor.trading.journal import Journal, TradingState, accounts
from omc.floor.venues.base import Side

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Execution:
    """One order's fills. `market` is the price before any slippage the side *assumed*
    (the backtest's bar price); for an account it is the fill price itself."""

    symbol: str
    side: str  # "buy" | "sell"
    time: datetime
    quantity: Decimal  # > 0
    price: Decimal
    fee: Decimal
    ref: str
    market: Decimal

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.price

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "side": self.side,
            "time": self.time.isoformat(),
            "quantity": self.quantity,
            "price": self.price,
            "fee": self.fee,
            "ref": self.ref,
        }


@dataclass
class Leg:
    """One side: its executions, the P&L it made over the period, its denials and stops."""

    label: str
    executions: list[Execution]
    initial_cash: Decimal
    pnl: Decimal
    assumed_slippage_bps: Decimal = ZERO
    denials: dict[str, int] = field(default_factory=dict)
    stops: list[dict[str, Any]] = field(default_factory=list)  # halts and kills


@dataclass
class AccountRun:
    """What an account's journal says about its run."""

    account: str
    strategy: str
    params: dict[str, Any]
    symbols: tuple[str, ...]
    venue: str
    initial_cash: Decimal
    executions: list[Execution]
    denials: list[tuple[datetime, str]]
    stops: list[dict[str, Any]]
    bar_times: list[datetime]
    equity_curve: list[tuple[datetime, Decimal]]
    orders: int

    @property
    def start(self) -> datetime:
        return self.bar_times[0]

    @property
    def end(self) -> datetime:
        return self.bar_times[-1]

    @property
    def bar_seconds(self) -> float:
        """Median spacing of the journaled bars (60 s with a single bar)."""
        if len(self.bar_times) < 2:
            return 60.0
        gaps = np.diff([t.timestamp() for t in self.bar_times])
        return float(np.median(gaps))

    def pnl_between(self, start: datetime, end: datetime) -> Decimal:
        """Equity change from just before `start` to the last mark at or before `end`."""
        before, last = self.initial_cash, None
        for ts, eq in self.equity_curve:
            if ts < start:
                before = eq
            if ts <= end:
                last = eq
        return (last if last is not None else before) - before

    def leg(self, start: datetime | None = None, end: datetime | None = None) -> Leg:
        """This account as a comparison side, restricted to [start, end] (default: its run)."""
        lo, hi = start or self.start, end or self.end
        codes: dict[str, int] = {}
        for ts, code in self.denials:
            if lo <= ts <= hi:
                codes[code] = codes.get(code, 0) + 1
        return Leg(
            f"account {self.account} ({self.venue})",
            [e for e in self.executions if lo <= e.time <= hi],
            self.initial_cash,
            self.pnl_between(lo, hi),
            denials=dict(sorted(codes.items())),
            stops=[s for s in self.stops if lo.isoformat() <= s["time"] <= hi.isoformat()],
        )


def read_account(engine: Engine, account: str) -> AccountRun:
    """The run an account's journal holds. LookupError: no such journal, or nothing traded."""
    journal = Journal(engine, account)
    state = TradingState()
    fills: dict[str, list[tuple[datetime, Decimal, Decimal, Decimal]]] = {}
    denials: list[tuple[datetime, str]] = []
    stops: list[dict[str, Any]] = []
    bar_times: list[datetime] = []
    for event in journal.stored():
        cid = event.client_order_id
        before = state.orders.get(cid) if cid and event.kind == "order_update" else None
        prev = (before.filled, before.notional, before.fee) if before else (ZERO, ZERO, ZERO)
        state.apply(event)
        if event.kind == "order_update" and cid:
            after = state.orders[cid]
            dq, dn, df = after.filled - prev[0], after.notional - prev[1], after.fee - prev[2]
            if dq > 0:
                fills.setdefault(cid, []).append((event.ts, dq, dn, df))
            elif df and cid in fills:  # a fee corrected after the fill
                ts, q, n, f = fills[cid][-1]
                fills[cid][-1] = (ts, q, n, f + df)
        elif event.kind == "denial":
            denials.append((event.ts, str(event.data.get("code", "denied"))))
        elif event.kind in ("halt", "kill") or (
            event.kind == "trading_state"  # a kill also journals `kill`: counted once
            and event.data.get("to") == "halted"
            and event.data.get("reason") != "kill_switch"
        ):
            code = event.data.get("code") or event.data.get("reason") or event.kind
            kind = "halt" if event.kind == "trading_state" else event.kind
            stops.append({"time": event.ts.isoformat(), "kind": kind, "code": str(code)})
        elif event.kind == "bar":
            bar_times.append(event.ts)
    if state.events == 0:
        raise LookupError(f"no journal for account {account!r}; known: {accounts(engine)}")
    started = state.started
    if started is None:
        raise LookupError(f"account {account!r} has no start event in its journal")
    if not bar_times:
        raise LookupError(f"account {account!r} has no bars journaled yet: nothing to compare")
    executions = []
    for cid, parts in fills.items():
        order = state.orders[cid]
        qty = sum((p[1] for p in parts), ZERO)
        notional = sum((p[2] for p in parts), ZERO)
        price = notional / qty
        executions.append(
            Execution(
                order.symbol,
                "buy" if order.side is Side.BUY else "sell",
                parts[0][0],
                qty,
                price,
                sum((p[3] for p in parts), ZERO),
                cid,
                price,
            )
        )
    executions.sort(key=lambda e: (e.time, e.symbol))
    return AccountRun(
        account=account,
        strategy=str(started.get("strategy", "")),
        params=dict(started.get("params") or {}),
        symbols=tuple(started.get("symbols") or ()),
        venue=str(started.get("venue", "")),
        initial_cash=Decimal(str(started.get("initial_cash", "0"))),
        executions=executions,
        denials=denials,
        stops=stops,
        bar_times=bar_times,
        equity_curve=list(state.book.equity_curve),
        orders=len(state.orders),
    )


def _param(text: Any) -> Any:
    """A journaled parameter (its `repr`) back as a value; plain text stays text."""
    if not isinstance(text, str):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def timeframe_of(seconds: float) -> str:
    """A bar spacing in seconds as a timeframe name: 300 -> '5m', 3600 -> '1h'."""
    s = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{s // size}{unit}"
    return f"{max(s, 1)}s"


def period_candles(run: AccountRun, bars: Mapping[str, Bars]) -> dict[str, Bars]:
    """The candles the account traded on: those *closing* within its first..last bar
    (a replayed candle is journaled at its close). LookupError when a symbol has none."""
    out: dict[str, Bars] = {}
    for sym in run.symbols:
        if sym not in bars and len(bars) == 1 and len(run.symbols) == 1:
            bars = {sym: next(iter(bars.values()))}  # one file for the one symbol
        if sym not in bars:
            have = ", ".join(sorted(bars)) or "none"
            raise LookupError(f"no candles for {sym} (the account's symbol); candles given: {have}")
        b = bars[sym]
        step = np.int64(round(b.bar_seconds * 1e9))
        closes = b.ts + step
        lo = np.int64(round(run.start.timestamp() * 1e9))
        hi = np.int64(round(run.end.timestamp() * 1e9))
        idx = np.flatnonzero((closes >= lo) & (closes <= hi))
        if not len(idx):
            raise LookupError(
                f"no {sym} candles for the account's period {run.start:%Y-%m-%d %H:%M} .. "
                f"{run.end:%Y-%m-%d %H:%M} UTC"
            )
        out[sym] = b.slice(int(idx[0]), int(idx[-1]) + 1)
    return out


def ledger_candles(
    engine: Engine, run: AccountRun, timeframe: str | None, exchange: str | None
) -> dict[str, Bars]:
    """The account's symbols' candles from the Exchange ledger (point-in-time reads); the
    timeframe defaults to the spacing of the journaled bars."""
    tf = timeframe or timeframe_of(run.bar_seconds)
    return {s: load_db(engine, s, tf, exchange=exchange) for s in run.symbols}


def backtest_leg(
    run: AccountRun,
    bars: Mapping[str, Bars],
    *,
    fees: FeeModel,
    slippage: SlippageModel,
) -> Leg:
    """Re-run the account's strategy with its parameters on its period's candles."""
    params = {k: _param(v) for k, v in run.params.items()}
    strategy = make_strategy(run.strategy, params)
    data = period_candles(run, bars)
    result = run_backtest(
        strategy, data, cash=run.initial_cash, fees=fees, slippage=slippage, with_metrics=False
    )
    k = slippage.bps / BPS
    grouped: dict[int, list[Any]] = {}
    for f in result.fills:
        grouped.setdefault(f.order_id, []).append(f)
    executions = []
    for oid, parts in grouped.items():
        qty = sum((abs(f.quantity) for f in parts), ZERO)
        price = sum((abs(f.quantity) * f.price for f in parts), ZERO) / qty
        buy = parts[0].quantity > 0
        taker = not parts[0].maker
        market = price / (1 + k) if buy else price / (1 - k) if k < 1 else price
        executions.append(
            Execution(
                parts[0].symbol,
                "buy" if buy else "sell",
                parts[0].time,
                qty,
                price,
                sum((f.fee for f in parts), ZERO),
                f"backtest-{oid}",
                market if taker else price,
            )
        )
    executions.sort(key=lambda e: (e.time, e.symbol))
    return Leg(
        "backtest",
        executions,
        run.initial_cash,
        result.final_equity - run.initial_cash,
        assumed_slippage_bps=slippage.bps,
    )


def window(run: AccountRun, tolerance_s: float) -> tuple[datetime, datetime]:
    """The account's period widened by the matching tolerance (for another account's fills)."""
    pad = timedelta(seconds=tolerance_s)
    return run.start - pad, run.end + pad
