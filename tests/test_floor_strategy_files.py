"""`--strategy path/to/file.py:ClassName`: a trader's own strategy file in backtests, sweeps
(worker processes load it), walk-forward, paper trading and live trading; a broken file is one
clear line; a file strategy that reads later bars, by any route, fails the backtest with a
one-line look-ahead error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from omc.cli import backtest as backtest_cli
from omc.cli import context, trade
from omc.floor.strategies import make_strategy
from omc.floor.strategy_files import StrategyFileError, load_strategy_class
from omc.floor.trading.guard import REQUIRED_FOR_LIVE

CSV = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles" / "BTC_USDT-5m.csv"

MINE = '''
from typing import Any, ClassVar

import numpy as np

from omc.floor.strategy import Context, Strategy


def momentum(close, n):
    out = np.full(len(close), np.nan)
    out[n:] = close[n:] / close[:-n] - 1
    return out


class Momentum(Strategy):
    """Long while the n-bar return is positive."""

    defaults: ClassVar[dict[str, Any]] = {"n": 12}

    def init(self, ctx: Context) -> None:
        s = ctx.symbols[0]
        self.mom = ctx.indicator(momentum, ctx.data(s).close, self.params["n"], name="mom")
        self.long = False

    def on_bar(self, ctx: Context):
        m = self.mom[-1]
        if np.isnan(m) or (m > 0) == self.long:
            return None
        self.long = m > 0
        return {ctx.symbols[0]: 1.0 if self.long else 0.0}


class Leaky(Momentum):
    """The same, with signals() for the fast path — whose feature looks one bar ahead."""

    def signals(self, bars):
        out = {}
        for s, b in bars.items():
            nxt = np.roll(b.close, -1)
            nxt[-1] = np.nan
            up = nxt > b.close
            t = np.full(len(b.close), np.nan)
            t[1:][up[1:] != up[:-1]] = 1.0
            t[1:][(up[1:] != up[:-1]) & ~up[1:]] = 0.0
            out[s] = t
        return out


class ReadsEngineData(Strategy):
    def on_bar(self, ctx: Context):
        bars = ctx.bars  # the old context's full data
        return None


class ReadsBehindValues(Strategy):
    def on_bar(self, ctx: Context):
        close = ctx.data(ctx.symbols[0]).close
        nxt = close.values.base[len(close)]
        return {ctx.symbols[0]: 1.0 if nxt > close[-1] else 0.0}


class ReadsThroughTheStack(Strategy):
    def on_bar(self, ctx: Context):
        import sys

        frame = sys._getframe(1)
        while "self" not in frame.f_locals or not hasattr(frame.f_locals["self"], "bars"):
            frame = frame.f_back
        bars = frame.f_locals["self"].bars[ctx.symbols[0]]
        i = len(ctx.data(ctx.symbols[0]).close) - 1
        return {ctx.symbols[0]: 1.0 if bars.close[i + 1] > bars.close[i] else 0.0}


class NotAStrategy:
    pass
'''


@pytest.fixture(scope="module")
def mine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("strategies") / "mine.py"
    path.write_text(MINE)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "btc.csv"
    path.write_text("".join(CSV.read_text().splitlines(keepends=True)[:1500]))
    return path


def omc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMC_")}
    return subprocess.run(
        [sys.executable, "-m", "omc", *args],
        cwd=cwd,
        env={**env, "OMC_DATA_DIR": str(cwd), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _app() -> typer.Typer:
    from omc.cli.app import OneLineErrors  # the root group's one-line errors, as `omc` has

    app = typer.Typer(cls=OneLineErrors)
    backtest_cli.register(app)
    trade.register(app)
    return app


def test_the_documented_import_path_stays() -> None:
    from omc.floor.strategy import Context, LookAheadError, Strategy, Targets  # noqa: F401


def test_a_file_strategy_backtests_from_the_command_line(
    mine: Path, data: Path, tmp_path: Path
) -> None:
    res = omc(
        "backtest", "--data", str(data), "--strategy", f"{mine}:Momentum", "--param", "n=6",
        "--fee-bps", "10", "--out", str(tmp_path / "run"), cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr + res.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["trades"] > 5
    ref = make_strategy(f"{mine}:Momentum", {"n": "6"})
    assert ref.name == "Momentum" and ref.params == {"n": 6}


@pytest.mark.parametrize("cls", ["ReadsEngineData", "ReadsBehindValues", "ReadsThroughTheStack"])
def test_a_file_strategy_reading_later_bars_fails_with_one_line(
    mine: Path, data: Path, tmp_path: Path, cls: str
) -> None:
    res = omc(
        "backtest", "--data", str(data), "--strategy", f"{mine}:{cls}", "--out", str(tmp_path),
        cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode != 0
    assert "Traceback" not in res.stderr + res.stdout
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "look-ahead" in lines[0], res.stderr


def test_sweeps_and_walk_forward_load_the_file_in_every_worker(
    mine: Path, data: Path, tmp_path: Path
) -> None:
    app = _app()
    grid = ["--grid", "n=4,6,8,12,16"]
    res = CliRunner().invoke(
        app,
        ["backtest", "--data", str(data), "--strategy", f"{mine}:Momentum", *grid,
         "--workers", "2", "--out", str(tmp_path)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert len((tmp_path / "sweep.csv").read_text().splitlines()) == 6
    res = CliRunner().invoke(
        app,
        ["backtest", "--data", str(data), "--strategy", f"{mine}:Momentum", *grid,
         "--walk-forward", "--folds", "2", "--workers", "1", "--out", str(tmp_path)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert len(json.loads((tmp_path / "walk_forward.json").read_text())["folds"]) == 2
    res = CliRunner().invoke(
        app,
        ["backtest", "--data", str(data), "--strategy", f"{mine}:Leaky", *grid,
         "--workers", "1", "--out", str(tmp_path)],
    )  # fmt: skip
    assert res.exit_code == 1
    assert "look-ahead" in res.output and "signals" in res.output


def test_a_file_strategy_paper_trades(
    mine: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMC_DATA_DIR", str(tmp_path))
    context.get_settings.cache_clear()
    context.engine.cache_clear()
    try:
        res = CliRunner().invoke(
            _app(),
            ["trade", "paper", "--strategy", f"{mine}:Momentum", "--param", "n=6",
             "--replay", str(data), "--json"],
        )  # fmt: skip
    finally:
        context.get_settings.cache_clear()
        context.engine.cache_clear()
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["account"] == "paper-Momentum" and summary["trades"] > 0


def test_live_trading_takes_a_file_strategy(mine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMC_LIVE_TRADING", "true")
    for k in REQUIRED_FOR_LIVE:
        monkeypatch.setenv(f"OMC_GUARD_{k.upper()}", "100")
    res = CliRunner().invoke(
        _app(),
        ["trade", "live", "--venue", "coinspot", "--strategy", f"{mine}:Nope",
         "--symbol", "BTC/AUD", "--live"],
    )  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "has no class 'Nope'" in " ".join(res.output.split())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing.py:X", "strategy file missing.py not found"),
        ("{mine}:Nope", "has no class 'Nope' (its strategies: Leaky, Momentum, Reads"),
        ("{mine}:NotAStrategy", "is not a strategy: subclass omc.floor.strategy.Strategy"),
        ("{mine}", "name the class as FILE.py:ClassName (e.g. "),
        ("{broken}:X", "line 2: syntax error"),
        ("{failing}:X", "failed to import: ZeroDivisionError"),
    ],
)
def test_a_broken_strategy_file_is_one_clear_line(
    mine: Path, data: Path, tmp_path: Path, spec: str, message: str
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("x = 1\ndef f(:\n")
    failing = tmp_path / "failing.py"
    failing.write_text("x = 1 / 0\n")
    spec = spec.format(mine=mine, broken=broken, failing=failing)
    with pytest.raises(StrategyFileError) as err:
        load_strategy_class(spec)
    assert message in str(err.value) and "\n" not in str(err.value)
    res = CliRunner().invoke(
        _app(), ["backtest", "--data", str(data), "--strategy", spec, "--out", str(tmp_path)]
    )
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())
