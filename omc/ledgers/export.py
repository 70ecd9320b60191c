"""Ledger export (`omc data export KIND`): stream ledger rows as CSV or JSON.

This module owns the export formats and the registry of exportable kinds. Adding a kind is
one entry in `EXPORTS` (`"trades": ExportKind(Trade)`); an `ExportKind` knows its table,
which column `--since` filters on (default `ts`) and how `--symbol` filters (default: the
`symbol` column, compared in upper case).

Formats: CSV (a header of the table's columns, then one line per row) and JSON (a list of
objects, one per row). In both, decimals are plain strings (`"0.0000533"`, never floats or
exponents), timestamps ISO-8601 UTC with a `Z`, and rows come in natural-key order. A CSV
text cell starting with `=`, `+`, `-` or `@` gets a leading `'` (`omc.core.csv_cells`). Rows are
streamed from the database in batches, so memory does not grow with the table.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

from sqlalchemy import ColumnElement, Engine, Select, String, Table, cast, select

from omc.core.csv_cells import safe_cell
from omc.core.db_types import decimal_text
from omc.core.time import ensure_utc, iso_utc
from omc.ledgers.models import (
    Candle,
    CatalystEvent,
    NewsItem,
    OnchainMetric,
    ProtocolMetric,
    SentimentHourly,
    SocialPost,
    Tick,
)

FORMATS = ("csv", "json")

SymbolFilter = Callable[[Table, str], ColumnElement[bool]]


def _symbol_column(table: Table, symbol: str) -> ColumnElement[bool]:
    return table.c.symbol == symbol.strip().upper()


def _tick_symbol(table: Table, symbol: str) -> ColumnElement[bool]:
    """Ticks are per coin and market: `BTC` (any market) or `BTC/AUD`, any case."""
    coin, _, market = symbol.strip().partition("/")
    condition: ColumnElement[bool] = table.c.coin.in_((coin.lower(), coin.upper()))
    if market:
        condition = condition & table.c.market.in_((market.lower(), market.upper()))
    return condition


@dataclass(frozen=True)
class ExportKind:
    """An exportable ledger table and how `--symbol` / `--since` filter it."""

    model: Any
    time_column: str = "ts"
    symbol_filter: SymbolFilter | None = _symbol_column

    @property
    def table(self) -> Table:
        table: Table = self.model.__table__
        return table


def _coin_tagged(table: Table, symbol: str) -> ColumnElement[bool]:
    """Items whose `coins` JSON list holds the coin (`BTC` or `BTC/…`), on either database."""
    coin = symbol.strip().partition("/")[0].upper()
    return cast(table.c.coins, String).like(f'%"{coin}"%')


def _column_equals(name: str, upper: bool = False) -> SymbolFilter:
    def condition(table: Table, symbol: str) -> ColumnElement[bool]:
        value = symbol.strip()
        return table.c[name] == (value.upper() if upper else value)

    return condition


EXPORTS: dict[str, ExportKind] = {
    "ticks": ExportKind(Tick, symbol_filter=_tick_symbol),
    "candles": ExportKind(Candle),
    # --symbol is the protocol slug / the chain / the coin for these kinds
    "protocols": ExportKind(ProtocolMetric, symbol_filter=_column_equals("protocol")),
    "onchain": ExportKind(OnchainMetric, symbol_filter=_column_equals("chain")),
    "news": ExportKind(NewsItem, time_column="published_at", symbol_filter=_coin_tagged),
    "social": ExportKind(SocialPost, time_column="published_at", symbol_filter=_coin_tagged),
    "sentiment": ExportKind(
        SentimentHourly, time_column="hour", symbol_filter=_column_equals("coin", upper=True)
    ),
    "events": ExportKind(CatalystEvent, time_column="published_at", symbol_filter=_coin_tagged),
}


class ExportError(ValueError):
    """An export that cannot be done as asked (unknown kind or format, unusable filter)."""


def export_query(
    kind: str, symbol: str | None = None, since: datetime | None = None
) -> Select[Any]:
    """The ordered SELECT for a kind and its filters."""
    try:
        spec = EXPORTS[kind]
    except KeyError:
        known = ", ".join(sorted(EXPORTS))
        raise ExportError(f"unknown kind {kind!r} (known: {known})") from None
    table = spec.table
    query = select(table)
    if symbol:
        if spec.symbol_filter is None:
            raise ExportError(f"{kind} cannot be filtered by symbol")
        query = query.where(spec.symbol_filter(table, symbol))
    if since is not None:
        query = query.where(table.c[spec.time_column] >= ensure_utc(since))
    return query.order_by(*table.primary_key.columns)


def _plain(value: Any) -> Any:
    """A value as JSON writes it: decimals as strings, timestamps ISO UTC."""
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    return value


def _cell(value: Any) -> str:
    """A value as CSV writes it (None: empty; lists/dicts: JSON; formula-like text
    neutralised with a leading `'`, numbers kept)."""
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(safe_cell(value))


def iter_rows(
    engine: Engine,
    kind: str,
    symbol: str | None = None,
    since: datetime | None = None,
    batch: int = 5000,
) -> Iterator[dict[str, Any]]:
    """Rows of a kind as dicts of plain values, streamed in batches."""
    query = export_query(kind, symbol, since)
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=batch).execute(query)
        for row in result.mappings():
            yield {key: _plain(value) for key, value in row.items()}


def export(
    engine: Engine,
    kind: str,
    out: TextIO,
    fmt: str = "csv",
    symbol: str | None = None,
    since: datetime | None = None,
) -> int:
    """Write the rows of `kind` to `out` as `fmt` (csv or json); returns the row count."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    query = export_query(kind, symbol, since)  # validate before writing anything
    columns = [column.name for column in query.selected_columns]
    rows = iter_rows(engine, kind, symbol, since)
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row[c]) for c in columns])
            count += 1
        return count
    out.write("[")
    for row in rows:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(row, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
