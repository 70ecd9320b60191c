"""Candle file import (`omc data import`): CSV, freqtrade JSON, Feather and Parquet.

This module owns reading candle files, validating every row, and storing the good ones in
the `candles` table through `upsert()` (so a re-import inserts nothing). Formats:

* CSV with a header `timestamp,open,high,low,close,volume` (`date` is accepted for
  `timestamp`); timestamps ISO-8601 (UTC when no zone is given) or epoch seconds/ms.
* freqtrade JSON: `[[ms, open, high, low, close, volume], …]`.
* Feather / Parquet as freqtrade writes them (`date` or `timestamp` column + OHLCV floats).

Prices are exact: CSV and JSON numbers are parsed from their text into `Decimal`; binary
floats go through their shortest repr. Bad rows (unparseable, misaligned, non-positive
prices, high < low, open/close outside [low, high], negative volume, a timestamp repeated
with different values) are not stored: they are listed with their line numbers (for binary
formats: 1-based row numbers) and put in the quarantine under the collector `import`; a
timestamp repeated with different values makes every row with it bad. Gaps (missing candle
periods between the first and last good row) are reported.

Memory stays flat in the file size: rows are read one at a time (`candle_readers`), the good
ones parked in a temporary SQLite file (`_Stage`) where repeats are found, then streamed in
time order through `upsert()` in batches — one transaction, as before.
"""

from __future__ import annotations

import itertools
import math
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, Table, insert, update

from omc.core.db_types import to_decimal
from omc.core.time import (
    ensure_utc,
    floor_time,
    from_epoch_ms,
    from_epoch_s,
    iso_utc,
    parse_utc,
    timeframe_seconds,
    utcnow,
)
from omc.core.upsert import upsert
from omc.ledgers.collectors.base import quarantine, run_owner
from omc.ledgers.exchange.candle_readers import COLUMNS, CandleFileError, guarded, read_rows
from omc.ledgers.models import Candle, CollectorRun

COLLECTOR = "import"
WRITE_BATCH = 10_000  # candles per upsert batch (and per staging insert)
FORMATS = {
    ".csv": "csv",
    ".json": "json",
    ".feather": "feather",
    ".ftr": "feather",
    ".arrow": "feather",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass
class BadRow:
    """A row that was not stored: where it is, why, and the row as read."""

    line: int
    reason: str
    raw: str


@dataclass
class Gap:
    """`missing` candle periods between the stored candles at `after` and `before`."""

    after: datetime
    before: datetime
    missing: int


@dataclass
class ImportReport:
    """What one import did."""

    path: str
    format: str
    exchange: str
    symbol: str
    timeframe: str
    rows_read: int = 0
    inserted: int = 0
    duplicates: int = 0
    repeated: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None
    run_id: int | None = None

    @property
    def valid(self) -> int:
        """Distinct good candles in the file (inserted + already stored)."""
        return self.inserted + self.duplicates

    @property
    def missing(self) -> int:
        return sum(gap.missing for gap in self.gaps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "exchange": self.exchange,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "rows_read": self.rows_read,
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "repeated": self.repeated,
            "bad_rows": [bad.__dict__ for bad in self.bad_rows],
            "gaps": [
                {"after": iso_utc(g.after), "before": iso_utc(g.before), "missing": g.missing}
                for g in self.gaps
            ],
            "first": iso_utc(self.first) if self.first else None,
            "last": iso_utc(self.last) if self.last else None,
        }


def candle_problem(values: dict[str, Decimal | None]) -> str | None:
    """Why an OHLCV row must not be stored, or None when it is sane."""
    o, h, low, c = values["open"], values["high"], values["low"], values["close"]
    if o is None or h is None or low is None or c is None:
        return "missing price"
    if min(o, h, low, c) <= 0:
        return f"non-positive price (open={o}, high={h}, low={low}, close={c})"
    if h < low:
        return f"high {h} < low {low}"
    if h < max(o, c) or low > min(o, c):
        return f"open/close outside [low, high] (open={o}, high={h}, low={low}, close={c})"
    volume = values.get("volume")
    if volume is not None and volume < 0:
        return f"negative volume {volume}"
    return None


def detect_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in FORMATS:
        return FORMATS[suffixes[-1]]
    known = ", ".join(sorted(set(FORMATS.values())))
    raise CandleFileError(f"cannot tell the format of {path.name} (known: {known}; use --format)")


# ------------------------------------------------------------------ parsing one row


def parse_timestamp(value: Any) -> datetime:
    """ISO-8601 text (no zone = UTC), epoch ms / s numbers, or a datetime (naive = UTC)."""
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp -> plain datetime
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return ensure_utc(value) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"not a timestamp: {value!r}")
        return from_epoch_ms(value) if abs(value) >= 1e11 else from_epoch_s(value)
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return parse_timestamp(int(text))
    try:
        return parse_utc(text)
    except ValueError as exc:
        raise ValueError(f"not a timestamp: {text!r}") from exc


