"""Candle file import: every real bundled candle file, JSON/Parquet/Feather round trips, bad rows.

All database tests run on SQLite and PostgreSQL (the `engine` fixture).
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from omc.ledgers.exchange.candle_files import CandleFileError, import_candles
from omc.ledgers.models import Candle, CollectorRun, QuarantinedItem

CANDLES = Path(__file__).resolve().parents[1] / "omc" / "demo" / "data" / "candles"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# file -> (rows, first, last, [(gap after, missing), ...]) — the real numbers of the files.
REAL_FILES = {
    "ADA_BTC-5m.csv": (
        5720,
        "2018-01-10T04:55",
        "2018-01-30T04:50",
        [
            ("2018-01-15T10:05", 1),
            ("2018-01-15T10:25", 1),
            ("2018-01-15T11:05", 4),
            ("2018-01-15T11:40", 1),
            ("2018-01-15T11:55", 33),
        ],
    ),
    "BTC_USDT-5m.csv": (10999, "2023-01-02T16:45", "2023-02-09T21:15", []),
    "DASH_BTC-5m.csv": (
        5758,
        "2018-01-10T04:55",
        "2018-01-30T04:50",
        [("2018-01-27T00:15", 1), ("2018-01-28T05:55", 1)],
    ),
    "ETC_BTC-5m.csv": (5759, "2018-01-10T04:55", "2018-01-30T04:45", []),
    "ETH_BTC-5m.csv": (5760, "2018-01-10T04:55", "2018-01-30T04:50", []),
    "LTC_BTC-5m.csv": (5760, "2018-01-10T04:55", "2018-01-30T04:50", []),
    "NXT_BTC-5m.csv": (5760, "2018-01-10T04:55", "2018-01-30T04:50", []),
    "TRX_BTC-5m.csv": (
        5754,
        "2018-01-10T04:55",
        "2018-01-30T04:50",
        [
            ("2018-01-22T17:15", 1),
            ("2018-01-25T18:30", 1),
            ("2018-01-26T16:40", 1),
            ("2018-01-26T19:15", 1),
            ("2018-01-28T16:35", 1),
            ("2018-01-28T21:40", 1),
        ],
    ),
}


def symbol_of(name: str) -> str:
    return name.split("-")[0].replace("_", "/")


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def stored(engine: Engine, symbol: str) -> dict[datetime, tuple[Decimal, ...]]:
    table = Candle.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(table).where(table.c.symbol == symbol).order_by(table.c.ts)
        ).mappings()
        return {r["ts"]: (r["open"], r["high"], r["low"], r["close"], r["volume"]) for r in rows}


def expected_values(path: Path) -> dict[datetime, tuple[Decimal, ...]]:
    return {
        datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")): tuple(
            Decimal(r[c]) for c in ("open", "high", "low", "close", "volume")
        )
        for r in csv_rows(path)
    }


def test_every_real_file_is_listed() -> None:
    assert sorted(p.name for p in CANDLES.glob("*-5m.csv")) == sorted(REAL_FILES)


def test_import_every_real_candle_file(engine: Engine) -> None:
    """The 8 bundled files, one database: exact rows, first/last and every gap."""
    for name, (rows, first, last, gaps) in sorted(REAL_FILES.items()):
        report = import_candles(engine, CANDLES / name, "bittrex", symbol_of(name), "5m")
        assert report.format == "csv", name
        assert (report.rows_read, report.inserted) == (rows, rows), name
        assert (report.duplicates, report.repeated, report.bad_rows) == (0, 0, []), name
        assert (report.first, report.last) == (utc(first), utc(last)), name
        assert [(g.after, g.missing) for g in report.gaps] == [(utc(a), n) for a, n in gaps], name
        # rows + missing candles cover the whole period exactly
        periods = int((utc(last) - utc(first)).total_seconds() // 300) + 1
        assert rows + report.missing == periods, name
    table = Candle.__table__
    with engine.connect() as conn:
        counts = dict(
            conn.execute(select(table.c.symbol, func.count()).group_by(table.c.symbol)).all()
        )
    assert counts == {symbol_of(name): spec[0] for name, spec in REAL_FILES.items()}
    assert sum(counts.values()) == 51270


def test_reimport_is_idempotent_and_exact(engine: Engine) -> None:
    path = CANDLES / "ADA_BTC-5m.csv"
    first = import_candles(engine, path, "bittrex", "ADA/BTC", "5m")
    again = import_candles(engine, path, "Bittrex", "ada/btc", "5m")
    assert (first.inserted, again.inserted, again.duplicates) == (5720, 0, 5720)
    values = stored(engine, "ADA/BTC")
    assert values == expected_values(path)  # exact decimals, e.g. 5.33e-05 -> 0.0000533
    assert values[utc("2018-01-10T04:55")][0] == Decimal("0.0000533")
    with engine.connect() as conn:
        runs = conn.execute(
            select(CollectorRun.__table__).where(CollectorRun.__table__.c.collector == "import")
        ).all()
    assert [(r.status, r.inserted, r.duplicates) for r in runs] == [
        ("ok", 5720, 0),
        ("ok", 0, 5720),
    ]


def test_json_round_trip(engine: Engine, tmp_path: Path) -> None:
    """freqtrade JSON written from the real CSV text (numbers as written, not via floats)."""
    source = CANDLES / "DASH_BTC-5m.csv"
    rows = csv_rows(source)
    lines = [
        "[{},{},{},{},{},{}]".format(
            int(datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp() * 1000),
            *(r[c] for c in ("open", "high", "low", "close", "volume")),
        )
        for r in rows
    ]
    path = tmp_path / "DASH_BTC-5m.json"
    path.write_text("[" + ",".join(lines) + "]")
    report = import_candles(engine, path, "bittrex", "DASH/BTC", "5m")
    assert report.format == "json"
    assert (report.rows_read, report.inserted, len(report.gaps), report.missing) == (
        5758,
        5758,
        2,
        2,
    )
    assert stored(engine, "DASH/BTC") == expected_values(source)
    json.loads(path.read_text())  # the file written is valid JSON


@pytest.mark.parametrize("fmt", ["parquet", "feather"])
def test_binary_round_trip(engine: Engine, tmp_path: Path, fmt: str) -> None:
    source = CANDLES / "TRX_BTC-5m.csv"
    frame = pd.read_csv(source)
    frame["date"] = pd.to_datetime(frame.pop("timestamp"), utc=True)
    frame = frame[["date", "open", "high", "low", "close", "volume"]]
    path = tmp_path / f"TRX_BTC-5m.{fmt}"
    getattr(frame, f"to_{fmt}")(path)
    report = import_candles(engine, path, "bittrex", "TRX/BTC", "5m")
    assert report.format == fmt
    assert (report.rows_read, report.inserted, report.bad_rows) == (5754, 5754, [])
    assert (len(report.gaps), report.missing) == (6, 6)
    assert report.first == utc("2018-01-10T04:55") and report.last == utc("2018-01-30T04:50")
    # floats go through their shortest repr, so the stored decimals equal the CSV text
    assert stored(engine, "TRX/BTC") == expected_values(source)


BAD_FILE = """timestamp,open,high,low,close,volume
2024-01-01T00:00:00Z,100.5,101,99,100,10
2024-01-01T00:05:00Z,abc,101,99,100,10
2024-01-01T00:10:00Z,100,99,101,100,10
2024-01-01T00:15:00Z,0,101,99,100,10
not-a-date,100,101,99,100,10
2024-01-01T00:20:00Z,100,101,99
2024-01-01T00:25:00Z,100,101,99,100,10
2024-01-01T00:25:00Z,100,101,99,100,10
2024-01-01T00:30:00Z,100,101,99,100,10
2024-01-01T00:30:00Z,100,102,99,100,10
2024-01-01T00:33:00Z,100,101,99,100,10
2024-01-01T00:40:00Z,100,101,99,100,-1

