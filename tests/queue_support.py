"""Helpers of the queue tests: a fresh PostgreSQL schema and Redis database for a fleet of
`omc worker` / `omc scheduler` subprocesses, started in their own process groups and always
killed with SIGKILL when the test ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from omc.core.db import make_engine
from omc.migrations import upgrade
from tests.conftest import (
    POSTGRES_URL,
    REDIS_URL,
    postgres_scratch,
    require_postgres,
    require_redis,
)

ROOT = Path(__file__).resolve().parents[1]


def broker_url(db: int) -> str:
    """A Redis database of one queue test's own (tests run in parallel under `-n 2`)."""
    return f"{REDIS_URL.rsplit('/', 1)[0]}/{db}"


@contextmanager
def fleet_database(broker_db: int) -> Iterator[str]:
    """A migrated PostgreSQL schema of its own, and a flushed broker database."""
    require_postgres()
    require_redis()
    import redis

    redis.Redis.from_url(broker_url(broker_db)).flushdb()
    schema = f"q_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    with postgres_scratch(f'CREATE SCHEMA "{schema}"', f'DROP SCHEMA "{schema}" CASCADE'):
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


class Fleet:
    """`omc` subprocesses sharing one environment; `kill()` SIGKILLs each process group."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "omc", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill -9 takes the children too
            cwd=self.logs,
        )
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def kill_all(self) -> None:
        for name in list(self.procs):
            self.kill(name)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, fleet: Fleet) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    logs = "\n".join(f"--- {n}\n{fleet.log(n)}" for n in fleet.procs)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")