def _number(name: str, value: Any) -> Decimal:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{name} is empty")
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"{name} is NaN")
    try:
        return to_decimal(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from exc


def parse_row(values: list[Any], step_s: int) -> tuple[datetime, dict[str, Decimal | None]]:
    """One row -> (ts, {open, high, low, close, volume}); ValueError says what is wrong."""
    if len(values) == 1 and isinstance(values[0], str):
        raise ValueError(values[0])  # a reader-level problem (field count, shape)
    ts = parse_timestamp(values[0])
    if floor_time(ts, step_s) != ts:
        raise ValueError(f"timestamp {iso_utc(ts)} is not on a {step_s}s boundary")
    volume_raw = values[5]
    parsed: dict[str, Decimal | None] = {
        name: _number(name, value) for name, value in zip(COLUMNS[1:5], values[1:5], strict=True)
    }
    empty = volume_raw is None or (isinstance(volume_raw, str) and not volume_raw.strip())
    parsed["volume"] = None if empty else _number("volume", volume_raw)
    problem = candle_problem(parsed)
    if problem:
        raise ValueError(problem)
    return ts, parsed


# ------------------------------------------------------------------ import


def import_candles(
    engine: Engine,
    path: Path | str,
    exchange: str,
    symbol: str,
    timeframe: str,
    fmt: str | None = None,
) -> ImportReport:
    """Import a candle file into `candles` (source `import`) and report what happened.

    Idempotent: candles already stored (same exchange/symbol/timeframe/ts) are counted as
    duplicates, never changed. Raises `CandleFileError` for a file that cannot be read at
    all; bad rows do not raise, they are reported and quarantined.
    """
    path = Path(path)
    if not path.is_file():
        raise CandleFileError(f"no such file: {path}")
    step_s = timeframe_seconds(timeframe)
    fmt = (fmt or detect_format(path)).lower()
    exchange = exchange.strip().lower()
    symbol = symbol.strip().upper()
    if symbol.count("/") != 1 or not all(symbol.split("/")):
        raise CandleFileError(f"symbol {symbol!r} is not BASE/QUOTE")
    report = ImportReport(str(path), fmt, exchange, symbol, timeframe)
    with _Stage() as stage:
        for line, raw, values in guarded(path, read_rows(path, fmt)):
            report.rows_read += 1
            try:
                ts, parsed = parse_row(values, step_s)
            except (ValueError, TypeError, OverflowError) as exc:
                report.bad_rows.append(BadRow(line, str(exc), raw))
                continue
            stage.add(ts, line, parsed, raw)
        stage.seal()
        for ts, entries in stage.conflicts():
            lines = ", ".join(str(n) for n, _ in entries)
            for line, raw in entries:
                reason = f"timestamp {iso_utc(ts)} repeated with different values (lines {lines})"
                report.bad_rows.append(BadRow(line, reason, raw))
        report.bad_rows.sort(key=lambda bad: bad.line)
        report.repeated = stage.repeated()
        _store(engine, report, stage.good(), step_s, path.name)
    return report


def _store(
    engine: Engine,
    report: ImportReport,
    good: Iterator[tuple[datetime, dict[str, Decimal | None]]],
    step_s: int,
    file_name: str,
) -> None:
    """Write the good candles (in time order, streamed) and the quarantine in one
    transaction, with the run record; gaps, first and last are found on the way."""
    step = timedelta(seconds=step_s)

    def rows() -> Iterator[dict[str, Any]]:
        previous: datetime | None = None
        for ts, values in good:
            if previous is None:
                report.first = ts
            elif ts - previous > step:
                report.gaps.append(Gap(previous, ts, (ts - previous) // step - 1))
            previous = report.last = ts
            yield {
                "exchange": report.exchange,
                "symbol": report.symbol,
                "timeframe": report.timeframe,
                "ts": ts,
                **values,
                "source": COLLECTOR,
            }

    runs = cast(Table, CollectorRun.__table__)
    started = utcnow()
    with engine.begin() as conn:
        report.run_id = conn.execute(
            insert(runs)
            .values(collector=COLLECTOR, started_at=started, status="running", owner=run_owner())
            .returning(runs.c.id)
        ).scalar_one()
        result = upsert(conn, cast(Table, Candle.__table__), rows(), batch_size=WRITE_BATCH)
        report.inserted, report.duplicates = result.inserted, result.unchanged
        for bad in report.bad_rows:
            payload = {"file": file_name, "line": bad.line, "row": bad.raw}
            quarantine(conn, COLLECTOR, bad.reason, payload, report.run_id)
        conn.execute(
            update(runs)
            .where(runs.c.id == report.run_id)
            .values(
                finished_at=utcnow(),
                status="partial" if report.bad_rows else "ok",
                fetched=report.rows_read,
                inserted=report.inserted,
                duplicates=report.duplicates + report.repeated,
                quarantined=len(report.bad_rows),
            )
        )


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
PRICES = COLUMNS[1:]


class _Stage:
    """The good rows of one import, parked in a temporary SQLite file (not in memory): a
    timestamp's repeats are found by SQL, and candles come back in time order one by one.
    `vals` is the values' text; rows whose texts differ are compared as numbers (`1.0` is
    `1`): only a real difference is a conflict."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="omc-import-")
        self.db = sqlite3.connect(os.path.join(self._dir.name, "stage.db"))
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute("CREATE TABLE rows (ts INTEGER, line INTEGER, vals TEXT, raw TEXT)")
        self.pending: list[tuple[int, int, str, str]] = []

    def __enter__(self) -> _Stage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()
        self._dir.cleanup()

    def add(self, ts: datetime, line: int, parsed: dict[str, Decimal | None], raw: str) -> None:
        vals = "|".join("" if (v := parsed[c]) is None else str(v) for c in PRICES)
        self.pending.append(((ts - EPOCH) // MICROSECOND, line, vals, raw))
        if len(self.pending) >= WRITE_BATCH:
            self._flush()

    def _flush(self) -> None:
        self.db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?)", self.pending)
        self.pending.clear()

    def seal(self) -> None:
        """Every row is added: index them by time."""
        self._flush()
        self.db.execute("CREATE INDEX rows_ts ON rows (ts, line)")
        self.db.execute("CREATE TABLE conflicts (ts INTEGER PRIMARY KEY)")
        candidates = self.db.execute(
            "SELECT r.ts, r.vals FROM rows r JOIN (SELECT ts FROM rows GROUP BY ts "
            "HAVING COUNT(DISTINCT vals) > 1) c ON r.ts = c.ts ORDER BY r.ts"
        ).fetchall()  # rare: only timestamps repeated with a different text
        for us, group in itertools.groupby(candidates, key=lambda r: r[0]):
            if len({_numbers(vals) for _, vals in group}) > 1:
                self.db.execute("INSERT INTO conflicts VALUES (?)", (us,))

    def conflicts(self) -> Iterator[tuple[datetime, list[tuple[int, str]]]]:
        """Each timestamp repeated with different values, with every (line, raw) having it."""
        query = (
            "SELECT r.ts, r.line, r.raw FROM rows r JOIN conflicts c ON r.ts = c.ts "
            "ORDER BY r.ts, r.line"
        )
        for us, group in itertools.groupby(self.db.execute(query), key=lambda r: r[0]):
            yield EPOCH + us * MICROSECOND, [(line, raw) for _, line, raw in group]

    def repeated(self) -> int:
        """Rows that repeat an earlier row exactly (stored once, not bad)."""
        (count,) = self.db.execute(
            "SELECT COUNT(*) - COUNT(DISTINCT ts) FROM rows "
            "WHERE ts NOT IN (SELECT ts FROM conflicts)"
        ).fetchone()
        return int(count or 0)

    def good(self) -> Iterator[tuple[datetime, dict[str, Decimal | None]]]:
        """(ts, values) of each timestamp without a conflict, oldest first, as first read."""
        query = (
            "SELECT ts, MIN(line), vals FROM rows WHERE ts NOT IN (SELECT ts FROM conflicts) "
            "GROUP BY ts ORDER BY ts"
        )
        for us, _line, vals in self.db.execute(query):
            yield EPOCH + us * MICROSECOND, dict(zip(PRICES, _numbers(vals), strict=True))


def _numbers(vals: str) -> tuple[Decimal | None, ...]:
    return tuple(Decimal(v) if v else None for v in vals.split("|"))
