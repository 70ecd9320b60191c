"""Orders whose outcome is unknown (the answer to a submit was lost after the exchange may have
accepted it), against the local fake CoinSpot and CCXT servers, on SQLite and PostgreSQL:
they are journaled `unknown`, never resent, never cancelled only locally, block new entries
on their symbol, and are resolved only by evidence (open orders, order history, balances) —
also after a crash and a restart with a venue that has forgotten everything. Start-up compares
the venue's balances with the journal and halts on a difference; the kill switch cancels
every order open at the venue, also ones the journal does not know."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import Engine

from omc.core.http import HttpClient, RetryPolicy
from omc.floor.strategy import Strategy
from omc.floor.trading.guard import Denial, DenyCode, Guard, GuardLimits, KillSwitchStore
from omc.floor.trading.journal import Journal
from omc.floor.trading.kill import kill_account
from omc.floor.trading.oms import ManagedOrder, OrderManager, OrderState
from omc.floor.trading.session import TradingSession
from omc.floor.venues.base import Side, VenueError, VenueOrderType
from omc.floor.venues.coinspot import CoinSpotVenue
from omc.floor.venues.coinspot_client import CoinSpotPrivateClient
from omc.floor.venues.coinspot_signing import NonceSource
from omc.ledgers.exchange.coinspot import CoinSpotClient
from tests.fakes.coinspot_private_server import FakeCoinSpotPrivate, Fault

SYM = "BTC/AUD"
LIMITS = GuardLimits(max_quote_age_s=3600)


class Crash(BaseException):
    """Stands in for kill -9: nothing after it runs, nothing is flushed."""


class BuyOnce(Strategy):
    """Buys 0.001 BTC at market whenever it holds none and has no order working."""

    name = "buy_once"
    defaults: ClassVar[dict[str, Any]] = {}

    def on_bar(self, ctx: Any) -> None:
        if ctx.position(SYM) == 0 and not ctx.open_orders(SYM):
            ctx.order(SYM, D("0.001"))


@pytest.fixture
def server() -> Iterator[FakeCoinSpotPrivate]:
    fake = FakeCoinSpotPrivate().start()
    try:
        yield fake
    finally:
        fake.stop()


class Venues:
    """Fresh CoinSpot venues (a new one = a restarted process: it remembers nothing)."""

    def __init__(self, server: FakeCoinSpotPrivate, tmp_path: Path) -> None:
        self.server, self.tmp_path = server, tmp_path
        self.made: list[CoinSpotVenue] = []

    def __call__(self, sleep: Any = lambda s: None, settle_s: float = 0) -> CoinSpotVenue:
        client = CoinSpotPrivateClient(
            self.server.key,
            self.server.secret,
            base_url=self.server.url,
            nonces=NonceSource.for_key(self.server.key, self.tmp_path),
            timeout_s=0.5,
            retry=RetryPolicy(max_retries=1, backoff_base_s=0, backoff_max_s=0),
            rate_per_s=None,
            sleep=lambda s: None,
        )
        pub = CoinSpotClient(HttpClient(self.server.url, source="coinspot", retry=RetryPolicy(0)))
        venue = CoinSpotVenue(client, pub, settle_s=settle_s, sleep=sleep)
        self.made.append(venue)
        return venue

    def close(self) -> None:
        for v in self.made:
            v.close()


@pytest.fixture
def venues(server: FakeCoinSpotPrivate, tmp_path: Path) -> Iterator[Venues]:
    made = Venues(server, tmp_path)
    try:
        yield made
    finally:
        made.close()


def _crash(_: float) -> None:
    raise Crash


def _now() -> datetime:
    return datetime.now(UTC)


def _crashed(journal: Journal) -> None:
    """kill -9: nothing more is flushed; the next process takes the dead holder's lease."""
    journal.discard()
    if journal.lease is not None:
        journal.lease.release()


