"""The demotion monitor at work: a `Watcher` per registered strategy instance, brought up to
date from its account's journal since its stage began (`scan`), then fed every bar of a
running session (`on_bar`); on a breach it demotes the strategy and acts (`omc.floor.book.
monitor` explains the rules and what is done).

`check_book` is one pass over every paper and live strategy outside any session (`omc
strategies check`): each is scanned and a breach demotes it and alerts; the orders of an
account nobody runs are left to its next session, which finds the strategy demoted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from omc.core.time import utcnow
from omc.floor.book.monitor import Breach, Monitor, MonitorSettings, RoundTrips
from omc.floor.book.promotion import Check, demote
from omc.floor.book.registry import ACTIVE_STAGES, LIVE_STAGES, Entry, entries, get, instance_id
from omc.floor.trading.journal import Journal, TradingState
from omc.floor.trading.modes import Mode, set_mode

if TYPE_CHECKING:
    from omc.core.events import Bus
    from omc.floor.trading.session import TradingSession

log = logging.getLogger(__name__)
TOPIC = "book.demoted"


class Alerts:
    """Where a demotion is told: the bus (`book.demoted`) and the notifiers (each on its own
    thread: a slow webhook never holds up trading)."""

    def __init__(self, bus: Bus | None = None, notifiers: Iterable[Any] = ()) -> None:
        self.bus = bus
        self.notifiers = list(notifiers)
        self.threads: list[threading.Thread] = []
        self.sent: list[dict[str, Any]] = []

    def send(self, alert: dict[str, Any]) -> None:
        self.sent.append(alert)
        if self.bus is not None:
            self.bus.publish(TOPIC, alert)
        for notifier in self.notifiers:
            t = threading.Thread(target=self._deliver, args=(notifier, alert), daemon=True)
            t.start()
            self.threads.append(t)

    @staticmethod
    def _deliver(notifier: Any, alert: dict[str, Any]) -> None:
        try:
            notifier.send(alert)
        except Exception as exc:  # masked by the notifier; trading goes on
            log.warning("demotion alert not delivered by %s: %s", notifier.name, exc)

    def wait(self, timeout_s: float = 30.0) -> None:
        for t in self.threads:
            t.join(timeout_s)


def _alert(before: Entry, after: Entry, breach: Breach, symbols: Iterable[str]) -> dict[str, Any]:
    return {
        "kind": "strategy_demoted",
        "coins": sorted({s.split("/")[0] for s in symbols}),
        "title": f"{after.name} ({after.id}, {after.account}) demoted {before.stage} → "
        f"{after.stage}: {breach.detail}",
        "strategy_id": after.id,
        "account": after.account,
        "from": before.stage,
        "to": after.stage,
        "rule": breach.rule,
        "ts": utcnow().isoformat(),
    }


class Watcher:
    """One strategy instance under watch (module doc)."""

    def __init__(
        self,
        engine: Engine,
        entry: Entry,
        *,
        settings: MonitorSettings | None = None,
        alerts: Alerts | None = None,
    ) -> None:
        self.engine = engine
        self.entry = entry
        self.monitor = Monitor(entry.expectations, settings)
        self.trips = RoundTrips(entry.name)
        self.denials: dict[str, int] = {}
        self.alerts = alerts or Alerts()
        self.demoted: Entry | None = None

    def prime(self, state: TradingState) -> None:
        """Start from `state` (the account as its stage began): its open trades and past
        denials are not this stage's results."""
        self.trips.poll(state.book)
        self.trips.open.clear()
        self.denials = dict(state.denials)

    def observe(self, state: TradingState) -> Breach | None:
        """Feed the results since the last call (closed trades, equity, denials)."""
        m = self.monitor
        for r in self.trips.poll(state.book):
            m.trade(r)
        m.equity(state.book.equity())
        for code, n in state.denials.items():
            new = n - self.denials.get(code, 0)
            if new > 0:
                m.denial(code, new)
        self.denials = dict(state.denials)
        return m.breach

    def on_bar(self, session: TradingSession) -> bool:
        """After a session's bar: True once the strategy is demoted (the session stops)."""
        if self.demoted is not None:
            return True
        breach = self.observe(session.state)
        if breach is None or self.entry.stage not in ACTIVE_STAGES:
            return False
        self.act(breach, session)
        return True

    def act(self, breach: Breach, session: TradingSession | None = None) -> Entry:
        """Demote (a live stage to `paper`, `paper` to `research`), recorded with the rule;
        a running session cancels its working orders, halts the account and stops."""
        before = get(self.engine, self.entry.id)
        to = "paper" if before.stage in LIVE_STAGES else "research"
        data = breach.as_dict() | {"health": self.monitor.health()}
        after = demote(
            self.engine, before.id, actor="monitor", reason=breach.detail, to=to, data=data
        )
        symbols: Iterable[str] = ()
        if session is not None:
            now = session.now
            cancelled = session.oms.cancel_all(now)
            set_mode(
                session.oms,
                Mode.HALTED,
                "demoted",
                now,
                bus=self.alerts.bus,
                details={"strategy_id": before.id, "rule": breach.rule, "cancelled": cancelled},
                strategy=session.strategy_name,
            )
            session.journal.flush()
            session.stopped = f"demoted to {to} ({breach.rule}): {breach.detail}"
            symbols = session.ctx.symbols
        self.demoted = self.entry = after
        self.alerts.send(_alert(before, after, breach, symbols))
        return after

    def health(self) -> dict[str, Any]:
        return self.monitor.health() | {"stage": self.entry.stage}


