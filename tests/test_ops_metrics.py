"""Metrics computed from the database (`omc.ops.metrics`): collector runs, rows, lag and
quarantine from real runner runs; a paper session's orders, fills, denials and P&L equal to
`omc pnl`; alert latency; the kill switch; Lab sessions; the HTTP endpoint; a database that
cannot be read shows `omc_database_up 0` instead of failing the scrape."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, insert

from omc.core.config import Settings
from omc.core.db import make_engine
from omc.floor.trading.guard import GuardLimits, KillSwitchStore
from omc.floor.trading.journal import Journal
from omc.lab.session.store import save_session
from omc.ledgers.collectors.base import Collected, Collector, CollectorRunner, Rejected, Rows
from omc.ledgers.models import Alert, NewsItem
from omc.ops.metrics import OmcCollector, ledger_of, registry, serve
from tests.test_cli_errors import isolated
from tests.test_cli_reports import REPLAY, omc_ok, short_file
from tests.test_collector_runner import news_row

__all__ = ["isolated", "short_file"]  # autouse: a fresh data dir and a candle file per test

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(reg: Any) -> Samples:
    text = generate_latest(reg).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


class News(Collector):
    name = "news"

    def __init__(self, n: int, bad: int = 0) -> None:
        self.n, self.bad = n, bad

    def collect(self) -> Collected:
        rows = [news_row(f"id-{i}", f"title {i}") for i in range(self.n)]
        rejected = [Rejected("no title", {"i": i}) for i in range(self.bad)]
        return Collected(rows=[Rows(NewsItem.__table__, rows)], rejected=rejected, fetched=5)


class Broken(Collector):
    name = "sec"

    def collect(self) -> Collected:
        raise RuntimeError("boom")


def test_collectors_ledgers_alerts_lab_and_kill_switch(engine: Engine) -> None:
    runner = CollectorRunner(engine)
    runner.run(News(3))
    runner.run(News(3, bad=2))  # 3 duplicates, 2 quarantined: partial
    assert runner.run(Broken()).status == "failed"
    published = datetime.now(UTC) - timedelta(seconds=30)
    with engine.begin() as conn:
        conn.execute(
            insert(Alert.__table__),
            {
                "source": "announcements",
                "event_id": "e1",
                "kind": "listing",
                "coin": "",
                "title": "CoinSpot lists XYZ",
                "published_at": published,
                "raised_at": published + timedelta(seconds=4),
                "deliveries": {
                    "slack": {"status": "ok", "at": (published + timedelta(seconds=6)).isoformat()},
                    "telegram": {"status": "failed"},
                },
            },
        )
    save_session(engine, "s1", goal="find momentum in BTC")
    KillSwitchStore(engine).set(True, reason="test")
    m = scrape(registry(engine, Settings()))
    news = {"collector": "news", "ledger": "human"}
    assert sample(m, "omc_collector_runs_total", status="ok", **news) == 1
    assert sample(m, "omc_collector_runs_total", status="partial", **news) == 1
    assert sample(m, "omc_collector_runs_total", collector="sec", ledger="catalyst",
                  status="failed") == 1  # fmt: skip
    assert sample(m, "omc_collector_rows_total", kind="inserted", **news) == 3
    assert sample(m, "omc_collector_rows_total", kind="duplicates", **news) == 3
    assert sample(m, "omc_collector_rows_total", kind="fetched", **news) == 10
    assert sample(m, "omc_quarantine_items", **news) == 2
    assert sample(m, "omc_quarantine_occurrences_total", **news) == 2
    assert 0 <= sample(m, "omc_collector_lag_seconds", **news) < 60
    assert sample(m, "omc_collector_state", state="degraded", **news) == 1
    assert sample(m, "omc_collector_state", collector="sec", ledger="catalyst",
                  state="failing") == 1  # fmt: skip
    assert sample(m, "omc_ledger_staleness_ratio", ledger="human") < 1
    assert ("omc_ledger_staleness_ratio", (("ledger", "catalyst"),)) not in m  # never succeeded
    listing = {"source": "announcements", "kind": "listing"}
    assert sample(m, "omc_alerts_total", **listing) == 1
    assert sample(m, "omc_alert_latency_seconds", stage="raised", **listing) == pytest.approx(4)
    assert sample(m, "omc_alert_latency_seconds", stage="delivered", **listing) == pytest.approx(6)
    assert sample(m, "omc_alert_deliveries", notifier="telegram", status="failed") == 1
    assert sample(m, "omc_lab_sessions", status="planned", approval="none") == 1
    assert sample(m, "omc_kill_switch_engaged") == 1
    assert sample(m, "omc_database_up") == 1


def test_ledger_of_every_collector() -> None:
    assert ledger_of("coinspot") == "exchange" and ledger_of("defillama") == "glass"
    assert ledger_of("reddit") == "human" and ledger_of("announcements") == "catalyst"
    assert ledger_of("mystery") == "unknown"


def test_paper_session_metrics_equal_omc_pnl_and_update_incrementally(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from omc.cli.context import engine, settings

    omc_ok(capsys, *REPLAY)
    db = engine()
    limits = GuardLimits(max_daily_loss=Decimal(1))
    collector = OmcCollector(db, settings(), limits)
    reg = registry(db, settings(), limits)
    first = scrape(reg)
    pnl = json.loads(omc_ok(capsys, "pnl", "--json")[1])["p1"]
    state = Journal.open(db, "p1").state
    assert sample(first, "omc_account_equity", account="p1") == pytest.approx(
        float(Decimal(pnl["equity"]))
    )
    assert sample(first, "omc_account_net_pnl", account="p1") == pytest.approx(
        float(Decimal(pnl["net_pnl"]))
    )
    assert sample(first, "omc_account_drawdown_ratio", account="p1") == pytest.approx(
        float(Decimal(pnl["drawdown"]))
    )
    assert sample(first, "omc_orders_total", account="p1") == len(state.orders) > 10
    assert sample(first, "omc_fills_total", account="p1") == pnl["trades"] > 0
    loss = float(state.book.daily_loss())
    assert sample(first, "omc_account_daily_loss_limit_ratio", account="p1") == pytest.approx(
        loss / min(1.0, 0.05 * float(state.book.day_start_equity)) if loss else 0.0
    )
    assert sample(first, "omc_account_trading_state", account="p1", state="active") == 1
    list(collector.collect())  # a warm collector: the next scrape reads only new events
    omc_ok(capsys, "kill", "--wait", "0", "--reason", "drill")
    warm = {f.name: f for f in collector.collect()}
    later = scrape(reg)
    assert sample(later, "omc_account_trading_state", account="p1", state="halted") == 1
    assert sample(later, "omc_kill_switch_engaged") == 1
    fresh = {f.name: f for f in OmcCollector(db, settings(), limits).collect()}
    for name in ("omc_orders", "omc_fills", "omc_account_equity", "omc_account_trading_state"):
        assert warm[name].samples == fresh[name].samples


def test_denials_by_reason(engine: Engine) -> None:
    journal = Journal.open(engine, "acct", write=True)
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    journal.append("start", {"initial_cash": "1000"}, ts=ts)
    for code in ("max_order_notional", "max_order_notional", "stale_quote"):
        journal.append("denial", {"code": code, "reason": "x"}, ts=ts, strategy="s")
    journal.flush()
    journal.lease.release()  # type: ignore[union-attr]
    m = scrape(registry(engine, Settings()))
    denied = {"account": "acct"}
    assert sample(m, "omc_guard_denials_total", reason="max_order_notional", **denied) == 2
    assert sample(m, "omc_guard_denials_total", reason="stale_quote", **denied) == 1
    assert sample(m, "omc_account_equity", **denied) == 1000


def test_unreadable_database_is_omc_database_up_0(tmp_path: Any) -> None:
    broken = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    m = scrape(registry(broken, Settings()))
    assert sample(m, "omc_database_up") == 0
    assert not any(name.startswith("omc_collector") for name, _ in m)


def test_http_endpoint_serves_the_registry(tmp_path: Any) -> None:
    from omc.migrations import upgrade

    db = make_engine(f"sqlite:///{tmp_path / 'omc.db'}")
    upgrade(db)
    server = serve(registry(db, Settings()), "127.0.0.1", 0)
    try:
        port = server.server_port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            body = resp.read().decode()
    finally:
        server.shutdown()
    assert "omc_database_up 1.0" in body and "process_cpu_seconds_total" in body
