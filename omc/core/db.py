"""Database: engine creation, the exact column types every ledger uses, and the one upsert helper.

* `ExactDecimal` stores prices and sizes exactly: PostgreSQL `NUMERIC`, SQLite text (SQLite's
  NUMERIC affinity would silently round to a float).
* `UTCDateTime` stores aware UTC datetimes: PostgreSQL `timestamptz`, SQLite fixed-width ISO
  text (lexicographic order == time order) and gives them back aware.
* `upsert()` is the single write path for every time-series table. Rows are streamed in
  batches into a staging table (PostgreSQL: `COPY`; SQLite: `executemany`) and merged with
  `INSERT … SELECT … ON CONFLICT (natural key) DO NOTHING`, optionally after an `UPDATE` of
  rows whose values changed. It returns exact inserted / updated / unchanged counts, so every
  write is idempotent and every run can say what it did. On PostgreSQL a batch of only new
  rows takes a plain `INSERT … SELECT` in a savepoint first (see `_pg_insert`), which skips
  the per-row cost of speculative insertion; any stored or repeated key sends it (and the rest
  of the upsert) through `ON CONFLICT DO NOTHING`. `benchmarks/ingest.py` measures all this.
* Text is cleaned at this edge, for every text and JSON column: control characters other than
  tab / newline / carriage return (NUL above all, which PostgreSQL text cannot hold and which
  would fail a whole COPY batch) are removed, lone surrogates become U+FFFD (`clean_control`).

SQLAlchemy's ORM bulk paths cannot report inserted-vs-duplicate counts portably nor use COPY,
which is why the merge is written here against the DBAPI connection the engine hands out.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from operator import add, attrgetter, sub
from typing import Any

from sqlalchemy import (
    DateTime,
    Dialect,
    Engine,
    MetaData,
    Numeric,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql import sqltypes
from sqlalchemy.types import TypeDecorator, TypeEngine

from omc.core.time import ensure_utc

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base shared by every bounded context's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def to_decimal(value: object) -> Decimal:
    """Exact decimal from a string, int, Decimal or float (floats via their shortest repr)."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValueError(f"not a decimal number: {value!r}") from exc
    else:
        raise ValueError(f"not a number: {value!r}")
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_control(value: str) -> str:
    """`value` without control characters (tab, newline, CR kept) and lone surrogates."""
    if value.isprintable():
        return value
    return _SURROGATE.sub("\ufffd", _CONTROL.sub("", value))


