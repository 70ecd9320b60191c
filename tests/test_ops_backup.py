"""`omc db backup` / `omc db restore`: a round trip on SQLite and PostgreSQL that fills EVERY
table (ledgers, floor journal, lab, api) and compares every row; the refusals (non-empty
target, unknown revision, missing pg_dump); the password never in argv."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Engine, MetaData, Table, delete, inspect, select, text
from sqlalchemy.engine import make_url

import omc.api.models
import omc.floor.models
import omc.lab.models
import omc.ledgers.models
import omc.ops.models  # noqa: F401 - every context's tables in Base.metadata
from omc.cli import context
from omc.cli.app import main
from omc.core.db import make_engine
from omc.core.db_types import Base
from omc.migrations import known_revisions, upgrade
from omc.ops import backup as ops
from tests.conftest import postgres_scratch

ROWS = 3
KINDS = {"UTCDateTime": datetime, "ExactDecimal": Decimal, "JSON": dict}


def value(column: Column[Any], i: int) -> Any:
    """A valid, distinct value of row `i` for `column` (a foreign key takes its target's)."""
    for fk in column.foreign_keys:
        return value(fk.column, i)
    kind = KINDS.get(type(column.type).__name__) or column.type.python_type
    if kind is bool:
        return i % 2 == 0
    if kind is int:
        return i + 1
    if kind is float:
        return i + 0.25
    if kind is Decimal:
        return Decimal(f"{i + 1}.000123456789")
    if kind is datetime:
        return datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC) + timedelta(hours=i)
    if kind is date:
        return date(2026, 1, 1) + timedelta(days=i)
    if kind is dict:
        return {"row": i, "text": "é ✓", "nested": [1, "2", None]}
    if kind is list:
        return [i, "x"]
    if kind is bytes:
        return bytes([i]) * 8
    length = getattr(column.type, "length", None) or 64
    return f"{i}-{column.name}-ü"[:length]


def fill_every_table(engine: Engine) -> dict[str, int]:
    tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
    declared = {t.name for t in Base.metadata.sorted_tables}
    assert tables <= declared, f"tables without a model: {tables - declared}"
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in tables:
                rows = [{c.name: value(c, i) for c in table.columns} for i in range(ROWS)]
                conn.execute(table.insert(), rows)
    return {name: ROWS for name in tables}


def dump_every_row(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows in a stable order; declared tables through their types."""
    names = set(inspect(engine).get_table_names())
    reflected = MetaData()
    reflected.reflect(engine)
    out = {}
    with engine.connect() as conn:
        for name in sorted(names):
            declared = Base.metadata.tables.get(name)
            table: Table = reflected.tables[name] if declared is None else declared
            rows = conn.execute(select(table)).all()
            out[name] = sorted((tuple(r) for r in rows), key=repr)
    return out


@pytest.fixture
def filled(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    counts = fill_every_table(engine)
    assert len(counts) >= 20
    rows = dump_every_row(engine)
    assert all(len(rows[name]) == ROWS for name in counts)
    assert {"floor_journal", "ticks", "candles", "quarantine", "collector_runs"} <= set(counts)
    return rows


@pytest.fixture
def fresh_target(db_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database to restore into: another SQLite file, or another
    PostgreSQL database holding the same schema name."""
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'restored' / 'omc.db'}"
        yield url
        return
    name = f"restore_{uuid.uuid4().hex[:10]}"
    url = make_url(db_url).set(database=name).render_as_string(hide_password=False)
    with postgres_scratch(
        f'CREATE DATABASE "{name}"', f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    ):
        yield url


def test_round_trip_compares_every_row(
    db_url: str, engine: Engine, filled: dict[str, Any], fresh_target: str, tmp_path: Path
) -> None:
    file = tmp_path / "omc.backup"
    made = ops.backup(db_url, file)
    assert made.revision in known_revisions() and made.size > 0
    done = ops.restore(fresh_target, file, known_revisions=known_revisions())
    assert done.revision == made.revision
    restored = make_engine(fresh_target)
    try:
        assert dump_every_row(restored) == filled
        # a second restore over data needs --force, and then gives the same rows again
        with pytest.raises(ops.BackupError, match=r"not empty .*--force"):
            ops.restore(fresh_target, file, known_revisions=known_revisions())
        with restored.begin() as conn:
            conn.execute(delete(Base.metadata.tables["ticks"]))
        ops.restore(fresh_target, file, known_revisions=known_revisions(), force=True)
        assert dump_every_row(restored) == filled
    finally:
        restored.dispose()


