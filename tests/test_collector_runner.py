"""The collector framework's guarantees: clean text at the one upsert, bounded quarantine,
and truthful run records on Ctrl-C, SIGTERM and kill -9 (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Engine, Table, select

from omc.core.upsert import upsert
from omc.ledgers.collectors.base import (
    QUARANTINE_MAX_BYTES,
    Collected,
    Collector,
    CollectorRunner,
    Rejected,
    Rows,
)
from omc.ledgers.models import CollectorRun, NewsItem, QuarantinedItem
from tests.fakes.coinspot_server import FakeCoinSpot, Fault, running_coinspot

NEWS = cast(Table, NewsItem.__table__)
T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def news_row(source_id: str, title: str, **extra: Any) -> dict[str, Any]:
    return {
        "source": "test",
        "source_id": source_id,
        "url": None,
        "title": title,
        "summary": None,
        "published_at": T0,
        "sentiment": None,
        "coins": None,
        "story_key": None,
        "raw": None,
        **extra,
    }


def runs(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(CollectorRun.__table__).order_by(CollectorRun.id)))


# ---------------------------------------------------------------- item 7: NUL bytes


def test_nul_and_control_characters_are_cleaned_in_every_text_column(engine: Engine) -> None:
    rows = [
        news_row(
            "a\x00b",
            "Bitcoin\x00 rallies\x07 past $70k\tagain",
            summary="line one\nline two\x1b[0m",
            coins=["BTC\x00"],
            raw={"title\x00": "x\u0000y", "n": [1, "\x00"]},
        ),
        *[news_row(f"plain-{i}", f"plain title {i}") for i in range(3)],
    ]
    result = upsert(engine, NEWS, rows)  # one batch: NUL must not fail it on PostgreSQL
    assert result.inserted == 4
    again = upsert(engine, NEWS, rows, update=["title", "raw"])
    assert (again.inserted, again.updated) == (0, 0)
    with engine.connect() as conn:
        stored = conn.execute(select(NEWS).where(NEWS.c.source_id == "ab")).one()
    assert stored.title == "Bitcoin rallies past $70k\tagain"
    assert stored.summary == "line one\nline two[0m"
    assert stored.coins == ["BTC"] and stored.raw == {"title": "xy", "n": [1, ""]}


# ---------------------------------------------------------------- item 6: quarantine bounds


class Refusing(Collector):
    name = "refusing"

    def __init__(self, payload: Any) -> None:
        self.payload = payload

    def collect(self) -> Collected:
        return Collected(rejected=[Rejected("too big to keep", self.payload)], fetched=1)


def test_quarantined_payloads_are_capped_hashed_and_counted(engine: Engine) -> None:
    huge = "<html>" + "\x00é" * 600_000 + "</html>"  # ~1.8 MB, with NUL bytes
    runner = CollectorRunner(engine)
    first = runner.run(Refusing(huge))
    second = runner.run(Refusing(huge))
    assert first.status == second.status == "failed"
    with engine.connect() as conn:
        (item,) = conn.execute(select(QuarantinedItem.__table__)).all()
    full = huge.encode()
    assert item.payload_size == len(full)
    assert item.payload_hash == hashlib.sha256(full).hexdigest()
    assert len(item.payload.encode()) <= QUARANTINE_MAX_BYTES
    assert item.payload.startswith("<html>é") and "\x00" not in item.payload
    assert item.occurrences == 2 and item.run_id == second.run_id


# ---------------------------------------------------------------- item 11: shutdown


class Blocking(Collector):
    name = "blocking"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def collect(self) -> Collected:
        self.entered.set()
        assert self.release.wait(30)
        return Collected(rows=[Rows(NEWS, [news_row("late", "late row")])], fetched=1)


class CtrlC(Collector):
    name = "ctrl-c"

    def collect(self) -> Collected:
        raise KeyboardInterrupt


def test_ctrl_c_inside_a_run_records_it_interrupted(engine: Engine) -> None:
    with pytest.raises(KeyboardInterrupt):
        CollectorRunner(engine).run(CtrlC())
    (record,) = runs(engine)
    assert (record.status, record.error) == ("interrupted", "interrupted: KeyboardInterrupt")
    assert record.finished_at is not None


def test_stop_records_runs_in_flight_interrupted_and_they_store_nothing(engine: Engine) -> None:
    runner = CollectorRunner(engine)
    collector = Blocking()
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(runner.run(collector)))
    worker.start()
    try:
        assert collector.entered.wait(10)
        assert runner.stop("shutdown (SIGTERM)") == 1
        (record,) = runs(engine)
        assert (record.status, record.error) == ("interrupted", "interrupted: shutdown (SIGTERM)")
    finally:
        collector.release.set()
        worker.join(30)
    (summary,) = outcome
    assert (summary.status, summary.inserted) == ("interrupted", 0)
    with engine.connect() as conn:
        assert conn.execute(select(NEWS)).all() == []
    assert runner.wait_idle(1)


def omc_command() -> list[str]:
    script = Path(sys.executable).parent / "omc"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from omc.cli.app import main; main()"]


@pytest.fixture
def slow_coinspot() -> Iterator[FakeCoinSpot]:
    yield from running_coinspot()


def collect_process(db_url: str, server: FakeCoinSpot, tmp_path: Path, *args: str) -> Any:
    env = {
        **os.environ,
        "OMC_DATABASE_URL": db_url,
        "OMC_COINSPOT_BASE_URL": server.url,
        "OMC_HTTP_TIMEOUT_S": "60",
        "OMC_HTTP_MAX_RETRIES": "0",
        "OMC_DATA_DIR": str(tmp_path),
        "OMC_LOG_LEVEL": "WARNING",
        "OMC_ALERT_WEBHOOK_URLS": "",
    }
    return subprocess.Popen(
        [*omc_command(), "collect", *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_for_request(server: FakeCoinSpot, process: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not server.requests:
        assert process.poll() is None, process.stdout.read().decode()
        assert time.monotonic() < deadline, "the collector never reached CoinSpot"
        time.sleep(0.05)


def test_sigterm_while_collecting_records_the_run_interrupted(
    engine: Engine, db_url: str, slow_coinspot: FakeCoinSpot, tmp_path: Path
) -> None:
    slow_coinspot.inject(Fault("delay", path="/pubapi/v2/latest", seconds=40))
    process = collect_process(db_url, slow_coinspot, tmp_path, "--sources", "coinspot")
    try:
        wait_for_request(slow_coinspot, process)
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    coinspot = [r for r in runs(engine) if r.collector == "coinspot"]
    assert [r.status for r in coinspot] == ["interrupted"], output
    assert coinspot[0].error == "interrupted: shutdown (SIGTERM)"


def test_runs_left_running_by_kill_9_are_closed_at_the_next_start(
    engine: Engine, db_url: str, slow_coinspot: FakeCoinSpot, tmp_path: Path
) -> None:
    slow_coinspot.inject(Fault("delay", path="/pubapi/v2/latest", seconds=40))
    process = collect_process(db_url, slow_coinspot, tmp_path, "--once", "coinspot")
    try:
        wait_for_request(slow_coinspot, process)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    (left,) = runs(engine)
    assert left.status == "running" and left.owner.split(":")[1] == str(process.pid)

    again = collect_process(db_url, slow_coinspot, tmp_path, "--once", "coinspot")
    try:
        output = again.communicate(timeout=60)[0].decode()
    finally:
        if again.poll() is None:
            again.kill()
            again.wait()
    assert again.returncode == 0, output
    first, second = runs(engine)
    assert first.status == "interrupted" and "closed at the next start" in first.error
    assert second.status == "ok"
    # a live process's run is never closed by another start
    with engine.begin() as conn:
        conn.execute(
            CollectorRun.__table__.insert().values(
                collector="x", started_at=T0, status="running", owner=f"{os.uname()[1]}:1:abc"
            )
        )
    assert CollectorRunner(engine).close_abandoned() == 0
