"""One writer per account (both databases): a journal is written only under the account's
lease; a second writer is refused naming the holder; a writer whose lease was taken over is
fenced (its flush writes nothing); a flush that wrote fewer rows than it had is an error,
never ignored; `omc kill` beside a running session (a real second process) commands the
session instead of writing its journal; a kill -9'd holder is taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import Engine, update
from typer.testing import CliRunner

from omc.core.time import utcnow
from omc.core.upsert import upsert
from omc.floor.models import AccountLease
from omc.floor.trading.guard import KillSwitchStore
from omc.floor.trading.journal import TABLE, Event, Journal, JournalConflict, event_count
from omc.floor.trading.kill import kill_account
from omc.floor.trading.lease import LeaseHeld, LeaseLost, current_holder, stored_lease
from omc.floor.trading.session import TradingSession
from omc.floor.venues.base import Quote
from omc.floor.venues.paper import PaperVenue, ReplayQuotes
from tests.test_trading_kill import BuyAndRest

CSV = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles" / "BTC_USDT-5m.csv"
T0 = datetime(2024, 5, 1, tzinfo=UTC)
SYM = "BTC/AUD"

SCRIPT = """
import json, sys
from decimal import Decimal
from typing import Any
from omc.core.db import make_engine
from omc.floor.data import load_csv
from omc.floor.strategy import Strategy
from omc.floor.trading.session import TradingSession
from omc.floor.venues.paper import PaperVenue, ReplayQuotes

url, account, csv, n, speed, ttl = sys.argv[1:7]
bars = load_csv(csv).slice(0, int(n))

class BuyRest(Strategy):
    name = "buy_rest"
    defaults = {}
    def on_bar(self, ctx: Any) -> None:
        if ctx.index % 50 == 0:  # a buy now and then, and a limit buy that rests
            ctx.order(bars.symbol, Decimal("0.01"))
            ctx.order(bars.symbol, Decimal("10"), limit=1)

quotes = ReplayQuotes()
holder = {}
venue = PaperVenue(quotes, clock=lambda: holder["s"].now)
s = TradingSession(make_engine(url), account, BuyRest(), (bars.symbol,), venue,
                   initial_cash=Decimal(10000), lease_ttl_s=float(ttl))
holder["s"] = s
s.start()
print(json.dumps({"holder": s.journal.lease.holder}), flush=True)
try:
    s.replay(bars, quotes, speed=None if speed == "max" else float(speed))
finally:
    s.close()
st = s.state
print(json.dumps({"stopped": s.stopped, "summary": st.book.summary(), "events": st.events,
                  "orders": sorted((c, str(o.state), str(o.filled)) for c, o in st.orders.items())},
                 default=str), flush=True)
