"""The command line says what happened: the kill switch and trading states in `omc status`,
what a paper session waits for, `omc data import` with bad rows exits non-zero, `positions`
and `orders` as JSON, a replay's progress bar on stderr (stdout keeps the JSON)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from omc.cli import trade as trade_cli
from tests.test_cli_errors import CSV, isolated

__all__ = ["isolated"]  # the autouse fixture: a fresh data dir and settings per test

SHORT = "BTC_USDT-5m.csv"  # the first 600 bars of the demo file, in the test's directory
REPLAY = ("trade", "paper", "-s", "sma_cross", "--replay", SHORT, "--account", "p1")


@pytest.fixture(autouse=True)
def short_file(isolated: None) -> None:
    lines = CSV.read_text().splitlines()[:601]
    Path(SHORT).write_text("\n".join(lines) + "\n")


def test_status_shows_the_kill_switch_and_each_accounts_state(
    capsys: pytest.CaptureFixture[str],
) -> None:
    omc_ok(capsys, *REPLAY)
    out = omc_ok(capsys, "status")[1]
    assert "kill switch: off" in out and "p1: active" in out
    omc_ok(capsys, "kill", "--wait", "0", "--reason", "too volatile")
    out = " ".join(omc_ok(capsys, "status")[1].split())
    assert "kill switch: ON: too volatile since " in out
    assert "p1: halted (kill_switch)" in out
    report = json.loads(omc_ok(capsys, "status", "--json")[1])
    assert report["kill_switch"]["active"] is True
    assert report["kill_switch"]["reason"] == "too volatile"
    assert [r["account"] for r in report["trading"]] == ["p1"]


def omc_ok(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `omc ARGS` (exit 0 expected; Typer returns normally or raises SystemExit(0))."""
    from omc.cli.app import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    assert code == 0, out.err
    return code, out.out, out.err


def test_a_paper_session_says_what_it_waits_for(capsys: pytest.CaptureFixture[str]) -> None:
    from omc.cli.context import engine, settings
    from omc.floor.strategies import make_strategy
    from omc.floor.trading.guard import GuardSettings
    from omc.floor.trading.paper_session import open_paper_session
    from omc.floor.venues.paper import LedgerQuotes

    db = engine()
    session = open_paper_session(
        db,
        make_strategy("sma_cross", {}),
        ["BTC/AUD", "ETH/AUD"],
        LedgerQuotes(db),
        account="waits",
        settings=settings(),
        limits=GuardSettings().limits(),
    )
    seen: list[list[str]] = []
    say = trade_cli._waiting("ticks from coinspot", 0.0)

    def on_wait(missing: list[str]) -> None:
        seen.append(missing)
        say(missing)

    try:
        session.run_ticks(poll_s=0.0, on_wait=on_wait, stop=lambda: len(seen) >= 3)
    finally:
        session.close()
    assert seen == [["BTC/AUD", "ETH/AUD"]] * 3
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "waiting for ticks from coinspot for BTC/AUD, ETH/AUD: none yet (`omc collect` stores them)"
    ]  # said once, not on every poll


def test_data_import_with_bad_rows_exits_non_zero(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from omc.cli.app import main

    path = tmp_path / "c.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n"
        "2024-01-01T00:05:00Z,1,2,x,1.5,10\n"
    )
    args = ["data", "import", str(path), "--exchange", "t", "--symbol", "BTC/USDT"]
    with pytest.raises(SystemExit) as info:
        main([*args, "--timeframe", "5m"])
    out = capsys.readouterr()
    assert info.value.code == 1
    assert "error: 1 bad row(s) in" in out.err and "were not imported" in out.err
    assert "low: not a decimal number" in out.out  # the report still lists them


def test_positions_and_orders_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    omc_ok(capsys, *REPLAY)
    positions = json.loads(omc_ok(capsys, "positions", "--json")[1])
    assert set(positions) == {"p1"} and isinstance(positions["p1"], list)
    for p in positions["p1"]:
        assert {"symbol", "quantity", "avg_cost", "mark"} <= set(p)
    orders = json.loads(omc_ok(capsys, "orders", "--all", "--json")[1])
    assert len(orders["p1"]) > 10
    first = orders["p1"][0]
    assert first["symbol"] == "BTC/USDT" and first["state"] == "filled"
    assert first["open"] is False and isinstance(first["quantity"], str)
    assert first["created"].endswith("Z")
    assert json.loads(omc_ok(capsys, "orders", "--json")[1]) == {"p1": []}  # none open


def test_a_replay_shows_progress_on_stderr_and_keeps_stdout_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(
        trade_cli, "err_console", Console(file=screen, force_terminal=True, width=100)
    )
    _code, out, _err = omc_ok(capsys, *REPLAY, "--json")
    assert json.loads(out)["account"] == "p1"  # stdout is the JSON summary only
    drawn = screen.getvalue()
    assert "replay BTC/USDT" in drawn and "/600" in drawn