def _oms(engine: Engine, account: str, venue: Any, retries: int = 0) -> OrderManager:
    journal = Journal.open(engine, account, write=True)
    if journal.state.started is None:
        baseline = {a: b.total for a, b in venue.balances().items()}
        data = {"initial_cash": D(10000), "venue": venue.name, "balances": baseline}
        journal.append("start", data, ts=_now())
        journal.flush()
    return OrderManager(journal, venue, Guard(LIMITS), submit_retries=retries)


def _session(engine: Engine, account: str, venue: CoinSpotVenue) -> TradingSession:
    return TradingSession(engine, account, BuyOnce(), (SYM,), venue, Guard(LIMITS))


def _tick(session: TradingSession) -> None:
    session.step(_now(), {SYM: (50000.0, 50000.0, 50000.0, 50000.0, 0.0)})


def _failing_reads(n: int = 40) -> list[Fault]:
    return [Fault("http", path="/ro/", status=503) for _ in range(n)]


# ------------------------------------------------------------------ the reported scenario


def test_limit_accepted_then_timeout_then_failed_reads_is_never_journaled_cancelled(
    engine: Engine, server: FakeCoinSpotPrivate, venues: Venues
) -> None:
    oms = _oms(engine, "cs-limit", venues())
    server.inject(Fault("accept_then_timeout", path="/my/buy", seconds=1.0))
    oms.place(
        "s", SYM, Side.BUY, D("0.1"), now=_now(), type=VenueOrderType.LIMIT, limit_price=D(41000)
    )
    oms.journal.flush()
    (placed,) = server.orders("open")  # CoinSpot holds it
    _crashed(oms.journal)
    # restart 1: every read fails
    oms = _oms(engine, "cs-limit", venues())
    server.inject(*_failing_reads())
    with contextlib.suppress(VenueError):  # (today's code raised here)
        oms.reconcile(_now())
    oms.journal.flush()
    server.faults.clear()
    _crashed(oms.journal)
    (order,) = Journal.open(engine, "cs-limit").state.orders.values()
    assert order.state is OrderState.UNKNOWN
    # restart 2: reads work — found among the open orders
    oms = _oms(engine, "cs-limit", venues())
    oms.reconcile(_now())
    oms.journal.flush()
    (order,) = Journal.open(engine, "cs-limit").state.orders.values()
    assert order.state is OrderState.SUBMITTED and order.venue_order_id == placed.id
    assert len(server.accepted("/my/buy")) == 1


def test_market_buy_lost_in_the_settle_wait_is_not_bought_again_after_restart(
    engine: Engine, server: FakeCoinSpotPrivate, venues: Venues
) -> None:
    """The issue's case: accepted-then-timeout, crash while waiting to look, restart — the
    journal said cancelled and the strategy bought again (1.002 BTC held, 0.001 journaled)."""
    first = _session(engine, "cs-now", venues(sleep=_crash, settle_s=2))
    first.start()
    server.inject(Fault("accept_then_timeout", path="/my/buy/now", seconds=1.0))
    with pytest.raises(Crash):
        _tick(first)
    _crashed(first.journal)
    assert server.balance("BTC") == D("1.001")
    again = _session(engine, "cs-now", venues())
    again.start()
    assert again.stopped is None
    _tick(again)
    _tick(again)
    again.close()
    state = Journal.open(engine, "cs-now").state
    (order,) = state.orders.values()
    assert order.state is OrderState.FILLED and order.filled == D("0.001")
    assert state.book.position(SYM) == D("0.001")
    assert server.balance("BTC") == D("1.001") and len(server.executions()) == 1


# ------------------------------------------------------------------ blocking and resolution


def _market(oms: OrderManager, side: Side, qty: str) -> ManagedOrder | Denial:
    res = oms.place("s", SYM, side, D(qty), now=_now())
    oms.journal.flush()
    return res


