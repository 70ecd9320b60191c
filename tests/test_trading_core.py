"""Floor part 2: P&L by hand, the order state machine, the Guard (property-based), the kill
switch on every path, paper fills and the journal on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from omc.floor.fills import FeeModel, SlippageModel
from omc.floor.trading.guard import Denial, DenyCode, Guard, GuardLimits, KillSwitchStore
from omc.floor.trading.journal import Journal
from omc.floor.trading.oms import InvalidTransition, ManagedOrder, OrderManager, OrderState
from omc.floor.trading.pnl import Book
from omc.floor.venues.base import Quote, Side, Venue, VenueOrderType
from omc.floor.venues.paper import PaperVenue, ReplayQuotes

T0 = datetime(2025, 1, 1, tzinfo=UTC)
SYM = "BTC/AUD"


# ----------------------------------------------------------------------------- P&L
def test_pnl_average_cost_by_hand() -> None:
    b = Book()
    b.fund(D(10000))
    b.apply_fill("s", SYM, D(1), D(100), D("0.10"), T0)  # buy 1 @100
    b.apply_fill("s", SYM, D(3), D(120), D("0.36"), T0)  # buy 3 @120 -> avg 115
    assert b.positions[("s", SYM)].avg_cost == D(115)
    r = b.apply_fill("s", SYM, D(-2), D(130), D("0.26"), T0 + timedelta(days=1))
    assert r == D(30)  # 2 × (130 − 115)
    b.mark(SYM, D(110))
    assert b.unrealised() == D(-10)  # 2 × (110 − 115)
    assert b.total_fees() == D("0.72")
    # cash: 10000 − 100 − 360 + 260 − 0.72
    assert b.cash == D("9799.28")
    assert b.equity() == D("9799.28") + 2 * D(110)
    assert b.equity() == b.initial_cash + b.total_realised() + b.unrealised() - b.total_fees()
    r = b.apply_fill("s", SYM, D(-3), D(100), D("0.30"), T0 + timedelta(days=1))  # through 0
    assert r == D(-30)  # closes 2 @ 100 vs 115
    assert b.positions[("s", SYM)].quantity == D(-1)
    assert b.positions[("s", SYM)].avg_cost == D(100)
    days = {(r["day"], r["realised"]) for r in b.breakdown()}
    assert days == {("2025-01-01", D(0)), ("2025-01-02", D(0))}


def test_partial_fills_through_the_journal() -> None:
    j = Journal(None, "a")  # type: ignore[arg-type]  # never flushed: no database
    j.append("start", {"initial_cash": D(1000)}, ts=T0)
    j.append(
        "order",
        {"client_order_id": "c1", "side": "buy", "quantity": D(2), "type": "limit",
         "limit_price": D(10), "tag": ""},
        ts=T0, strategy="s", symbol=SYM, client_order_id="c1",
    )  # fmt: skip
    upd = {"client_order_id": "c1", "venue_order_id": "v1"}
    j.append("order_update", {**upd, "status": "partially_filled", "filled": D("0.5"),
             "notional": D(5), "fee": D("0.01")}, ts=T0, client_order_id="c1")  # fmt: skip
    j.append("order_update", {**upd, "status": "filled", "filled": D(2),
             "notional": D("19.25"), "fee": D("0.04")}, ts=T0, client_order_id="c1")  # fmt: skip
    book = j.state.book
    assert book.position(SYM) == D(2)
    assert book.positions[("s", SYM)].avg_cost == D("9.625")
    assert book.cash == D(1000) - D("19.25") - D("0.04")
    assert j.state.orders["c1"].state is OrderState.FILLED


def test_order_state_machine() -> None:
    o = ManagedOrder("c", "s", SYM, Side.BUY, D(1), VenueOrderType.LIMIT, D(1), T0)
    o.transition(OrderState.SUBMITTED)
    o.transition(OrderState.PARTIALLY_FILLED)
    with pytest.raises(InvalidTransition):
        o.transition(OrderState.SUBMITTED)
    o.transition(OrderState.CANCELLED)
    with pytest.raises(InvalidTransition):
        o.transition(OrderState.FILLED)


# ----------------------------------------------------------------------------- helpers
class _Kill:
    def __init__(self, active: bool) -> None:
        self.active = active

    def get(self) -> Any:
        return self


def _setup(
    limits: GuardLimits, engine: Engine | None = None, cash: D = D(10000), kill: Any = None
) -> tuple[Journal, PaperVenue, ReplayQuotes, OrderManager, list[datetime]]:
    now = [T0]
    quotes = ReplayQuotes()
    venue = PaperVenue(
        quotes, cash=cash, fees=FeeModel.flat(10), slippage=SlippageModel(), clock=lambda: now[0]
    )
    j = (
        Journal.open(engine, "acct", write=True)  # the account's one writer
        if engine is not None
        else Journal(None, "acct")  # type: ignore[arg-type]
    )
    j.append("start", {"initial_cash": cash}, ts=T0)
    oms = OrderManager(j, venue, Guard(limits), kill)
    return j, venue, quotes, oms, now


# ----------------------------------------------------------------------------- Guard
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=50, max_value=200),  # price
            st.sampled_from(["buy", "sell"]),
            st.integers(min_value=1, max_value=400),  # quantity in 0.1 units
        ),
        min_size=1,
        max_size=40,
    )
)
def test_guard_never_lets_limits_be_exceeded(steps: list[tuple[int, str, int]]) -> None:
    lim = GuardLimits(
        max_order_notional=D(3000),
        max_position_notional=D(4000),
        max_position_pct=D("0.4"),
        max_gross_exposure_pct=D("0.6"),
        max_daily_loss=D(300),
        max_orders_per_minute=1000,
        min_order_notional=D(1),
    )
    j, _venue, quotes, oms, now = _setup(lim)
    for k, (price, side, q10) in enumerate(steps):
        now[0] = T0 + timedelta(minutes=k)
        p = D(price)
        quotes.set(Quote(SYM, p, p, p, now[0]))
        j.append("bar", {"index": k, "marks": {SYM: p}}, ts=now[0])
        book = j.state.book
        loss_before = book.daily_loss()
        pos_before = book.position(SYM)
        res = oms.place("s", SYM, Side(side), D(q10) / 10, now=now[0])
        pos = book.position(SYM)
        if isinstance(res, Denial):
            assert pos == pos_before
            continue
        if abs(pos) > abs(pos_before):  # exposure added: every limit held at the fill price
            value = abs(pos) * p
            assert abs(pos - pos_before) * p <= lim.max_order_notional
            assert value <= lim.max_position_notional
            assert value <= lim.max_position_pct * (book.equity() + book.total_fees())
            assert book.gross_exposure() <= lim.max_gross_exposure_pct * (
                book.equity() + book.total_fees()
            )
            assert loss_before < lim.max_daily_loss


SYMS = ("BTC/AUD", "ETH/AUD", "SOL/AUD")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(SYMS),
            st.integers(min_value=50, max_value=200),  # price
            st.sampled_from(["buy", "sell"]),
            st.integers(min_value=1, max_value=400),  # quantity in 0.1 units
            st.sampled_from([None, -10, -3, 0, 3, 10]),  # limit offset from price (None: market)
        ),
        min_size=1,
        max_size=40,
    )
)
def test_guard_counts_working_orders_in_every_limit(
    steps: list[tuple[str, int, str, int, int | None]],
) -> None:
    """Resting limit orders mixed with market orders: after every accepted order, the
    positions *plus every working order* stay within the position, exposure, open-positions
    and capital-cap limits, and working buys never hold more cash than there is."""
    lim = GuardLimits(
        max_order_notional=D(3000),
        max_position_notional=D(4000),
        max_position_pct=D("0.4"),
        max_gross_exposure_pct=D("0.8"),
        max_open_positions=2,
        max_daily_loss=D(300),
        max_orders_per_minute=1000,
        min_order_notional=D(1),
    )
    cap = D(6000)
    j, venue, quotes, oms, now = _setup(lim)
    oms.guard.caps["s"] = cap
    prices = {s: D(100) for s in SYMS}
    for k, (sym, price, side, q10, offset) in enumerate(steps):
        now[0] = T0 + timedelta(minutes=k)
        prices[sym] = D(price)
        for s, p in prices.items():
            quotes.set(Quote(s, p, p, p, now[0]))
        j.append("bar", {"index": k, "marks": dict(prices)}, ts=now[0])
        for ack in venue.match():
            oms.record(ack, now[0])
        state = j.state
        equity_before = state.book.equity()
        limit = None if offset is None else D(price + (offset if side == "buy" else -offset))
        # reduces: a sell within the long position less what working sells already offer
        pos_before = state.book.position(sym)
        offered = sum((o.quantity - o.filled for o in state.open_orders(sym)
                       if o.side is Side.SELL), D(0))  # fmt: skip
        reducing = side == "sell" and D(q10) / 10 + offered <= pos_before
        res = oms.place(
            "s", sym, Side(side), D(q10) / 10, now=now[0],
            type=VenueOrderType.MARKET if limit is None else VenueOrderType.LIMIT,
            limit_price=limit,
        )  # fmt: skip
        if isinstance(res, Denial):
            continue
        # committed value per coin: the position at the market plus the worst case of every
        # working buy (or every working sell) filling at its limit (market orders: the market)
        values = {}
        for s in SYMS:
            held = state.book.position(s) * prices[s]
            work = state.open_orders(s)
            buys = sum(((o.quantity - o.filled) * (o.limit_price or prices[s])
                        for o in work if o.side is Side.BUY), D(0))  # fmt: skip
            sells = sum(((o.quantity - o.filled) * (o.limit_price or prices[s])
                         for o in work if o.side is Side.SELL), D(0))  # fmt: skip
            values[s] = max(held + buys, sells - held, D(0))
        if not reducing:  # exposure may have been added: every limit holds with working orders
            assert values[sym] <= lim.max_position_notional
            assert values[sym] <= lim.max_position_pct * equity_before
            assert sum(values.values()) <= lim.max_gross_exposure_pct * equity_before
            assert sum(values.values()) <= cap
        held = {s for s in SYMS if state.book.position(s) or state.open_orders(s)}
        assert len(held) <= lim.max_open_positions
        reserved = sum(
            ((o.quantity - o.filled) * (o.limit_price or prices[o.symbol])
             for o in state.open_orders() if o.side is Side.BUY), D(0),
        )  # fmt: skip
        assert reserved <= state.book.cash
        assert state.book.cash >= 0


def test_guard_denials_carry_codes_and_are_journaled() -> None:
    j, _venue, quotes, oms, _now = _setup(GuardLimits(max_quote_age_s=10))
    res = oms.place("s", SYM, Side.BUY, D(1), now=T0)
    assert isinstance(res, Denial) and res.code is DenyCode.STALE_PRICE
    quotes.set(Quote(SYM, D(100), D(101), D(100), T0 - timedelta(seconds=60)))
    res = oms.place("s", SYM, Side.BUY, D(1), now=T0)
    assert isinstance(res, Denial) and res.code is DenyCode.STALE_PRICE
    quotes.set(Quote(SYM, D(100), D(101), D(100), T0))
    res = oms.place("s", SYM, Side.BUY, D(1000), now=T0)
    assert isinstance(res, Denial) and res.code is DenyCode.MAX_ORDER_NOTIONAL
    assert j.state.denials == {"stale_price": 2, "max_order_notional": 1}
    assert [e.kind for e in j.pending[1:]] == ["denial"] * 3


def test_paper_fills_at_ask_and_bid_and_rejects_stale() -> None:
    quotes = ReplayQuotes()
    now = [T0]
    venue = PaperVenue(
        quotes, cash=D(1000), fees=FeeModel.flat(10), slippage=SlippageModel(D(10)),
        max_quote_age_s=5, clock=lambda: now[0],
    )  # fmt: skip
    from omc.floor.venues.base import OrderRequest, VenueOrderStatus

    assert isinstance(venue, Venue)
    ack = venue.submit(OrderRequest("c0", SYM, Side.BUY, D(1)))
    assert ack.status is VenueOrderStatus.REJECTED and ack.reason == "no_quote"
    quotes.set(Quote(SYM, D(100), D(102), D(101), T0))
    ack = venue.submit(OrderRequest("c1", SYM, Side.BUY, D(1)))
    assert ack.average_price == D(102) * D("1.001") and ack.fee == ack.average_price * D("0.001")
    assert venue.submit(OrderRequest("c1", SYM, Side.BUY, D(1))) == ack  # idempotent
    ack = venue.submit(OrderRequest("c2", SYM, Side.SELL, D(1)))
    assert ack.average_price == D(100) * D("0.999")
    now[0] = T0 + timedelta(seconds=6)
    ack = venue.submit(OrderRequest("c3", SYM, Side.BUY, D(1)))
    assert ack.status is VenueOrderStatus.REJECTED and ack.reason == "stale_quote"
    assert "old" in ack.message


# ----------------------------------------------------------------------------- database
def test_kill_switch_blocks_every_path_and_persists(engine: Engine) -> None:
    from omc.floor.strategies import make_strategy
    from omc.floor.trading.session import TradingSession

    store = KillSwitchStore(engine)
    assert not store.get().active
    _j, venue, quotes, oms, _now = _setup(GuardLimits(), engine, kill=store)
    quotes.set(Quote(SYM, D(100), D(100), D(100), T0))
    assert isinstance(oms.place("s", SYM, Side.BUY, D(10), now=T0), ManagedOrder)
    store.set(True, flatten=True, reason="test")
    assert KillSwitchStore(engine).get().active  # stored: a new process sees it
    for side, qty in ((Side.BUY, D(1)), (Side.SELL, D(1)), (Side.SELL, D(10))):
        res = oms.place("s", SYM, side, qty, now=T0)
        assert isinstance(res, Denial) and res.code is DenyCode.KILL_SWITCH
    # a strategy session stops on its first bar, cancelling and flattening
    session = TradingSession(
        engine, "k", make_strategy("sma_cross", {"fast": 2, "slow": 3}), (SYM,), venue
    )
    session.start()
    session.step(T0, {SYM: (100.0, 100.0, 100.0, 100.0, 1.0)})
    assert session.stopped and "kill" in session.stopped
    store.set(False)
    assert not store.get().active


def test_journal_is_idempotent_and_rebuilds(engine: Engine) -> None:
    j, _venue, quotes, oms, _now = _setup(GuardLimits(), engine)
    quotes.set(Quote(SYM, D(100), D(101), D(100), T0))
    oms.place("s", SYM, Side.BUY, D(5), now=T0)
    oms.place("s", SYM, Side.SELL, D(2), now=T0)
    rows = [e for e in j.pending]
    assert j.flush() == len(rows)
    j.pending.extend(rows)  # a retried flush writes nothing twice
    assert j.flush() == 0
    rebuilt = Journal.open(engine, "acct")
    assert rebuilt.state.book.summary() == j.state.book.summary()
    assert {c: o.as_dict() for c, o in rebuilt.state.orders.items()} == {
        c: o.as_dict() for c, o in j.state.orders.items()
    }
    assert rebuilt.next_ordinal == j.next_ordinal
