"""Writing a backtest's results: `trades.csv`, `equity.csv`, `metrics.json`."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pandas as pd

from omc.core.csv_cells import safe_row
from omc.floor.backtest.engine import BacktestResult

TRADE_COLUMNS = (
    "entry_time",
    "exit_time",
    "side",
    "quantity",
    "entry_price",
    "exit_price",
    "fees",
    "pnl",
    "symbol",
)


def write_trades(result: BacktestResult, path: Path) -> None:
    """One row per round trip (exact decimals); an open trade has an empty exit. Text
    cells a spreadsheet would run as a formula (a symbol from a file name) are neutralised."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(TRADE_COLUMNS)
        for t in result.trades:
            exit_price = t.exit_price
            w.writerow(
                safe_row(
                    [
                        t.entry_time.isoformat(),
                        t.exit_time.isoformat() if t.exit_time else "",
                        t.side,
                        t.quantity,
                        t.entry_price.normalize(),
                        "" if exit_price is None or not t.closed else exit_price.normalize(),
                        t.fees.normalize(),
                        t.pnl.normalize(),
                        t.symbol,
                    ]
                )
            )


def equity_frame(result: BacktestResult) -> pd.DataFrame:
    eq = pd.Series(result.equity)
    peak = eq.cummax()
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(result.ts, unit="ns", utc=True),
            "equity": result.equity,
            "drawdown": (eq / peak - 1.0).to_numpy(),
        }
    )


def write_equity(result: BacktestResult, path: Path) -> None:
    frame = equity_frame(result)
    frame["timestamp"] = frame["timestamp"].map(lambda t: t.isoformat())
    frame.to_csv(path, index=False)


def metrics_document(result: BacktestResult) -> dict[str, Any]:
    return {
        **result.metrics,
        "strategy": result.strategy,
        "params": result.params,
        "symbols": list(result.bars),
        "start": pd.Timestamp(int(result.ts[0]), unit="ns", tz="UTC").isoformat(),
        "end": pd.Timestamp(int(result.ts[-1]), unit="ns", tz="UTC").isoformat(),
        "bar_seconds": result.bar_seconds,
        "fee_maker_bps": float(result.fees.maker_bps),
        "fee_taker_bps": float(result.fees.taker_bps),
        "slippage_bps": float(result.slippage.bps),
        "buy_and_hold": result.benchmark,
    }


def write_metrics(result: BacktestResult, path: Path) -> None:
    path.write_text(json.dumps(metrics_document(result), indent=2, default=str))


def write_all(result: BacktestResult, out: Path) -> dict[str, Path]:
    """trades.csv, equity.csv, metrics.json in `out` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "trades": out / "trades.csv",
        "equity": out / "equity.csv",
        "metrics": out / "metrics.json",
    }
    write_trades(result, paths["trades"])
    write_equity(result, paths["equity"])
    write_metrics(result, paths["metrics"])
    return paths
