"""`omc lab run|sessions|show|approve|reject` end to end through the CLI, on SQLite and
PostgreSQL: a planted signal is found (edge), a random walk is not (no_edge) and its approval
is refused unless forced with a reason, the --json output ends with the one object scripts
read, the report is self-contained, a second look at the same sealed holdout is flagged, and a
user's mistake is one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from omc.cli import lab as lab_cli
from omc.core.config import Settings
from omc.lab.session import store

BARS = 3000
GOAL = "Predict whether BTC/USDT closes higher next bar using logistic regression and lightgbm"


def write_candles(path: Path, *, signal: float, seed: int, n: int = BARS) -> Path:
    """Hourly candles. With `signal` > 0 a volume spike predicts the next bar's return (a
    learnable edge the price-only baselines cannot see); with 0 a pure random walk."""
    rng = np.random.default_rng(seed)
    sigma = 0.01
    z = rng.normal(0.0, 1.0, n)
    r = rng.normal(0.0, sigma, n)
    r[1:] += signal * sigma * z[:-1]
    close = 100 * np.exp(np.cumsum(r))
    open_ = np.r_[100.0, close[:-1]]
    wick = np.abs(rng.normal(0.0, sigma / 4, (2, n)))
    pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC").strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick[0]),
            "low": np.minimum(open_, close) * (1 - wick[1]),
            "close": close,
            "volume": 100 * np.exp(0.5 * z),
        }
    ).to_csv(path, index=False)
    return path


@pytest.fixture
def lab(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    """The `omc` app with `lab` registered, on the test database and a temporary data dir."""
    config = Settings(data_dir=tmp_path / "data")
    monkeypatch.setattr(lab_cli, "engine", lambda: engine)
    monkeypatch.setattr(lab_cli, "settings", lambda: config)
    app = typer.Typer()
    lab_cli.register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps `lab` a named group
        pass

    return app


def omc(app: typer.Typer, *args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def last_json(result: Result) -> dict[str, Any]:
    lines = result.stdout.strip().splitlines()
    assert lines, result.output
    out: dict[str, Any] = json.loads(lines[-1])
    return out


def run_json(app: typer.Typer, data: Path, *extra: str) -> dict[str, Any]:
    result = omc(app, "lab", "run", GOAL, "--data", str(data), "--trials", "3", "--json", *extra)
    assert result.exit_code == 0, result.output
    return last_json(result)


def test_a_planted_signal_is_found_and_approved(lab: typer.Typer, tmp_path: Path) -> None:
    out = run_json(lab, write_candles(tmp_path / "BTC_USDT-1h.csv", signal=0.6, seed=1))
    assert set(out) >= {"session", "status", "verdict", "oos", "baseline", "trials", "report"}
    assert (out["status"], out["verdict"], out["trials"], out["question"]) == (
        "pending_approval",
        "edge",
        3,
        None,
    )
    assert set(out["oos"]) == {
        "auc",
        "accuracy",
        "sharpe",
        "deflated_sharpe",
        "deflated_sharpe_probability",
    }
    best_baseline = max(b["auc"] for b in out["baseline"].values() if b.get("auc") is not None)
    assert out["oos"]["auc"] > best_baseline + 0.05
    report = Path(out["report"])
    folder = report.parent
    for name in ("plan.json", "report.json", "model.joblib", "feature_spec.json", "manifest.json"):
        assert (folder / name).is_file(), name
    text = report.read_text()
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert "data:image/png;base64," in text and "EDGE" in text
    from omc.lab.session.artifacts import load_manifest, load_model

    manifest = load_manifest(folder)
    assert manifest["data"]["bars"] == BARS and manifest["code_version"]
    assert hasattr(load_model(folder), "predict_proba")

    listed = omc(lab, "lab", "sessions", "--json")
    assert listed.exit_code == 0, listed.output
    assert [s["session"] for s in last_json(listed)["sessions"]] == [out["session"]]
    shown = omc(lab, "lab", "show", out["session"])
    assert shown.exit_code == 0 and out["session"] in shown.stdout and "edge" in shown.stdout
    approved = omc(lab, "lab", "approve", out["session"])
    assert approved.exit_code == 0, approved.output


def test_a_random_walk_has_no_edge_and_its_approval_is_refused(
    lab: typer.Typer, engine: Engine, tmp_path: Path
) -> None:
    data = write_candles(tmp_path / "BTC_USDT-1h.csv", signal=0.0, seed=2)
    out = run_json(lab, data)
    sid = out["session"]
    assert (out["status"], out["verdict"], out["holdout_flagged"]) == (
        "pending_approval",
        "no_edge",
        False,
    )

    refused = omc(lab, "lab", "approve", sid)
    assert refused.exit_code != 0 and "refused" in refused.output
    assert "Traceback" not in refused.output
    assert omc(lab, "lab", "approve", sid, "--force").exit_code != 0  # a reason is required
    assert store.get_session(engine, sid).approval == "none"
    forced = omc(lab, "lab", "approve", sid, "--force", "--reason", "paper only, tiny size")
    assert forced.exit_code == 0, forced.output
    record = store.get_session(engine, sid)
    assert (record.approval, record.decision_reason) == ("approved", "paper only, tiny size")
    rejected = omc(lab, "lab", "reject", sid, "--reason", "changed my mind")
    assert rejected.exit_code == 0 and store.get_session(engine, sid).approval == "rejected"

    # the saved plan run again: the same sealed holdout, looked at a second time
    plan_file = Path(out["report"]).parent / "plan.json"
    rerun = omc(lab, "lab", "run", "--plan", str(plan_file), "--trials", "2", "--json")
    assert rerun.exit_code == 0, rerun.output
    again = last_json(rerun)
    assert again["session"] != sid and again["holdout_flagged"] is True
    assert "FLAGGED" in Path(again["report"]).read_text()
    trials = store.trials_of(engine, again["session"])
    assert [t["number"] for t in trials] == [0, 1]
    plan = store.get_session(engine, again["session"]).plan
    assert plan is not None and "--trials 2 replaces the plan file's 3" in plan["assumptions"]


def test_user_mistakes_are_one_line(lab: typer.Typer, tmp_path: Path) -> None:
    bad_plan = tmp_path / "plan.json"
    bad_plan.write_text('{"goal": "x", "symbols": []}')
    not_json = tmp_path / "broken.json"
    not_json.write_text("{nope")
    cases = [
        ("lab", "run", GOAL, "--data", str(tmp_path / "missing.csv")),
        ("lab", "run", GOAL, "--as-of", "yesterday-ish"),
        ("lab", "run", "--plan", str(bad_plan)),
        ("lab", "run", "--plan", str(not_json)),
        ("lab", "run", "--plan", str(tmp_path / "nope.json")),
        ("lab", "show", "L20000101-000000"),
        ("lab", "approve", "L20000101-000000"),
    ]
    for args in cases:
        result = omc(lab, *args)
        assert result.exit_code == 2, (args, result.output)
        assert ("Traceback" not in result.output and result.exception is None) or isinstance(
            result.exception, SystemExit
        )
        assert len(result.output.strip().splitlines()) == 1, (args, result.output)


def test_a_goal_without_a_coin_is_asked_about(lab: typer.Typer, engine: Engine) -> None:
    result = omc(lab, "lab", "run", "find me something that predicts the market", "--json")
    assert result.exit_code == lab_cli.EXIT_ASKED, result.output
    out = last_json(result)
    assert out["status"] == "asked" and out["question"]
    assert store.get_session(engine, out["session"]).question == out["question"]


def test_a_question_is_prompted_for_at_a_terminal_and_the_study_runs(
    lab: typer.Typer, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omc.ledgers.exchange.candle_files import import_candles

    data = write_candles(tmp_path / "candles.csv", signal=0.0, seed=4)
    import_candles(engine, data, "testex", "BTC/USDT", "1h")
    monkeypatch.setattr(lab_cli, "_interactive", lambda as_json: True)
    result = CliRunner().invoke(
        lab, ["lab", "run", "predict the direction of the next bar", "--trials", "2"], input="BTC\n"
    )
    assert result.exit_code == 0, result.output
    assert "Which coin" in result.output and "Lab session" in result.output
    (record,) = store.list_sessions(engine)
    assert record.status == "pending_approval" and record.source == "db:testex:BTC/USDT:1h"
    assert record.plan is not None and any(
        "answered: 'BTC'" in a for a in record.plan["assumptions"]
    )