def test_restore_refuses_a_backup_from_newer_code(
    db_url: str, engine: Engine, fresh_target: str, tmp_path: Path
) -> None:
    file = tmp_path / "omc.backup"
    ops.backup(db_url, file)
    with pytest.raises(ops.BackupError, match="unknown to this version of OMC"):
        ops.restore(fresh_target, file, known_revisions={"0001_something_else"})
    with pytest.raises(ops.BackupError, match="no backup file"):
        ops.restore(fresh_target, tmp_path / "missing", known_revisions=known_revisions())


def test_sqlite_backup_is_one_self_contained_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'omc.db'}"
    live = make_engine(url)
    upgrade(live)
    with live.begin() as conn:  # an open WAL with unchecked-pointed pages
        conn.execute(text("PRAGMA wal_autocheckpoint=0"))
    fill_every_table(live)
    file = tmp_path / "b.sqlite"
    ops.backup(url, file)
    assert not (tmp_path / "b.sqlite-wal").exists()
    copy = make_engine(f"sqlite:///{file}")
    assert dump_every_row(copy) == dump_every_row(live)
    copy.dispose()
    live.dispose()
    (tmp_path / "junk").write_text("not a database")
    with pytest.raises(ops.BackupError, match="not an SQLite backup"):
        ops.restore(url, tmp_path / "junk", known_revisions=known_revisions(), force=True)


def test_postgres_password_goes_in_the_environment_not_argv() -> None:
    conn, env = ops._libpq("postgresql+psycopg://omc:s3cr%40t@db.example:5433/omc?sslmode=require")
    assert "s3cr" not in conn and conn.startswith("postgresql://omc@db.example:5433/omc")
    assert "sslmode=require" in conn
    assert env["PGPASSWORD"] == "s3cr@t"
    url = make_url("postgresql+psycopg://u@h/db?options=-csearch_path%3Dt_abc")
    assert ops.search_path_schema(url) == "t_abc"


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No OMC_* from the outside, a fresh directory, settings and engine caches cleared."""
    for name in list(os.environ):
        if name.startswith("OMC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMC_DATA_DIR", str(tmp_path / "data"))
    _clear()
    yield monkeypatch
    _clear()


def test_missing_pg_dump_is_one_clear_line(
    tmp_path: Path, cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env.setenv("PATH", str(tmp_path))  # no pg_dump on it
    cli_env.setenv("OMC_DATABASE_URL", "postgresql+psycopg://omc:hunter2hunter2@127.0.0.1/x")
    with pytest.raises(SystemExit) as info:
        main(["db", "backup", str(tmp_path / "x.dump")])
    err = capsys.readouterr().err
    assert info.value.code == 1
    assert "pg_dump not found" in err and "hunter2" not in err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1


@pytest.mark.usefixtures("cli_env")
def test_cli_backup_and_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live = context.engine()
    fill_every_table(live)
    before = dump_every_row(live)
    file = tmp_path / "omc.backup"
    with pytest.raises(SystemExit) as info:
        main(["db", "backup", str(file)])
    assert info.value.code in (0, None)
    assert "backed up sqlite database" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["db", "restore", str(file)])
    assert info.value.code == 1
    assert "--force" in capsys.readouterr().err
    with live.begin() as conn:
        conn.execute(delete(Base.metadata.tables["floor_journal"]))
    with pytest.raises(SystemExit) as info:
        main(["db", "restore", str(file), "--force"])
    assert info.value.code in (0, None), capsys.readouterr().err
    assert "restored" in capsys.readouterr().out
    assert dump_every_row(live) == before


def _clear() -> None:
    from omc.core.config import get_settings

    get_settings.cache_clear()
    context.engine.cache_clear()
