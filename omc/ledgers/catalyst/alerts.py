"""Listing alerts: raised once per listing from stored catalyst events, then delivered.

Flow: the announcements collector stores events; the runner publishes `collector.run`; the
`AlertEngine` (subscribed on the bus) looks for stored events of an alerting kind (default: a
CoinSpot `listing`) that have no alert yet, published within `max_age` (so a first run over
years of history does not page anyone), and inserts one `alerts` row per event with
`INSERT … ON CONFLICT (source, event_id, kind, coin) DO NOTHING`. Only the inserter of a row
publishes `alert.raised` on the bus and hands the alert to the notifiers — so a re-poll, an
edit of the article, a second process or a race can never raise it twice.

A coin added to an already-alerted event by a later edit (a listing announcement updated to
name one more coin) raises its own alert, once: `coin` is that coin, `coins` is `[coin]`. The
first alert of an event has `coin=''` and names all the coins it had then. Edits are looked
at while the event is recent or was revised within `max_age`.

Delivery runs on a thread pool, one task per notifier: a slow or failing notifier never
blocks the others nor the collector. Transient failures are retried (HTTP helper), and each
notifier's outcome — `ok` or `failed`, attempts, time, masked error — is merged into the
alert's `deliveries` JSON. `redeliver()` retries the notifiers that failed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, and_, exists, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from omc.core.config import Settings
from omc.core.events import EventBus
from omc.core.time import utcnow
from omc.ledgers.catalyst.notifiers import Notifier, NotifyError, notifiers_from_settings
from omc.ledgers.models import Alert, CatalystEvent, CatalystEventRevision

log = logging.getLogger(__name__)

DEFAULT_RULES: tuple[tuple[str, str], ...] = (("announcements", "listing"),)
ALERTS = cast(Table, Alert.__table__)
EVENTS = cast(Table, CatalystEvent.__table__)
REVISIONS = cast(Table, CatalystEventRevision.__table__)


def alert_dict(row: Any) -> dict[str, Any]:
    """An `alerts` row as the JSON-able event published on the bus."""
    data = dict(row._mapping)
    data.pop("deliveries", None)
    for key in ("published_at", "raised_at"):
        if isinstance(data.get(key), datetime):
            data[key] = data[key].isoformat()
    return data


class AlertEngine:
    """Raises alerts from stored events (exactly once each) and delivers them."""

    def __init__(
        self,
        engine: Engine,
        bus: EventBus | None = None,
        notifiers: Iterable[Notifier] = (),
        *,
        rules: Iterable[tuple[str, str]] = DEFAULT_RULES,
        max_age: timedelta = timedelta(days=1),
        clock: Callable[[], datetime] = utcnow,
        max_workers: int = 4,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.notifiers = list(notifiers)
        self.rules = tuple(rules)
        self.max_age = max_age
        self.clock = clock
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="omc-notify")
        self.pending: set[Future[None]] = set()
        self.lock = threading.Lock()
        self.scan_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, engine: Engine, bus: EventBus | None, settings: Settings, **kwargs: Any
    ) -> AlertEngine:
        return cls(engine, bus, notifiers_from_settings(settings), **kwargs)

    def attach(self) -> AlertEngine:
        """Subscribe to `collector.run` so each run of an alerting source is checked at once."""
        if self.bus is not None:
            self.bus.subscribe("collector.run", self._on_run)
        return self

    def _on_run(self, _topic: str, event: dict[str, Any]) -> None:
        sources = {source for source, _ in self.rules}
        if event.get("collector") in sources and (event.get("inserted") or event.get("updated")):
            self.raise_pending()

    # ------------------------------------------------------------------ raising

    def raise_pending(self) -> list[dict[str, Any]]:
        """Raise an alert for every stored, recent, alert-worthy event that has none."""
        since = self.clock() - self.max_age
        raised: list[dict[str, Any]] = []
        with self.scan_lock:  # one scan at a time in this process; the UQ guards the rest
            for source, kind in self.rules:
                query = (
                    select(EVENTS)
                    .outerjoin(
                        ALERTS,
                        and_(
                            ALERTS.c.source == EVENTS.c.source,
                            ALERTS.c.event_id == EVENTS.c.event_id,
                            ALERTS.c.kind == kind,
                        ),
                    )
                    .where(
                        EVENTS.c.source == source,
                        EVENTS.c.kind == kind,
                        EVENTS.c.published_at >= since,
                        ALERTS.c.id.is_(None),
                    )
                    .order_by(EVENTS.c.published_at)
                )
                with self.engine.connect() as conn:
                    candidates = conn.execute(query).fetchall()
                for event in candidates:
                    alert = self._insert(event, kind, "", event.coins)
                    if alert is not None:
                        raised.append(alert)
                raised += self._added_coins(source, kind, since)
        for alert in raised:
            log.warning("ALERT %s: %s %s", alert["kind"], alert["title"], alert.get("coins"))
            if self.bus is not None:
                self.bus.publish("alert.raised", alert)
            self.deliver(alert)
        return raised

    def _added_coins(self, source: str, kind: str, since: datetime) -> list[dict[str, Any]]:
        """Alerts for coins that edits added to already-alerted, recently revised events."""
        revised = exists().where(
            REVISIONS.c.source == EVENTS.c.source,
            REVISIONS.c.event_id == EVENTS.c.event_id,
            REVISIONS.c.revision >= since,
        )
        alerted = exists().where(
            ALERTS.c.source == EVENTS.c.source,
            ALERTS.c.event_id == EVENTS.c.event_id,
            ALERTS.c.kind == kind,
        )
        with self.engine.connect() as conn:
            events = conn.execute(
                select(EVENTS)
                .where(
                    EVENTS.c.source == source,
                    EVENTS.c.kind == kind,
                    alerted,
                    or_(EVENTS.c.published_at >= since, revised),
                )
                .order_by(EVENTS.c.published_at)
            ).fetchall()
            ids = [e.event_id for e in events]
            covered: dict[str, set[str]] = {}
            if ids:
                for row in conn.execute(
                    select(ALERTS.c.event_id, ALERTS.c.coin, ALERTS.c.coins).where(
                        ALERTS.c.source == source,
                        ALERTS.c.kind == kind,
                        ALERTS.c.event_id.in_(ids),
                    )
                ):
                    seen = covered.setdefault(row.event_id, set())
                    seen.update(row.coins or [])
                    if row.coin:
                        seen.add(row.coin)
        raised = []
        for event in events:
            for coin in event.coins or []:
                if coin in covered.get(event.event_id, set()):
                    continue
                alert = self._insert(event, kind, coin, [coin])
                if alert is not None:
                    raised.append(alert)
        return raised

    def _insert(
        self, event: Any, kind: str, coin: str, coins: list[str] | None
    ) -> dict[str, Any] | None:
        values = {
            "source": event.source,
            "event_id": event.event_id,
            "kind": kind,
            "coin": coin,
            "title": event.title,
            "coins": coins,
            "url": event.url,
            "published_at": event.published_at,
            "raised_at": utcnow(),
            "deliveries": {n.name: {"status": "pending"} for n in self.notifiers},
        }
        with self.engine.begin() as conn:
            dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            statement = (
                dialect_insert(ALERTS)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["source", "event_id", "kind", "coin"])
                .returning(*ALERTS.c)
            )
            row = conn.execute(statement).first()
        return alert_dict(row) if row is not None else None

    # ------------------------------------------------------------------ delivery

    def deliver(self, alert: dict[str, Any], only: Iterable[str] | None = None) -> None:
        """Send `alert` to every notifier (or those named in `only`), each on its own task."""
        names = set(only) if only is not None else None
        for notifier in self.notifiers:
            if names is not None and notifier.name not in names:
                continue
            future = self.pool.submit(self._deliver_one, alert, notifier)
            with self.lock:
                self.pending.add(future)
            future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self.lock:
            self.pending.discard(future)

    def _deliver_one(self, alert: dict[str, Any], notifier: Notifier) -> None:
        started = utcnow()
        try:
            attempts = notifier.send(alert)
            outcome: dict[str, Any] = {"status": "ok", "attempts": attempts}
        except NotifyError as exc:
            outcome = {"status": "failed", "error": str(exc)[:500]}
            log.warning("alert %s: %s delivery failed: %s", alert["id"], notifier.name, exc)
        except Exception as exc:  # a notifier bug must not kill the pool thread silently
            outcome = {"status": "failed", "error": notifier.mask(f"{type(exc).__name__}: {exc}")}
            log.warning("alert %s: %s crashed: %s", alert["id"], notifier.name, outcome["error"])
        outcome["at"] = utcnow().isoformat()
        outcome["seconds"] = round((utcnow() - started).total_seconds(), 3)
        outcome["target"] = notifier.describe()
        self._record(int(alert["id"]), notifier.name, outcome)
        if self.bus is not None:
            self.bus.publish(
                "alert.delivery", {"alert_id": alert["id"], "notifier": notifier.name, **outcome}
            )

    def _record(self, alert_id: int, name: str, outcome: dict[str, Any]) -> None:
        with self.lock, self.engine.begin() as conn:  # read-modify-write of one JSON column
            current = conn.execute(
                select(ALERTS.c.deliveries).where(ALERTS.c.id == alert_id)
            ).scalar_one_or_none()
            deliveries = dict(current or {})
            previous = deliveries.get(name) or {}
            outcome["tries"] = int(previous.get("tries", 0)) + 1
            deliveries[name] = outcome
            conn.execute(
                update(ALERTS).where(ALERTS.c.id == alert_id).values(deliveries=deliveries)
            )

    def redeliver(self) -> int:
        """Retry every notifier whose delivery failed or never finished; returns tasks started."""
        started = 0
        with self.engine.connect() as conn:
            rows = conn.execute(select(ALERTS).order_by(ALERTS.c.id)).fetchall()
        for row in rows:
            deliveries = row.deliveries or {}
            names = [
                n.name
                for n in self.notifiers
                if (deliveries.get(n.name) or {}).get("status") != "ok"
            ]
            if names:
                self.deliver(alert_dict(row), names)
                started += len(names)
        return started

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every started delivery finished; False on timeout."""
        with self.lock:
            pending = set(self.pending)
        _done, not_done = wait(pending, timeout=timeout)
        return not not_done

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def list_alerts(engine: Engine, limit: int = 50) -> list[dict[str, Any]]:
    """The newest alerts, newest first, as dicts (for `omc alerts`)."""
    return alerts_page(engine, limit=limit)[0]


def alerts_page(
    engine: Engine,
    *,
    limit: int = 50,
    before: int | None = None,
    after: int | None = None,
    kind: str | None = None,
    source: str | None = None,
    coin: str | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """Alerts newest first (by id) — those with id < `before` / > `after` when given, of
    `kind`, `source`, naming `coin` — as dicts with their deliveries; and whether more follow."""
    query = select(ALERTS)
    for column, value in (("kind", kind), ("source", source)):
        if value is not None:
            query = query.where(ALERTS.c[column] == value)
    if before is not None:
        query = query.where(ALERTS.c.id < before)
    if after is not None:
        query = query.where(ALERTS.c.id > after)
    query = query.order_by(ALERTS.c.id.desc())
    with engine.connect() as conn:
        if coin is None:
            rows = conn.execute(query.limit(limit + 1)).fetchall()
        else:  # `coins` is JSON: filtered here
            wanted = coin.upper()
            rows = [
                r
                for r in conn.execute(query)
                if r.coin.upper() == wanted or wanted in [c.upper() for c in (r.coins or [])]
            ][: limit + 1]
    found = [{**alert_dict(row), "deliveries": row.deliveries or {}} for row in rows[:limit]]
    return found, len(rows) > limit