def scan(
    engine: Engine,
    entry: Entry,
    *,
    settings: MonitorSettings | None = None,
    alerts: Alerts | None = None,
) -> Watcher:
    """A watcher brought up to date from the account's journal (results after the stage
    began); `watcher.monitor.breach` is set when a rule is already broken."""
    w = Watcher(engine, entry, settings=settings, alerts=alerts)
    state = TradingState()
    primed = False
    for e in Journal(engine, entry.account).stored():
        if not primed and e.ordinal > entry.stage_mark:
            w.prime(state)
            primed = True
        state.apply(e)
        if primed and e.kind == "bar":
            w.observe(state)
    if not primed:
        w.prime(state)
    elif state.events:
        w.observe(state)
    return w


def session_watcher(
    engine: Engine,
    session: TradingSession,
    *,
    settings: MonitorSettings | None = None,
    alerts: Alerts | None = None,
) -> Watcher | None:
    """The watcher of a running session's registered instance (None: not registered)."""
    sid = instance_id(session.account, session.strategy_name, session.strategy.params)
    try:
        entry = get(engine, sid)
    except ValueError:
        return None
    return scan(engine, entry, settings=settings, alerts=alerts)


def check_book(
    engine: Engine,
    *,
    settings: MonitorSettings | None = None,
    alerts: Alerts | None = None,
    divergence: Callable[[Entry], Check] | None = None,
    demote_breaches: bool = True,
) -> list[dict[str, Any]]:
    """One pass over every paper and live strategy (module doc): their health, demoting
    those that broke a rule (divergence too, when a check is given)."""
    out = []
    for entry in entries(engine):
        if entry.stage not in ACTIVE_STAGES:
            continue
        w = scan(engine, entry, settings=settings, alerts=alerts)
        breach = w.monitor.breach
        if breach is None and divergence is not None and w.monitor.watched:
            check = divergence(entry)
            if not check.ok and not check.detail.startswith("no divergence report"):
                breach = w.monitor.breach = Breach("divergence", f"divergence: {check.detail}")
        row: dict[str, Any] = {"id": entry.id, "name": entry.name, "account": entry.account}
        row |= w.health()
        if breach is not None and demote_breaches:
            row["demoted_to"] = w.act(breach).stage
        out.append(row)
    return out


def health_of(
    engine: Engine, entry: Entry, settings: MonitorSettings | None = None
) -> Mapping[str, Any]:
    """An instance's health without acting (`omc status`, `omc strategies show`)."""
    if entry.stage not in ACTIVE_STAGES:
        return {"status": entry.stage, "stage": entry.stage}
    return scan(engine, entry, settings=settings).health()


def book_status(engine: Engine) -> list[dict[str, Any]]:
    """Every registered strategy's stage and health (`omc status`)."""
    out = []
    for entry in entries(engine):
        h = dict(health_of(engine, entry))
        row = {"id": entry.id, "name": entry.name, "account": entry.account, "stage": entry.stage}
        out.append(
            row
            | {"health": h.get("status"), "trades": h.get("trades")}
            | ({"breach": h["breach"]["detail"]} if h.get("breach") else {})
        )
    return out