"""


def _spawn(url: str, account: str, bars: int, speed: str, ttl: float = 30) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, url, account, str(CSV), str(bars), speed, str(ttl)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def _wait_for(cond: Any, timeout: float = 120, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _contiguous(engine: Engine, account: str) -> list[Event]:
    events = list(Journal(engine, account).stored())
    assert [e.ordinal for e in events] == list(range(len(events)))  # no gap, no repeat
    cids = [e.client_order_id for e in events if e.kind == "order"]
    assert len(cids) == len(set(cids))  # client order ids never repeat
    return events


# ---------------------------------------------------------------------- the journal itself
def test_second_writer_is_refused_naming_the_holder(engine: Engine) -> None:
    first = Journal.open(engine, "acct", write=True)
    with pytest.raises(LeaseHeld) as err:
        Journal.open(engine, "acct", write=True)
    assert first.lease is not None and first.lease.holder in str(err.value)
    assert Journal.open(engine, "acct").lease is None  # readers need no lease
    reader = Journal.open(engine, "acct")
    reader.append("warning", {"code": "x"}, ts=T0)
    with pytest.raises(RuntimeError, match="read-only"):
        reader.flush()
    assert event_count(engine, "acct") == 0
    first.close()
    second = Journal.open(engine, "acct", write=True)  # released: the next writer gets it
    second.close()
    assert current_holder(engine, "acct") is None


def test_flush_that_wrote_nothing_is_a_conflict_not_ignored(engine: Engine) -> None:
    journal = Journal.open(engine, "acct", write=True)
    # an event stored behind the writer's back under the ordinal it is about to use
    upsert(engine, TABLE, [Event(0, "acct", T0, "start", {"initial_cash": "1"}).row()])
    journal.append("start", {"initial_cash": "10000"}, ts=T0)
    journal.append("warning", {"code": "w"}, ts=T0)
    with pytest.raises(JournalConflict, match="acct:0"):
        journal.flush()
    events = list(Journal(engine, "acct").stored())
    assert [(e.ordinal, e.data) for e in events] == [(0, {"initial_cash": "1"})]  # all or nothing
    journal.close(flush=False)


def test_reflushing_committed_events_is_idempotent(engine: Engine) -> None:
    journal = Journal.open(engine, "acct", write=True)
    journal.append("start", {"initial_cash": "10000"}, ts=T0)
    journal.append("bar", {"index": 0, "marks": {SYM: "100"}}, ts=T0 + timedelta(minutes=5))
    batch = list(journal.pending)
    assert journal.flush() == 2
    journal.pending.extend(batch)  # a retried flush whose commit had in fact succeeded
    journal.append("warning", {"code": "w"}, ts=T0)
    assert journal.flush() == 1
    journal.close()
    assert len(_contiguous(engine, "acct")) == 3


def test_writer_whose_lease_was_taken_over_is_fenced(engine: Engine) -> None:
    old = Journal.open(engine, "acct", write=True, lease_ttl_s=0.3)
    old.append("start", {"initial_cash": "10000"}, ts=T0)
    old.flush()
    time.sleep(0.5)  # the holder stalls past its TTL ...
    new = Journal.open(engine, "acct", write=True)  # ... and is taken over
    assert new.state.started == {"initial_cash": "10000"}
    new.append("warning", {"code": "new"}, ts=T0)
    new.flush()
    old.append("warning", {"code": "old"}, ts=T0)
    with pytest.raises(LeaseLost, match=new.lease.holder if new.lease else "?"):
        old.flush()
    old.close(flush=False)  # releasing a lost lease leaves the new holder's alone
    assert current_holder(engine, "acct") == (new.lease.holder if new.lease else None)
    events = _contiguous(engine, "acct")
    assert [e.data.get("code") for e in events] == [None, "new"]
    new.close()


# ---------------------------------------------------------------------- concurrent writers
def _session(engine: Engine, account: str) -> tuple[TradingSession, ReplayQuotes]:
    quotes = ReplayQuotes()
    venue = PaperVenue(quotes, clock=lambda: T0, max_quote_age_s=3600)
    return TradingSession(engine, account, BuyAndRest(), (SYM,), venue, clock=lambda: T0), quotes


def test_kill_account_in_a_thread_beside_a_session_does_not_write(engine: Engine) -> None:
    s, quotes = _session(engine, "acct")
    s.start()
    quotes.set(Quote(SYM, D(100), D(100), D(100), T0))
    s.step(T0, {SYM: (100, 100, 100, 100, 0.0)})
    before = event_count(engine, "acct")
    errors: list[BaseException] = []

    def kill() -> None:
        try:
            kill_account(engine, "acct", reason="thread", flatten=True)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=kill)
    t.start()
    t.join(30)
    assert len(errors) == 1 and isinstance(errors[0], LeaseHeld)
    assert event_count(engine, "acct") == before
    s.step(T0 + timedelta(minutes=5), {SYM: (100, 100, 100, 100, 0.0)})
    s.close()
    _contiguous(engine, "acct")


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    from omc.cli import context

    monkeypatch.setenv("OMC_DATABASE_URL", db_url)
    context.get_settings.cache_clear()
    context.engine.cache_clear()
    yield CliRunner()
    context.get_settings.cache_clear()
    context.engine.cache_clear()


def _app() -> typer.Typer:
    from omc.cli import trade

    app = typer.Typer()
    trade.register(app)
    return app


def test_omc_kill_beside_a_running_session_commands_it(
    engine: Engine, db_url: str, cli: CliRunner
) -> None:
    proc = _spawn(db_url, "running", 2000, str(300 * 10))  # 5-min bars at 3000x: 100 ms a bar
    try:
        _wait_for(
            lambda: Journal.open(engine, "running").state.book.position("BTC/USDT") > 0,
            what="the session's first fill",
        )
        r = cli.invoke(_app(), ["kill", "--flatten", "--reason", "beside", "--json"])
        assert r.exit_code == 0, r.output
        (report,) = json.loads(r.output)
        assert report["acknowledged"] is True and report["session"]
        assert report["cancelled"] >= 1
        assert report["flattened"][0]["result"]["state"] == "filled"
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    finally:
        _stop(proc)
    ran = json.loads(out.splitlines()[-1])
    assert ran["stopped"] == "kill switch: beside"
    # the journal says exactly what the session did — its flatten fill included
    state = Journal.open(engine, "running").state
    assert json.loads(json.dumps(state.book.summary(), default=str)) == ran["summary"]
    assert state.events == ran["events"]
    orders = sorted((c, str(o.state), str(o.filled)) for c, o in state.orders.items())
    assert [list(x) for x in orders] == ran["orders"]
    assert state.book.position("BTC/USDT") == 0 and state.open_orders() == []
    events = _contiguous(engine, "running")
    kills = [e for e in events if e.kind == "kill"]
    assert len(kills) == 1 and kills[0].data["reason"] == "beside"  # one writer acted
    assert current_holder(engine, "running") is None  # the session released its lease
    KillSwitchStore(engine).set(False)


def test_omc_kill_waits_bounded_for_an_unresponsive_holder(engine: Engine, cli: CliRunner) -> None:
    s, _quotes = _session(engine, "stuck")
    s.start()  # holds the lease, never reaches a bar
    before = event_count(engine, "stuck")
    t0 = time.monotonic()
    r = cli.invoke(_app(), ["kill", "--wait", "0.5", "--json"])
    assert r.exit_code == 0, r.output
    assert time.monotonic() - t0 < 20
    (report,) = json.loads(r.output)
    assert report["acknowledged"] is False and s.journal.lease is not None
    assert report["session"] == s.journal.lease.holder and "not confirmed" in report["error"]
    assert event_count(engine, "stuck") == before  # `omc kill` never wrote its journal
    r = cli.invoke(_app(), ["kill", "--wait", "0.5"])
    text = " ".join(r.output.split())
    assert "not confirmed" in text and s.journal.lease.holder in text
    s.close()
    KillSwitchStore(engine).set(False)


def test_sigkill_of_the_lease_holder_then_takeover(engine: Engine, db_url: str) -> None:
    proc = _spawn(db_url, "crash", 600, str(300 * 100), ttl=2)  # 10 ms a bar
    try:
        holder = json.loads(proc.stdout.readline())["holder"] if proc.stdout else ""
        _wait_for(lambda: event_count(engine, "crash") > 30, what="the session's events")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        _stop(proc)
    stale = stored_lease(engine, "crash")  # the dead holder's lease is still stored ...
    assert stale is not None and stale.holder == holder and stale.expires_at > utcnow()
    assert current_holder(engine, "crash") is None  # ... but its process is gone
    # a holder on this host that is dead is taken over at once
    taken = Journal.open(engine, "crash", write=True)
    assert taken.lease is not None and taken.lease.holder != holder
    taken.close()
    # a holder elsewhere (its process cannot be checked) only when its lease expired
    proc = _spawn(db_url, "crash", 600, str(300 * 100), ttl=2)
    try:
        json.loads(proc.stdout.readline()) if proc.stdout else None
        mid = event_count(engine, "crash")
        _wait_for(lambda: event_count(engine, "crash") > mid + 10, what="more events")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        _stop(proc)
    t = AccountLease.__table__
    with engine.begin() as conn:
        conn.execute(update(t).where(t.c.account == "crash").values(holder="elsewhere:4242:cafe"))
    with pytest.raises(LeaseHeld, match="elsewhere:4242:cafe"):
        Journal.open(engine, "crash", write=True)
    time.sleep(2.2)  # its TTL (2 s from its last flush) runs out
    again = _spawn(db_url, "crash", 600, "max")
    try:
        out, err = again.communicate(timeout=300)
        assert again.returncode == 0, err
    finally:
        _stop(again)
    final = json.loads(out.splitlines()[-1])
    state = Journal.open(engine, "crash").state
    assert state.last_bar == 599 and state.events == final["events"]
    _contiguous(engine, "crash")
    assert current_holder(engine, "crash") is None


def test_a_second_omc_trade_paper_on_a_held_account_is_one_clear_line(
    engine: Engine, cli: CliRunner, tmp_path: Path
) -> None:
    held = Journal.open(engine, "paper-sma_cross", write=True)
    csv = tmp_path / "BTC_USDT.csv"
    csv.write_text("".join(CSV.read_text().splitlines(keepends=True)[:50]))
    args = ["trade", "paper", "--strategy", "sma_cross", "--replay", str(csv)]
    r = cli.invoke(_app(), args)
    assert r.exit_code == 2, r.output
    text = " ".join(r.output.split())
    assert held.lease is not None and held.lease.holder in text and "one writer" in text
    assert "Traceback" not in r.output and event_count(engine, "paper-sma_cross") == 0
    held.close()
