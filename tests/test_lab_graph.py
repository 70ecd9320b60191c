"""The Lab's graph (omc.lab.graph) on SQLite and PostgreSQL: a question pauses the session
(exit 3) and `omc lab answer` runs it on to the approval gate (`pending_approval`); approve,
reject and revise resume the gate; the event log records every step; a process killed with
SIGKILL at a step resumes from its last checkpoint with nothing repeated (trials stored once,
the holdout opened once) or lost; and the same deterministic study on the same inputs writes
the same report byte for byte apart from times, durations and ids."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import Engine, func, select

from omc.core.config import Settings
from omc.core.db import make_engine
from omc.lab.graph import driver
from omc.lab.graph.nodes import PAUSE_ENV, Runtime, rerun_from
from omc.lab.models import HoldoutOpening
from omc.lab.session import events, store
from omc.migrations import upgrade
from tests import test_lab_cli
from tests.test_lab_cli import GOAL, last_json, omc, write_candles
from tests.test_lab_events import small_plan

ROOT = Path(__file__).resolve().parents[1]
lab = test_lab_cli.lab  # the `omc` app on the test database (a fixture)
BARS = 2600
ID = re.compile(r"L\d{8}-[0-9a-f]{6}")


def kinds(engine: Engine, sid: str) -> list[str]:
    return [
        e.kind + (f":{e.payload['step']}" if "step" in e.payload else "")
        for e in events.read(engine, sid)
    ]


def test_a_question_pauses_and_the_answer_runs_it_to_the_gate(
    lab: typer.Typer, engine: Engine, tmp_path: Path
) -> None:
    from omc.ledgers.exchange.candle_files import import_candles

    import_candles(
        engine,
        write_candles(tmp_path / "c.csv", signal=0.6, seed=5, n=BARS),
        "testex",
        "BTC/USDT",
        "1h",
    )
    asked = omc(
        lab, "lab", "run", "predict the direction of the next bar", "--trials", "2", "--json"
    )
    assert asked.exit_code == 3, asked.output
    sid = last_json(asked)["session"]
    assert store.get_session(engine, sid).status == "asked"
    assert omc(lab, "lab", "approve", sid).exit_code != 0  # nothing to approve yet

    answered = omc(lab, "lab", "answer", sid, "BTC", "--json")
    assert answered.exit_code == 0, answered.output
    out = last_json(answered)
    assert (out["session"], out["status"], out["trials"]) == (sid, "pending_approval", 2)
    record = store.get_session(engine, sid)
    assert record.status == "pending_approval" and record.source == "db:testex:BTC/USDT:1h"
    log = kinds(engine, sid)
    assert log.index("question") < log.index("answer") < log.index("plan")
    for name in ("retrieve", "features", "check", "train", "evaluate", "report"):
        assert log.count(f"step_start:{name}") == 1 and log.count(f"step_end:{name}") == 1
    seqs = [e.seq for e in events.read(engine, sid)]
    assert seqs == list(range(1, len(seqs) + 1))

    shown = omc(lab, "lab", "events", sid, "--json")
    assert shown.exit_code == 0 and len(last_json(shown)["events"]) == len(seqs)
    assert omc(lab, "lab", "answer", sid, "ETH").exit_code == 2  # no open question now

    revised = omc(lab, "lab", "revise", sid, "using logistic regression only", "--json")
    assert revised.exit_code == 0, revised.output
    plan = store.get_session(engine, sid).plan
    assert plan is not None and plan["models"] == ["logistic"]
    assert kinds(engine, sid).count("step_start:features") == 1  # re-run from `check`

    rejected = omc(lab, "lab", "reject", sid, "--reason", "not now")
    assert rejected.exit_code == 0, rejected.output
    record = store.get_session(engine, sid)
    assert (record.status, record.approval, record.decision_reason) == (
        "done",
        "rejected",
        "not now",
    )
    assert kinds(engine, sid)[-4:] == [
        "decision",
        "step_start:promote",
        "approval",
        "step_end:promote",
    ]


def plan_file(tmp_path: Path, *, signal: float, seed: int) -> Path:
    """A small study's plan file (1,500 bars, two feature families, logistic, 1 trial)."""
    data = write_candles(tmp_path / f"BTC_USDT-1h-{seed}.csv", signal=signal, seed=seed, n=1500)
    path = tmp_path / f"plan-{seed}.json"
    path.write_text(json.dumps(small_plan(data)))
    return path


