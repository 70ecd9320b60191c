"""`omc backtest` through a Typer app built with `omc.cli.backtest.register`."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from omc.cli import backtest as backtest_cli

CSV = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles" / "BTC_USDT-5m.csv"


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    backtest_cli.register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps `backtest` a named subcommand
        pass

    return app


def test_backtest_writes_files(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = CliRunner().invoke(
        app,
        [
            "backtest",
            "--data",
            str(CSV),
            "--strategy",
            "sma_cross",
            "--param",
            "fast=10",
            "--param",
            "slow=30",
            "--fee-bps",
            "10",
            "--slippage-bps",
            "0",
            "--cash",
            "10000",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "Sharpe" in res.output and "Buy & hold" in res.output
    with (out / "trades.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [
        "entry_time",
        "exit_time",
        "side",
        "quantity",
        "entry_price",
        "exit_price",
        "fees",
        "pnl",
        "symbol",
    ]
    assert len(rows) > 50
    metrics = json.loads((out / "metrics.json").read_text())
    for key in (
        "total_return",
        "cagr",
        "volatility_ann",
        "sharpe",
        "sortino",
        "max_drawdown",
        "max_drawdown_duration_bars",
        "calmar",
        "win_rate",
        "profit_factor",
        "exposure",
        "turnover",
        "trades",
        "avg_trade",
        "fees_paid",
        "final_equity",
        "buy_and_hold",
    ):
        assert key in metrics
    # trade P&L adds up exactly to the equity change
    total = sum(Decimal(r["pnl"]) for r in rows)
    assert abs(Decimal(metrics["final_equity_exact"]) - 10000 - total) < Decimal("1e-12")
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "http" not in html.split("<body>")[1]
    assert (out / "equity.csv").read_text().startswith("timestamp,equity,drawdown")


def test_backtest_sweep_and_walk_forward(app: typer.Typer, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "backtest",
            "--data",
            str(CSV),
            "--grid",
            "fast=5:20:5",
            "--grid",
            "slow=20:60:20",
            "--workers",
            "2",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "ranked by sharpe" in res.output
    rows = list(csv.DictReader((tmp_path / "sweep.csv").open()))
    assert len(rows) == 11  # 12 combinations minus fast=20,slow=20
    res = CliRunner().invoke(
        app,
        [
            "backtest",
            "--data",
            str(CSV),
            "--grid",
            "fast=5:15:5",
            "--grid",
            "slow=30,60",
            "--walk-forward",
            "--folds",
            "3",
            "--workers",
            "1",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "out-of-sample" in res.output
    doc = json.loads((tmp_path / "walk_forward.json").read_text())
    assert len(doc["folds"]) == 3 and "sharpe" in doc["out_of_sample"]


def test_backtest_from_database(app: typer.Typer, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.orm import Session

    from omc.cli import context
    from omc.core.db import make_engine
    from omc.ledgers.models import Candle
    from omc.migrations import upgrade

    db = make_engine(f"sqlite:///{tmp_path / 'omc.db'}")
    upgrade(db)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    with Session(db) as s:
        for i in range(300):
            p = Decimal(100 + (i % 40) - 20 * ((i // 40) % 2))
            s.add(
                Candle(
                    exchange="binance",
                    symbol="BTC/USDT",
                    timeframe="1h",
                    ts=t0 + timedelta(hours=i),
                    open=p,
                    high=p + 1,
                    low=p - 1,
                    close=p,
                    volume=Decimal(5),
                )
            )
        s.commit()
    monkeypatch.setattr(context, "engine", lambda: db)
    res = CliRunner().invoke(
        app,
        [
            "backtest",
            "--symbol",
            "BTC/USDT",
            "--timeframe",
            "1h",
            "--exchange",
            "binance",
            "--param",
            "fast=3",
            "--param",
            "slow=8",
            "--out",
            str(tmp_path / "db"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "db" / "metrics.json").read_text())["bars"] == 300


@pytest.mark.parametrize("cash", ["abc", "-5", "0", "nan"])
def test_backtest_refuses_nonsense_cash_in_one_line(
    app: typer.Typer, tmp_path: Path, cash: str
) -> None:
    res = CliRunner().invoke(
        app,
        ["backtest", "--data", str(CSV), "--strategy", "sma_cross", f"--cash={cash}",
         "--out", str(tmp_path / "o")],
    )  # fmt: skip
    assert res.exit_code == 2
    assert "--cash" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o" / "metrics.json").exists()
