"""Event-aware risk: a real-format CoinSpot announcement, collected and published on the bus,
changes the portfolio Guard's answer within a second; maintenance pauses the venue; a
high-impact SEC filing tightens a coin's limit; a delisting with `close` sells the position
in a running session, journaled with the event."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from omc.core.config import Settings
from omc.core.events import EventBus
from omc.floor.book.events import EventRisk, EventRules
from omc.floor.book.portfolio import LayeredGuard, PortfolioGuard, PortfolioLimits
from omc.floor.data import load_csv
from omc.floor.strategies import make_strategy
from omc.floor.trading.guard import GuardLimits
from omc.floor.trading.journal import Event, Journal, TradingState
from omc.floor.trading.paper_session import book_hook, open_paper_session
from omc.floor.venues.base import Side
from omc.floor.venues.paper import ReplayQuotes
from omc.ledgers.catalyst.announcements import AnnouncementsCollector
from omc.ledgers.collectors.base import CollectorRunner
from tests.fakes.notify_server import running
from tests.fakes.zendesk_server import FakeZendesk
from tests.test_cli_errors import CSV

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def zendesk() -> Iterator[FakeZendesk]:
    yield from running(FakeZendesk())


def _state(symbol: str, qty: D = D(0), price: D = D(10)) -> TradingState:
    state = TradingState()
    state.apply(Event(0, "acc", NOW, "start", {"initial_cash": "10000"}))
    state.apply(Event(1, "acc", NOW, "bar", {"index": 0, "marks": {symbol: str(price)}}))
    if qty:
        ids: dict[str, Any] = {"strategy": "s", "symbol": symbol, "client_order_id": "c1"}
        order = {"side": "buy", "quantity": str(qty), "type": "market", "limit_price": None}
        state.apply(Event(2, "acc", NOW, "order", order, **ids))
        fill = {"filled": str(qty), "notional": str(qty * price), "fee": "0", "status": "filled"}
        state.apply(Event(3, "acc", NOW, "order_update", fill, **ids))
    return state


def _check(p: PortfolioGuard, state: TradingState, symbol: str, side: Side, venue: str) -> Any:
    guard = LayeredGuard(GuardLimits(), p, "acc", venue=venue)
    return guard.check(
        state, strategy="s", symbol=symbol, side=side, quantity=D(1), price=D(10),
        quote_ts=datetime.now(UTC), now=datetime.now(UTC), kill_active=False,
    )  # fmt: skip


def test_a_delisting_announcement_blocks_entries_within_a_second(
    engine: Engine, zendesk: FakeZendesk
) -> None:
    settings = Settings(_env_file=None, announcements_base_url=zendesk.url)  # type: ignore[call-arg]
    bus = EventBus()
    published: list[float] = []
    bus.subscribe("collector.run", lambda _t, _e: published.append(time.monotonic()))
    events = EventRisk().attach(bus, engine)
    p = PortfolioGuard(events=events)
    state = _state("FOO/AUD", D(5))
    assert _check(p, state, "FOO/AUD", Side.BUY, "coinspot") is None
    zendesk.publish(
        "CoinSpot will delist Foocoin (FOO)",
        "<p>Trading of FOO/AUD ends on Friday. Withdraw your FOO before then.</p>",
    )
    runner = CollectorRunner(engine, bus)
    runner.run(AnnouncementsCollector.from_settings(settings, engine=engine))
    denial = _check(p, state, "FOO/AUD", Side.BUY, "coinspot")
    reacted = time.monotonic() - published[0]
    assert denial is not None and denial.code == "portfolio_event" and denial.layer == "portfolio"
    assert "delisting event announcements:" in denial.message and "Foocoin" in denial.message
    assert reacted < 1.0
    assert _check(p, state, "FOO/AUD", Side.SELL, "coinspot") is None  # reducing still passes
    assert _check(p, _state("BAR/AUD"), "BAR/AUD", Side.BUY, "coinspot") is None


def test_maintenance_listing_cooling_off_and_sec_tightening() -> None:
    events = EventRisk(EventRules(listing_cooloff_s=600))
    p = PortfolioGuard(PortfolioLimits(max_coin_gross=D(100)), events=events)
    state = _state("BTC/AUD", D(5))  # 50 of BTC
    assert _check(p, state, "BTC/AUD", Side.BUY, "coinspot") is None
    sec = {"source": "sec", "event_id": "0001", "kind": "current_report", "impact": 0.9,
           "coins": ["BTC"], "title": "8-K: bought more bitcoin", "published_at": NOW}  # fmt: skip
    assert [r.rule for r in events.apply(sec)] == ["tighten"]
    denial = _check(p, state, "BTC/AUD", Side.BUY, "coinspot")  # 60 > 100 × 0.5
    assert denial is not None and denial.code == "portfolio_coin_gross"
    assert "tightened: current_report event sec:0001" in denial.message
    low = sec | {"event_id": "0002", "impact": 0.3}
    assert events.apply(low) == [] and events.apply(sec) == []  # below the impact; once
    listing = {"source": "announcements", "event_id": "7", "kind": "listing", "coins": ["NEW"],
               "title": "New Listing: New (NEW)", "published_at": NOW}  # fmt: skip
    (cool,) = events.apply(listing)
    assert cool.until - max(NOW, datetime.now(UTC)) <= timedelta(seconds=601)
    assert _check(p, _state("NEW/AUD"), "NEW/AUD", Side.BUY, "coinspot").code == "portfolio_event"
    old = listing | {"event_id": "8", "coins": ["OLD"], "published_at": NOW - timedelta(days=3)}
    assert events.apply(old) == []  # older than max_age_s: history, not news
    events.apply({"source": "announcements", "event_id": "9", "kind": "maintenance",
                  "title": "Scheduled maintenance", "published_at": NOW})  # fmt: skip
    paused = _check(p, state, "BTC/AUD", Side.SELL, "coinspot")  # even a reducing order
    assert paused is not None and "coinspot paused: maintenance event" in paused.message
    assert _check(p, _state("SOL/USDT"), "SOL/USDT", Side.BUY, "binance") is None  # not paused


def test_a_delisting_with_close_sells_in_the_running_session(
    engine: Engine, tmp_path: Path
) -> None:
    lines = CSV.read_text().splitlines(keepends=True)
    path = tmp_path / "BTC_USDT-5m.csv"
    path.write_text(lines[0] + "".join(lines[1:400]))
    bars = load_csv(path)
    events = EventRisk(EventRules(halt_action="close"))
    guard = LayeredGuard(GuardLimits(), PortfolioGuard(events=events), "acc-x", venue="paper")
    quotes = ReplayQuotes()
    session = open_paper_session(
        engine, make_strategy("sma_cross", {"fast": 5, "slow": 20, "size": 0.4}), ["BTC/USDT"],
        quotes, account="acc-x", settings=Settings(_env_file=None), limits=GuardLimits(),
        guard=guard,
    )  # fmt: skip
    hook = book_hook(session, None)
    held: list[int] = []

    def on_bar(i: int) -> None:
        if not held and session.state.book.position("BTC/USDT") > 0:
            held.append(i)
            events.apply({"source": "announcements", "event_id": "42", "kind": "trading_halt",
                          "coins": ["BTC"], "title": "BTC trading halted",
                          "published_at": datetime.now(UTC)})  # fmt: skip
        hook()

    try:
        session.replay(bars, quotes, on_bar=on_bar)
    finally:
        session.close()
    assert held  # it bought, then the halt came
    state = Journal.open(engine, "acc-x").state
    assert state.book.position("BTC/USDT") == 0  # closed, and never bought again
    stored = list(Journal(engine, "acc-x").stored())
    (warning,) = [e for e in stored if e.kind == "warning" and e.data["code"] == "event_risk"]
    assert warning.data["event"]["event_id"] == "42" and warning.data["action"] == "close"
    sells = [
        e for e in stored if e.kind == "order" and "event_risk" in (e.data.get("reason") or {})
    ]
    assert len(sells) == 1
    denied = [e for e in stored if e.kind == "denial"]
    assert denied and {e.data["code"] for e in denied} == {"portfolio_event"}
