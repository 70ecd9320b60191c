"""Paper trading sessions: the strategy, the Guard, the paper venue and the journal wired
together — on the ledger's latest quotes, or replaying a candle file (its candles become the
quotes: bid = ask = open, then close, ± spread; decisions at a close fill at the next open,
like the backtest).

Used by `omc trade paper` and by the demo. A session is journaled under its account: running
the same replay again resumes from the journal and changes nothing. Opening a session
registers its strategy instance in the book (`omc.floor.book.registry`, idempotent): a
strategy that paper-trades is in stage `paper` (`omc strategies list`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from omc.core.config import Settings
from omc.core.events import Bus
from omc.core.time import utcnow
from omc.floor.book import registry
from omc.floor.book.watch import Alerts, Watcher, session_watcher
from omc.floor.data import Bars
from omc.floor.fills import FeeModel, SlippageModel
from omc.floor.strategy import Strategy
from omc.floor.trading.guard import Guard, GuardLimits, guard_report
from omc.floor.trading.session import TradingSession
from omc.floor.venues.paper import LedgerQuotes, PaperSettings, PaperVenue, ReplayQuotes


def open_paper_session(
    engine: Engine,
    strategy: Strategy,
    symbols: Sequence[str],
    quotes: LedgerQuotes | ReplayQuotes,
    *,
    account: str,
    settings: Settings,
    limits: GuardLimits,
    paper: PaperSettings | None = None,
    cash: Decimal | None = None,
    bus: Bus | None = None,
    guard: Guard | None = None,
) -> TradingSession:
    """A started paper session. With `ReplayQuotes` the venue's clock is the replayed bar's
    time (quotes are never stale inside a replay); with ledger quotes it is the wall clock."""
    registry.trading(engine, strategy, account, venue="paper")  # in the book, stage paper
    paper = paper or PaperSettings()
    start_cash = cash if cash is not None else paper.initial_cash
    holder: dict[str, TradingSession] = {}

    def replay_clock() -> Any:
        return holder["s"].now if "s" in holder else utcnow()

    venue = PaperVenue(
        quotes,
        cash=start_cash,
        quote_currency=paper.quote_currency,
        fees=FeeModel.from_settings(settings),
        slippage=SlippageModel(paper.slippage_bps),
        max_quote_age_s=paper.quote_max_age_s,
        clock=replay_clock if isinstance(quotes, ReplayQuotes) else utcnow,
        instruments=paper.instruments(),
    )
    session = TradingSession(
        engine,
        account,
        strategy,
        tuple(symbols),
        venue,
        guard or Guard(limits),
        initial_cash=start_cash,
        clock=utcnow,
        bus=bus,
    )
    holder["s"] = session
    try:
        session.start()
    except BaseException:
        session.journal.close(flush=False)  # give the account's lease back
        raise
    return session


def session_summary(session: TradingSession) -> dict[str, Any]:
    """The P&L summary of a session (exact decimals), with its account, Guard denials by code
    and the Guard's report (`guard_report`: when and why it halted or denied)."""
    summary: dict[str, Any] = session.state.book.summary()
    summary["account"] = session.account
    summary["denials"] = dict(session.state.denials)
    summary["guard"] = guard_report(session.state)
    if session.stopped:
        summary["stopped"] = session.stopped
    return summary


def replay_paper(
    engine: Engine,
    strategy: Strategy,
    bars: Bars,
    *,
    account: str,
    settings: Settings,
    limits: GuardLimits,
    paper: PaperSettings | None = None,
    cash: Decimal | None = None,
    speed: float | None = None,
    spread_bps: Decimal = Decimal(0),
    bus: Bus | None = None,
    on_bar: Callable[[int], None] | None = None,
    guard: Guard | None = None,
) -> dict[str, Any]:
    """Replay `bars` through paper trading; returns the P&L summary.

    `speed`: bars arrive this many times faster than real time; None = as fast as possible.
    `on_bar(i)` is called after bar i (progress). `guard`: the Guard every order passes
    (default the account's, `Guard(limits)`; a `LayeredGuard` adds the portfolio's).
    """
    quotes = ReplayQuotes()
    session = open_paper_session(
        engine,
        strategy,
        (bars.symbol,),
        quotes,
        account=account,
        settings=settings,
        limits=limits,
        paper=paper,
        cash=cash,
        bus=bus,
        guard=guard,
    )
    watcher = watch_session(engine, session, settings=settings, bus=bus)
    book = book_hook(session, watcher)

    def each_bar(i: int) -> None:
        book()  # event rules; a demotion stops the session
        if on_bar is not None:
            on_bar(i)

    try:
        session.replay(bars, quotes, speed=speed, spread_bps=spread_bps, on_bar=each_bar)
    finally:
        session.close()
    summary = session_summary(session)
    if watcher is not None:
        summary["health"] = watcher.health()
    return summary


def watch_session(
    engine: Engine, session: TradingSession, *, settings: Settings, bus: Bus | None = None
) -> Watcher | None:
    """The demotion monitor of a session's registered strategy (`omc.floor.book.watch`),
    alerting on `bus` and the configured notifiers; None when it is not registered."""
    from omc.ledgers.catalyst.notifiers import notifiers_from_settings

    alerts = Alerts(bus, notifiers_from_settings(settings))
    return session_watcher(engine, session, alerts=alerts)


def book_hook(session: TradingSession, watcher: Watcher | None) -> Callable[[], bool]:
    """What the book does after each bar of `session`: the event rules of its portfolio
    Guard (`omc.floor.book.events.act_in_session`), then its demotion monitor; True once
    the strategy is demoted (the session stops)."""
    from omc.floor.book.events import act_in_session

    portfolio = getattr(session.guard, "portfolio", None)
    events = getattr(portfolio, "events", None)
    told: set[str] = set()

    def hook() -> bool:
        if events is not None:
            act_in_session(session, events, told)
        return watcher.on_bar(session) if watcher is not None else False

    return hook
