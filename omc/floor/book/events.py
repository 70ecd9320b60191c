"""Event-aware risk: catalyst events change what the portfolio Guard allows, at once.

Rules (`EventRules`, `OMC_EVENTS_*`), applied to each stored catalyst event (`catalyst_events`,
the announcements and SEC collectors) no older than `max_age_s`:

* a `delisting` or `trading_halt` announcement blocks new entries in its coins for
  `halt_block_s`; with `halt_action` = `reduce` or `close`, a running session also sells
  half of / all its position in them (`actions`, one time per event);
* a `listing` is `allow`ed, or `block`ed for a cooling-off of `listing_cooloff_s`;
* `maintenance` pauses every order on the source's venue (`announcements` → `coinspot`) for
  `maintenance_pause_s`;
* an SEC filing with impact ≥ `sec_min_impact` tightens the coin limit of its coins
  (`max_coin_gross` × `sec_tighten_factor`) for `sec_tighten_s`.

`EventRisk.attach(bus, engine)` subscribes to `collector.run` (what a collector publishes
after storing events) and reads the new events, so an announcement stored by the collector
changes the Guard's answer before the publisher returns. A denial names the event (kind,
source, id, title); a running session journals each restriction it meets as a `warning`
(`event_risk`) with the event that caused it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine, select

from omc.core.time import ensure_utc, parse_instant, utcnow
from omc.floor.instruments import EIGHT_DECIMALS, InstrumentSpec

if TYPE_CHECKING:
    from omc.core.events import Bus
    from omc.floor.trading.session import TradingSession

log = logging.getLogger(__name__)
VENUE_OF_SOURCE = {"announcements": "coinspot"}


class EventRules(BaseSettings):
    """The event rules, from `OMC_EVENTS_*` environment variables (or `.env`)."""

    model_config = SettingsConfigDict(
        env_prefix="OMC_EVENTS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    halt_block_s: float = 7 * 86400.0
    halt_action: Literal["block", "reduce", "close"] = "block"
    listing: Literal["allow", "block"] = "block"
    listing_cooloff_s: float = 3600.0
    maintenance_pause_s: float = 2 * 3600.0
    sec_min_impact: float = 0.7
    sec_tighten_factor: float = 0.5
    sec_tighten_s: float = 86400.0
    max_age_s: float = 86400.0


@dataclass(frozen=True)
class Restriction:
    """What one event does, until when."""

    rule: str  # block_entries | pause_venue | tighten
    until: datetime
    event: dict[str, Any]
    coin: str | None = None
    venue: str | None = None
    factor: float | None = None
    action: str = "block"

    def why(self) -> str:
        e = self.event
        return (
            f"{e.get('kind')} event {e.get('source')}:{e.get('event_id')} "
            f"({str(e.get('title', ''))[:80]}) until {self.until.isoformat()}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "until": self.until.isoformat(),
            "coin": self.coin,
            "venue": self.venue,
            "factor": self.factor,
            "action": self.action,
            "event": self.event,
        }


class EventRisk:
    """The restrictions in force (module doc)."""

    def __init__(self, rules: EventRules | None = None) -> None:
        self.rules = rules or EventRules()
        self.restrictions: list[Restriction] = []
        self.seen: set[tuple[str, str]] = set()
        self.acted: set[tuple[str, str, str]] = set()  # (source, event id, account) sold

    def apply(self, event: Mapping[str, Any], now: datetime | None = None) -> list[Restriction]:
        """The restrictions `event` (a catalyst event row) adds (once per event)."""
        r, now = self.rules, now or utcnow()
        key = (str(event.get("source")), str(event.get("event_id")))
        published = ensure_utc(parse_instant(event.get("published_at") or now))
        if key in self.seen or (now - published).total_seconds() > r.max_age_s:
            return []
        self.seen.add(key)
        kind, coins = str(event.get("kind")), [str(c).upper() for c in event.get("coins") or []]
        info = {
            "source": key[0],
            "event_id": key[1],
            "kind": kind,
            "title": event.get("title"),
            "url": event.get("url"),
            "published_at": published.isoformat(),
        }

        def until(seconds: float) -> datetime:
            return max(published, now) + timedelta(seconds=seconds)

        made: list[Restriction] = []
        if kind in ("delisting", "trading_halt"):
            made = [
                Restriction("block_entries", until(r.halt_block_s), info, c, action=r.halt_action)
                for c in coins
            ]
        elif kind == "listing" and r.listing == "block":
            made = [
                Restriction("block_entries", until(r.listing_cooloff_s), info, c) for c in coins
            ]
        elif kind == "maintenance":
            venue = VENUE_OF_SOURCE.get(key[0], key[0])
            made = [Restriction("pause_venue", until(r.maintenance_pause_s), info, venue=venue)]
        elif key[0] == "sec" and float(event.get("impact") or 0) >= r.sec_min_impact:
            made = [
                Restriction("tighten", until(r.sec_tighten_s), info, c, factor=r.sec_tighten_factor)
                for c in coins
            ]
        self.restrictions.extend(made)
        for m in made:
            log.warning("event risk: %s %s: %s", m.rule, m.coin or m.venue, m.why())
        return made

    def active(self, now: datetime) -> list[Restriction]:
        return [x for x in self.restrictions if x.until > now]

    def blocked(self, coin: str, now: datetime) -> Restriction | None:
        return next(
            (x for x in self.active(now) if x.rule == "block_entries" and x.coin == coin), None
        )

    def paused(self, venue: str | None, now: datetime) -> Restriction | None:
        if venue is None:
            return None
        return next(
            (x for x in self.active(now) if x.rule == "pause_venue" and x.venue == venue), None
        )

    def tightened(self, coin: str, now: datetime) -> Restriction | None:
        found = [x for x in self.active(now) if x.rule == "tighten" and x.coin == coin]
        return min(found, key=lambda x: x.factor or 1.0) if found else None

    def to_sell(
        self, account: str, coins: set[str], now: datetime
    ) -> list[tuple[Restriction, float]]:
        """(restriction, share of the position to sell) a session of `account` holding
        `coins` still has to act on (`reduce`: half, `close`: all), each event once."""
        out = []
        for x in self.active(now):
            mark = (x.event["source"], x.event["event_id"], account)
            selling = x.rule == "block_entries" and x.action != "block" and x.coin in coins
            if selling and mark not in self.acted:
                self.acted.add(mark)
                out.append((x, 0.5 if x.action == "reduce" else 1.0))
        return out

    def load(self, engine: Engine, now: datetime | None = None) -> list[Restriction]:
        """Apply the stored events published within `max_age_s`."""
        from omc.ledgers.models import CatalystEvent

        now = now or utcnow()
        t = CatalystEvent.__table__
        since = now - timedelta(seconds=self.rules.max_age_s)
        with engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.published_at >= since)).all()
        made: list[Restriction] = []
        for row in rows:
            made += self.apply(dict(row._mapping), now)
        return made

    def attach(self, bus: Bus, engine: Engine) -> EventRisk:
        """React to every collector run at once (module doc)."""

        def on_run(_topic: str, _event: dict[str, Any]) -> None:
            self.load(engine)

        bus.subscribe("collector.run", on_run)
        self.load(engine)
        return self


def act_in_session(session: TradingSession, events: EventRisk, told: set[str]) -> int:
    """After a session's bar: journal each restriction touching its symbols or venue once
    (a `warning`, code `event_risk`, with the event), and sell what `halt_action` asks of
    its positions in a delisted or halted coin. Returns the orders placed."""
    from omc.floor.venues.base import Side

    now = session.now
    symbols = session.ctx.symbols
    coins = {s.split("/")[0].upper() for s in symbols}
    venue = getattr(session.guard, "venue", None)
    for x in events.active(now):
        key = f"{x.event['source']}:{x.event['event_id']}:{x.rule}:{x.coin or x.venue}"
        if key in told or not (x.coin in coins or (x.venue is not None and x.venue == venue)):
            continue
        told.add(key)
        data = {"code": "event_risk", "message": x.why(), **x.as_dict()}
        session.journal.append("warning", data, ts=now, strategy=session.strategy_name)
    placed = 0
    for x, share in events.to_sell(session.account, coins, now):
        for symbol in symbols:
            qty = session.state.book.position(symbol, session.strategy_name)
            if symbol.split("/")[0].upper() != x.coin or qty <= 0:
                continue
            spec = session.oms.instrument(symbol) or InstrumentSpec(symbol, EIGHT_DECIMALS)
            sell = spec.floor_quantity(qty * Decimal(repr(share)))
            if sell > 0:
                reason = {"event_risk": x.as_dict()}
                session.oms.place(
                    session.strategy_name, symbol, Side.SELL, sell, now=now, reason=reason
                )
                placed += 1
    return placed