2024-01-01T00:45:00Z,100,101,99,102,10
2024-01-01T00:50:00Z,100.00000001,101,99,100,0
"""


def test_bad_rows_are_reported_with_line_numbers(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(BAD_FILE)
    report = import_candles(engine, path, "test", "BTC/USDT", "5m")
    bad = {row.line: row.reason for row in report.bad_rows}
    assert sorted(bad) == [3, 4, 5, 6, 7, 10, 11, 12, 13, 15]
    assert "open" in bad[3]
    assert "high 99 < low 101" in bad[4]
    assert "non-positive" in bad[5]
    assert "timestamp" in bad[6]
    assert "4 fields" in bad[7]
    assert "lines 10, 11" in bad[10] and "lines 10, 11" in bad[11]
    assert "boundary" in bad[12]
    assert "negative volume" in bad[13]
    assert "outside" in bad[15]
    assert report.rows_read == 14
    assert report.repeated == 1  # line 9 repeats line 8 exactly: not bad, stored once
    assert (report.inserted, report.first, report.last) == (
        3,
        utc("2024-01-01T00:00"),
        utc("2024-01-01T00:50"),
    )
    assert [(g.after, g.before, g.missing) for g in report.gaps] == [
        (utc("2024-01-01T00:00"), utc("2024-01-01T00:25"), 4),
        (utc("2024-01-01T00:25"), utc("2024-01-01T00:50"), 4),
    ]
    values = stored(engine, "BTC/USDT")
    assert values[utc("2024-01-01T00:00")][0] == Decimal("100.5")
    assert values[utc("2024-01-01T00:50")][0] == Decimal("100.00000001")
    assert values[utc("2024-01-01T00:50")][4] == Decimal("0")
    with engine.connect() as conn:
        quarantined = conn.execute(select(QuarantinedItem.__table__)).all()
    assert len(quarantined) == 10
    assert {q.collector for q in quarantined} == {"import"}
    assert {json.loads(q.payload)["line"] for q in quarantined} == set(bad)
    again = import_candles(engine, path, "test", "BTC/USDT", "5m")
    assert (again.inserted, again.duplicates, len(again.bad_rows)) == (0, 3, 10)
    with engine.connect() as conn:
        occurrences = conn.execute(
            select(func.sum(QuarantinedItem.__table__.c.occurrences))
        ).scalar_one()
    assert occurrences == 20  # same bad rows again: counted, not stored twice


def test_json_bad_rows_have_line_numbers(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text(
        "[\n"
        "  [1704067200000, 1.5, 2, 1, 1.5, 10],\n"
        '  [1704067500000, "x", 2, 1, 1.5, 10],\n'
        "  [1704067800000, 1.5, 2],\n"
        "  [1704068100000, 1.25, 2, 1, 1.5, 10]\n"
        "]\n"
    )
    report = import_candles(engine, path, "test", "X/Y", "5m")
    assert [b.line for b in report.bad_rows] == [3, 4]
    assert report.inserted == 2
    assert stored(engine, "X/Y")[utc("2024-01-01T00:15")][0] == Decimal("1.25")


def test_unreadable_files_raise(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(CandleFileError, match="no such file"):
        import_candles(engine, tmp_path / "missing.csv", "e", "A/B", "5m")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(CandleFileError, match="format"):
        import_candles(engine, tmp_path / "x.txt", "e", "A/B", "5m")
    (tmp_path / "noheader.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(CandleFileError, match="lacks"):
        import_candles(engine, tmp_path / "noheader.csv", "e", "A/B", "5m")
    (tmp_path / "broken.json").write_text("[[1704067200000, 1, 2, 1, 1, 1], [oops]]")
    with pytest.raises(CandleFileError, match="invalid JSON"):
        import_candles(engine, tmp_path / "broken.json", "e", "A/B", "5m")


def test_cli_import(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from omc.cli import data
    from omc.cli.app import app

    monkeypatch.setattr(data, "engine", lambda: engine)
    path = tmp_path / "bad.csv"
    path.write_text(BAD_FILE)
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["data", "import", str(path), "--exchange", "test", "--symbol", "BTC/USDT",
         "--timeframe", "5m"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output  # bad rows: the good ones stored, exit 1
    assert "bad rows" in result.output and "high 99 < low 101" in result.output
    assert "2024-01-01T00:25:00Z" in result.output  # a gap boundary
    missing = runner.invoke(
        app,
        ["data", "import", str(tmp_path / "nope.csv"), "--exchange", "e", "--symbol", "A/B",
         "--timeframe", "5m"],
    )  # fmt: skip
    assert missing.exit_code == 2
    assert "no such file" in missing.output and "Traceback" not in missing.output
