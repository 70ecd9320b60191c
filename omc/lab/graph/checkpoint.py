"""The graph's checkpointer, in the same database as the Lab's sessions.

* SQLite (the embedded default): `langgraph-checkpoint-sqlite`'s `SqliteSaver` on the very
  database file of the engine (its own tables `checkpoints` and `writes`). One file holds the
  sessions, their events and the graph's checkpoints, so a backup (`omc ops backup`) or a
  copied data dir always has checkpoints that match the sessions — a second file could be
  lost or restored out of step. The connection gets the engine's WAL mode and a 30 s busy
  timeout, so concurrent sessions and processes wait for the write lock instead of failing.
* PostgreSQL: `langgraph-checkpoint-postgres`'s `PostgresSaver` on the engine's URL without
  SQLAlchemy's `+psycopg` (a `search_path` in the URL's `options` puts its tables in that
  schema), autocommit, dict rows; `.setup()` creates or migrates its tables.

`checkpointer(engine)` is a context manager: the connection is closed when it ends.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine

_setup_done: set[str] = set()
_setup_lock = threading.Lock()
_SETUP_LOCK_KEY = 0x4F4D434C4142  # "OMCLAB": the advisory lock around PostgresSaver.setup()


def _sqlite_saver(path: str) -> Iterator[Any]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA synchronous=NORMAL")
        saver = SqliteSaver(conn)
        yield saver
    finally:
        conn.close()


def _postgres_saver(url: str) -> Iterator[Any]:
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    conn = psycopg.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    try:
        saver = PostgresSaver(conn)  # type: ignore[arg-type]
        with _setup_lock:
            if url not in _setup_done:
                _setup(conn, saver)
                _setup_done.add(url)
        yield saver
    finally:
        conn.close()


def _current(conn: Any, saver: Any) -> bool:
    """Whether the checkpointer's tables exist at its latest migration."""
    table = conn.execute("SELECT to_regclass('checkpoint_migrations') AS t").fetchone()
    if not table or table["t"] is None:
        return False
    row = conn.execute("SELECT max(v) AS v FROM checkpoint_migrations").fetchone()
    return row is not None and row["v"] == len(saver.MIGRATIONS) - 1


def _setup(conn: Any, saver: Any) -> None:
    """`saver.setup()` by one process at a time (several may start at once). Its migrations
    build indexes CONCURRENTLY, which wait for every open transaction: a process blocked in
    `pg_advisory_lock` would be one, and deadlock — so the others poll with the try-lock,
    whose transactions end at once."""
    while not _current(conn, saver):
        got = conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (_SETUP_LOCK_KEY,)).fetchone()
        if not got or not got["ok"]:
            time.sleep(0.05)
            continue
        try:
            saver.setup()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK_KEY,))


def libpq_url(engine: Engine) -> str:
    """The engine's PostgreSQL URL as libpq reads it (no `+psycopg`, password kept)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def checkpointer(engine: Engine) -> Iterator[Any]:
    """A LangGraph checkpointer on `engine`'s database (module docstring)."""
    backend = engine.url.get_backend_name()
    if backend == "sqlite":
        path = engine.url.database
        if not path or path == ":memory:":
            raise ValueError("the Lab's graph needs a database file, not an in-memory SQLite")
        yield from _sqlite_saver(path)
    elif backend == "postgresql":
        yield from _postgres_saver(libpq_url(engine))
    else:
        raise ValueError(f"the Lab's graph runs on SQLite or PostgreSQL, not {backend}")
