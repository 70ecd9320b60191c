"""The CoinSpot client and price collector end to end, against a faulty local CoinSpot.

Every DB test runs on SQLite and on PostgreSQL (the `engine` / `db_url` fixtures).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from omc.core.config import Settings, get_settings
from omc.core.http import PayloadError
from omc.ledgers.collectors.base import Collected, Collector, CollectorRunner, Rows, RunSummary
from omc.ledgers.exchange.coinspot import (
    CoinSpotClient,
    CoinSpotCollector,
    CoinSpotError,
    split_market_key,
)
from omc.ledgers.models import CollectorRun, QuarantinedItem, Tick, Trade
from omc.ledgers.status import collector_health
from tests.fakes.coinspot_server import FakeCoinSpot, Fault, real_prices, running_coinspot

T0 = datetime(2024, 5, 1, 12, 0, 2, tzinfo=UTC)  # slot 12:00:00 at a 5 s interval
SLOT = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
N_PRICES = len(real_prices())  # 13 real AUD coins + btc_usdt
LATEST = "/pubapi/v2/latest"


@pytest.fixture
def server() -> Iterator[FakeCoinSpot]:
    yield from running_coinspot()


def make_settings(server: FakeCoinSpot, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "coinspot_base_url": server.url,
        "http_timeout_s": 0.3,
        "http_max_retries": 2,
        "http_backoff_base_s": 0.01,
        "http_backoff_max_s": 0.05,
        "coinspot_rate_per_s": 1000.0,
        "coinspot_interval_s": 5.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def collector(
    server: FakeCoinSpot, clock: Callable[[], datetime] = lambda: T0, **overrides: Any
) -> CoinSpotCollector:
    return CoinSpotCollector.from_settings(make_settings(server, **overrides), clock=clock)


def run(engine: Engine, server: FakeCoinSpot, **overrides: Any) -> RunSummary:
    source = collector(server, **overrides)
    try:
        return CollectorRunner(engine).run(source)
    finally:
        source.close()


def ticks(engine: Engine) -> dict[tuple[str, str], Tick]:
    with engine.connect() as conn:
        rows = conn.execute(select(Tick.__table__)).all()
    return {(r.coin, r.market): r for r in rows}  # type: ignore[misc]


def count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model.__table__)).scalar_one())


def quarantine(engine: Engine) -> list[Any]:
    table = QuarantinedItem.__table__
    with engine.connect() as conn:
        return list(conn.execute(select(table).order_by(table.c.reason)).all())


def run_records(engine: Engine) -> list[Any]:
    table = CollectorRun.__table__
    with engine.connect() as conn:
        return list(conn.execute(select(table).order_by(table.c.id)).all())


def coinspot_health(engine: Engine, settings: Settings, now: datetime | None = None) -> Any:
    """The `omc status` row of the CoinSpot collector."""
    rows = [h for h in collector_health(engine, settings, now=now) if h["collector"] == "coinspot"]
    assert len(rows) == 1
    return rows[0]


def assert_record_matches(engine: Engine, summary: RunSummary) -> None:
    """The stored run record says exactly what the summary says."""
    (record,) = [r for r in run_records(engine) if r.id == summary.run_id]
    for name in ("status", "fetched", "inserted", "updated", "duplicates", "quarantined", "error"):
        assert getattr(record, name) == getattr(summary, name), name
    assert record.finished_at is not None and record.finished_at >= record.started_at


# ---------------------------------------------------------------- the client


def test_client_covers_the_four_public_endpoints(server: FakeCoinSpot) -> None:
    client = CoinSpotClient.from_settings(make_settings(server))
    with client.http:
        body = client.latest_raw()
        assert body["prices"]["btc"] == {"ask": "30100", "bid": "30049", "last": "30049"}
        quote = client.latest("BTC")
        assert (quote.bid, quote.ask, quote.last) == (
            Decimal("30049"),
            Decimal("30100"),
            Decimal("30049"),
        )
        assert client.latest("btc", "usdt").ask == Decimal("22740.5")
        book = client.open_orders("eth")
        assert book["buy"][0].rate == Decimal("810.77")
        assert all(o.solddate is None and o.market == "ETH/AUD" for o in book["sell"])
        trades = client.completed_orders("btc")
        assert len(trades["buy"]) == len(trades["sell"]) == 3
        assert trades["buy"][0].solddate == datetime(2020, 12, 14, 3, 10, 45, tzinfo=UTC)
    assert server.paths() == [
        LATEST,
        "/pubapi/v2/latest/btc",
        "/pubapi/v2/latest/btc/usdt",
        "/pubapi/v2/orders/open/eth",
        "/pubapi/v2/orders/completed/btc",
    ]
    assert server.requests[0].headers["accept"] == "application/json"


def test_status_error_at_http_200_raises_coinspot_error(server: FakeCoinSpot) -> None:
    client = CoinSpotClient.from_settings(make_settings(server))
    server.inject(Fault("status_error", message="Invalid coin type"))
    with client.http:
        with pytest.raises(CoinSpotError, match="answered status 'error': Invalid coin type"):
            client.latest_raw()
        with pytest.raises(CoinSpotError, match="Coin not found"):
            client.latest("nosuchcoin")
        with pytest.raises(CoinSpotError, match="Coin not found"):
            client.open_orders("nosuchcoin")
    assert len(server.requests) == 3  # an answered error is not retried


def test_client_refuses_malformed_bodies_with_the_raw_text(server: FakeCoinSpot) -> None:
    client = CoinSpotClient.from_settings(make_settings(server))
    server.inject(Fault("missing_field", path="/pubapi/v2/latest/btc", field_name="ask"))
    with client.http:
        with pytest.raises(PayloadError, match=r"invalid quote: ask: Field required") as info:
            client.latest("btc")
        assert '"bid": "30049"' in info.value.raw
        server.prices["eth"] = {"bid": "1", "ask": "2", "last": "1.5"}
        with pytest.raises(PayloadError, match="HTML page"):
            server.inject(Fault("html", status=200))
            client.completed_orders("eth")


def test_extra_fields_are_ignored(server: FakeCoinSpot) -> None:
    client = CoinSpotClient.from_settings(make_settings(server))
    server.inject(Fault("extra_fields"), Fault("extra_fields"))
    with client.http:
        assert client.latest("xrp").bid == Decimal("0.68170103")
        assert client.completed_orders("ltc")["sell"][0].amount == Decimal("0.5")


def test_market_keys() -> None:
    assert split_market_key("btc") == ("btc", "aud")
    assert split_market_key("BTC_USDT") == ("btc", "usdt")


# ---------------------------------------------------------------- the collector


def test_good_rows_are_stored_once_and_exactly(engine: Engine, server: FakeCoinSpot) -> None:
    summary = run(engine, server)
    assert (summary.status, summary.error) == ("ok", None)
    assert (summary.fetched, summary.inserted, summary.duplicates) == (N_PRICES, N_PRICES, 0)
    assert summary.quarantined == 0
    assert_record_matches(engine, summary)
    stored = ticks(engine)
    assert len(stored) == count(engine, Tick) == N_PRICES == 14
    xrp = stored[("xrp", "aud")]
    assert (xrp.bid, xrp.ask, xrp.last) == (
        Decimal("0.68170103"),
        Decimal("0.6901"),
        Decimal("0.6901"),
    )
    assert stored[("str", "aud")].bid == Decimal("0.21500001")
    assert stored[("btc", "usdt")].last == Decimal("22731.02")
    assert {t.ts for t in stored.values()} == {SLOT}
    assert {t.source for t in stored.values()} == {"coinspot"}
    assert quarantine(engine) == []


def test_same_collection_twice_inserts_nothing_new(engine: Engine, server: FakeCoinSpot) -> None:
    first = run(engine, server, coinspot_trade_coins=["btc", "eth"])
    assert first.inserted == N_PRICES + 12
    second = run(engine, server, coinspot_trade_coins=["btc", "eth"])
    assert (second.status, second.inserted, second.updated) == ("ok", 0, 0)
    assert second.duplicates == second.fetched == N_PRICES + 12
    assert_record_matches(engine, second)
    assert count(engine, Tick) == N_PRICES and count(engine, Trade) == 12
    # the next slot is new data: one more tick per coin, the same trades
    third = run(engine, server, clock=lambda: T0 + timedelta(seconds=5))
    assert (third.inserted, third.duplicates) == (N_PRICES, 0)
    assert count(engine, Tick) == 2 * N_PRICES


def test_bad_quotes_are_quarantined_with_a_reason_and_good_ones_stored(
    engine: Engine, server: FakeCoinSpot
) -> None:
    server.inject(
        Fault(
            "crossed",
            coin="eth",
            more=(
                Fault("non_positive", coin="doge"),
                Fault("missing_field", coin="ltc", field_name="bid"),
                Fault("bad_number", coin="xrp", field_name="ask"),
                Fault("extra_fields"),
            ),
        )
    )
    summary = run(engine, server)
    assert (summary.status, summary.error) == ("partial", None)
    assert (summary.fetched, summary.inserted, summary.quarantined) == (N_PRICES, N_PRICES - 4, 4)
    assert_record_matches(engine, summary)
    stored = ticks(engine)
    assert not {("eth", "aud"), ("doge", "aud"), ("ltc", "aud"), ("xrp", "aud")} & set(stored)
    assert stored[("btc", "aud")].ask == Decimal("30100")  # extra fields did no harm
    items = quarantine(engine)
    reasons = [item.reason for item in items]
    assert reasons[0] == "doge: non-positive price (bid=0, ask=0.0064, last=0.006)"
    assert reasons[1] == "eth: crossed quote: bid 815 > ask 810.77"
    assert reasons[2].startswith("ltc: invalid quote: bid: Field required")
    assert reasons[3].startswith("xrp: invalid quote: ask:")
    assert json.loads(items[1].payload)["eth"]["bid"] == "815"  # the item as received
    assert {item.run_id for item in items} == {summary.run_id}
    assert all(item.occurrences == 1 for item in items)

    # the source heals: the next run stores the four, and the rest are duplicates
    healed = run(engine, server)
    assert (healed.status, healed.inserted, healed.duplicates) == ("ok", 4, N_PRICES - 4)
    assert count(engine, Tick) == N_PRICES


def test_the_same_bad_item_again_is_counted_not_stored_twice(
    engine: Engine, server: FakeCoinSpot
) -> None:
    server.prices["eth"] = {"bid": "900", "ask": "800", "last": "850"}
    first = run(engine, server)
    second = run(engine, server)
    assert first.quarantined == second.quarantined == 1
    (item,) = quarantine(engine)
    assert item.occurrences == 2 and item.run_id == second.run_id


def test_every_quote_bad_is_a_failure_not_a_success(engine: Engine, server: FakeCoinSpot) -> None:
    for quote in server.prices.values():
        quote["bid"] = "0"
    summary = run(engine, server)
    assert summary.status == "failed"
    assert summary.error is not None
    assert summary.error.startswith(f"no quotes stored: all {N_PRICES} quarantined: ")
    assert "ans: non-positive price (bid=0, ask=25, last=22.99)" in summary.error
    assert summary.quarantined == N_PRICES and summary.inserted == 0
    assert_record_matches(engine, summary)
    health = coinspot_health(engine, make_settings(server))
    assert health["state"] == "failing"


def test_a_renamed_field_that_quarantines_every_quote_fails_the_run_even_with_trades(
    engine: Engine, server: FakeCoinSpot
) -> None:
    for quote in server.prices.values():
        quote["lastPrice"] = quote.pop("last")
    summary = run(engine, server, coinspot_trade_coins=["btc"])
    assert summary.status == "failed"
    assert summary.inserted == 6 and count(engine, Trade) == 6  # the trades are kept
    assert summary.error is not None
    assert summary.error.startswith(f"no quotes stored: all {N_PRICES} quarantined: ")
    assert "invalid quote: last: Field required" in summary.error
    assert_record_matches(engine, summary)
    health = coinspot_health(engine, make_settings(server))
    assert health["state"] == "failing" and health["last_success"] is None


def test_partial_runs_are_not_fresh(engine: Engine, server: FakeCoinSpot) -> None:
    settings = make_settings(server)
    assert run(engine, server).status == "ok"
    ok_at = coinspot_health(engine, settings)["last_success"]
    server.prices["eth"] = {"bid": "900", "ask": "800", "last": "850"}
    summary = run(engine, server, clock=lambda: T0 + timedelta(seconds=5))
    assert summary.status == "partial"
    health = coinspot_health(engine, settings)
    assert health["state"] == "degraded" and health["last_success"] == ok_at


PAYLOAD_FAULTS = {
    "html-200": (Fault("html", status=200), "bad payload: an HTML page instead of JSON"),
    "truncated": (Fault("truncated"), "bad payload: invalid JSON instead of JSON"),
    "no-prices": (Fault("no_prices"), "bad payload: latest: `prices` missing or not an object"),
}


def test_unusable_payloads_fail_the_run_are_quarantined_and_the_collector_recovers(
    engine: Engine, server: FakeCoinSpot
) -> None:
    for i, (name, (fault, error)) in enumerate(PAYLOAD_FAULTS.items()):
        slot = T0 + timedelta(seconds=5 * i)  # each case collects in its own slot
        server.inject(fault)
        sent = len(server.requests)
        failed = run(engine, server, clock=lambda slot=slot: slot)
        assert failed.status == "failed" and failed.error is not None, name
        assert failed.error.startswith(error), name
        assert (failed.inserted, failed.quarantined) == (0, 1), name
        assert_record_matches(engine, failed)
        assert count(engine, Tick) == i * N_PRICES, name
        (item,) = [q for q in quarantine(engine) if q.run_id == failed.run_id]
        assert item.reason == failed.error.removeprefix("bad payload: "), name
        assert item.payload, name  # stored verbatim
        if name == "html-200":
            assert item.payload.startswith("<!doctype html>")
        if name == "truncated":
            assert item.payload.startswith('{"status": "ok"') and item.payload[-1] != "}"
        health = coinspot_health(engine, make_settings(server))
        assert (health["state"], health["last_error"]) == ("failing", failed.error), name

        recovered = run(engine, server, clock=lambda slot=slot: slot)
        assert (recovered.status, recovered.inserted) == ("ok", N_PRICES), name
        assert len(server.requests) - sent == 2, name  # an unusable 200 is not retried
        assert coinspot_health(engine, make_settings(server))["state"] == "fresh", name
    assert len(quarantine(engine)) == len(PAYLOAD_FAULTS)


TRANSPORT_FAULTS = {
    "timeout": (Fault("delay", seconds=0.35), "ReadTimeout on GET /pubapi/v2/latest"),
    "reset": (Fault("reset"), "ReadError on GET /pubapi/v2/latest"),
    "500": (Fault("http", status=500), "HTTP 500 on GET /pubapi/v2/latest"),
    "502-html": (Fault("html", status=502), "HTTP 502 on GET /pubapi/v2/latest"),
    "503": (Fault("http", status=503), "HTTP 503 on GET /pubapi/v2/latest"),
    "429": (Fault("rate_limited", retry_after="0"), "HTTP 429 on GET /pubapi/v2/latest"),
    "status-error": (
        Fault("status_error", message="Rate limit exceeded"),
        "coinspot: /pubapi/v2/latest answered status 'error': Rate limit exceeded",
    ),
}


def test_a_source_that_keeps_failing_fails_the_run_truthfully_then_recovers(
    engine: Engine, server: FakeCoinSpot
) -> None:
    settings = make_settings(server, http_timeout_s=0.2)
    for i, (name, (fault, error)) in enumerate(TRANSPORT_FAULTS.items()):
        slot = T0 + timedelta(seconds=5 * i)
        server.inject(*[fault] * 3)  # one more than the retries: every attempt of this run
        sent = len(server.requests)
        failed = run(engine, server, clock=lambda slot=slot: slot, http_timeout_s=0.2)
        assert failed.status == "failed", name
        assert failed.error is not None and error in failed.error, (name, failed.error)
        assert (failed.fetched, failed.inserted, failed.quarantined) == (0, 0, 0), name
        assert_record_matches(engine, failed)
        assert count(engine, Tick) == i * N_PRICES, name
        # an answered `status: error` is final; transport faults are retried twice
        assert len(server.requests) - sent == (1 if name == "status-error" else 3), name
        health = coinspot_health(engine, settings)
        assert (health["state"], health["last_status"]) == ("failing", "failed"), name
        assert health["last_error"] == failed.error, name

        server.faults.clear()
        recovered = run(engine, server, clock=lambda slot=slot: slot)
        assert (recovered.status, recovered.inserted) == ("ok", N_PRICES), name
        health = coinspot_health(engine, settings)
        assert health["state"] == "fresh", name
        assert (health["runs_24h"], health["failed_24h"]) == (2 * i + 2, i + 1), name
        assert health["error_rate_24h"] == 0.5
    assert quarantine(engine) == []  # nothing arrived, so nothing to quarantine


def test_transient_faults_within_retries_do_not_fail_the_run(
    engine: Engine, server: FakeCoinSpot
) -> None:
    waits: list[float] = []
    server.inject(
        Fault("rate_limited", retry_after="2"),
        Fault("reset"),
        Fault("http", status=502),
        Fault("delay", seconds=0.5),
    )
    settings = make_settings(server, http_max_retries=4, http_backoff_max_s=30)
    source = CoinSpotCollector(
        CoinSpotClient.from_settings(settings, sleep=waits.append),
        interval_s=5,
        clock=lambda: T0,
    )
    with source.client.http:
        summary = CollectorRunner(engine).run(source)
    assert (summary.status, summary.inserted) == ("ok", N_PRICES)
    # the rate limiter shares `sleep`; its waits (this fake sleep lets no time pass) are tiny
    retry_waits = [w for w in waits if w > 0.001]
    assert retry_waits[0] == 2.0  # Retry-After, exactly
    assert len(retry_waits) == 4 and all(w <= 0.08 for w in retry_waits[1:])
    assert [r.fault for r in server.requests] == ["rate_limited", "reset", "http", "delay", None]
    assert_record_matches(engine, summary)


def test_trades_are_stored_and_a_failing_trades_call_keeps_the_prices(
    engine: Engine, server: FakeCoinSpot
) -> None:
    server.inject(
        Fault("status_error", path="/pubapi/v2/orders/completed/eth", message="Coin not found")
    )
    summary = run(engine, server, coinspot_trade_coins=["btc", "eth"])
    assert summary.status == "partial"
    assert summary.error == (
        "eth trades: coinspot: /pubapi/v2/orders/completed/eth answered status 'error': "
        "Coin not found"
    )
    assert summary.inserted == N_PRICES + 6
    assert_record_matches(engine, summary)
    with engine.connect() as conn:
        trades = conn.execute(select(Trade.__table__).order_by(Trade.__table__.c.ts)).all()
    assert {t.symbol for t in trades} == {"BTC/AUD"}
    assert trades[0].ts == datetime(2020, 12, 14, 3, 10, 45, tzinfo=UTC)
    assert (trades[0].side, trades[0].price, trades[0].amount) == (
        "buy",
        Decimal("30049"),
        Decimal("0.5"),
    )
    health = coinspot_health(engine, make_settings(server))
    assert health["state"] == "degraded" and "eth trades" in health["last_error"]

    again = run(engine, server, coinspot_trade_coins=["btc", "eth"])
    assert (again.status, again.inserted) == ("ok", 6)  # eth's trades, nothing else


def test_a_bad_trades_body_is_quarantined_and_prices_kept(
    engine: Engine, server: FakeCoinSpot
) -> None:
    server.inject(Fault("truncated", path="/pubapi/v2/orders/completed/"))
    summary = run(engine, server, coinspot_trade_coins=["btc"])
    assert (summary.status, summary.inserted, summary.quarantined) == ("partial", N_PRICES, 1)
    assert summary.error is not None and summary.error.startswith("btc trades: bad payload")
    (item,) = quarantine(engine)
    assert item.reason.startswith("btc trades: invalid JSON")


# ---------------------------------------------------------------- status


def test_status_says_never_then_stale_when_runs_stop(engine: Engine, server: FakeCoinSpot) -> None:
    settings = make_settings(server)
    health = coinspot_health(engine, settings)
    assert (health["state"], health["last_success"]) == ("never", None)
    summary = run(engine, server)
    later = summary.finished_at + timedelta(seconds=16)  # > 3 intervals of 5 s
    health = coinspot_health(engine, settings, now=later)
    assert health["state"] == "stale" and health["age_s"] == pytest.approx(16)


def test_a_run_in_progress_does_not_hide_a_failure(engine: Engine, server: FakeCoinSpot) -> None:
    server.inject(*[Fault("http", status=500)] * 3)
    run(engine, server)
    run(engine, server)
    with engine.begin() as conn:
        conn.execute(
            CollectorRun.__table__.insert().values(
                collector="coinspot", started_at=datetime.now(UTC), status="running"
            )
        )
    health = coinspot_health(engine, make_settings(server))
    assert health["last_status"] == "ok"
    server.inject(*[Fault("http", status=500)] * 3)
    run(engine, server)
    with engine.begin() as conn:
        conn.execute(
            CollectorRun.__table__.insert().values(
                collector="coinspot", started_at=datetime.now(UTC), status="running"
            )
        )
    health = coinspot_health(engine, make_settings(server))
    assert (health["state"], health["last_status"]) == ("failing", "failed")


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def cli(db_url: str, server: FakeCoinSpot) -> Iterator[Callable[..., Any]]:
    """`omc …` in-process, configured only through OMC_* environment variables."""
    from omc.cli import context
    from omc.cli.app import app

    env = {
        "OMC_DATABASE_URL": db_url,
        "OMC_COINSPOT_BASE_URL": server.url,
        "OMC_HTTP_TIMEOUT_S": "0.3",
        "OMC_HTTP_MAX_RETRIES": "1",
        "OMC_HTTP_BACKOFF_BASE_S": "0.01",
        "OMC_HTTP_BACKOFF_MAX_S": "0.05",
        "OMC_COINSPOT_RATE_PER_S": "1000",
        "OMC_COINSPOT_TRADE_COINS": "btc",
    }
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        get_settings.cache_clear()
        context.engine.cache_clear()
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            result = runner.invoke(app, list(args))
            context.engine().dispose()
        get_settings.cache_clear()
        context.engine.cache_clear()
        return result

    yield invoke


def status_of(cli: Callable[..., Any]) -> dict[str, Any]:
    result = cli("status", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (coinspot,) = [c for c in report["collectors"] if c["collector"] == "coinspot"]
    tables = {t["table"]: t["rows"] for t in report["tables"]}
    return {"tables": tables, **coinspot}


def test_cli_collect_once_and_status_tell_the_truth(
    cli: Callable[..., Any], server: FakeCoinSpot, db_url: str
) -> None:
    assert status_of(cli)["state"] == "never"

    ok = cli("collect", "--once", "coinspot")
    assert ok.exit_code == 0, ok.output
    assert "coinspot: ok" in ok.stdout
    assert f"fetched={N_PRICES + 6} inserted={N_PRICES + 6}" in ok.stdout
    report = status_of(cli)
    assert report["state"] == "fresh" and report["tables"]["ticks"] == N_PRICES
    assert report["tables"]["trades"] == 6 and report["last_error"] is None

    server.inject(Fault("status_error", message="API disabled"))
    failed = cli("collect", "--once", "coinspot")
    assert failed.exit_code == 1
    assert "coinspot: failed" in failed.stdout and "API disabled" in failed.stdout
    report = status_of(cli)
    assert (report["state"], report["last_status"]) == ("failing", "failed")
    assert "answered status 'error': API disabled" in report["last_error"]
    assert report["failed_24h"] == 1 and report["runs_24h"] == 2

    server.inject(Fault("crossed", coin="btc"))
    partial = cli("collect", "--once", "coinspot")
    assert partial.exit_code == 0 and "coinspot: partial" in partial.stdout
    assert "quarantined=1" in partial.stdout
    report = status_of(cli)
    assert report["state"] == "degraded" and report["quarantined"] == 1
    from omc.core.db import make_engine

    db = make_engine(db_url)
    try:
        crossed = [t for t in ticks(db).values() if t.bid > t.ask]
        assert crossed == [] and count(db, Tick) in (N_PRICES, 2 * N_PRICES - 1)
    finally:
        db.dispose()

    assert server.paths().count(LATEST) == 3


def test_cli_unknown_source_exits_2(cli: Callable[..., Any]) -> None:
    result = cli("collect", "--once", "nosuch")
    assert result.exit_code == 2


class _HalfWritable(Collector):
    """Good ticks, then a batch the database refuses: the whole write rolls back."""

    name = "half-writable"

    def collect(self) -> Collected:
        tick = {
            "source": "test",
            "coin": "btc",
            "market": "aud",
            "ts": SLOT,
            "bid": Decimal("1"),
            "ask": Decimal("2"),
            "last": Decimal("1.5"),
            "volume": None,
        }
        broken = {"exchange": "test", "symbol": "BTC/AUD"}  # no trade_key: refused
        return Collected(
            rows=[Rows(Tick.__table__, [tick]), Rows(Trade.__table__, [broken])],  # type: ignore[arg-type]
            fetched=2,
        )


def test_a_rolled_back_write_records_zero_inserted(engine: Engine) -> None:
    summary = CollectorRunner(engine).run(_HalfWritable())
    assert summary.status == "failed" and summary.error is not None
    assert "lack key column" in summary.error
    assert (summary.inserted, summary.duplicates) == (0, 0)
    assert_record_matches(engine, summary)
    assert count(engine, Tick) == 0


def test_one_order_list_parser_for_the_collector_and_the_venue() -> None:
    """`parse_order_lists` reads CoinSpot's buyorders/sellorders for the public collector and
    for the private venue alike: same sides, same refusals, same quarantine path."""
    from omc.floor.venues.coinspot_models import CompletedOrder
    from omc.floor.venues.coinspot_parsers import sided
    from omc.ledgers.exchange.coinspot import BookOrder, CompletedTrade, parse_order_lists

    body: dict[str, Any] = {
        "status": "ok",
        "buyorders": [{"amount": "0.5", "rate": "30000", "coin": "BTC",
                       "solddate": "2024-01-01T00:00:00Z", "total": "15000"}],
        "sellorders": [{"amount": "1", "rate": 31000, "coin": "BTC", "solddate": 1704067200000}],
    }  # fmt: skip
    public = parse_order_lists(BookOrder, "/p", body)
    private = sided(CompletedOrder, "/p", body)
    assert [o.rate for o in public["buy"] + public["sell"]] == [o.rate for o in private]
    assert [o.side for o in private] == ["buy", "sell"]
    assert private[1].solddate == datetime(2024, 1, 1, tzinfo=UTC)

    for broken, reason in (({"buyorders": {"x": 1}}, "`buyorders` is not a list"),
                           ({"sellorders": ["x"]}, "an order is not an object")):  # fmt: skip
        with pytest.raises(PayloadError, match=reason):
            parse_order_lists(BookOrder, "/p", broken)
        with pytest.raises(PayloadError, match=reason):
            sided(CompletedOrder, "/p", broken)

    refused: list[tuple[str, Any, str]] = []
    bad = {"buyorders": [{"amount": "1", "rate": "0", "solddate": 1704067200000},
                         {"amount": "1", "rate": "5"}, {"amount": "2", "rate": "5",
                                                         "solddate": 1704067200000}]}  # fmt: skip
    kept = parse_order_lists(CompletedTrade, "/p", bad, lambda *r: refused.append(r))
    assert [o.amount for o in kept["buy"]] == [Decimal(2)] and kept["sell"] == []
    assert [side for side, _, _ in refused] == ["buy", "buy"]
    assert "non-positive" in refused[0][2] and "solddate" in refused[1][2]
