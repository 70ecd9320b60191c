"""The Lab's session store (SQLite and PostgreSQL), artifacts and report — and a study run end
to end in process: a planted signal is found, a random walk is not, the holdout's second
opening is flagged."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from omc.lab.models import HoldoutOpening, LabTrial
from omc.lab.session import store
from omc.lab.session.runner import STEPS


def trial(number: int, score: float) -> dict[str, object]:
    return {
        "number": number,
        "model": "logistic",
        "params": {"C": 0.5 + number},
        "fold_scores": [{"roc_auc": score, "accuracy": 0.5}],
        "score": score,
        "seconds": 0.01,
    }


def test_session_ids_are_short_and_cli_safe() -> None:
    ids = {store.new_session_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(store.SESSION_ID.match(i) and re.fullmatch(r"[A-Za-z0-9-]+", i) for i in ids)


def test_sessions_and_trials_are_stored_idempotently(engine: Engine) -> None:
    sid = store.new_session_id()
    store.save_session(engine, sid, goal="predict BTC", status="running", plan={"goal": "x"})
    store.save_session(engine, sid, goal="predict BTC", status="running", plan={"goal": "x"})
    assert [r.id for r in store.list_sessions(engine)] == [sid]
    assert store.store_trials(engine, sid, [trial(0, 0.51), trial(1, 0.55)]) == 2
    store.store_trials(engine, sid, [trial(0, 0.52), trial(1, 0.55)])  # re-stored: overwritten
    rows = store.trials_of(engine, sid)
    assert [(t["number"], t["score"]) for t in rows] == [(0, 0.52), (1, 0.55)]
    assert rows[0]["fold_scores"] == [{"roc_auc": 0.52, "accuracy": 0.5}]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(LabTrial)).scalar() == 2
    done = store.save_session(
        engine, sid, status="done", verdict="edge", oos={"auc": 0.6}, n_trials=2
    )
    assert (done.status, done.verdict, done.oos, done.approval) == (
        "done",
        "edge",
        {"auc": 0.6},
        "none",
    )
    with pytest.raises(ValueError, match="status"):
        store.save_session(engine, sid, status="bogus")
    with pytest.raises(store.UnknownSession):
        store.get_session(engine, "L20000101-000000")


def test_a_second_look_at_a_sealed_holdout_is_counted(engine: Engine) -> None:
    first, second = store.new_session_id(), store.new_session_id()
    for sid in (first, second):
        store.save_session(engine, sid, goal="g", status="running")
    dataset = "file:/x.csv|BTC/USDT|5m|2023..2024|holdout 2024-01..2024-02|direction:1:0.0"
    assert store.open_holdout(engine, first, dataset) == 0
    assert store.open_holdout(engine, first, dataset) == 0  # the same session: no new look
    assert store.open_holdout(engine, second, dataset) == 1
    assert store.open_holdout(engine, second, dataset + "other") == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(HoldoutOpening)).scalar() == 3


def test_decisions_follow_the_verdict(engine: Engine) -> None:
    edge, none_, running = (store.new_session_id() for _ in range(3))
    store.save_session(engine, edge, goal="g", status="done", verdict="edge")
    store.save_session(engine, none_, goal="g", status="done", verdict="no_edge")
    store.save_session(engine, running, goal="g", status="running")
    assert store.decide(engine, edge, "approved").approval == "approved"
    with pytest.raises(store.ApprovalRefused, match="no edge"):
        store.decide(engine, none_, "approved")
    with pytest.raises(store.ApprovalRefused, match="--force --reason"):
        store.decide(engine, none_, "approved", force=True)
    forced = store.decide(engine, none_, "approved", force=True, reason="paper only, small")
    assert (forced.approval, forced.decision_reason) == ("approved", "paper only, small")
    assert forced.decided_at is not None
    with pytest.raises(store.ApprovalRefused, match="not done"):
        store.decide(engine, running, "approved", force=True, reason="x")
    with pytest.raises(store.ApprovalRefused, match="reason"):
        store.decide(engine, running, "rejected")
    assert store.decide(engine, running, "rejected", reason="stale data").approval == "rejected"


def test_the_report_page_is_self_contained(tmp_path: Path) -> None:
    from omc.lab.session.report import write_report

    doc = {
        "session": "L20261203-abcdef",
        "goal": "predict BTC/USDT direction",
        "plan": {"symbols": ["BTC/USDT"], "target": {"kind": "direction", "horizon_bars": 1}},
        "assumptions": ["fees of 10 bps"],
        "data": {"window": {"source": "file:x"}, "coverage": []},
        "checks": [{"name": "sample_size", "status": "pass", "detail": "ok"}],
        "features": {"used": ["ret_1"], "refused": ["leaky"]},
        "verdict": {"verdict": "no_edge", "reasons": ["AUC below baseline"]},
        "oos": {"auc": 0.5},
        "baseline": {"majority": {"auc": 0.5}},
        "trading": {
            "model": {"sharpe": 0.1},
            "equity": {"model": {"ts": ["2024-01-01T00:00:00+00:00"], "values": [1.0]}},
        },
        "feature_importance": {"ret_1": 1.0},
        "calibration": [{"mean_predicted": 0.5, "observed": 0.5}],
        "confusion": {"matrix": [[1, 2], [3, 4]]},
        "holdout": {"flagged": True, "opened_before": 1, "metrics": {"auc": 0.5}},
        "trials": [trial(0, 0.5)],
        "search": {"selected": 0},
    }
    path = write_report(tmp_path, doc)
    text = path.read_text()
    assert json.loads((tmp_path / "report.json").read_text())["session"] == doc["session"]
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert text.count("data:image/png;base64,") == 4
    assert "leaky" in text and "FLAGGED" in text and "NO EDGE" in text


def _next_bar(ctx: Any) -> dict[str, np.ndarray]:
    """A deliberately leaking feature: the NEXT bar's return."""
    r = np.full(len(ctx.close), np.nan)
    r[:-1] = np.diff(np.log(ctx.close))
    return {"ret_next": r}


