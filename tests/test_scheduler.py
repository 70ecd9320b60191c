"""`omc collect` runs the in-process scheduler: each collector on its interval, plus the
candles-from-ticks job, until interrupted; sources that cannot run are named, not skipped
silently."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from omc.core.db import make_engine
from omc.ledgers.models import CollectorRun, Tick
from tests.fakes.coinspot_server import FakeCoinSpot, running_coinspot


@pytest.fixture
def coinspot() -> Iterator[FakeCoinSpot]:
    yield from running_coinspot()


def env_for(tmp_path: Path, coinspot: FakeCoinSpot) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OMC_")}
    return clean | {
        "OMC_DATABASE_URL": f"sqlite:///{tmp_path / 'omc.db'}",
        "OMC_COINSPOT_BASE_URL": coinspot.url,
        "OMC_COINSPOT_INTERVAL_S": "1",
        "OMC_COINSPOT_RATE_PER_S": "50",
        "OMC_HTTP_TIMEOUT_S": "1",
        "COLUMNS": "200",
    }


def test_collect_schedules_until_interrupted(tmp_path: Path, coinspot: FakeCoinSpot) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "omc", "collect", "--sources", "coinspot"],
        env=env_for(tmp_path, coinspot),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'omc.db'}")
    deadline = time.monotonic() + 30
    runs = 0
    try:
        while time.monotonic() < deadline and runs < 3:
            time.sleep(0.5)
            try:
                with engine.connect() as conn:
                    runs = conn.execute(
                        select(func.count())
                        .select_from(CollectorRun)
                        .where(CollectorRun.collector == "coinspot", CollectorRun.status == "ok")
                    ).scalar_one()
            except Exception:  # the database may not be created yet
                continue
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert runs >= 3, out + err
    assert "collecting coinspot" in out
    with engine.connect() as conn:
        slots = conn.execute(select(func.count(Tick.ts.distinct()))).scalar_one()
    assert slots >= 2  # one tick per coin per 1 s slot


def test_unknown_source_is_a_clear_error(tmp_path: Path, coinspot: FakeCoinSpot) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "omc", "collect", "--once", "nosuchsource"],
        env=env_for(tmp_path, coinspot),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown source 'nosuchsource'" in done.stderr
