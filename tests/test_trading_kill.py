"""`omc kill` acts at once (both databases): it cancels every open order the journal records
and, with `--flatten`, closes positions — journaled — on paper accounts, and cancels at a
live CCXT venue; the switch survives restarts and blocks every order path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any, ClassVar

import pytest
import typer
from sqlalchemy import Engine
from typer.testing import CliRunner

from omc.core.config import Settings
from omc.floor.strategy import Strategy
from omc.floor.trading.guard import Denial, DenyCode, KillSwitchStore
from omc.floor.trading.journal import Journal
from omc.floor.trading.kill import kill_account
from omc.floor.trading.oms import OrderState
from omc.floor.trading.session import TradingSession
from omc.floor.venues.base import Quote, Side, VenueOrderType
from omc.floor.venues.ccxt_venue import CcxtCredentials, CcxtVenue
from omc.floor.venues.paper import PaperVenue, ReplayQuotes
from tests.fakes.ccxt_exchange_server import API_KEY, API_SECRET, FakeBinanceTrading

SYM = "BTC/AUD"
T0 = datetime(2024, 5, 1, tzinfo=UTC)


class BuyAndRest(Strategy):
    """Bar 0: buys 10 at market and rests a limit buy of 5 at 50."""

    name = "buy_rest"
    defaults: ClassVar[dict[str, Any]] = {}

    def on_bar(self, ctx: Any) -> None:
        if ctx.index == 0:
            ctx.order(SYM, 10)
            ctx.order(SYM, 5, limit=50)


def _paper_session(engine: Engine, account: str) -> tuple[TradingSession, ReplayQuotes]:
    quotes = ReplayQuotes()
    now = [T0]
    venue = PaperVenue(quotes, clock=lambda: now[0], max_quote_age_s=3600)
    s = TradingSession(engine, account, BuyAndRest(), (SYM,), venue, clock=lambda: now[0])
    s._clock_cell = now  # type: ignore[attr-defined]
    return s, quotes


def _bar(s: TradingSession, quotes: ReplayQuotes, ts: datetime, price: int = 100) -> None:
    s._clock_cell[0] = ts  # type: ignore[attr-defined]
    p = D(price)
    quotes.set(Quote(SYM, p, p, p, ts))
    s.step(ts, {SYM: (price, price, price, price, 0.0)})


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    from omc.cli import context

    monkeypatch.setenv("OMC_DATABASE_URL", db_url)
    context.get_settings.cache_clear()
    context.engine.cache_clear()
    yield CliRunner()
    context.get_settings.cache_clear()
    context.engine.cache_clear()


def _app() -> typer.Typer:
    from omc.cli import trade

    app = typer.Typer()
    trade.register(app)
    return app


def test_omc_kill_cancels_and_flattens_paper_accounts_now(engine: Engine, cli: CliRunner) -> None:
    s, quotes = _paper_session(engine, "paper-a")
    s.start()
    _bar(s, quotes, T0 + timedelta(minutes=5))
    s.close()
    st = Journal.open(engine, "paper-a").state
    assert st.book.position(SYM) == D(10) and len(st.open_orders()) == 1
    untouched, _q2 = _paper_session(engine, "paper-b")  # a second account, no orders
    untouched.start()
    untouched.close()

    r = cli.invoke(_app(), ["kill", "--flatten", "--reason", "test", "--json"])
    assert r.exit_code == 0, r.output
    reports = {x["account"]: x for x in json.loads(r.output)}
    assert reports["paper-a"]["cancelled"] == 1
    assert reports["paper-a"]["flattened"][0]["result"]["state"] == "filled"
    assert reports["paper-b"]["cancelled"] == 0

    st = Journal.open(engine, "paper-a").state  # rebuilt from the journal: it all stuck
    assert st.book.position(SYM) == 0 and st.open_orders() == []
    (kill_event,) = [e for e in Journal(engine, "paper-a").stored() if e.kind == "kill"]
    assert kill_event.data["reason"] == "test" and kill_event.data["cancelled"] == 1
    rested = [o for o in st.orders.values() if o.limit_price == D(50)]
    assert rested[0].state is OrderState.CANCELLED

    # the switch is in the database: a restarted session stops at once, sends nothing
    assert KillSwitchStore(engine).get().active
    again, q3 = _paper_session(engine, "paper-a")
    again.start()
    before = len(again.state.orders)
    _bar(again, q3, T0 + timedelta(minutes=10))
    assert again.stopped and len(again.state.orders) == before
    res = again.oms.place("buy_rest", SYM, Side.BUY, D(1), now=T0 + timedelta(minutes=11))
    assert isinstance(res, Denial) and res.code is DenyCode.KILL_SWITCH

    r = cli.invoke(_app(), ["kill", "--clear"])
    assert r.exit_code == 0 and not KillSwitchStore(engine).get().active


def test_kill_without_flatten_keeps_positions(engine: Engine, cli: CliRunner) -> None:
    s, quotes = _paper_session(engine, "paper-c")
    s.start()
    _bar(s, quotes, T0 + timedelta(minutes=5))
    s.close()
    r = cli.invoke(_app(), ["kill"])
    assert r.exit_code == 0, r.output
    assert "paper-c (paper): 1 order(s) cancelled" in r.output
    st = Journal.open(engine, "paper-c").state
    assert st.book.position(SYM) == D(10) and st.open_orders() == []


def test_kill_cancels_at_a_live_ccxt_venue(engine: Engine) -> None:
    fake = FakeBinanceTrading().start()
    try:
        settings = Settings(ccxt_base_url=fake.url, http_timeout_s=5)
        creds = CcxtCredentials(api_key=API_KEY, api_secret=API_SECRET)
        venue = CcxtVenue.from_settings("binance", settings, creds, symbols=("BTC/USDT",))
        journal = Journal.open(engine, "ccxt:binance-x", write=True)
        now = datetime.now(UTC)
        journal.append("start", {"initial_cash": D(10000), "venue": venue.name}, ts=now)
        journal.flush()
        from omc.floor.trading.guard import Guard
        from omc.floor.trading.oms import OrderManager

        oms = OrderManager(journal, venue, Guard())
        order = oms.place(
            "x",
            "BTC/USDT",
            Side.BUY,
            D("0.01"),
            now=now,
            type=VenueOrderType.LIMIT,
            limit_price=D(29000),
        )
        journal.close()  # one writer per account: kill_account takes the lease next
        assert not isinstance(order, Denial) and order.state is OrderState.SUBMITTED
        fresh = CcxtVenue.from_settings("binance", settings, creds, symbols=("BTC/USDT",))
        report = kill_account(engine, "ccxt:binance-x", reason="test", venue=fresh)
        assert report["cancelled"] == 1
        assert [o.status for o in fake.orders.values()] == ["CANCELED"]
        st = Journal.open(engine, "ccxt:binance-x").state
        assert st.open_orders() == []
    finally:
        fake.stop()
