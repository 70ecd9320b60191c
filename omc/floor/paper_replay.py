"""Paper-trading a candle file: the strategy, the Guard, the paper venue and the journal, as
in live paper trading, with the file's candles as the quotes (bid = ask = close ± spread).

Used by `omc trade paper --replay` and by the demo. The session is journaled under its
account: running the same replay again resumes from the journal and changes nothing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from omc.core.config import Settings
from omc.core.time import utcnow
from omc.floor.data import Bars
from omc.floor.fills import FeeModel, SlippageModel
from omc.floor.guard import Guard, GuardLimits
from omc.floor.live import TradingSession
from omc.floor.strategy import Strategy
from omc.floor.venues.paper import PaperSettings, PaperVenue, ReplayQuotes


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
) -> dict[str, Any]:
    """Replay `bars` through paper trading; returns the P&L summary (exact decimals).

    `speed`: bars arrive this many times faster than real time; None = as fast as possible.
    """
    paper = paper or PaperSettings()
    start_cash = cash if cash is not None else paper.initial_cash
    quotes = ReplayQuotes()
    holder: dict[str, TradingSession] = {}
    venue = PaperVenue(
        quotes,
        cash=start_cash,
        quote_currency=paper.quote_currency,
        fees=FeeModel.from_settings(settings),
        slippage=SlippageModel(paper.slippage_bps),
        max_quote_age_s=paper.quote_max_age_s,
        clock=lambda: holder["s"].now if "s" in holder else utcnow(),
    )
    session = TradingSession(
        engine,
        account,
        strategy,
        (bars.symbol,),
        venue,
        Guard(limits),
        initial_cash=start_cash,
        clock=utcnow,
        flush_every=1,
    )
    holder["s"] = session
    session.start()
    try:
        session.replay(bars, quotes, speed=speed, spread_bps=spread_bps)
    finally:
        session.close()
    summary: dict[str, Any] = session.state.book.summary()
    summary["account"] = session.account
    summary["denials"] = dict(session.state.denials)
    if session.stopped:
        summary["stopped"] = session.stopped
    return summary