def test_revise_replans_and_reruns_from_the_changed_step(
    lab: typer.Typer, engine: Engine, tmp_path: Path
) -> None:
    first = omc(lab, "lab", "run", "--plan", str(plan_file(tmp_path, signal=0.0, seed=2)), "--json")
    sid = last_json(first)["session"]
    assert last_json(first)["verdict"] == "no_edge"
    refused = omc(lab, "lab", "approve", sid)
    assert refused.exit_code == 1 and "refused" in refused.output
    for bad in ("{nope", "[1]", "use lightgbm"):  # a plan file is revised with plan fields
        assert omc(lab, "lab", "revise", sid, bad).exit_code == 2, bad

    revised = omc(lab, "lab", "revise", sid, '{"trials": 2}', "--json")
    assert revised.exit_code == 0, revised.output
    out = last_json(revised)
    assert (out["status"], out["trials"], out["holdout_flagged"]) == ("pending_approval", 3, True)
    assert [t["number"] for t in store.trials_of(engine, sid)] == [0, 1, 2]
    log = kinds(engine, sid)
    assert log.count("step_start:retrieve") == 1 and log.count("step_start:features") == 1
    assert log.count("step_start:train") == 2  # re-run from `check`, the first changed step
    plan = store.get_session(engine, sid).plan
    assert plan is not None and plan["trials"] == 2
    assert any("revision 1" in a and "holdout is flagged" in a for a in plan["assumptions"])
    forced = omc(lab, "lab", "approve", sid, "--force", "--reason", "paper only")
    assert forced.exit_code == 0, forced.output
    assert store.get_session(engine, sid).approval == "approved"
    assert omc(lab, "lab", "revise", sid, '{"trials": 3}').exit_code == 2  # decided: no gate


def test_rerun_from_is_the_first_changed_step() -> None:
    plan = {
        "symbols": ["BTC/USDT"],
        "features": ["rsi"],
        "trials": 2,
        "evaluation": {"fee_bps": 10},
    }
    assert rerun_from(plan, {**plan, "symbols": ["ETH/USDT"]}) == "retrieve"
    assert rerun_from(plan, {**plan, "features": ["returns"]}) == "features"
    assert rerun_from(plan, {**plan, "trials": 5}) == "check"
    assert rerun_from(plan, {**plan, "evaluation": {"fee_bps": 20}}) == "evaluate"
    assert rerun_from(plan, dict(plan)) == "report"


def _read_until_paused(proc: subprocess.Popen[str], timeout: float) -> str:
    """The `paused at` line of the child's stderr (or fail with what it printed)."""
    seen: list[str] = []
    found: list[str] = []

    def reader() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if "omc lab: paused at" in line:
                found.append(line)
                return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout)
    assert found, f"the child did not pause: {''.join(seen)[-2000:]}"
    return found[0]


