"""Backups and restores of the OMC database: `backup(url, file)` and `restore(url, file)`.

* SQLite: the online backup API (`sqlite3.Connection.backup`), safe while collectors write
  (WAL readers never block writers). The backup is one self-contained file (journal mode
  DELETE), written beside its destination and renamed into place.
* PostgreSQL: `pg_dump -Fc` / `pg_restore --clean --if-exists --single-transaction`. The
  password goes in `PGPASSWORD` (never in argv); a URL whose `options` set a `search_path`
  backs up that schema only (`-n`), otherwise the whole database.

Restore refuses a non-empty target unless `force`, and refuses a backup whose migration
revision this code does not know (a backup from newer code). Every error is a `BackupError`
with one line a person can act on; URLs in messages are masked (`omc.core.masking`).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy import Engine, inspect, literal_column, select, table
from sqlalchemy.engine import URL, make_url

from omc.core.db import make_engine
from omc.core.masking import mask_text, mask_url

VERSION_TABLE = "alembic_version"


class BackupError(Exception):
    """A backup or restore that cannot be done; the message is one line for people."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    backend: str  # "sqlite" | "postgresql"
    revision: str | None
    size: int


def backend_of(url: str) -> str:
    name = make_url(url).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"backups support SQLite and PostgreSQL, not {name}")
    return name


# --- SQLite -------------------------------------------------------------------------------


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def _sqlite_revision(path: Path) -> str | None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        if conn.execute("PRAGMA quick_check").fetchone() != ("ok",):
            raise BackupError(f"{path} is a damaged SQLite database")
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if VERSION_TABLE not in names:
            return None
        row = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
        return row[0] if row else None
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not an SQLite backup: {exc}") from None
    finally:
        conn.close()


def _sqlite_copy(source: Path, dest: Path, *, read_only_source: bool) -> None:
    src_uri = f"file:{source}?mode=ro" if read_only_source else f"file:{source}"
    src = sqlite3.connect(src_uri, uri=True, timeout=30)
    try:
        dst = sqlite3.connect(dest, timeout=30)
        try:
            src.backup(dst)
            return
        finally:
            dst.close()
    finally:
        src.close()


