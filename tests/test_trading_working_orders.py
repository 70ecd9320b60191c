"""The Guard counts working orders in every limit; the trading state (active / reducing /
halted) is journaled, rebuilt, published, shown in `omc status`, and a halt cancels entry
orders before the next paper match — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any, ClassVar

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from omc.core.events import EventBus
from omc.floor.fills import FeeModel, SlippageModel
from omc.floor.strategy import Context, Strategy
from omc.floor.trading.guard import Denial, DenyCode, Guard, GuardLimits, KillSwitchStore
from omc.floor.trading.journal import Journal
from omc.floor.trading.oms import ManagedOrder, OrderManager, OrderState
from omc.floor.trading.session import TradingSession
from omc.floor.venues.base import Quote, Side, VenueOrderType
from omc.floor.venues.paper import PaperVenue, ReplayQuotes

T0 = datetime(2025, 1, 1, tzinfo=UTC)
BTC, ETH = "BTC/AUD", "ETH/AUD"
LIMIT = VenueOrderType.LIMIT


def _oms(
    limits: GuardLimits, engine: Engine, cash: D = D(10000), caps: dict[str, D] | None = None
) -> tuple[Journal, PaperVenue, ReplayQuotes, OrderManager]:
    quotes = ReplayQuotes()
    venue = PaperVenue(quotes, cash=cash, fees=FeeModel.flat(10), clock=lambda: T0)
    journal = Journal(engine, "acct")
    journal.append("start", {"initial_cash": cash}, ts=T0)
    for sym in (BTC, ETH):
        quotes.set(Quote(sym, D(100), D(100), D(100), T0))
    journal.append("bar", {"index": 0, "marks": {BTC: D(100), ETH: D(100)}}, ts=T0)
    return journal, venue, quotes, OrderManager(journal, venue, Guard(limits, caps))


def _rest(oms: OrderManager, sym: str, side: Side, qty: D, limit: D) -> ManagedOrder | Denial:
    return oms.place("s", sym, side, qty, now=T0, type=LIMIT, limit_price=limit)


WIDE = {"max_order_notional": D(100000), "max_position_notional": D(100000),
        "max_position_pct": D(10), "max_gross_exposure_pct": D(10)}  # fmt: skip


@pytest.mark.parametrize(
    ("limits", "caps", "orders", "code"),
    [
        # three resting buys of 1500 each: each passes alone, together they exceed 4000
        ({**WIDE, "max_position_notional": D(4000)}, None, [(BTC, 15)] * 3, DenyCode.MAX_POSITION),
        ({**WIDE, "max_position_pct": D("0.4")}, None, [(BTC, 15)] * 3, DenyCode.MAX_POSITION_PCT),
        ({**WIDE, "max_gross_exposure_pct": D("0.4")}, None, [(BTC, 15), (ETH, 15), (ETH, 15)],
         DenyCode.MAX_GROSS_EXPOSURE),
        ({**WIDE, "max_open_positions": 1}, None, [(BTC, 1), (ETH, 1)],
         DenyCode.MAX_OPEN_POSITIONS),
        (WIDE, {"s": D(4000)}, [(BTC, 15), (ETH, 15), (BTC, 15)], DenyCode.CAPITAL_CAP),
        # cash: 10000 holds 4 resting buys of 2250 (+ fee) but not a fifth of 1080
        (WIDE, None, [(BTC, 25), (BTC, 25), (ETH, 25), (ETH, 25), (BTC, 12)],
         DenyCode.INSUFFICIENT_CASH),
    ],
)  # fmt: skip
def test_resting_buys_count_in_every_limit(
    engine: Engine,
    limits: dict[str, Any],
    caps: dict[str, D] | None,
    orders: list[tuple[str, int]],
    code: DenyCode,
) -> None:
    _j, _venue, _quotes, oms = _oms(GuardLimits(**limits), engine, caps=caps)
    *accepted, last = orders
    for sym, qty in accepted:  # resting at 90, below the market: nothing fills
        order = _rest(oms, sym, Side.BUY, D(qty), D(90))
        assert isinstance(order, ManagedOrder) and order.state is OrderState.SUBMITTED
    res = oms.place("s", last[0], Side.BUY, D(last[1]), now=T0, type=LIMIT, limit_price=D(90))
    assert isinstance(res, Denial) and res.code is code, res
    assert oms.state.book.position(BTC) == 0  # nothing filled: all limits were on working orders


def test_headroom_counts_working_orders(engine: Engine) -> None:
    _j, _venue, _quotes, oms = _oms(GuardLimits(**{**WIDE, "max_position_notional": D(4000)}),
                                    engine)  # fmt: skip
    assert oms.guard.headroom(oms.state, "s", BTC, D(100)) == D(40)
    _rest(oms, BTC, Side.BUY, D(15), D(90))  # 1350 committed at its limit
    assert oms.guard.headroom(oms.state, "s", BTC, D(100)) == D("26.5")


def _reducing(journal: Journal) -> None:
    journal.append("trading_state", {"from": "active", "to": "reducing", "reason": "test"}, ts=T0)


def test_two_resting_sells_cannot_both_reduce_the_same_coins(engine: Engine) -> None:
    j, _venue, _quotes, oms = _oms(GuardLimits(**WIDE), engine)
    assert isinstance(oms.place("s", BTC, Side.BUY, D(10), now=T0), ManagedOrder)
    _reducing(j)
    assert isinstance(_rest(oms, BTC, Side.SELL, D(6), D(120)), ManagedOrder)  # reduces
    res = _rest(oms, BTC, Side.SELL, D(6), D(130))  # 6 + 6 > 10: would flip short
    assert isinstance(res, Denial) and res.code is DenyCode.REDUCE_ONLY
    assert isinstance(_rest(oms, BTC, Side.SELL, D(4), D(130)), ManagedOrder)  # exactly flat
    res = oms.place("s", BTC, Side.BUY, D(1), now=T0)
    assert isinstance(res, Denial) and res.code is DenyCode.REDUCE_ONLY


# ----------------------------------------------------------------------------- sessions
class _LimitLadder(Strategy):
    """Bar 0: buy `entry` at market, rest a buy at `buy_at` and (optionally) a sell at
    `sell_at`; then nothing."""

    name = "ladder"
    defaults: ClassVar[dict[str, Any]] = {
        "entry": 50,
        "buy_at": 75,
        "buy": 10,
        "sell_at": None,
        "sell": 20,
    }

    def on_bar(self, ctx: Context) -> None:
        if ctx.index != 0:
            return None
        p = self.params
        ctx.order(BTC, p["entry"])
        if p["buy"]:
            ctx.order(BTC, p["buy"], limit=p["buy_at"])
        if p["sell_at"] is not None:
            ctx.order(BTC, -p["sell"], limit=p["sell_at"])
        return None


def _session(engine: Engine, limits: GuardLimits, bus: EventBus | None = None,
             **params: Any) -> tuple[TradingSession, ReplayQuotes]:  # fmt: skip
    quotes = ReplayQuotes()
    holder: list[TradingSession] = []
    venue = PaperVenue(
        quotes, cash=D(10000), fees=FeeModel.flat(0), slippage=SlippageModel(),
        clock=lambda: holder[0].now if holder else T0,
    )  # fmt: skip
    session = TradingSession(
        engine, "ladder", _LimitLadder(**params), (BTC,), venue, Guard(limits),
        kill=KillSwitchStore(engine), initial_cash=D(10000), clock=lambda: T0, bus=bus,
    )  # fmt: skip
    holder.append(session)
    session.start()
    return session, quotes


def _bar(session: TradingSession, quotes: ReplayQuotes, ts: datetime, price: float) -> None:
    p = D(str(price))
    quotes.set(Quote(BTC, p, p, p, ts))
    session.step(ts, {BTC: (price, price, price, price, 1.0)})


LOOSE = GuardLimits(max_position_pct=D("0.7"), max_gross_exposure_pct=D(1),
                    max_daily_loss=D(5000), max_daily_loss_pct=D("0.9"))  # fmt: skip


def test_resting_buy_never_fills_after_a_drawdown_halt(engine: Engine) -> None:
    bus = EventBus()
    seen: list[dict[str, Any]] = []
    bus.subscribe("floor.trading_state", lambda _t, e: seen.append(e))
    session, quotes = _session(engine, LOOSE, bus)
    _bar(session, quotes, T0, 100.0)  # buys 50 @ 100, rests a buy of 10 @ 75
    (resting,) = session.state.open_orders()
    assert resting.side is Side.BUY and session.position(BTC) == 50
    # the price falls to the limit: drawdown 50 × 25 / 10000 = 12.5 % ≥ 10 % → halted first
    _bar(session, quotes, T0 + timedelta(minutes=1), 75.0)
    _bar(session, quotes, T0 + timedelta(minutes=2), 70.0)
    assert resting.state is OrderState.CANCELLED and resting.filled == 0
    assert session.position(BTC) == 50
    assert session.state.trading == "halted" and session.state.trading_reason == "drawdown_halt"
    assert [(e["account"], e["from"], e["to"], e["reason"]) for e in seen] == [
        ("ladder", "active", "halted", "drawdown_halt")
    ]
    session.close()
    rebuilt = Journal.open(engine, "ladder").state  # stored: a restart is still halted
    assert rebuilt.trading == "halted" and not rebuilt.open_orders()
    kinds = [e.kind for e in Journal.open(engine, "ladder").stored()]
    assert kinds.index("trading_state") < max(i for i, k in enumerate(kinds) if k == "order_update")


def test_daily_loss_reduces_only_and_lifts_next_day(engine: Engine) -> None:
    limits = GuardLimits(max_position_pct=D("0.7"), max_daily_loss=D(300),
                         drawdown_halt_pct=D("0.5"), drawdown_warn_pct=D("0.4"))  # fmt: skip
    session, quotes = _session(engine, limits, entry=50, buy_at=80, sell_at=120, sell=20)
    _bar(session, quotes, T0, 100.0)
    buy, sell = session.state.open_orders()
    _bar(session, quotes, T0 + timedelta(minutes=1), 90.0)  # loss 500 ≥ 300
    assert session.state.trading == "reducing"
    assert buy.state is OrderState.CANCELLED  # the entry order went at once
    assert sell.open  # the reducing order stays
    res = session.oms.place("ladder", BTC, Side.BUY, D(1), now=session.now)
    assert isinstance(res, Denial) and res.code is DenyCode.REDUCE_ONLY
    _bar(session, quotes, T0 + timedelta(days=1), 90.0)  # a new UTC day: limit resets
    assert session.state.trading == "active"
    session.close()
    assert Journal.open(engine, "ladder").state.trading == "active"


def test_kill_halts_and_clearing_it_resumes(engine: Engine) -> None:
    session, quotes = _session(engine, LOOSE)
    _bar(session, quotes, T0, 100.0)
    KillSwitchStore(engine).set(True, reason="test")
    _bar(session, quotes, T0 + timedelta(minutes=1), 100.0)
    assert session.stopped and session.state.trading == "halted"
    assert session.state.trading_reason == "kill_switch"
    assert all(not o.open for o in session.state.orders.values())
    KillSwitchStore(engine).set(False)
    session.stopped = None
    _bar(session, quotes, T0 + timedelta(minutes=2), 100.0)
    assert session.state.trading == "active"


def test_status_shows_the_trading_state(engine: Engine, db_url: str) -> None:
    from omc.cli import context
    from omc.cli.app import app
    from omc.core.config import get_settings

    session, quotes = _session(engine, LOOSE)
    _bar(session, quotes, T0, 100.0)
    _bar(session, quotes, T0 + timedelta(minutes=1), 75.0)
    session.close()

    def status(*args: str) -> Any:
        get_settings.cache_clear()
        context.engine.cache_clear()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("OMC_DATABASE_URL", db_url)
            result = CliRunner().invoke(app, ["status", *args])
            context.engine().dispose()
        get_settings.cache_clear()
        context.engine.cache_clear()
        assert result.exit_code == 0, result.output
        return result

    report = json.loads(status("--json").stdout)
    (row,) = report["trading"]
    assert row["account"] == "ladder" and row["state"] == "halted"
    assert row["reason"] == "drawdown_halt" and row["since"].startswith("2025-01-01T00:01")
    out = status().stdout
    assert "ladder" in out and "halted" in out and "drawdown_halt" in out


class _External:
    """A paper venue seen as an external one (start-up reconciles against it)."""

    simulated = False

    def __init__(self, inner: PaperVenue) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_reconcile_mismatch_halts(engine: Engine) -> None:
    quotes = ReplayQuotes()
    venue = PaperVenue(quotes, cash=D(10000), fees=FeeModel.flat(0), clock=lambda: T0)
    session = TradingSession(
        engine, "ext", _LimitLadder(buy=0), (BTC,), _External(venue), Guard(LOOSE),  # type: ignore[arg-type]
        kill=KillSwitchStore(engine), initial_cash=D(10000), clock=lambda: T0,
    )  # fmt: skip
    session.start()
    _bar(session, quotes, T0, 100.0)
    session.close()
    assert session.state.trading == "active" and session.position(BTC) == 50
    # the venue lost the coins (sold elsewhere): the restarted session halts
    other = PaperVenue(quotes, cash=D(10000), fees=FeeModel.flat(0), clock=lambda: T0)
    restarted = TradingSession(
        engine, "ext", _LimitLadder(buy=0), (BTC,), _External(other), Guard(LOOSE),  # type: ignore[arg-type]
        kill=KillSwitchStore(engine), initial_cash=D(10000), clock=lambda: T0,
    )  # fmt: skip
    restarted.start()
    assert restarted.state.trading == "halted"
    assert restarted.state.trading_reason == "reconcile_mismatch"
    assert Journal.open(engine, "ext").state.trading == "halted"