def test_unknown_blocks_entries_and_is_settled_only_on_evidence(
    engine: Engine, server: FakeCoinSpotPrivate, venues: Venues
) -> None:
    oms = _oms(engine, "cs-block", venues())
    assert isinstance(_market(oms, Side.BUY, "0.002"), ManagedOrder)
    server.inject(Fault("reset", path="/my/buy/now"))  # never executed; the client can't tell
    lost = _market(oms, Side.BUY, "0.001")
    assert isinstance(lost, ManagedOrder) and lost.state is OrderState.UNKNOWN
    denied = _market(oms, Side.BUY, "0.001")
    assert isinstance(denied, Denial) and denied.code is DenyCode.UNKNOWN_ORDER_OUTCOME
    reduce = _market(oms, Side.SELL, "0.001")  # reducing stays possible
    assert isinstance(reduce, ManagedOrder) and reduce.state is OrderState.FILLED
    sends = len(server.requests)
    server.inject(*_failing_reads())
    assert oms.resolve(_now()) == 1 and lost.state is OrderState.UNKNOWN  # reads fail: kept
    server.faults.clear()
    server.account.balances["BTC"] += D("0.001")  # absent, but the balance does not agree
    assert oms.resolve(_now()) == 1 and lost.state is OrderState.UNKNOWN
    server.account.balances["BTC"] -= D("0.001")
    assert oms.resolve(_now()) == 0
    assert lost.state is OrderState.REJECTED and lost.reason == "not_placed"
    assert not any(r.path.startswith("/my/") for r in server.requests[sends:])  # never resent
    oms.journal.flush()
    warnings = [e.data for e in Journal.open(engine, "cs-block").stored() if e.kind == "warning"]
    assert [w["code"] for w in warnings] == ["unknown_order_outcome"] * 2
    assert isinstance(_market(oms, Side.BUY, "0.001"), ManagedOrder)  # unblocked
    assert server.balance("BTC") == D("1.002")
    assert Journal.open(engine, "cs-block").state.book.position(SYM) == D("0.002")


# ------------------------------------------------------------------ start-up balance check


def test_start_up_halts_when_balances_differ_from_the_journal(
    engine: Engine, server: FakeCoinSpotPrivate, venues: Venues
) -> None:
    first = _session(engine, "cs-halt", venues())
    first.start()
    _tick(first)
    first.close()
    assert server.balance("BTC") == D("1.001")
    server.account.balances["BTC"] += D("0.5")  # an order the journal knows nothing of
    again = _session(engine, "cs-halt", venues())
    again.start()
    assert again.stopped is not None and "BTC venue 1.501 vs journal 1.001" in again.stopped
    _tick(again)
    again.close()
    events = list(Journal.open(engine, "cs-halt").stored())
    (report,) = [e.data for e in events if e.kind == "reconcile"]
    assert report["halted"] is True
    assert report["balance_differences"]["BTC"] == {
        "venue": "1.501",
        "journal": "1.001",
        "position": "0.001",
    }
    kinds = [e.kind for e in events]
    assert kinds.count("order") == 1 and kinds[-2:] == ["reconcile", "trading_state"]
    assert events[-1].data["to"] == "halted" and events[-1].data["reason"] == "reconcile_mismatch"