def clean_json(value: Any) -> Any:
    """`clean_control` applied to every string (keys included) inside a JSON value."""
    if isinstance(value, str):
        return clean_control(value)
    if isinstance(value, dict):
        return {clean_json(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def decimal_text(value: Decimal) -> str:
    """Plain positional text of a decimal, without exponent or trailing zeros ('0.0000533')."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact decimal: NUMERIC on PostgreSQL, canonical text on SQLite."""

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        number = to_decimal(value)
        return str(number) if dialect.name == "sqlite" else number

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC timestamp: timestamptz on PostgreSQL, fixed-width ISO text on SQLite."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise ValueError(f"not a datetime: {value!r}")
        value = ensure_utc(value)
        return value.isoformat(timespec="microseconds") if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA temp_store=MEMORY")
    # checkpoint the WAL every ~40 MB instead of every 4 MB: fewer fsyncs on bulk writes,
    # same durability (WAL + synchronous=NORMAL)
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL mode, a busy timeout and its directory created."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


# --------------------------------------------------------------------------------------
# The upsert helper
# --------------------------------------------------------------------------------------


@dataclass
class UpsertResult:
    """What one upsert did: rows newly inserted, rows whose values changed, rows already there."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def __iadd__(self, other: UpsertResult) -> UpsertResult:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self


def natural_key(table: Table) -> tuple[str, ...]:
    """The natural key of a table: its first unique constraint, else its primary key."""
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            return tuple(column.name for column in constraint.columns)
    key = tuple(column.name for column in table.primary_key.columns)
    if not key or any(table.c[name].autoincrement is True for name in key):
        raise ValueError(f"table {table.name} has no natural key to upsert on")
    return key


def _batches(rows: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


class _Plan:
    """Everything about one upsert that does not depend on the rows: columns, SQL, encoders."""

    def __init__(
        self,
        table: Table,
        dialect: Dialect,
        columns: Sequence[str],
        key: Sequence[str],
        update: Sequence[str],
    ) -> None:
        self.table = table
        self.dialect = dialect
        self.columns = list(columns)
        self.key = list(key)
        self.update = list(update)
        missing = [k for k in self.key if k not in self.columns]
        if missing:
            raise ValueError(f"rows for {table.name} lack key column(s) {missing}")
        self.defaults: dict[str, Callable[[], Any]] = {}
        for column in table.columns:
            if column.name in self.columns or column.default is None:
                continue
            default = column.default
            if getattr(default, "is_callable", False):
                fn = default.arg  # type: ignore[attr-defined]
                self.defaults[column.name] = functools.partial(fn, None)
            elif getattr(default, "is_scalar", False):
                value = default.arg  # type: ignore[attr-defined]
                self.defaults[column.name] = itertools.repeat(value).__next__
        self.all_columns = self.columns + list(self.defaults)
        types = [table.c[name].type for name in self.all_columns]
        self.binders = [_column_encoder(type_, dialect, copy=False) for type_ in types]
        self.copy_encoders = [_column_encoder(type_, dialect, copy=True) for type_ in types]
        schema = table.schema
        self.target = (_quote(schema) + "." if schema else "") + _quote(table.name)
        digest = zlib.crc32(",".join(self.all_columns).encode())
        mode = "u" if self.update else "i"  # update-mode staging tables carry `_seq`
        self.stage = _quote(f"stg_{table.name}_{digest:08x}{mode}")
        self.update_sql, self.insert_sql = _merge_sql(self.target, self.stage, self, dialect.name)
        cols = ", ".join(_quote(c) for c in self.all_columns)
        self.plain_insert_sql = (
            f"INSERT INTO {self.target} ({cols}) SELECT {cols} FROM {self.stage}"
        )
        # PostgreSQL fast path for batches of new rows (see `_pg_insert`); switched off for
        # the rest of the upsert as soon as one batch turns out to hold a stored key.
        self.try_plain_insert = dialect.name == "postgresql" and not self.update

    def encode(self, batch: list[Mapping[str, Any]]) -> Any:
        """Encode a batch for the driver, column by column (C-level `map`s where possible).

        SQLite: a list of parameter tuples. PostgreSQL: the COPY text of the batch.
        """
        n = len(batch)
        encoders = self.copy_encoders if self.dialect.name == "postgresql" else self.binders
        encoded: list[Iterable[Any]] = [
            encode([row[name] for row in batch])
            for encode, name in zip(encoders, self.columns, strict=False)
        ]
        for encode, make in zip(encoders[len(self.columns) :], self.defaults.values(), strict=True):
            encoded.append(itertools.repeat(next(iter(encode([make()]))), n))
        if self.dialect.name == "postgresql":
            # no sequence column: the staging table numbers rows itself (`_seq bigserial`), so
            # the same text can also be copied straight into the target
            return "\n".join(map("\t".join, zip(*encoded, strict=False))) + "\n"
        return list(zip(*encoded, strict=False))


ColumnEncoder = Callable[[list[Any]], Iterable[Any]]
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_is_finite = Decimal.is_finite
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_repeat = itertools.repeat


def _utc_iso(values: Iterable[datetime]) -> Iterator[str]:
    """Aware UTC datetimes -> 'YYYY-MM-DDTHH:MM:SS.ffffff+00:00', as C-level `map`s.

    Equal to `value.isoformat(timespec="microseconds")`, about 3x faster: formatting an aware
    datetime's offset dominates `isoformat`, so the value is shifted to the naive UTC wall
    time (exact timedelta arithmetic), formatted, and the constant offset appended.
    """
    naive = map(add, _repeat(_EPOCH_NAIVE), map(sub, values, _repeat(_EPOCH)))
    text = map(datetime.isoformat, naive, _repeat("T"), _repeat("microseconds"))
    return map(add, text, _repeat("+00:00"))


def _column_encoder(type_: TypeEngine[Any], dialect: Dialect, copy: bool) -> ColumnEncoder:
    """values of one column -> what the driver takes (`copy`: PostgreSQL COPY text fields).

    The common case (all values already of the column's Python type, aware UTC datetimes,
    finite decimals, strings with nothing to escape) runs as C-level `map`s; anything else
    takes the per-value path, which converts exactly as the column type binds.
    """
    per_value = _value_encoder(type_, dialect, copy)
    sqlite = dialect.name == "sqlite"

    if isinstance(type_, ExactDecimal):

        def decimals(values: list[Any]) -> Iterable[Any]:
            if set(map(type, values)) == {Decimal} and all(map(_is_finite, values)):
                return map(str, values) if sqlite or copy else values
            return map(per_value, values)

        return decimals
    if isinstance(type_, UTCDateTime):

        def datetimes(values: list[Any]) -> Iterable[Any]:
            all_utc = set(map(type, values)) == {datetime} and set(
                map(attrgetter("tzinfo"), values)
            ) == {UTC}
            if all_utc:
                if not (sqlite or copy):
                    return values
                # Market data repeats timestamps (every symbol's candle or tick of one poll
                # shares its `ts`): format each distinct instant once.
                distinct = dict.fromkeys(values)
                if len(distinct) * 4 > len(values) * 3:
                    return _utc_iso(values)
                text = dict(zip(distinct, _utc_iso(distinct), strict=True))
                return map(text.__getitem__, values)
            return map(per_value, values)

        return datetimes
    if isinstance(type_, String) and not isinstance(type_, TypeDecorator):

        def strings(values: list[Any]) -> Iterable[Any]:
            if set(map(type, values)) == {str}:
                joined = "".join(values)
                if joined.isprintable() and (not copy or "\\" not in joined):
                    return values
            return map(per_value, values)

        return strings
    return lambda values: map(per_value, values)


def _value_encoder(type_: TypeEngine[Any], dialect: Dialect, copy: bool) -> Callable[[Any], Any]:
    processor = type_.dialect_impl(dialect).bind_processor(dialect)
    bind: Callable[[Any], Any]
    if isinstance(type_, TypeDecorator):
        decorator = type_

        def bind(value: Any) -> Any:
            return decorator.process_bind_param(value, dialect)

    elif isinstance(type_, sqltypes.JSON) and copy:
        # COPY takes JSON as text; the driver-level processor would wrap it for psycopg.
        def bind(value: Any) -> Any:
            return json.dumps(clean_json(value), default=str)

    elif isinstance(type_, sqltypes.JSON):
        json_processor = processor

        def bind(value: Any) -> Any:
            value = clean_json(value)
            return json_processor(value) if json_processor is not None else value

    elif isinstance(type_, String):
        text_processor = processor

        def bind(value: Any) -> Any:
            if isinstance(value, str):
                value = clean_control(value)
            return text_processor(value) if text_processor is not None else value

    elif processor is not None:
        bind = processor
    else:

        def bind(value: Any) -> Any:
            return value

    if not copy:
        return lambda value: None if value is None else bind(value)

    def encode(value: Any) -> str:
        if value is None:
            return "\\N"
        value = bind(value)
        kind = type(value)
        if value is None:
            return "\\N"
        if kind is str:
            return value.translate(_COPY_ESCAPES)  # type: ignore[no-any-return]
        if kind is datetime:
            return value.isoformat(timespec="microseconds")  # type: ignore[no-any-return]
        if kind is bool:
            return "t" if value else "f"
        if kind is dict or kind is list:
            return json.dumps(value).translate(_COPY_ESCAPES)
        return str(value)

    return encode


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _merge_sql(target: str, stage: str, plan: _Plan, dialect: str) -> tuple[str | None, str]:
    cols = ", ".join(_quote(c) for c in plan.all_columns)
    key = ", ".join(_quote(c) for c in plan.key)
    insert = (
        f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {stage} WHERE true "
        f"ON CONFLICT ({key}) DO NOTHING"
    )
    if not plan.update:
        return None, insert
    sets = ", ".join(f"{_quote(c)} = s.{_quote(c)}" for c in plan.update)
    join = " AND ".join(f"{target}.{_quote(k)} = s.{_quote(k)}" for k in plan.key)
    distinct = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"

    def compared(column: str, side: str) -> str:
        # PostgreSQL's json type has no equality operator: compare JSON values as jsonb
        is_json = isinstance(plan.table.c[column].type, sqltypes.JSON)
        return f"{side}.{_quote(column)}" + (
            "::jsonb" if is_json and dialect == "postgresql" else ""
        )

    differs = " OR ".join(
        f"{compared(c, target)} {distinct} {compared(c, 's')}" for c in plan.update
    )
    latest = f"SELECT * FROM {stage} WHERE _seq IN (SELECT max(_seq) FROM {stage} GROUP BY {key})"
    update = f"UPDATE {target} SET {sets} FROM ({latest}) AS s WHERE {join} AND ({differs})"
    return update, insert


def upsert(
    bind: Engine | Connection,
    table: Table,
    rows: Iterable[Mapping[str, Any]],
    *,
    update: Sequence[str] | None = None,
    key: Sequence[str] | None = None,
    batch_size: int = 50_000,
    on_batch: Callable[[UpsertResult], None] | None = None,
) -> UpsertResult:
    """Insert `rows` into `table`, skipping rows whose natural key is already stored.

    `update`: columns to overwrite when a stored row's values differ (default: none, the
    stored row wins). Every row must carry the same columns. Given an `Engine`, each batch is
    committed on its own (progress survives a crash); given a `Connection`, everything runs in
    the caller's transaction. Rows are streamed: memory is bounded by `batch_size`; on
    PostgreSQL the next batch is pulled and encoded while the server merges the current one.
    Returns exact inserted / updated / unchanged counts.
    """
    total = UpsertResult()
    key = tuple(key) if key else natural_key(table)
    batches = _batches(rows, batch_size)
    first = next(batches, None)
    if first is None:
        return total
    plan = _Plan(table, bind.dialect, list(first[0].keys()), key, tuple(update or ()))

    def write(encoded: Any, size: int) -> UpsertResult:
        if isinstance(bind, Engine):
            with bind.begin() as conn:
                return _write_batch(conn, plan, encoded, size)
        return _write_batch(bind, plan, encoded, size)

    def finish(pending: Future[UpsertResult]) -> None:
        nonlocal total
        result = pending.result()
        total += result
        if on_batch is not None:
            on_batch(result)

    # PostgreSQL merges on the server: each batch is written from a helper thread (which
    # mostly waits on the socket, the GIL released) while this thread pulls the next rows
    # from `rows` — where parsing or generating them happens — and encodes them. Only one
    # write is ever in flight, so batches reach the database in order, one at a time.
    # SQLite works inside this process, where a second thread only contends for the GIL.
    overlap = bind.dialect.name == "postgresql"
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="omc-upsert") as pool:
        submit = pool.submit if overlap else _run_now
        pending: Future[UpsertResult] | None = None
        batch: list[Mapping[str, Any]] | None = first
        del first
        while batch is not None:
            encoded, size = plan.encode(batch), len(batch)
            batch = None  # let the rows go before pulling the next batch
            if pending is not None:
                finish(pending)
            pending = submit(write, encoded, size)
            del encoded
            batch = next(batches, None)
        if pending is not None:
            finish(pending)
    return total


def _run_now(fn: Callable[..., Any], *args: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(fn(*args))
    return future


def _write_batch(conn: Connection, plan: _Plan, encoded: Any, size: int) -> UpsertResult:
    raw: Any = conn.connection.driver_connection
    cols = ", ".join(_quote(c) for c in plan.all_columns)
    target, stage = plan.target, plan.stage
    updated = 0
    if plan.dialect.name == "postgresql":
        with raw.cursor() as cur:
            if _pg_copy_direct(cur, plan, encoded, size):
                return UpsertResult(inserted=size)
            cur.execute("SELECT to_regclass('pg_temp.' || %s)", (stage.strip('"'),))
            if cur.fetchone()[0] is None:
                cur.execute(
                    f"CREATE TEMP TABLE {stage} AS SELECT {cols} FROM {target} WITH NO DATA"
                )
                if plan.update_sql:  # the merge keeps the last row per key: number them
                    cur.execute(f"ALTER TABLE {stage} ADD COLUMN _seq bigserial")
            cur.execute(f"TRUNCATE {stage}")
            with cur.copy(f"COPY {stage} ({cols}) FROM STDIN") as copy:
                copy.write(encoded)
            if plan.update_sql:
                cur.execute(plan.update_sql)
                updated = max(cur.rowcount, 0)
            inserted = _pg_insert(cur, plan, size)
            cur.execute(f"TRUNCATE {stage}")
    elif plan.dialect.name == "sqlite":
        cur = raw.cursor()
        try:
            if plan.update_sql is None:
                placeholders = ", ".join("?" for _ in plan.all_columns)
                key = ", ".join(_quote(k) for k in plan.key)
                cur.executemany(
                    f"INSERT INTO {target} ({cols}) VALUES ({placeholders}) "
                    f"ON CONFLICT ({key}) DO NOTHING",
                    encoded,
                )
                inserted = max(cur.rowcount, 0)
            else:
                cur.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {stage} AS "
                    f"SELECT {cols}, 0 AS _seq FROM {target} WHERE 0"
                )
                cur.execute(f"DELETE FROM {stage}")
                placeholders = ", ".join("?" for _ in range(len(plan.all_columns) + 1))
                cur.executemany(
                    f"INSERT INTO {stage} ({cols}, _seq) VALUES ({placeholders})",
                    [(*row, seq) for seq, row in enumerate(encoded)],
                )
                cur.execute(plan.update_sql)
                updated = max(cur.rowcount, 0)
                cur.execute(plan.insert_sql)
                inserted = max(cur.rowcount, 0)
                cur.execute(f"DELETE FROM {stage}")
        finally:
            cur.close()
    else:  # pragma: no cover - other databases are not supported
        raise NotImplementedError(f"upsert does not support {plan.dialect.name}")
    return UpsertResult(inserted=inserted, updated=updated, unchanged=size - inserted - updated)


_UNIQUE_VIOLATION = "23505"
PLAIN_INSERT_MIN_ROWS = 5_000
"""Smallest batch worth trying the plain-insert fast path for (small upserts, e.g. a
collector's few fresh rows that usually overlap stored ones, go straight to ON CONFLICT)."""


def _pg_copy_direct(cur: Any, plan: _Plan, encoded: str, size: int) -> bool:
    """While an insert-only upsert keeps bringing only new rows, COPY a large batch straight
    into the target inside a savepoint: no staging, no merge. The primary key still guards it:
    if any key is already stored (or repeats in the batch) the COPY fails with a unique
    violation, is rolled back to the savepoint — nothing of it remains — and this batch and
    every later one of the upsert take the staged `ON CONFLICT` path. Returns True when the
    whole batch was inserted (so the count is exact: `size`)."""
    if not plan.try_plain_insert or plan.update_sql or size < PLAIN_INSERT_MIN_ROWS:
        return False
    cols = ", ".join(_quote(c) for c in plan.all_columns)
    cur.execute("SAVEPOINT omc_upsert_copy")
    try:
        with cur.copy(f"COPY {plan.target} ({cols}) FROM STDIN") as copy:
            copy.write(encoded)
    except Exception as exc:
        if getattr(exc, "sqlstate", None) != _UNIQUE_VIOLATION:
            raise
        cur.execute("ROLLBACK TO SAVEPOINT omc_upsert_copy")
        plan.try_plain_insert = False
        return False
    cur.execute("RELEASE SAVEPOINT omc_upsert_copy")
    return True


def _pg_insert(cur: Any, plan: _Plan, size: int) -> int:
    """Merge the staged batch into the target on PostgreSQL; returns the rows inserted.

    The merge is `INSERT … SELECT … ON CONFLICT (key) DO NOTHING`. Its speculative insertion
    costs a pre-check and an extra WAL record per row, so while an upsert keeps bringing only
    new rows each batch is first tried as a plain `INSERT … SELECT` inside a savepoint (about
    1.6x faster on the server). The unique index still guards it: if any staged key is already
    stored (or repeats inside the batch) the plain insert fails with a unique violation, is
    rolled back to the savepoint — nothing of it remains visible — and the batch goes through
    `ON CONFLICT DO NOTHING`, as do all later batches of this upsert. Counts stay exact either
    way: a plain insert that succeeds inserted every staged row. Batches smaller than
    `PLAIN_INSERT_MIN_ROWS` skip the attempt (it would cost round trips, not save time).
    """
    if plan.try_plain_insert and size >= PLAIN_INSERT_MIN_ROWS:
        cur.execute("SAVEPOINT omc_upsert_plain")
        try:
            cur.execute(plan.plain_insert_sql)
        except Exception as exc:
            if getattr(exc, "sqlstate", None) != _UNIQUE_VIOLATION:
                raise
            cur.execute("ROLLBACK TO SAVEPOINT omc_upsert_plain")
            plan.try_plain_insert = False
        else:
            inserted = max(cur.rowcount, 0)
            cur.execute("RELEASE SAVEPOINT omc_upsert_plain")
            return inserted
    cur.execute(plan.insert_sql)
    return max(cur.rowcount, 0)