def test_a_leaking_feature_is_refused_and_named_in_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omc.core.db import make_engine
    from omc.lab.features import FeatureSpec, library
    from omc.lab.plan import ResearchPlan
    from omc.lab.session.runner import run_study
    from omc.migrations import upgrade
    from tests.test_lab_cli import write_candles

    engine = make_engine(f"sqlite:///{tmp_path / 'omc.db'}")
    upgrade(engine)
    data = write_candles(tmp_path / "BTC_USDT-1h.csv", signal=0.0, seed=3)
    plan = ResearchPlan(
        goal="leak test", symbols=["BTC/USDT"], timeframe="1h", data_file=str(data),
        models=["logistic"], trials=1, features=["returns"],
    )  # fmt: skip
    honest = FeatureSpec.from_plan
    library.register("leak_next", _next_bar)
    monkeypatch.setattr(
        FeatureSpec,
        "from_plan",
        classmethod(lambda cls, p, inputs: cls.make([*p.features, "leak_next"], inputs)),
    )
    try:
        outcome = run_study(plan, engine=engine, out_dir=tmp_path / "lab")
    finally:
        library.unregister("leak_next")
        monkeypatch.setattr(FeatureSpec, "from_plan", honest)
    assert outcome.status == "done", outcome.error
    assert outcome.report is not None
    folder = outcome.report.parent
    spec = json.loads((folder / "feature_spec.json").read_text())
    assert spec["refused"] == ["ret_next"] and "ret_next" not in spec["features"]
    report = json.loads((folder / "report.json").read_text())
    assert report["features"]["refused"] == ["ret_next"]
    leakage = next(c for c in report["checks"] if c["name"] == "leakage")
    assert "ret_next" in leakage["detail"]
    assert "ret_next" not in report["feature_importance"]
    text = outcome.report.read_text()
    assert "Refused by the leakage check" in text and "ret_next" in text
    assert set(outcome.timings) == set(STEPS)


def test_a_study_that_cannot_run_is_stored_failed_with_one_line(tmp_path: Path) -> None:
    from omc.core.db import make_engine
    from omc.lab.plan import ResearchPlan
    from omc.lab.session.runner import run_study
    from omc.migrations import upgrade
    from tests.test_lab_cli import write_candles

    engine = make_engine(f"sqlite:///{tmp_path / 'omc.db'}")
    upgrade(engine)
    data = write_candles(tmp_path / "BTC_USDT-1h.csv", signal=0.0, seed=3, n=300)
    plan = ResearchPlan(goal="tiny", symbols=["BTC/USDT"], timeframe="1h", data_file=str(data))
    outcome = run_study(plan, engine=engine, out_dir=tmp_path / "lab")
    assert outcome.status == "failed" and outcome.error is not None
    assert outcome.error.startswith("checks: check sample_size failed")
    assert "\n" not in outcome.error
    record = store.get_session(engine, outcome.session)
    assert (record.status, record.step, record.error) == ("failed", "checks", outcome.error)
    assert record.plan is not None and record.plan["as_of"] is not None  # defaulted to the start


def test_a_study_a_killed_process_left_running_is_closed_as_interrupted(engine: Engine) -> None:
    """kill -9 during a study leaves it `running`; the next `omc lab` command closes it as
    `interrupted` (with the step it reached) — but never one of a live process or another
    host."""
    import socket
    import subprocess
    import sys

    from omc.lab.models import LabSession

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a pid of this host that has ended
    host = socket.gethostname()[:80]
    dead, live, other = (store.new_session_id() for _ in range(3))
    for sid in (dead, live, other):
        store.save_session(engine, sid, goal="predict BTC", status="running", step="search")
    from sqlalchemy.orm import Session

    with Session(engine) as db, db.begin():
        db.get(LabSession, dead).owner = f"{host}:{child.pid}:feedbeef0000"  # type: ignore[union-attr]
        db.get(LabSession, other).owner = f"elsewhere:{child.pid}:feedbeef0000"  # type: ignore[union-attr]
    assert store.close_abandoned(engine) == 1
    closed = store.get_session(engine, dead)
    assert closed.status == "interrupted"
    assert closed.error is not None and "step search" in closed.error
    assert store.get_session(engine, live).status == "running"  # this (live) process
    assert store.get_session(engine, other).status == "running"
    assert store.close_abandoned(engine) == 0
