"""`omc demo`, the README's main job: fresh SQLite, bundled data, a report; idempotent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_omc(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OMC_")}
    return subprocess.run(
        [sys.executable, "-m", "omc", *args],
        cwd=cwd,
        env={**clean, **env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_demo_on_a_fresh_directory_writes_a_report_and_is_idempotent(tmp_path: Path) -> None:
    first = run_omc(["demo"], tmp_path)
    assert first.returncode == 0, first.stderr + first.stdout
    report = tmp_path / "omc-data" / "demo" / "report.html"
    assert (tmp_path / "omc-data" / "omc.db").is_file()
    assert report.is_file() and f"report: {report.as_uri()}" in first.stdout.replace("\n", "")
    text = report.read_text()
    assert "Demo data" in text and "data:image/png;base64," in text
    assert "BTC/USDT" in text and "10,999" in text
    assert "Backtest: sma_cross" in text and "Paper trading replay" in text
    assert "paper replay (demo-paper): equity" in first.stdout.replace("\n", "")
    assert "Lab study: a goal in words" in text and "../lab/L" in text
    lab_line = next(line for line in first.stdout.splitlines() if line.startswith("lab session"))
    assert "verdict" in lab_line and "6 trials" in lab_line
    second = run_omc(["demo"], tmp_path)
    assert second.returncode == 0, second.stderr
    assert lab_line in second.stdout  # the stored study is shown again, not re-run
    assert "BTC/USDT 5m │ 10,999 │        0 │         10,999" in second.stdout
    status = run_omc(["status", "--json"], tmp_path)
    assert status.returncode == 0, status.stderr
    tables = {row["table"]: row["rows"] for row in json.loads(status.stdout)["tables"]}
    assert tables["candles"] == 51_270
