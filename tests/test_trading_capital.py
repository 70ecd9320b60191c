"""Staged capital (both databases, hand-set clocks): a strategy starts with a capital cap
that really limits its orders, grows by configured steps only after N days without a Guard
breach, stops at the maximum, and keeps its stage across restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any, ClassVar

from sqlalchemy import Engine

from omc.floor.strategy import Strategy
from omc.floor.trading.guard import CapitalStages, Denial, DenyCode, Guard, GuardLimits
from omc.floor.trading.journal import Journal
from omc.floor.trading.session import TradingSession
from omc.floor.venues.base import Quote, Side
from omc.floor.venues.paper import PaperVenue, ReplayQuotes

SYM = "BTC/AUD"
T0 = datetime(2024, 3, 1, tzinfo=UTC)
LIMITS = GuardLimits(
    capital_initial=D(1000),
    capital_step=D(1000),
    capital_max=D(2500),
    capital_clean_days=2,
    max_quote_age_s=3600,
)


class AllIn(Strategy):
    """Targets 100 % every bar; with `burst` set, also sends one order far too big."""

    name = "all_in"
    defaults: ClassVar[dict[str, Any]] = {}
    burst = False

    def on_bar(self, ctx: Any) -> dict[str, float]:
        if self.burst:
            self.burst = False
            ctx.order(SYM, 1000)  # 100 000 at 100: above max_order_notional
        return {SYM: 1.0}


def test_capital_stages_grow_only_after_clean_days(engine: Engine) -> None:
    stages = CapitalStages(engine, LIMITS)
    assert stages.cap("s", T0) == D(1000)
    assert stages.advance("s", T0 + timedelta(days=1, hours=23)) == D(1000)
    stages.breach("s", T0 + timedelta(days=1))  # restarts the stage's clock
    assert stages.advance("s", T0 + timedelta(days=2, hours=23)) == D(1000)
    assert stages.advance("s", T0 + timedelta(days=3)) == D(2000)
    assert stages.advance("s", T0 + timedelta(days=4)) == D(2000)
    restarted = CapitalStages(engine, LIMITS)  # persisted
    assert restarted.cap("s", T0 + timedelta(days=5)) == D(2000)
    assert restarted.advance("s", T0 + timedelta(days=5)) == D(2500)  # capped at max
    assert restarted.advance("s", T0 + timedelta(days=30)) == D(2500)
    assert CapitalStages(engine, GuardLimits()).cap("s", T0) is None  # staging off


def _session(engine: Engine, strategy: Strategy, now: list[datetime]) -> TradingSession:
    quotes = ReplayQuotes()
    venue = PaperVenue(quotes, clock=lambda: now[0], max_quote_age_s=3600)
    session = TradingSession(
        engine, "cap", strategy, (SYM,), venue, Guard(LIMITS), clock=lambda: now[0]
    )
    session._test_quotes = quotes  # type: ignore[attr-defined]
    return session


def _bar(session: TradingSession, now: list[datetime], ts: datetime, price: int = 100) -> None:
    now[0] = ts
    p = D(price)
    session._test_quotes.set(Quote(SYM, p, p, p, ts))  # type: ignore[attr-defined]
    session.step(ts, {SYM: (price, price, price, price, 0.0)})


def _value(session: TradingSession) -> D:
    return session.state.book.position(SYM) * D(100)


def test_session_cap_limits_exposure_and_grows_after_clean_days(engine: Engine) -> None:
    now = [T0]
    strat = AllIn()
    s = _session(engine, strat, now)
    s.start()
    assert s.guard.caps == {"all_in": D(1000)}
    _bar(s, now, T0 + timedelta(hours=1))
    assert D(990) <= _value(s) <= D(1000)  # 100 % target, clipped to the 1000 cap
    _bar(s, now, T0 + timedelta(days=1, hours=23))
    assert _value(s) <= D(1000)
    # an order past the cap itself is denied with `capital_cap`
    res = s.oms.place("all_in", SYM, Side.BUY, D(5), now=now[0])
    assert isinstance(res, Denial) and res.code is DenyCode.CAPITAL_CAP
    _bar(s, now, T0 + timedelta(days=2, hours=1))  # two clean days: 2000
    assert s.guard.caps["all_in"] == D(2000)
    assert D(1990) <= _value(s) <= D(2000)
    strat.burst = True  # a max_order_notional denial is a breach: the clock restarts
    _bar(s, now, T0 + timedelta(days=2, hours=2))
    assert s.state.denials.get("max_order_notional") == 1
    _bar(s, now, T0 + timedelta(days=4, hours=1))
    assert s.guard.caps["all_in"] == D(2000)  # only 1 day 23 h since the breach
    _bar(s, now, T0 + timedelta(days=4, hours=3))
    assert s.guard.caps["all_in"] == D(2500)  # grown, up to the maximum
    assert _value(s) <= D(2500)
    s.close()
    caps = [D(e.data["cap"]) for e in Journal(engine, "cap").stored() if e.kind == "capital"]
    assert caps == [D(1000), D(2000), D(2500)]  # every change journaled
    # restart: the stage comes back from the database
    now[0] = T0 + timedelta(days=4, hours=4)
    again = _session(engine, AllIn(), now)
    again.start()
    assert again.guard.caps == {"all_in": D(2500)}


def test_drawdown_keeps_the_stage_from_growing(engine: Engine) -> None:
    now = [T0]
    s = _session(engine, AllIn(), now)
    s.start()
    _bar(s, now, T0 + timedelta(hours=1))
    _bar(s, now, T0 + timedelta(days=1), price=40)  # a 60 % fall on the position: ~6 % dd
    assert s.state.book.drawdown() >= LIMITS.drawdown_warn_pct
    _bar(s, now, T0 + timedelta(days=2, hours=1), price=40)
    _bar(s, now, T0 + timedelta(days=5), price=40)  # still in drawdown 4 days later
    assert s.guard.caps["all_in"] == D(1000)
    _bar(s, now, T0 + timedelta(days=6), price=100)  # recovered: the clock runs again
    _bar(s, now, T0 + timedelta(days=8, hours=1), price=100)
    assert s.guard.caps["all_in"] == D(2000)
