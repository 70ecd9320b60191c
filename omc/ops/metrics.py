"""Prometheus metrics of OMC, every one defined here and computed from the database at scrape
time (`OmcCollector`): whatever process serves them (`omc metrics serve`, the API's
`/metrics`), they are true for the whole system, not for one process's counters.

* collectors (label `collector`, `ledger`): runs by status, rows fetched / inserted / updated
  / duplicates, seconds since the last successful run, the expected interval, the state of
  `omc status` (fresh, degraded, stale, failing, never), quarantined items and occurrences;
* ledgers: the freshest collector's lag as a multiple of its interval (`> 3` is stale);
* alerts: raised per source and kind, the latest one's latency from publication to raised
  and to its last delivery, deliveries of the last 24 h by notifier and status;
* trading (label `account`): orders, fills, Guard denials by reason, equity, net P&L,
  drawdown, today's loss and its share of the daily-loss limit, the trading state, and the
  kill switch — rebuilt incrementally from `floor_journal` (only new events are read);
* the Lab: sessions by status and approval;
* the job queue (`omc.ops.queue.metrics`): jobs by kind and status, dead letters, job run
  times, messages waiting per queue;
* `omc_database_up`: 0 when the database could not be read (then nothing else is shown).

`registry(engine, settings)` builds a registry with these and the process metrics;
`serve(registry, host, port)` starts prometheus_client's HTTP server on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from omc.core.config import Settings
from omc.core.time import ensure_utc, utcnow
from omc.floor.models import KillSwitch
from omc.floor.trading.guard import GuardLimits
from omc.floor.trading.journal import TradingState, accounts, stored_after
from omc.lab.models import LabSession
from omc.ledgers.collectors.registry import COLLECTORS
from omc.ledgers.models import Alert, CollectorRun, QuarantinedItem
from omc.ledgers.status import collector_health
from omc.ops.queue.metrics import QueueCollector

log = logging.getLogger(__name__)

RUN_COUNTS = ("fetched", "inserted", "updated", "duplicates")
ALERT_WINDOW = timedelta(hours=24)


def ledger_of(collector: str) -> str:
    """`coinspot` -> `exchange` (the package of its class under `omc.ledgers`)."""
    target = COLLECTORS.get(collector, "")
    parts = target.split(":", 1)[0].split(".")
    return parts[2] if len(parts) > 3 and parts[:2] == ["omc", "ledgers"] else "unknown"


def _seconds(moment: datetime | None) -> float | None:
    return None if moment is None else ensure_utc(moment).timestamp()


@dataclass
class _Account:
    """One account's state, kept between scrapes: only events after `last_seq` are read."""

    state: TradingState = field(default_factory=TradingState)
    last_seq: int = 0


