"""The one upsert helper: the single write path for every time-series table.

Rows are streamed in batches into a staging table (PostgreSQL: `COPY`; SQLite:
`executemany`) and merged with `INSERT … SELECT … ON CONFLICT (natural key) DO NOTHING`,
optionally after an `UPDATE` of rows whose values changed. It returns exact inserted /
updated / unchanged counts, so every write is idempotent and every run can say what it did.
On PostgreSQL a batch of only new rows takes a plain `INSERT … SELECT` in a savepoint first
(see `_pg_insert`), which skips the per-row cost of speculative insertion; any stored or
repeated key sends it (and the rest of the upsert) through `ON CONFLICT DO NOTHING`.
`benchmarks/ingest.py` measures all this. Values are encoded by `omc.core.upsert_encoding`.

SQLAlchemy's ORM bulk paths cannot report inserted-vs-duplicate counts portably nor use COPY,
which is why the merge is written here against the DBAPI connection the engine hands out.
"""

from __future__ import annotations

import functools
import itertools
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect, Engine, Table, UniqueConstraint
from sqlalchemy.engine import Connection
from sqlalchemy.sql import sqltypes

from omc.core.upsert_encoding import column_encoder


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
        self.binders = [column_encoder(type_, dialect, copy=False) for type_ in types]
        self.copy_encoders = [column_encoder(type_, dialect, copy=True) for type_ in types]
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
