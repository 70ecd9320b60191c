"""The contract scripts rely on: `omc backtest … --guard` and `omc trade paper --replay …`
on the same candles end with the same equity (default limits), through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

CANDLES = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles"


def _omc(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMC_GUARD_", "OMC_PAPER_"))}
    env["OMC_DATA_DIR"] = str(data_dir)
    env.pop("OMC_DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "omc", *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.parametrize(
    ("strategy", "csv"), [("sma_cross", "BTC_USDT-5m.csv"), ("rsi_revert", "ETH_BTC-5m.csv")]
)
def test_guarded_backtest_equals_paper_replay(tmp_path: Path, strategy: str, csv: str) -> None:
    data = str(CANDLES / csv)
    out = tmp_path / "bt"
    _omc(["backtest", "--data", data, "--strategy", strategy, "--guard", "--out", str(out)],
         tmp_path)  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    rep = _omc(["trade", "paper", "--replay", data, "--strategy", strategy, "--speed", "max",
                "--json"], tmp_path)  # fmt: skip
    summary = json.loads(rep.stdout)
    paper = Decimal(summary["equity"])
    backtest = Decimal(metrics["final_equity_exact"])
    assert abs(backtest - paper) <= Decimal("1e-6") * paper, (backtest, paper)
    assert abs(Decimal(str(metrics["final_equity"])) - paper) <= Decimal("1e-6") * paper
    assert summary["trades"] > 0
    # both report the Guard's work the same way
    assert metrics["guard"]["denials"] == summary["guard"]["denials"]
    assert metrics["guard"]["halts"] == summary["guard"]["halts"]
