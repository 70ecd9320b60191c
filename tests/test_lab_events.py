"""The session event log and concurrent sessions, on SQLite and PostgreSQL: seqs are 1..n per
session with concurrent writers in threads and in processes, the database refuses updates and
deletes, and several sessions at once — threads of one process and separate `omc lab run`
processes, each its own thread id — all reach the approval gate with the same report as a
session on the same data alone (no "database is locked", nothing shared)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from omc.core.config import Settings
from omc.lab.graph import driver
from omc.lab.graph.nodes import Runtime
from omc.lab.session import events, store
from omc.lab.session.runner import outcome_of
from tests.test_lab_cli import write_candles

ROOT = Path(__file__).resolve().parents[1]
BARS = 1500
# times, durations, and the hashes that cover the data file's path (each session its own copy)
_MASK = re.compile(
    r'("(?:generated_at|created_at|content_hash|plan_sha256)": ")[^"]*"|("seconds": )[0-9.e-]+'
)
ID = re.compile(r"L\d{8}-[0-9a-f]{6}")

APPEND = """
import sys
from omc.core.db import make_engine
from omc.lab.session import events
engine = make_engine(sys.argv[1])
for i in range(int(sys.argv[3])):
    events.append(engine, sys.argv[2], "proc", {"i": i})
"""


def small_plan(data: Path) -> dict[str, Any]:
    return {
        "goal": "Predict BTC/USDT direction next hour",
        "symbols": ["BTC/USDT"],
        "timeframe": "1h",
        "data_file": str(data),
        "features": ["returns", "volume_z"],
        "models": ["logistic"],
        "trials": 1,
        "as_of": "2025-06-01T00:00:00Z",
        "evaluation": {"folds": 3},
    }


def report_of(path: Path, data: Path) -> str:
    body = path.with_suffix(".json").read_text().replace(str(data), "DATA")
    return ID.sub("ID", _MASK.sub(lambda m: "".join(g or "" for g in m.groups()) + "#", body))


def test_seqs_are_gapless_with_writers_in_threads_and_processes(
    engine: Engine, db_url: str
) -> None:
    sid = store.new_session_id()
    store.save_session(engine, sid, goal="g", status="planned")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", APPEND, db_url, sid, "25"], env=env)
        for _ in range(2)
    ]
    try:
        seqs: list[int] = []

        def write() -> None:
            seqs.extend(events.append(engine, sid, "thread", {"n": n}) for n in range(25))

        threads = [threading.Thread(target=write) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [p.wait(timeout=120) for p in procs] == [0, 0]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    log = events.read(engine, sid)
    assert [e.seq for e in log] == list(range(1, 151))
    assert sorted(seqs) == sorted(set(seqs)) and len(seqs) == 100
    assert sum(e.kind == "proc" for e in log) == 50
    assert [e.seq for e in events.read(engine, sid, after_seq=148)] == [149, 150]
    other = store.new_session_id()
    store.save_session(engine, other, goal="g", status="planned")
    assert events.append(engine, other, "x", {}) == 1  # numbered per session

    for statement in ("UPDATE lab_events SET kind = 'forged'", "DELETE FROM lab_events"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    assert len(events.read(engine, sid)) == 150


def test_sessions_at_once_in_threads_and_processes(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    sources = [write_candles(tmp_path / "BTC_USDT-1h-0.csv", signal=0.6, seed=3, n=BARS)]
    # solo: each dataset alone, before anything else runs
    rt = Runtime(engine, tmp_path / "data" / "lab", Settings(data_dir=tmp_path / "data"))
    solo = {}
    for data in sources:
        alone = driver.start(rt, "solo", base_plan=small_plan(data))
        assert alone.status == "pending_approval", alone.error
        solo[data] = report_of(Path(str(alone.report)), data)

    def copy(k: int, name: str) -> Path:  # its own file: its own sealed holdout
        return Path(shutil.copyfile(sources[0], tmp_path / f"{name}-{k}.csv"))

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMC_DATABASE_URL": db_url,
        "OMC_DATA_DIR": str(tmp_path / "data"),
    }
    plans = []
    for k in range(1):  # another process (besides this one, running threads meanwhile)
        plan = tmp_path / f"plan-{k}.json"
        plan.write_text(json.dumps(small_plan(copy(k, "proc"))))
        plans.append(plan)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "omc", "lab", "run", "--plan", str(p), "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in plans
    ]
    try:
        outcomes: list[Any] = []
        copies = [copy(k, "thread") for k in range(3)]

        def one(data: Path) -> None:
            outcomes.append((data, driver.start(rt, "threads", base_plan=small_plan(data))))

        threads = [threading.Thread(target=one, args=(c,)) for c in copies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        finished = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for (out, err), proc in zip(finished, procs, strict=True):
        assert proc.returncode == 0, err[-2000:]
        assert "locked" not in err
        record = store.get_session(engine, json.loads(out.strip().splitlines()[-1])["session"])
        assert record.plan is not None
        outcomes.append((Path(record.plan["data_file"]), outcome_of(record)))
    assert len(outcomes) == 4
    sessions = set()
    for data, outcome in outcomes:
        assert outcome.status == "pending_approval", outcome.error
        k = int(data.stem.rsplit("-", 1)[1])
        assert report_of(Path(str(outcome.report)), data) == solo[sources[0]], k
        seqs = [e.seq for e in events.read(engine, outcome.session)]
        assert seqs == list(range(1, len(seqs) + 1))
        sessions.add(outcome.session)
    assert len(sessions) == 4