def test_cli_live_refuses_with_one_line_when_balances_differ(
    db_url: str, server: FakeCoinSpotPrivate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer
    from typer.testing import CliRunner

    from omc.cli import context, trade

    env = {
        "OMC_DATABASE_URL": db_url,
        "OMC_DATA_DIR": str(tmp_path),
        "OMC_LIVE_TRADING": "true",
        "OMC_GUARD_MAX_ORDER_NOTIONAL": "2000",
        "OMC_GUARD_MAX_POSITION_NOTIONAL": "5000",
        "OMC_GUARD_MAX_DAILY_LOSS": "500",
        "OMC_COINSPOT_BASE_URL": server.url,
        "OMC_COINSPOT_API_KEY": server.key,
        "OMC_COINSPOT_API_SECRET": server.secret,
        "OMC_HTTP_TIMEOUT_S": "5",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    context.get_settings.cache_clear()
    context.engine.cache_clear()
    app = typer.Typer()
    trade.register(app)
    args = ["trade", "live", "--venue", "coinspot", "--strategy", "sma_cross", "--symbol", SYM,
            "--live", "--poll", "0.05", "--max-bars", "1"]  # fmt: skip
    try:
        runner = CliRunner()
        assert runner.invoke(app, args).exit_code == 0
        server.account.balances["BTC"] += D("0.25")
        refused = runner.invoke(app, args)
        assert refused.exit_code == 1
        (line,) = refused.output.strip().splitlines()
        assert "Not trading" in line and "BTC venue 1.25 vs journal 1" in line
    finally:
        context.get_settings.cache_clear()
        context.engine.cache_clear()


# ------------------------------------------------------------------ the kill switch


def test_kill_cancels_every_order_at_coinspot_even_unknown_and_foreign(
    engine: Engine, server: FakeCoinSpotPrivate, venues: Venues
) -> None:
    venue = venues()
    oms = _oms(engine, "cs-kill", venue)
    limit = {"now": _now(), "type": VenueOrderType.LIMIT}
    known = oms.place("s", SYM, Side.BUY, D("0.01"), limit_price=D(40000), **limit)
    server.inject(Fault("accept_then_timeout", path="/my/buy", seconds=1.0))
    lost = oms.place("s", "ETH/AUD", Side.BUY, D("0.5"), limit_price=D(2900), **limit)
    oms.journal.flush()
    assert isinstance(lost, ManagedOrder) and lost.state is OrderState.UNKNOWN
    assert isinstance(known, ManagedOrder) and known.state is OrderState.SUBMITTED
    venue.client.buy("BTC", D("0.02"), D(39000))  # placed by hand on the website
    assert len(server.orders("open")) == 3
    _crashed(oms.journal)
    # reads fail: nothing may be cancelled only in the journal
    server.inject(*_failing_reads())
    report = kill_account(
        engine, "cs-kill", reason="test", venue=venues(), kill=KillSwitchStore(engine)
    )
    server.faults.clear()
    state = Journal.open(engine, "cs-kill").state
    assert state.orders[lost.client_order_id].state is OrderState.UNKNOWN
    assert len(server.orders("open")) == 3 and report.get("cancelled", 0) == 0
    # reads work: everything open at CoinSpot is cancelled, the journal agrees
    report = kill_account(engine, "cs-kill", reason="test", venue=venues())
    assert server.orders("open") == [] and report["cancelled"] == 3
    state = Journal.open(engine, "cs-kill").state
    assert state.open_orders() == []
    assert state.orders[lost.client_order_id].state is OrderState.CANCELLED
    assert state.orders[lost.client_order_id].venue_order_id is not None


# ------------------------------------------------------------------ CCXT


def test_ccxt_accepted_then_timeout_is_unknown_then_resolved_after_restart(
    engine: Engine,
) -> None:
    from tests.fakes.ccxt_exchange_server import FakeBinanceTrading
    from tests.test_trading_ccxt import make_venue

    fake = FakeBinanceTrading().start()
    try:
        venue = make_venue(fake)
        venue.exchange.timeout = 400
        sym = "BTC/USDT"
        venue.quote(sym)
        oms = _oms(engine, "ccxt-unknown", venue)
        fake.delay_next_orders, fake.delay_s = 1, 1.0
        lost = oms.place("s", sym, Side.BUY, D("0.01"), now=_now())
        oms.journal.flush()
        assert isinstance(lost, ManagedOrder) and lost.state is OrderState.UNKNOWN
        denied = oms.place("s", sym, Side.BUY, D("0.01"), now=_now())
        assert isinstance(denied, Denial) and denied.code is DenyCode.UNKNOWN_ORDER_OUTCOME
        _crashed(oms.journal)
        restarted = _oms(engine, "ccxt-unknown", make_venue(fake))
        report = restarted.reconcile(_now())
        restarted.journal.flush()
        assert report["halted"] is False and report["unknown_orders"] == []
        state = Journal.open(engine, "ccxt-unknown").state
        assert state.orders[lost.client_order_id].state is OrderState.FILLED
        assert state.book.position(sym) == D("0.01")
        assert len(fake.order_posts) == 1 and len(fake.orders) == 1
    finally:
        fake.stop()


# ------------------------------------------------------------------ kill -9 at each step

SCRIPT = """
import sys, time
from decimal import Decimal
from pathlib import Path
from omc.core.db import make_engine
from omc.core.http import HttpClient, RetryPolicy
from omc.floor.trading.guard import Guard, GuardLimits
from omc.floor.trading.session import TradingSession
from omc.floor.venues.coinspot import CoinSpotVenue
from omc.floor.venues.coinspot_client import CoinSpotPrivateClient
from omc.floor.venues.coinspot_signing import NonceSource
from omc.ledgers.exchange.coinspot import CoinSpotClient
from tests.test_trading_unknown import BuyOnce

url, account, base, key, secret, nonces, timeout = sys.argv[1:8]

def settle(seconds):
    print("settling", flush=True)
    time.sleep(seconds)

client = CoinSpotPrivateClient(key, secret, base_url=base,
    nonces=NonceSource.for_key(key, Path(nonces)), timeout_s=float(timeout),
    retry=RetryPolicy(max_retries=0, backoff_base_s=0, backoff_max_s=0), rate_per_s=None)
pub = CoinSpotClient(HttpClient(base, source="coinspot", retry=RetryPolicy(0)))
venue = CoinSpotVenue(client, pub, settle_s=60, sleep=settle)
s = TradingSession(make_engine(url), account, BuyOnce(), ("BTC/AUD",), venue,
                   Guard(GuardLimits(max_quote_age_s=3600)))
s.start()
print("started", flush=True)
s.run_ticks(poll_s=0.05, max_bars=1)
print("done", flush=True)
"""

STEPS = {
    # (fault on /my/buy/now, client read timeout, when to kill)
    "before_execution": (Fault("delay", path="/my/buy/now", seconds=4.0), 10.0, "received"),
    "awaiting_answer": (
        Fault("accept_then_timeout", path="/my/buy/now", seconds=4),
        10.0,
        "executed",
    ),
    "settle_wait": (Fault("accept_then_timeout", path="/my/buy/now", seconds=1.5), 0.5, "settling"),
}


@pytest.mark.parametrize("step", sorted(STEPS))
def test_sigkill_at_each_step_then_restart_holds_exactly_one_buy(
    step: str, db_url: str, engine: Engine, server: FakeCoinSpotPrivate, venues: Venues
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time

    fault, timeout, when = STEPS[step]
    server.inject(fault)
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": repo}
    args = [db_url, "cs-kill9", server.url, server.key, server.secret, str(venues.tmp_path)]
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, *args, str(timeout)],
        cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(proc.stdout.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    reached = {
        "received": lambda: any(r.path == "/my/buy/now" for r in server.requests),
        "executed": lambda: bool(server.accepted("/my/buy/now")),
        "settling": lambda: "settling\n" in lines,
    }[when]
    try:
        deadline = time.monotonic() + 60
        while not reached() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reached(), f"{step}: never reached ({lines}, {proc.poll()})"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert "done\n" not in lines
    (order,) = Journal.open(engine, "cs-kill9").state.orders.values()
    assert order.state is OrderState.NEW  # the write-ahead record is all the journal has
    again = _session(engine, "cs-kill9", venues())
    again.start()
    assert again.stopped is None
    _tick(again)
    _tick(again)
    again.close()
    deadline = time.monotonic() + 30  # the stalled request has been answered one way or other
    while any(r.outcome == "" for r in server.requests) and time.monotonic() < deadline:
        time.sleep(0.05)
    state = Journal.open(engine, "cs-kill9").state
    assert server.balance("BTC") == D("1.001") and len(server.executions()) == 1
    assert state.book.position(SYM) == D("0.001") and state.open_orders() == []
    first = state.orders[order.client_order_id]
    if step == "before_execution":  # later nonces answered first: CoinSpot refused it
        assert first.state is OrderState.REJECTED and first.reason == "not_placed"
        lost = next(r for r in server.requests if r.path == "/my/buy/now")
        assert lost.outcome == "refused: invalid nonce"
    else:
        assert first.state is OrderState.FILLED and len(state.orders) == 1