def test_sigkill_at_a_step_then_resume_then_approve(
    lab: typer.Typer, db_url: str, engine: Engine, tmp_path: Path
) -> None:
    """Killed after a step's side effects, before its checkpoint (the hardest moment): on
    SQLite after `train` stored the trials, on PostgreSQL after `evaluate` opened the holdout."""
    killed = "train" if db_url.startswith("sqlite") else "evaluate"
    point = f"{killed}:end"
    plan = plan_file(tmp_path, signal=0.8, seed=1)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMC_DATABASE_URL": db_url,
        "OMC_DATA_DIR": str(tmp_path / "data"),
        PAUSE_ENV: point,
    }
    args = [sys.executable, "-m", "omc", "lab", "run", "--plan", str(plan), "--trials", "2"]
    proc = subprocess.Popen(
        [*args, "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = _read_until_paused(proc, timeout=120)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    match = ID.search(line)
    assert match, line
    sid = match.group(0)
    assert store.get_session(engine, sid).status == "running"  # as the kill left it

    resumed = omc(lab, "lab", "resume", sid, "--json")
    assert resumed.exit_code == 0, resumed.output
    out = last_json(resumed)
    assert (out["status"], out["verdict"], out["trials"], out["holdout_flagged"]) == (
        "pending_approval",
        "edge",
        2,
        False,
    )
    assert [t["number"] for t in store.trials_of(engine, sid)] == [0, 1]
    with engine.connect() as conn:
        opened = conn.scalar(
            select(func.count()).select_from(HoldoutOpening).where(HoldoutOpening.session == sid)
        )
    assert opened == 1
    log = kinds(engine, sid)
    steps = ["plan", "retrieve", "features", "check", "train", "evaluate", "report"]
    for name in steps[: steps.index(killed)]:
        assert log.count(f"step_start:{name}") == 1, (name, log)  # not repeated
    assert log.count(f"step_start:{killed}") == 2  # the killed step ran again from its top
    assert log.count(f"step_end:{killed}") == 1 and "resumed" in log
    assert log.count("trials") == (2 if killed == "train" else 1)  # written again: the same rows
    assert Path(out["report"]).is_file()

    approved = omc(lab, "lab", "approve", sid, "--json")
    assert approved.exit_code == 0, approved.output
    record = store.get_session(engine, sid)
    assert (record.status, record.approval) == ("done", "approved")
    assert omc(lab, "lab", "resume", sid).exit_code == 0  # finished: nothing to run


_VOLATILE = re.compile(  # times, durations (a trial's seconds: the cell before its mark)
    r'("(?:generated_at|created_at)": ")[^"]*"|("seconds": )[0-9.e-]+|'
    r"(generated )\d{4}-\d\d-\d\d \d\d:\d\d UTC|"
    r'(<td class="num">)[0-9.]+(</td><td>(?:selected)?</td></tr>)'
)


def _normalised(text: str, sid: str) -> str:
    text = text.replace(sid, "ID")
    return _VOLATILE.sub(lambda m: "".join(g or "" for g in m.groups()) + "#", text)


def test_the_deterministic_study_reproduces_its_report(tmp_path: Path) -> None:
    data = write_candles(tmp_path / "BTC_USDT-1h.csv", signal=0.6, seed=1, n=BARS)
    folders: list[tuple[Path, str]] = []
    for run in ("a", "b"):  # two databases: same inputs, no shared holdout
        db = make_engine(f"sqlite:///{tmp_path / run / 'omc.db'}")
        upgrade(db)
        rt = Runtime(db, tmp_path / run / "lab", Settings(data_dir=tmp_path / run))
        options: dict[str, Any] = {
            "data_file": str(data),
            "trials": 2,
            "as_of": "2025-01-01T00:00:00+00:00",
        }
        out = driver.start(rt, GOAL, options=options)
        assert out.status == "pending_approval", out.error
        folders.append((Path(str(out.report)).parent, out.session))
        db.dispose()
    (a, sid_a), (b, sid_b) = folders
    for name in ("report.json", "report.html", "plan.json", "feature_spec.json"):
        left = _normalised((a / name).read_text(), sid_a)
        right = _normalised((b / name).read_text(), sid_b)
        assert left == right, name
    doc = json.loads((a / "report.json").read_text())
    assert doc["generated_at"]  # times are there, only masked for the comparison
    manifest_a = json.loads((a / "manifest.json").read_text())
    manifest_b = json.loads((b / "manifest.json").read_text())
    assert manifest_a["content_hash"] == manifest_b["content_hash"]
