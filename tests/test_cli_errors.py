"""A user's mistake through the real `omc` entry point (`omc.cli.app.main`): one clear line on
stderr, a non-zero exit code, no traceback — and the traceback with `--debug`."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from omc.cli import context
from omc.cli.app import main
from omc.floor.trading.guard import REQUIRED_FOR_LIVE

CSV = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles" / "BTC_USDT-5m.csv"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh data dir, no .env, no OMC_* from the outside, caches cleared around the test."""
    import os

    for name in list(os.environ):
        if name.startswith("OMC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMC_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "bad.csv").write_text("timestamp,open,high,low,close,volume\n2024-01-01,1,2,x\n")
    (tmp_path / "garbage.csv").write_text("hello\nworld\n")
    _clear()
    yield
    _clear()
    context.DEBUG = False


def _clear() -> None:
    from omc.core.config import get_settings

    get_settings.cache_clear()
    context.engine.cache_clear()


def omc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out.out, out.err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "╭" not in err and lines[0].startswith("error: ")
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BT = ("backtest", "--data", str(CSV), "--out", "o")
GRID = (*BT, "--grid", "fast=5:10:5")
PAPER = ("trade", "paper", "-s", "sma_cross")


@pytest.mark.parametrize(
    ("env", "args", "code", "expected"),
    [
        ({"OMC_DATABASE_URL": "notaurl"}, ("status",), 2, "OMC_DATABASE_URL: not a database URL"),
        ({"OMC_DATABASE_URL": "foo://x/y"}, ("status",), 2, "not a usable database URL"),
        ({"OMC_REDIS_URL": "localhost:6379"}, ("status",), 2, "OMC_REDIS_URL: a Redis URL"),
        ({"OMC_LOG_LEVEL": "LOUD"}, ("status",), 2, "OMC_LOG_LEVEL: unknown logging level"),
        ({}, (*PAPER, "--replay", "missing.csv"), 2, "candle file missing.csv: no such file"),
        ({}, (*PAPER, "--replay", "bad.csv"), 2, "candle file bad.csv: could not convert"),
        ({}, (*PAPER, "--replay", "garbage.csv"), 2, "candle file garbage.csv: missing column"),
        ({}, ("backtest", "--data", "bad.csv"), 2, "candle file bad.csv: could not convert"),
        ({}, ("backtest", "--data", "missing.csv"), 2, "candle file missing.csv: no such file"),
        ({}, (*PAPER, "--replay", str(CSV), "--cash", "abc"), 2, "--cash 'abc' is not a number"),
        ({}, (*BT, "--cash", "abc"), 2, "--cash 'abc' is not a number"),
        ({}, (*BT, "--grid", "fast=a:b:c"), 2, "grid 'fast=a:b:c': start, stop and step must be"),
        ({}, (*BT, "--grid", "fast"), 2, "--grid: grid 'fast': expected name=start:stop:step"),
        ({}, (*BT, "--grid", "fast=9:1"), 2, "--grid: grid 'fast=9:1' is empty"),
        ({}, (*GRID, "--walk-forward", "--folds", "0"), 2, "--folds must be at least 1, got 0"),
        ({}, (*GRID, "--walk-forward", "--folds", "9000"), 2, "too few for 9000 walk-forward"),
    ],
)
def test_a_mistake_is_one_line_and_a_nonzero_exit(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    args: tuple[str, ...],
    code: int,
    expected: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    got, _out, err = omc(capsys, *args)
    assert got == code, err
    assert expected in one_line(err)


def test_an_unreachable_database_is_one_line_with_the_password_masked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql+psycopg://omc:hunter2@127.0.0.1:{free_port()}/omc"
    monkeypatch.setenv("OMC_DATABASE_URL", url)
    code, _out, err = omc(capsys, "status")
    line = one_line(err)
    assert code == 1
    assert line.startswith("error: database postgresql+psycopg://omc:***@127.0.0.1:")
    assert "refused" in line.lower() and "hunter2" not in err
    assert "--debug" in line


def test_a_database_that_cannot_be_created_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "afile").write_text("not a directory")
    monkeypatch.setenv("OMC_DATABASE_URL", f"sqlite:///{tmp_path / 'afile' / 'omc.db'}")
    code, _out, err = omc(capsys, "status")
    assert code == 1 and "afile" in one_line(err)


def test_debug_shows_the_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from omc.floor.data import BarsFileError

    with pytest.raises(BarsFileError, match=r"missing\.csv: no such file"):
        main(["--debug", *PAPER, "--replay", "missing.csv"])


def test_live_without_keys_refuses_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMC_LIVE_TRADING", "true")
    for k in REQUIRED_FOR_LIVE:
        monkeypatch.setenv(f"OMC_GUARD_{k.upper()}", "100")
    live = ("trade", "live", "-s", "sma_cross", "--symbol", "BTC/AUD", "--live")
    for venue, prefix in (("coinspot", "OMC_COINSPOT_"), ("ccxt:binance", "OMC_CCXT_")):
        code, _out, err = omc(capsys, *live, "--venue", venue)
        assert code == 2
        assert f"no API key pair for {venue} (set {prefix}API_KEY and {prefix}API_SECRET)" in (
            one_line(err)
        )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((*BT, "--cash", "0"), "--cash must be a positive amount, got 0"),
        ((*BT, "--cash", "-100"), "--cash must be a positive amount, got -100"),
        ((*PAPER, "--replay", str(CSV), "--cash", "-5"), "--cash must be a positive amount"),
        ((*PAPER, "--replay", str(CSV), "--cash", "0"), "--cash must be a positive amount"),
        ((*PAPER, "--replay", str(CSV), "--spread-bps", "-1"), "--spread-bps must be zero or more"),
        ((*BT, "--fee-bps", "-5"), "--fee-bps must be zero or more, got -5.0"),
        ((*BT, "--slippage-bps", "-1"), "--slippage-bps must be zero or more, got -1.0"),
        ((*BT, "--slippage-bps", "nan"), "--slippage-bps must be zero or more, got nan"),
        ((*BT, "--volume-share", "0"), "--volume-share must be above 0 and at most 1"),
        ((*GRID, "--rank-by", "profit"), "--rank-by: cannot rank by 'profit'; known: avg_trade"),
        (("floor", "divergence", "--account", "x", "--fee-bps", "-1"), "--fee-bps must be zero"),
        (("floor", "divergence", "--account", "x", "--slippage-bps", "-2"), "--slippage-bps"),
    ],
)
def test_nonsense_is_refused(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], expected: str
) -> None:
    code, _out, err = omc(capsys, *args)
    assert code == 2 and expected in one_line(err)
    assert not Path("o/metrics.json").exists() and not Path("o/sweep.csv").exists()


def test_run_sweep_refuses_an_unknown_rank_metric() -> None:
    from omc.floor.backtest.sweep import run_sweep
    from omc.floor.data import load_csv

    with pytest.raises(ValueError, match="cannot rank by 'profit'"):
        run_sweep("sma_cross", load_csv(CSV).slice(0, 300), {"fast": [5]}, rank_by="profit")
