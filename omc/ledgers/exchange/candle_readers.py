"""Reading candle files row by row, in bounded memory (for `omc data import`).

Each reader yields `(line, raw text, values)` with values = [ts, open, high, low, close,
volume] as read (text or numbers) — or a one-item list naming a row-level problem — and
raises `CandleFileError` for a file-level problem. Nothing holds the whole file: CSV is read
line by line, the freqtrade JSON list element by element from a sliding buffer, Feather and
Parquet record batch by record batch.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
CHUNK = 1 << 16  # characters of JSON read at a time
MAX_ELEMENT = 1 << 20  # a JSON row longer than this is not a candle: the file is invalid


class CandleFileError(ValueError):
    """The file as a whole cannot be imported (missing, unknown format, no header, …)."""


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


class _JsonStream:
    """A sliding window over a JSON text: what is consumed is dropped, lines are counted."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle
        self.buf = ""
        self.pos = 0
        self.line = 1  # the line of `pos`
        self.eof = False

    def more(self) -> bool:
        if self.eof:
            return False
        chunk = self.handle.read(CHUNK)
        if not chunk:
            self.eof = True
            return False
        if self.pos > CHUNK:  # drop what was consumed
            self.buf = self.buf[self.pos :]
            self.pos = 0
        self.buf += chunk
        return True

    def advance(self, to: int) -> None:
        self.line += self.buf.count("\n", self.pos, to)
        self.pos = to

    def skip_ws(self) -> None:
        while True:
            at = self.pos
            while at < len(self.buf) and self.buf[at] in " \t\r\n":
                at += 1
            self.advance(at)
            if at < len(self.buf) or not self.more():
                return

    def peek(self) -> str:
        self.skip_ws()
        return self.buf[self.pos] if self.pos < len(self.buf) else ""


def _read_json(path: Path) -> Iterator[RawRow]:
    decoder = json.JSONDecoder(parse_float=str, parse_int=str)
    with _open_text(path) as handle:
        s = _JsonStream(handle)
        if s.peek() != "[":
            raise CandleFileError(f"{path.name}: expected a JSON list of [ms, o, h, l, c, v] rows")
        s.advance(s.pos + 1)
        if s.peek() == "]":
            return
        while True:
            s.skip_ws()
            while True:  # decode one element, reading more while it may be incomplete
                try:
                    value, end = decoder.raw_decode(s.buf, s.pos)
                except json.JSONDecodeError as exc:
                    if len(s.buf) - s.pos < MAX_ELEMENT and s.more():
                        continue
                    line = s.line + s.buf.count("\n", s.pos, exc.pos)
                    raise CandleFileError(
                        f"{path.name}: invalid JSON at line {line}: {exc.msg}"
                    ) from exc
                if end == len(s.buf) and s.more():  # a number may go on in the next chunk
                    continue
                break
            line, raw = s.line, s.buf[s.pos : end]
            if isinstance(value, list) and len(value) in (5, 6):
                yield line, raw, list(value) + [None] * (6 - len(value))
            else:
                yield line, raw, ["expected [ms, open, high, low, close, volume]"]
            s.advance(end)
            nxt = s.peek()
            if nxt == ",":
                s.advance(s.pos + 1)
                continue
            if nxt == "]":
                return
            raise CandleFileError(
                f"{path.name}: invalid JSON near line {s.line}: expected ',' or ']'"
            )


def _batches(path: Path, fmt: str) -> Iterator[Any]:
    """The file's record batches (pyarrow), one at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if fmt == "parquet":
            yield from pq.ParquetFile(path).iter_batches(batch_size=50_000)
            return
        with pa.memory_map(str(path)) as source:
            try:
                reader = pa.ipc.open_file(source)
            except pa.ArrowInvalid:  # Feather v1 (legacy): read whole, then by batches
                import pyarrow.feather as feather

                yield from feather.read_table(str(path)).to_batches(50_000)
                return
            for k in range(reader.num_record_batches):
                yield reader.get_batch(k)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise CandleFileError(f"{path.name}: not a readable {fmt} file: {exc}") from exc


def _read_frame(path: Path, fmt: str) -> Iterator[RawRow]:
    number = 0
    for batch in _batches(path, fmt):
        columns = {str(c).strip().lower(): c for c in batch.schema.names}
        ts_col = columns.get("date", columns.get("timestamp"))
        missing = [c for c in COLUMNS[1:5] if c not in columns]
        if ts_col is None or missing:
            raise CandleFileError(
                f"{path.name}: columns {list(batch.schema.names)} lack a date/timestamp "
                f"column or {missing}"
            )
        series = [batch.column(ts_col).to_pylist()]
        series += [batch.column(columns[c]).to_pylist() for c in COLUMNS[1:5]]
        vol = columns.get("volume")
        series.append(batch.column(vol).to_pylist() if vol is not None else [None] * batch.num_rows)
        for values in zip(*series, strict=True):
            number += 1
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


def guarded(path: Path, rows: Iterator[RawRow]) -> Iterator[RawRow]:
    """Turn read failures (binary data in a CSV, I/O errors) into `CandleFileError`."""
    try:
        yield from rows
    except (csv.Error, UnicodeDecodeError, OSError, EOFError) as exc:
        raise CandleFileError(f"{path.name}: cannot read: {exc}") from exc
