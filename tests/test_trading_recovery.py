"""Crash recovery: a paper-trading replay killed with SIGKILL mid-run and restarted ends with
exactly the positions, cash, orders and P&L of an uninterrupted run (SQLite and
PostgreSQL); and the `omc trade paper --json` command end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine
from typer.testing import CliRunner

from omc.floor.trading.journal import Journal, event_count

CSV = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles" / "BTC_USDT-5m.csv"
BARS = 600

SCRIPT = """
import sys
from decimal import Decimal
from omc.core.db import make_engine
from omc.floor.data import load_csv
from omc.floor.fills import FeeModel
from omc.floor.trading.session import TradingSession
from omc.floor.strategies import make_strategy
from omc.floor.venues.paper import PaperVenue, ReplayQuotes

url, account, csv, n, speed = sys.argv[1:6]
bars = load_csv(csv).slice(0, int(n))
quotes = ReplayQuotes()
holder = {}
venue = PaperVenue(quotes, fees=FeeModel.flat(10), clock=lambda: holder["s"].now)
s = TradingSession(make_engine(url), account, make_strategy("sma_cross", {"fast": 3, "slow": 8}),
                   (bars.symbol,), venue, initial_cash=Decimal(10000))
holder["s"] = s
s.start()
s.replay(bars, quotes, speed=None if speed == "max" else float(speed))
print("done")
"""


def _run(url: str, account: str, speed: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, url, account, str(CSV), str(BARS), speed],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _state(engine: Engine, account: str) -> tuple[object, ...]:
    st = Journal.open(engine, account).state
    orders = sorted(
        (o.side, o.quantity, o.state, o.filled, o.notional, o.fee) for o in st.orders.values()
    )
    return st.book.summary(), orders, st.last_bar


def test_sigkill_mid_run_then_restart_matches_uninterrupted(engine: Engine, db_url: str) -> None:
    ref = _run(db_url, "ref", "max")
    assert ref.wait(120) == 0, ref.stderr.read() if ref.stderr else ""
    victim = _run(db_url, "crash", str(300 * 200))  # 5-minute bars at 60000×: 5 ms per bar
    deadline = time.monotonic() + 60
    while event_count(engine, "crash") < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    assert victim.returncode == -signal.SIGKILL
    mid = Journal.open(engine, "crash").state.last_bar
    assert 0 <= mid < BARS - 1  # really killed mid-run
    again = _run(db_url, "crash", "max")
    assert again.wait(120) == 0, again.stderr.read() if again.stderr else ""
    assert _state(engine, "crash") == _state(engine, "ref")
    assert _state(engine, "ref")[1]  # the run traded


def test_cli_trade_paper_replay_json(tmp_path: Path, monkeypatch: object) -> None:
    import typer

    from omc.cli import context, trade

    mp = monkeypatch
    mp.setenv("OMC_DATA_DIR", str(tmp_path))  # type: ignore[attr-defined]
    context.get_settings.cache_clear()
    context.engine.cache_clear()
    csv = tmp_path / "BTC_USDT.csv"
    csv.write_text("".join(CSV.read_text().splitlines(keepends=True)[:400]))
    app = typer.Typer()
    trade.register(app)
    runner = CliRunner()
    args = ["trade", "paper", "--strategy", "sma_cross", "--param", "fast=3", "--param",
            "slow=8", "--replay", str(csv), "--speed", "max", "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert {
        "positions",
        "cash",
        "equity",
        "realised_pnl",
        "unrealised_pnl",
        "fees",
        "trades",
    } <= set(out)
    assert out["trades"] > 0
    for cmd in (["pnl"], ["positions"], ["orders", "--all"], ["kill"], ["kill", "--clear"]):
        r = runner.invoke(app, cmd)
        assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["trade", "live", "--venue", "coinspot", "--strategy", "sma_cross",
                            "--symbol", "BTC/AUD"])  # fmt: skip
    assert r.exit_code == 2 and "Refusing" in r.output
    context.get_settings.cache_clear()
    context.engine.cache_clear()
