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
formats: 1-based row numbers) and put in the quarantine under the collector `import`. Gaps
(missing candle periods between the first and last good row) are reported.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, cast

from sqlalchemy import Engine, Table, insert, update

from omc.core.db import to_decimal, upsert
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
from omc.ledgers.collectors.base import quarantine, run_owner
from omc.ledgers.models import Candle, CollectorRun

COLLECTOR = "import"
COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
FORMATS = {
    ".csv": "csv",
    ".json": "json",
    ".feather": "feather",
    ".ftr": "feather",
    ".arrow": "feather",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class CandleFileError(ValueError):
    """The file as a whole cannot be imported (missing, unknown format, no header, …)."""


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


# ------------------------------------------------------------------ readers
# Each reader yields (line, raw text, values) with values = [ts, open, high, low, close, volume]
# as read (text or numbers), or raises CandleFileError for a file-level problem.

RawRow = tuple[int, str, list[Any]]


def _open_text(path: Path) -> IO[str]:
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _read_csv(path: Path) -> Iterator[RawRow]:
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise CandleFileError(f"{path.name} is empty")
        names = [name.strip().lower() for name in header]
        names = ["timestamp" if name in ("date", "time") else name for name in names]
        missing = [c for c in COLUMNS if c not in names and c != "volume"]
        if missing:
            raise CandleFileError(
                f"{path.name}: header {header} lacks {missing} (expected {','.join(COLUMNS)})"
            )
        index = [names.index(c) if c in names else None for c in COLUMNS]
        for fields in reader:
            if not fields or all(not f.strip() for f in fields):
                continue
            raw = ",".join(fields)
            if len(fields) != len(names):
                yield reader.line_num, raw, [f"{len(fields)} fields, expected {len(names)}"]
                continue
            yield reader.line_num, raw, [None if i is None else fields[i] for i in index]


def _read_json(path: Path) -> Iterator[RawRow]:
    with _open_text(path) as handle:
        text = handle.read()
    decoder = json.JSONDecoder(parse_float=str, parse_int=str)
    ws = " \t\r\n"
    pos, line, counted = 0, 1, 0

    def skip(at: int) -> int:
        while at < len(text) and text[at] in ws:
            at += 1
        return at

    pos = skip(pos)
    if pos >= len(text) or text[pos] != "[":
        raise CandleFileError(f"{path.name}: expected a JSON list of [ms, o, h, l, c, v] rows")
    pos = skip(pos + 1)
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise CandleFileError(
                f"{path.name}: invalid JSON at line {exc.lineno}: {exc.msg}"
            ) from exc
        raw = text[pos:end]
        if isinstance(value, list) and len(value) in (5, 6):
            yield line, raw, list(value) + [None] * (6 - len(value))
        else:
            yield line, raw, ["expected [ms, open, high, low, close, volume]"]
        pos = skip(end)
        if pos < len(text) and text[pos] == ",":
            pos = skip(pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            return
        raise CandleFileError(f"{path.name}: invalid JSON near line {line}: expected ',' or ']'")


def _read_frame(path: Path, fmt: str) -> Iterator[RawRow]:
    import pandas as pd

    try:
        frame = pd.read_feather(path) if fmt == "feather" else pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for unreadable files
        raise CandleFileError(f"{path.name}: not a readable {fmt} file: {exc}") from exc
    columns = {str(c).strip().lower(): c for c in frame.columns}
    ts_col = columns.get("date", columns.get("timestamp"))
    missing = [c for c in COLUMNS[1:5] if c not in columns]
    if ts_col is None or missing:
        raise CandleFileError(
            f"{path.name}: columns {list(frame.columns)} lack a date/timestamp column or {missing}"
        )
    series = [[None if pd.isna(v) else v for v in frame[ts_col].tolist()]]
    series += [frame[columns[c]].tolist() for c in COLUMNS[1:5]]
    vol = columns.get("volume")
    series.append(frame[vol].tolist() if vol is not None else [None] * len(frame))
    for number, values in enumerate(zip(*series, strict=True), start=1):
        row = list(values)
        yield number, ",".join(_text(v) for v in row), row


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value) if isinstance(value, float) else str(value)


def read_rows(path: Path, fmt: str) -> Iterator[RawRow]:
    if fmt == "csv":
        return _read_csv(path)
    if fmt == "json":
        return _read_json(path)
    if fmt in ("feather", "parquet"):
        return _read_frame(path, fmt)
    raise CandleFileError(f"unknown format {fmt!r} (known: csv, json, feather, parquet)")


def _guarded(path: Path, rows: Iterator[RawRow]) -> Iterator[RawRow]:
    """Turn read failures (binary data in a CSV, I/O errors) into `CandleFileError`."""
    try:
        yield from rows
    except (csv.Error, UnicodeDecodeError, OSError, EOFError) as exc:
        raise CandleFileError(f"{path.name}: cannot read: {exc}") from exc


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


def find_gaps(timestamps: list[datetime], step_s: int) -> list[Gap]:
    """Missing periods between consecutive (sorted, distinct) candle timestamps."""
    step = timedelta(seconds=step_s)
    gaps = []
    for before, after in itertools.pairwise(timestamps):
        if after - before > step:
            gaps.append(Gap(before, after, (after - before) // step - 1))
    return gaps


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

    good: dict[datetime, tuple[int, dict[str, Decimal | None]]] = {}
    conflicts: dict[datetime, list[tuple[int, str]]] = {}
    raws: dict[int, str] = {}
    for line, raw, values in _guarded(path, read_rows(path, fmt)):
        report.rows_read += 1
        try:
            ts, parsed = parse_row(values, step_s)
        except (ValueError, TypeError, OverflowError) as exc:
            report.bad_rows.append(BadRow(line, str(exc), raw))
            continue
        if ts in conflicts:
            conflicts[ts].append((line, raw))
        elif ts in good:
            first_line, first_values = good[ts]
            if first_values == parsed:
                report.repeated += 1
            else:
                conflicts[ts] = [(first_line, raws.pop(first_line)), (line, raw)]
                del good[ts]
        else:
            good[ts] = (line, parsed)
            raws[line] = raw
    for ts, entries in conflicts.items():
        lines = ", ".join(str(n) for n, _ in entries)
        for line, raw in entries:
            reason = f"timestamp {iso_utc(ts)} repeated with different values (lines {lines})"
            report.bad_rows.append(BadRow(line, reason, raw))
    report.bad_rows.sort(key=lambda bad: bad.line)

    timestamps = sorted(good)
    report.gaps = find_gaps(timestamps, step_s)
    if timestamps:
        report.first, report.last = timestamps[0], timestamps[-1]
    rows = (
        {
            "exchange": exchange,
            "symbol": symbol,
            "timeframe": timeframe,
            "ts": ts,
            **good[ts][1],
            "source": COLLECTOR,
        }
        for ts in timestamps
    )

    runs = cast(Table, CollectorRun.__table__)
    started = utcnow()
    with engine.begin() as conn:
        report.run_id = conn.execute(
            insert(runs)
            .values(collector=COLLECTOR, started_at=started, status="running", owner=run_owner())
            .returning(runs.c.id)
        ).scalar_one()
        result = upsert(conn, cast(Table, Candle.__table__), rows)
        report.inserted, report.duplicates = result.inserted, result.unchanged
        for bad in report.bad_rows:
            payload = {"file": path.name, "line": bad.line, "row": bad.raw}
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
    return report