def _sqlite_backup(url: str, dest: Path) -> None:
    source = _sqlite_path(url)
    if not source.exists():
        raise BackupError(f"no database at {source}")
    tmp = dest.with_name(f".{dest.name}.partial")
    tmp.unlink(missing_ok=True)
    try:
        _sqlite_copy(source, tmp, read_only_source=False)
        conn = sqlite3.connect(tmp)
        conn.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        conn.close()
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _sqlite_restore(url: str, source: Path) -> None:
    target = _sqlite_path(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    _sqlite_copy(source, target, read_only_source=True)


# --- PostgreSQL ---------------------------------------------------------------------------

_SEARCH_PATH = re.compile(r"-c\s*search_path\s*=\s*([^\s,]+)")


def search_path_schema(url: URL) -> str | None:
    """The first schema a URL's `options=-csearch_path=…` sets, or None."""
    options = url.query.get("options")
    text = unquote(options if isinstance(options, str) else " ".join(options or ()))
    found = _SEARCH_PATH.search(text)
    return found.group(1).strip('"') if found else None


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """(connection string without the password, environment with PGPASSWORD)."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    bare = URL.create(  # `URL.set(password=None)` would keep the password
        "postgresql",
        parsed.username,
        None,
        parsed.host,
        parsed.port,
        parsed.database,
        parsed.query,
    )
    return bare.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} not found: install the PostgreSQL client tools "
            "(Debian: apt-get install postgresql-client), the same major version as the server"
        )
    return path


def _run(argv: list[str], env: dict[str, str], what: str) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        detail = mask_text(lines[0] if lines else f"exit code {done.returncode}", 300)
        raise BackupError(f"{what} failed: {detail}")
    return done.stdout


def _pg_backup(url: str, dest: Path) -> None:
    conn, env = _libpq(url)
    argv = [_tool("pg_dump"), "-Fc", "--no-owner", "--no-privileges", "-d", conn]
    schema = search_path_schema(make_url(url))
    if schema:
        argv += ["-n", schema]
    tmp = dest.with_name(f".{dest.name}.partial")
    try:
        _run([*argv, "-f", str(tmp)], env, "pg_dump")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _pg_archive_schemas(source: Path) -> set[str]:
    listing = _run([_tool("pg_restore"), "-l", str(source)], dict(os.environ), "pg_restore -l")
    return {
        m.group(1) for m in re.finditer(r"^\d+;\s+\S+\s+\S+\s+SCHEMA\s+-\s+(\S+)", listing, re.M)
    }


def _pg_revision(source: Path) -> str | None:
    script = _run(
        [_tool("pg_restore"), "--data-only", "-t", VERSION_TABLE, "-f", "-", str(source)],
        dict(os.environ),
        "pg_restore",
    )
    lines = script.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("COPY ") and f"{VERSION_TABLE} " in line:
            values = lines[i + 1 : i + 2]
            return values[0].strip() if values and values[0] != "\\." else None
    return None


def _pg_restore(url: str, source: Path) -> None:
    schema = search_path_schema(make_url(url))
    dumped = _pg_archive_schemas(source)
    if schema and dumped and schema not in dumped:
        raise BackupError(
            f"the backup holds schema {', '.join(sorted(dumped))}, the target uses {schema}"
        )
    conn, env = _libpq(url)
    argv = [_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges"]
    argv += ["--single-transaction", "--exit-on-error", "-d", conn, str(source)]
    _run(argv, env, "pg_restore")


# --- the two operations -------------------------------------------------------------------


def backup_revision(backend: str, source: Path) -> str | None:
    """The migration revision recorded in a backup file."""
    if not source.is_file():
        raise BackupError(f"no backup file at {source}")
    return _sqlite_revision(source) if backend == "sqlite" else _pg_revision(source)


def non_empty_tables(engine: Engine) -> list[str]:
    """Tables (besides the migration version) holding at least one row."""
    names = [n for n in inspect(engine).get_table_names() if n != VERSION_TABLE]
    found = []
    with engine.connect() as conn:
        for name in sorted(names):
            if conn.execute(select(literal_column("1")).select_from(table(name)).limit(1)).first():
                found.append(name)
    return found


def backup(url: str, dest: Path) -> BackupResult:
    """Write a backup of the database at `url` to `dest` (replaced atomically)."""
    backend = backend_of(url)
    dest = dest.expanduser().resolve()
    if dest.is_dir():
        raise BackupError(f"{dest} is a directory: give a file name")
    dest.parent.mkdir(parents=True, exist_ok=True)
    (_sqlite_backup if backend == "sqlite" else _pg_backup)(url, dest)
    return BackupResult(dest, backend, backup_revision(backend, dest), dest.stat().st_size)


def restore(
    url: str, source: Path, *, known_revisions: Collection[str], force: bool = False
) -> BackupResult:
    """Replace the database at `url` with the backup `source`.

    Refuses a backup from a revision not in `known_revisions` (newer code made it), and a
    target holding any row unless `force`."""
    backend = backend_of(url)
    source = source.expanduser().resolve()
    revision = backup_revision(backend, source)
    if revision is None:
        raise BackupError(f"{source} is not an OMC backup (no migration revision in it)")
    if revision not in known_revisions:
        raise BackupError(
            f"{source} is at migration revision {revision}, unknown to this version of OMC "
            "(restore it with the version that made it, or upgrade OMC)"
        )
    engine = make_engine(url)
    try:
        busy = [] if force else non_empty_tables(engine)
    finally:
        engine.dispose()
    if busy:
        shown = ", ".join(busy[:5]) + (" …" if len(busy) > 5 else "")
        raise BackupError(
            f"database {mask_url(url)} is not empty ({shown}): pass --force to overwrite it"
        )
    (_sqlite_restore if backend == "sqlite" else _pg_restore)(url, source)
    return BackupResult(source, backend, revision, source.stat().st_size)
