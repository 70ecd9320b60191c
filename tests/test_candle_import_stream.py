"""`omc data import` streams: memory stays flat in the file size (CSV and JSON), and what
streaming must not change — line numbers, repeats, conflicts — stays exact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from omc.ledgers.exchange import candle_readers
from omc.ledgers.exchange.candle_files import CandleFileError, import_candles

ROOT = Path(__file__).parents[1]
T0_MS = 1_577_836_800_000  # 2020-01-01T00:00Z
STEP_MS = 300_000

MEASURE = """
import resource, sys
from omc.core.db import make_engine
from omc.migrations import upgrade
from omc.ledgers.exchange.candle_files import import_candles
path, url = sys.argv[1], sys.argv[2]
engine = make_engine(url)
upgrade(engine)
import_candles(engine, sys.argv[3], "x", "BTC/USDT", "5m")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = import_candles(engine, path, "x", "ETH/USDT", "5m")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(report.inserted, (after - before) // 1024)
"""


def write_candles(path: Path, n: int) -> None:
    with path.open("w") as fh:
        if path.suffix == ".csv":
            fh.write("timestamp,open,high,low,close,volume\n")
        else:
            fh.write("[\n")
        for i in range(n):
            p = 100 + (i % 97) / 100
            values = f"{p:.2f},{p + 1:.2f},{p - 1:.2f},{p + 0.5:.2f},{i % 1000}.5"
            if path.suffix == ".csv":
                fh.write(f"{T0_MS + STEP_MS * i},{values}\n")
            else:
                fh.write(("," if i else "") + f"[{T0_MS + STEP_MS * i},{values}]\n")
        if path.suffix == ".json":
            fh.write("]\n")


def peak_growth_mb(path: Path, tmp_path: Path) -> tuple[int, int]:
    """(candles inserted, peak RSS growth in MB) of one import in a fresh process (the
    process first imports a tiny file, so code and caches are warm before measuring)."""
    tiny = tmp_path / "warm.csv"
    write_candles(tiny, 10)
    db = tmp_path / f"{path.stem}.db"
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), f"sqlite:///{db}", str(tiny)],
        capture_output=True, text=True, timeout=300, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path,
    )  # fmt: skip
    inserted, growth = out.stdout.split()
    return int(inserted), int(growth)


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_memory_stays_flat_in_the_file_size(tmp_path: Path, suffix: str) -> None:
    """8x the rows, not 8x the memory: before streaming 80k rows took ~90 MB more than 10k."""
    small, big = tmp_path / f"small{suffix}", tmp_path / f"big{suffix}"
    write_candles(small, 10_000)
    write_candles(big, 80_000)
    n_small, grew_small = peak_growth_mb(small, tmp_path)
    n_big, grew_big = peak_growth_mb(big, tmp_path)
    assert (n_small, n_big) == (10_000, 80_000)
    assert grew_big < grew_small + 30, (grew_small, grew_big)


def test_json_line_numbers_and_errors_hold_across_chunks(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(candle_readers, "CHUNK", 64)  # every row crosses a chunk boundary
    rows = [f"[{T0_MS + STEP_MS * i}, 1.5, 2, 1, 1.5, {10 + i}]" for i in range(40)]
    rows[30] = f'[{T0_MS + STEP_MS * 30}, "x", 2, 1, 1.5, 10]'
    path = tmp_path / "rows.json"
    path.write_text("[\n  " + ",\n  ".join(rows) + "\n]\n")
    report = import_candles(engine, path, "test", "X/Y", "5m")
    assert [b.line for b in report.bad_rows] == [32]  # row 30 is on line 32
    assert (report.rows_read, report.inserted) == (40, 39)
    broken = tmp_path / "broken.json"
    broken.write_text("[\n  " + ",\n  ".join(rows[:35]) + ",\n  [oops]\n]\n")
    with pytest.raises(CandleFileError, match="invalid JSON at line 37"):
        import_candles(engine, broken, "test", "X/Y", "5m")


def test_a_repeat_that_differs_only_in_text_is_a_repeat_not_a_conflict(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        f"{T0_MS},100,101,99,100,10\n"
        f"{T0_MS},100.0,101.00,99,100,10.0\n"  # the same numbers: a repeat
        f"{T0_MS + STEP_MS},100,101,99,100,10\n"
        f"{T0_MS + STEP_MS},100,101,99,100.5,10\n"  # a different close: both lines bad
        f"{T0_MS + STEP_MS},100,101,99,100,10\n"  # … and so is this exact copy of line 4
    )
    report = import_candles(engine, path, "test", "X/Y", "5m")
    assert report.repeated == 1 and report.inserted == 1
    assert [b.line for b in report.bad_rows] == [4, 5, 6]
    assert all("lines 4, 5, 6" in b.reason for b in report.bad_rows)
    assert json.loads(json.dumps(report.as_dict()))["first"] == "2020-01-01T00:00:00Z"
    assert report.first == report.last and Decimal("100") == Decimal("100.0")
