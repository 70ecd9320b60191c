"""The Guard a trading session uses: its account's, with the portfolio layer on top
(`omc.floor.book.portfolio`) — book-wide limits from `OMC_PORTFOLIO_*`, the book's kill
switch and the event rules (`omc.floor.book.events`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine

from omc.floor.book.events import EventRisk
from omc.floor.book.portfolio import LayeredGuard, PortfolioGuard, PortfolioLimits
from omc.floor.trading.guard import Guard, GuardLimits
from omc.floor.trading.journal import TradingState

if TYPE_CHECKING:
    from omc.core.events import Bus


class PortfolioSettings(PortfolioLimits, BaseSettings):
    """`PortfolioLimits` from `OMC_PORTFOLIO_*` environment variables (or `.env`)."""

    model_config = SettingsConfigDict(
        env_prefix="OMC_PORTFOLIO_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    refresh_s: float = Field(default=60.0, gt=0)

    def configured(self) -> bool:
        return any(
            getattr(self, k) is not None
            for k in PortfolioLimits.model_fields
            if k.startswith("max_")
        )


BOOK_SCOPE = "book"  # the book's kill switch (`floor_kill_switch`)


def book_guard(
    engine: Engine,
    account: str,
    limits: GuardLimits,
    *,
    venue: str | None = None,
    bus: Bus | None = None,
) -> Guard:
    """The Guard of a session trading `account`: its account Guard, and the portfolio Guard
    when `OMC_PORTFOLIO_*` limits are set (the other accounts read from their journals) —
    the book's kill switch and the event rules (`omc.floor.book.events`, fed by `bus`)
    always."""
    from omc.floor.trading.guard import KillSwitchStore
    from omc.floor.trading.journal import Journal, accounts

    ps = PortfolioSettings()
    store = KillSwitchStore(engine, scope=BOOK_SCOPE)

    def others() -> dict[str, TradingState]:
        return {a: Journal.open(engine, a).state for a in accounts(engine) if a != account}

    events = EventRisk()
    if bus is not None:
        events.attach(bus, engine)  # new events at once
    else:
        events.load(engine)  # the stored ones
    portfolio = PortfolioGuard(
        PortfolioLimits(**{k: getattr(ps, k) for k in PortfolioLimits.model_fields}),
        kill=lambda: store.get().active,
        others=others if ps.configured() else None,
        refresh_s=ps.refresh_s,
        events=events,
    )
    return LayeredGuard(limits, portfolio, account, venue=venue)