class OmcCollector(Collector):
    """Every OMC metric, read from the database when Prometheus scrapes."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        limits: GuardLimits | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.limits = limits or GuardLimits()
        self.now = now
        self.accounts: dict[str, _Account] = {}
        self._lock = threading.Lock()  # scrapes may overlap: the account cache is shared

    def describe(self) -> Iterable[Metric]:
        return []  # no database read when the collector is registered

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        up = GaugeMetricFamily("omc_database_up", "1 when the database could be read.")
        try:
            with self._lock:
                families = [*self._collectors(), *self._alerts(), *self._trading(), *self._lab()]
        except SQLAlchemyError as exc:
            log.warning("metrics: database not readable: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield from families
        yield up
        took = GaugeMetricFamily(
            "omc_metrics_scrape_seconds", "Time spent reading the metrics from the database."
        )
        took.add_metric([], time.perf_counter() - started)
        yield took

    # --- collectors and ledgers -----------------------------------------------------------
    def _collectors(self) -> list[Metric]:
        labels = ["collector", "ledger"]
        runs = CounterMetricFamily(
            "omc_collector_runs", "Collector runs by final status.", labels=[*labels, "status"]
        )
        rows = CounterMetricFamily(
            "omc_collector_rows",
            "Items fetched and rows inserted / updated / found duplicate by collector runs.",
            labels=[*labels, "kind"],
        )
        r = CollectorRun.__table__.c
        sums = [func.coalesce(func.sum(getattr(r, k)), 0) for k in RUN_COUNTS]
        query = select(r.collector, r.status, func.count(), *sums).group_by(r.collector, r.status)
        q = QuarantinedItem.__table__.c
        quarantine_query = select(
            q.collector, func.count(), func.coalesce(func.sum(q.occurrences), 0)
        ).group_by(q.collector)
        totals: dict[tuple[str, str], list[int]] = {}
        with self.engine.connect() as conn:
            for collector, status, count, *counts in conn.execute(query):
                runs.add_metric([collector, ledger_of(collector), status], count)
                acc = totals.setdefault((collector, ledger_of(collector)), [0] * len(RUN_COUNTS))
                for i, value in enumerate(counts):
                    acc[i] += int(value)
            quarantined = conn.execute(quarantine_query).all()
        for key, counts in sorted(totals.items()):
            for kind, value in zip(RUN_COUNTS, counts, strict=True):
                rows.add_metric([*key, kind], value)
        items = GaugeMetricFamily(
            "omc_quarantine_items", "Distinct payloads in the quarantine.", labels=labels
        )
        seen = CounterMetricFamily(
            "omc_quarantine_occurrences", "Bad payloads seen (repeats counted).", labels=labels
        )
        for collector, count, occurrences in quarantined:
            items.add_metric([collector, ledger_of(collector)], count)
            seen.add_metric([collector, ledger_of(collector)], int(occurrences))
        return [runs, rows, items, seen, *self._freshness()]

    def _freshness(self) -> list[Metric]:
        labels = ["collector", "ledger"]
        last = GaugeMetricFamily(
            "omc_collector_last_success_timestamp_seconds",
            "When the collector's last ok run finished (Unix time).",
            labels=labels,
        )
        lag = GaugeMetricFamily(
            "omc_collector_lag_seconds", "Seconds since the last ok run finished.", labels=labels
        )
        interval = GaugeMetricFamily(
            "omc_collector_interval_seconds", "The collector's configured interval.", labels=labels
        )
        state = GaugeMetricFamily(
            "omc_collector_state",
            "1 for the collector's state in `omc status` (fresh, degraded, stale, failing, never).",
            labels=[*labels, "state"],
        )
        ledger_ratio = GaugeMetricFamily(
            "omc_ledger_staleness_ratio",
            "Lag of the ledger's freshest collector in multiples of its interval "
            "(collectors that never succeeded do not count).",
            labels=["ledger"],
        )
        best: dict[str, float] = {}
        for row in collector_health(self.engine, self.settings, self.now()):
            key = [row["collector"], ledger_of(row["collector"])]
            state.add_metric([*key, row["state"]], 1)
            if row["interval_s"]:
                interval.add_metric(key, row["interval_s"])
            stamp = _seconds(row["last_success"])
            if stamp is None or row["age_s"] is None:
                continue
            last.add_metric(key, stamp)
            lag.add_metric(key, row["age_s"])
            if row["interval_s"]:
                ratio = row["age_s"] / row["interval_s"]
                best[key[1]] = min(best.get(key[1], ratio), ratio)
        for ledger, ratio in sorted(best.items()):
            ledger_ratio.add_metric([ledger], ratio)
        return [last, lag, interval, state, ledger_ratio]

    # --- alerts ---------------------------------------------------------------------------
    def _alerts(self) -> list[Metric]:
        a = Alert.__table__.c
        raised = CounterMetricFamily(
            "omc_alerts", "Alerts raised, by source and kind.", labels=["source", "kind"]
        )
        latency = GaugeMetricFamily(
            "omc_alert_latency_seconds",
            "The latest alert's latency from the event's publication to `raised` and to its "
            "last finished delivery (`delivered`).",
            labels=["source", "kind", "stage"],
        )
        last_raised = GaugeMetricFamily(
            "omc_alert_last_raised_timestamp_seconds",
            "When the latest alert of each source and kind was raised (Unix time).",
            labels=["source", "kind"],
        )
        deliveries = GaugeMetricFamily(
            "omc_alert_deliveries",
            "Deliveries of the alerts raised in the last 24 h, by notifier and status.",
            labels=["notifier", "status"],
        )
        since = self.now() - ALERT_WINDOW
        with self.engine.connect() as conn:
            counts = conn.execute(
                select(a.source, a.kind, func.count(), func.max(a.id)).group_by(a.source, a.kind)
            ).all()
            latest_ids = [row[3] for row in counts]
            latest = conn.execute(
                select(a.source, a.kind, a.published_at, a.raised_at, a.deliveries).where(
                    a.id.in_(latest_ids)
                )
            ).all()
            recent = conn.execute(select(a.deliveries).where(a.raised_at >= since)).scalars()
            tally: dict[tuple[str, str], int] = {}
            for outcome in recent:
                for notifier, result in (outcome or {}).items():
                    key = (notifier, str((result or {}).get("status", "unknown")))
                    tally[key] = tally.get(key, 0) + 1
        for source, kind, count, _ in counts:
            raised.add_metric([source, kind], count)
        for source, kind, published, raised_at, outcome in latest:
            last_raised.add_metric([source, kind], ensure_utc(raised_at).timestamp())
            if published is None:
                continue
            start = ensure_utc(published)
            latency.add_metric([source, kind, "raised"], (raised_at - start).total_seconds())
            ends = [
                datetime.fromisoformat(r["at"])
                for r in (outcome or {}).values()
                if isinstance(r, dict) and r.get("at") and r.get("status") != "pending"
            ]
            if ends:
                delivered = (max(ensure_utc(e) for e in ends) - start).total_seconds()
                latency.add_metric([source, kind, "delivered"], delivered)
        for (notifier, status), n in sorted(tally.items()):
            deliveries.add_metric([notifier, status], n)
        return [raised, latency, last_raised, deliveries]

    # --- trading --------------------------------------------------------------------------
    def _refresh_accounts(self) -> None:
        for name in accounts(self.engine):
            account = self.accounts.setdefault(name, _Account())
            for seq, event in stored_after(self.engine, name, account.last_seq):
                account.state.apply(event)
                account.last_seq = seq

    def _trading(self) -> list[Metric]:
        self._refresh_accounts()
        labels = ["account"]
        orders = CounterMetricFamily("omc_orders", "Orders placed.", labels=labels)
        fills = CounterMetricFamily("omc_fills", "Fills (trades) booked.", labels=labels)
        denials = CounterMetricFamily(
            "omc_guard_denials", "Orders the Guard denied, by reason.", labels=[*labels, "reason"]
        )
        gauges = {
            name: GaugeMetricFamily(f"omc_account_{name}", text, labels=labels)
            for name, text in (
                ("equity", "Equity at the latest marks (quote currency)."),
                ("net_pnl", "Realised + unrealised P&L net of fees (quote currency)."),
                ("drawdown_ratio", "Drawdown of equity from its peak (0.1 = 10 %)."),
                ("daily_loss", "Loss since the start of the UTC day (quote currency)."),
                (
                    "daily_loss_limit_ratio",
                    "Today's loss as a share of the Guard's daily-loss limit (1 = limit hit).",
                ),
            )
        }
        mode = GaugeMetricFamily(
            "omc_account_trading_state",
            "1 for the account's trading state (active, reducing, halted).",
            labels=[*labels, "state"],
        )
        lim = self.limits
        for name, account in sorted(self.accounts.items()):
            state, book = account.state, account.state.book
            orders.add_metric([name], len(state.orders))
            fills.add_metric([name], sum(book.fills.values()))
            for code, n in sorted(state.denials.items()):
                denials.add_metric([name, code], n)
            summary = book.summary()
            loss = book.daily_loss()
            limit = lim.daily_loss_limit(book.day_start_equity)
            values = {
                "equity": summary["equity"],
                "net_pnl": summary["net_pnl"],
                "drawdown_ratio": summary["drawdown"],
                "daily_loss": loss,
                "daily_loss_limit_ratio": loss / limit if limit > 0 else Decimal(0),
            }
            for key, value in values.items():
                gauges[key].add_metric([name], float(value))
            mode.add_metric([name, state.trading], 1)
        k = KillSwitch.__table__.c
        with self.engine.connect() as conn:
            active = conn.execute(select(k.active).where(k.scope == "global")).scalar()
        kill = GaugeMetricFamily("omc_kill_switch_engaged", "1 while the kill switch is on.")
        kill.add_metric([], 1 if active else 0)
        return [orders, fills, denials, *gauges.values(), mode, kill]

    # --- the Lab --------------------------------------------------------------------------
    def _lab(self) -> list[Metric]:
        s = LabSession.__table__.c
        sessions = GaugeMetricFamily(
            "omc_lab_sessions",
            "Lab sessions by status and approval.",
            labels=["status", "approval"],
        )
        query = select(s.status, s.approval, func.count()).group_by(s.status, s.approval)
        with self.engine.connect() as conn:
            for status, approval, n in conn.execute(query):
                sessions.add_metric([status, approval], n)
        return [sessions]


def registry(engine: Engine, settings: Settings, limits: GuardLimits | None = None) -> Any:
    """A registry with OMC's metrics and the process's (CPU, memory, open files)."""
    reg = CollectorRegistry()
    ProcessCollector(registry=reg)
    PlatformCollector(registry=reg)
    reg.register(OmcCollector(engine, settings, limits))
    reg.register(QueueCollector(engine))
    return reg


def serve(reg: CollectorRegistry, host: str, port: int) -> Any:
    """Serve `reg` at http://host:port/metrics in a background thread; returns the server."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=reg)
    return server
