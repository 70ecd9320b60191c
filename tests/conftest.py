"""Shared fixtures: a fresh, migrated database on SQLite and on PostgreSQL for every DB test.

PostgreSQL comes from `OMC_TEST_POSTGRES_URL` (default: the local trust-auth server). When it
cannot be reached the PostgreSQL variants skip with the reason — except under `CI=true`,
where a missing service is a failure. Each test gets its own PostgreSQL schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from omc.core.db import make_engine
from omc.migrations import upgrade

POSTGRES_URL = os.environ.get(
    "OMC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("OMC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() == "true"
DATA = Path(__file__).parent / "data"

_pg_problem: str | None = None
_pg_checked = False


def postgres_unavailable() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per session)."""
    global _pg_checked, _pg_problem
    if not _pg_checked:
        _pg_checked = True
        try:
            engine = make_engine(POSTGRES_URL)
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            engine.dispose()
        except Exception as exc:  # any failure to connect means "not available"
            _pg_problem = f"PostgreSQL not reachable at {POSTGRES_URL}: {type(exc).__name__}: {exc}"
    return _pg_problem


def require_postgres() -> None:
    problem = postgres_unavailable()
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true and {problem}")
        pytest.skip(problem)


def require_redis() -> None:
    """Skip (fail under CI=true) unless Redis answers at `REDIS_URL`."""
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except Exception as exc:  # any failure means "not available"
        problem = f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}: {exc}"
        if IN_CI:
            pytest.fail(f"CI=true and {problem}")
        pytest.skip(problem)


@contextmanager
def postgres_scratch(create: str, drop: str) -> Iterator[None]:
    """Run `create` (a schema or database for one test) on the test server, and `drop` when
    the block ends (autocommit: CREATE DATABASE cannot run in a transaction)."""
    admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(create))
    try:
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(drop))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, migrated database (one per backend)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'omc.db'}"
        upgrade(make_engine(url))
        yield url
        return
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    with postgres_scratch(f'CREATE SCHEMA "{schema}"', f'DROP SCHEMA "{schema}" CASCADE'):
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[Any]:
    """A FastAPI TestClient of the API on the test database (tests/api_support.py)."""
    from tests.api_support import serve_client

    yield from serve_client(db_url, tmp_path)


@pytest.fixture
def cp() -> Iterator[Any]:
    """A running fake CryptoPanic API (tests/fakes/cryptopanic_server.py)."""
    from tests.fakes.cryptopanic_server import running_cryptopanic

    yield from running_cryptopanic()


@pytest.fixture
def rd() -> Iterator[Any]:
    """A running fake Reddit API (tests/fakes/reddit_server.py)."""
    from tests.fakes.reddit_server import running_reddit

    yield from running_reddit()
