"""Paper venue and paper replay agree with the backtest: limit orders do not reserve funds
against themselves, future-stamped quotes are refused, fills match the guarded backtest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import Engine

from omc.floor.backtest.engine import BacktestResult
from omc.floor.data import Bars, load_csv, to_decimal
from omc.floor.fills import FeeModel
from omc.floor.orders import OrderStatus
from omc.floor.strategy import Context, Strategy, Targets
from omc.floor.trading.guard import Guard, GuardLimits, guard_report
from omc.floor.trading.session import TradingSession
from omc.floor.venues.base import OrderRequest, Quote, Side, VenueOrderStatus, VenueOrderType
from omc.floor.venues.paper import PaperVenue, ReplayQuotes

T0 = datetime(2025, 1, 1, tzinfo=UTC)
SYM = "BTC/AUD"


def _venue(cash: D = D(1000)) -> tuple[PaperVenue, ReplayQuotes, list[datetime]]:
    quotes = ReplayQuotes()
    now = [T0]
    venue = PaperVenue(quotes, cash=cash, fees=FeeModel.flat(10), clock=lambda: now[0])
    quotes.set(Quote(SYM, D(100), D(100), D(100), T0))
    return venue, quotes, now


def test_resting_buy_that_cash_covers_is_accepted_and_fills() -> None:
    venue, quotes, _ = _venue(D("90.09"))  # 0.9 × 100 × 1.001 = 90.09: exactly covered
    ack = venue.submit(OrderRequest("b", SYM, Side.BUY, D("0.9"), VenueOrderType.LIMIT, D(100)))
    assert ack.status is VenueOrderStatus.FILLED  # marketable (ask 100 ≤ 100)
    venue, quotes, _ = _venue(D("89.91"))  # 1 × 90 × 1.001 = 90.09 > 89.91: not covered
    req = OrderRequest("r0", SYM, Side.BUY, D(1), VenueOrderType.LIMIT, D(90))
    assert venue.submit(req).reason == "insufficient_funds"
    venue, quotes, _ = _venue(D("90.09"))  # exactly covered, resting below the ask
    ack = venue.submit(OrderRequest("r1", SYM, Side.BUY, D(1), VenueOrderType.LIMIT, D(90)))
    assert ack.status is VenueOrderStatus.SUBMITTED, ack
    assert venue.balances()["AUD"].available == 0  # reserved for the resting order
    quotes.set(Quote(SYM, D(89), D(89), D(89), T0))
    (fill,) = venue.match()
    assert fill.status is VenueOrderStatus.FILLED and fill.average_price == D(90)
    assert venue.balances()["BTC"].total == 1
    # a second resting buy now finds the cash spent
    ack = venue.submit(OrderRequest("r2", SYM, Side.BUY, D(1), VenueOrderType.LIMIT, D(80)))
    assert ack.reason == "insufficient_funds"


def test_limit_sell_of_the_whole_position_rests_and_fills() -> None:
    venue, quotes, _ = _venue(D(1000))
    venue.submit(OrderRequest("b", SYM, Side.BUY, D(2)))
    ack = venue.submit(OrderRequest("s1", SYM, Side.SELL, D(2), VenueOrderType.LIMIT, D(110)))
    assert ack.status is VenueOrderStatus.SUBMITTED, ack
    assert venue.balances()["BTC"].available == 0
    # the coins are reserved: another sell of them is refused
    ack2 = venue.submit(OrderRequest("s2", SYM, Side.SELL, D(1), VenueOrderType.LIMIT, D(120)))
    assert ack2.reason == "insufficient_funds"
    quotes.set(Quote(SYM, D(111), D(111), D(111), T0))
    (done,) = venue.match()
    assert done.status is VenueOrderStatus.FILLED and done.filled_quantity == 2
    assert "BTC" not in venue.balances()


def test_marketable_limit_sell_of_whole_position_fills() -> None:
    venue, _, _ = _venue(D(1000))
    venue.submit(OrderRequest("b", SYM, Side.BUY, D(2)))
    ack = venue.submit(OrderRequest("s", SYM, Side.SELL, D(2), VenueOrderType.LIMIT, D(99)))
    assert ack.status is VenueOrderStatus.FILLED and ack.average_price == D(100)


def test_future_stamped_quote_is_stale_for_paper_venue() -> None:
    venue, quotes, _now = _venue(D(1000))
    quotes.set(Quote(SYM, D(100), D(100), D(100), T0 + timedelta(seconds=60)))
    ack = venue.submit(OrderRequest("f", SYM, Side.BUY, D(1)))
    assert ack.status is VenueOrderStatus.REJECTED and ack.reason == "stale_quote"
    assert "future" in ack.message
    # a resting order is not matched against a future-stamped quote either
    quotes.set(Quote(SYM, D(100), D(100), D(100), T0))
    venue.submit(OrderRequest("r", SYM, Side.BUY, D(1), VenueOrderType.LIMIT, D(90)))
    quotes.set(Quote(SYM, D(80), D(80), D(80), T0 + timedelta(seconds=60)))
    assert venue.match() == []
    # within the clock-skew allowance it is fine
    quotes.set(Quote(SYM, D(80), D(80), D(80), T0 + timedelta(seconds=1)))
    assert len(venue.match()) == 1


def test_future_stamped_quote_is_stale_for_the_guard() -> None:
    from omc.floor.trading.guard import DenyCode, Guard
    from omc.floor.trading.journal import TradingState

    state = TradingState()
    state.book.fund(D(10000))
    kw = {"strategy": "s", "symbol": SYM, "side": Side.BUY, "quantity": D(1), "price": D(100)}
    g = Guard()
    future = g.check(state, **kw, quote_ts=T0 + timedelta(hours=1), now=T0, kill_active=False)
    assert future is not None and future.code is DenyCode.STALE_PRICE
    assert "future" in future.message
    ok = g.check(state, **kw, quote_ts=T0 + timedelta(seconds=1), now=T0, kill_active=False)
    assert ok is None


# ----------------------------------------------------------------------------- agreement
CANDLES = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles"


def _guarded_backtest(strategy: str, bars: Bars) -> BacktestResult:
    from omc.floor.backtest.engine import run_backtest
    from omc.floor.strategies import make_strategy
    from omc.floor.trading.guard import Guard

    return run_backtest(
        make_strategy(strategy), bars, fees=FeeModel.flat(10), guard=Guard(GuardLimits())
    )


def _paper_replay(engine: Engine, strategy: str, bars: Bars) -> tuple[TradingSession, PaperVenue]:
    from omc.floor.strategies import make_strategy

    quotes = ReplayQuotes()
    holder: dict[str, TradingSession] = {}
    venue = PaperVenue(quotes, fees=FeeModel.flat(10), clock=lambda: holder["s"].now)
    s = TradingSession(
        engine, f"agree-{strategy}", make_strategy(strategy), (bars.symbol,), venue,
        Guard(GuardLimits()), initial_cash=D(10000),
    )  # fmt: skip
    holder["s"] = s
    s.start()
    s.replay(bars, quotes)
    return s, venue


@pytest.mark.parametrize(
    ("strategy", "csv", "n"),
    [("sma_cross", "BTC_USDT-5m.csv", 3000), ("rsi_revert", "ETH_BTC-5m.csv", 3000)],
)
def test_replay_and_guarded_backtest_make_the_same_fills(
    engine: Engine, strategy: str, csv: str, n: int
) -> None:
    bars = load_csv(CANDLES / csv).slice(0, n)
    bt = _guarded_backtest(strategy, bars)
    session, venue = _paper_replay(engine, strategy, bars)
    paper = [
        (f.ts, f.price, f.quantity if f.side is Side.BUY else -f.quantity, f.fee)
        for f in venue.fills_since(datetime.min.replace(tzinfo=UTC))
    ]
    ours = [(f.time, f.price, f.quantity, f.fee) for f in bt.fills]
    assert len(ours) > 4
    assert ours == paper
    # every fill is at the open of the bar after the decision
    opens = {bars.time(i): to_decimal(bars.open[i]) for i in range(len(bars))}
    assert all(p == opens[t] for t, p, _, _ in ours)
    eq = session.state.book.equity()
    assert abs(bt.final_equity - eq) <= D("1e-9") * eq
    assert bt.metrics["guard"] == guard_report(session.state)


class _StopOnce(Strategy):
    name = "stop_once"

    def on_bar(self, ctx: Context) -> Targets | None:
        if ctx.index == 1:
            order = ctx.order(ctx.symbols[0], 1, stop=1.0)
            assert order.status is OrderStatus.CANCELLED
        return None


def test_paper_refuses_stop_orders_like_the_backtest(engine: Engine) -> None:
    from omc.floor.backtest.engine import run_backtest
    from omc.floor.orders import STOP_REFUSED

    bars = load_csv(CANDLES / "BTC_USDT-5m.csv").slice(0, 5)
    with pytest.raises(ValueError) as err:
        run_backtest(_StopOnce(), bars)
    assert str(err.value) == STOP_REFUSED
    quotes = ReplayQuotes()
    holder: dict[str, TradingSession] = {}
    venue = PaperVenue(quotes, clock=lambda: holder["s"].now)
    s = TradingSession(engine, "stops", _StopOnce(), (bars.symbol,), venue)
    holder["s"] = s
    s.start()
    s.replay(bars, quotes)
    assert s.state.denials == {"invalid_order": 1} and not s.state.orders
    (event,) = [e for e in s.journal.stored() if e.kind == "denial"]
    assert event.data["message"] == STOP_REFUSED
