"""An approved Lab model promoted to the Floor as `model:<ID>`, through the `omc` CLI on
SQLite and PostgreSQL: a study of candles with a planted signal and a stored sentiment
series, approved; `omc backtest --strategy model:ID` writes its files; a paper replay shows
the model, at every bar, exactly the features it was trained on for that bar (sentiment
included, late items invisible until stored); a backtest of the model on the sealed holdout
makes the study's holdout trades; unknown, unapproved, rejected and tampered models are
refused with one line."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from omc.cli import context
from omc.cli.app import app
from omc.core.config import get_settings
from omc.core.upsert import upsert
from omc.floor.backtest.engine import run_backtest
from omc.floor.data import load_csv
from omc.floor.fills import FeeModel
from omc.lab import promotion
from omc.lab.features import FeatureSpec, build_matrix, load_inputs
from omc.lab.promotion import strategy as promoted_strategy
from omc.lab.session.runner import prepare_plan, run_study
from omc.ledgers.models import NewsItem
from tests.test_lab_cli import write_candles  # hourly candles, a volume spike predicts

FIELDS = ("symbol", "ts", "open", "high", "low", "close", "volume")
BARS = 2400
REPLAY = 800  # bars of the paper replay (from the study's first bar: the same warm-up)
T0 = datetime(2024, 1, 1, tzinfo=UTC)
GOAL = "Predict whether BTC/USDT closes higher next bar from volume and sentiment using logistic regression"  # noqa: E501


def seed_sentiment(engine: Engine, n: int = BARS) -> None:
    """BTC news with sentiment over the candles' span; some stored hours late."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(900):
        published = T0 + timedelta(minutes=int(rng.integers(0, n * 60)))
        lag = timedelta(minutes=int(rng.choice([1, 30, 200, 600])))
        rows.append(
            {"source": "cryptopanic", "source_id": f"n{i}", "url": None, "title": f"BTC {i}",
             "summary": None, "published_at": published, "sentiment": float(rng.normal(0, .4)),
             "coins": ["BTC"], "story_key": None, "raw": None, "collected_at": published + lag}
        )  # fmt: skip
    upsert(engine, NewsItem.__table__, rows)  # type: ignore[arg-type]


@pytest.fixture
def omc_env(db_url: str, tmp_path: Path) -> Iterator[Path]:
    """The real `omc` app on the test database, data dir under tmp_path."""
    data_dir = tmp_path / "data"
    get_settings.cache_clear()
    context.engine.cache_clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMC_DATABASE_URL", db_url)
        patch.setenv("OMC_DATA_DIR", str(data_dir))
        patch.setattr(context.console, "width", 200)
        yield data_dir
        context.engine().dispose()
    get_settings.cache_clear()
    context.engine.cache_clear()


def omc(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def refused(result: Result, *words: str) -> None:
    text = result.output
    assert result.exit_code != 0, text
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1, text
    for word in words:
        assert word in text, text


def test_an_approved_model_trades_on_the_floor_with_its_training_features(
    engine: Engine,
    omc_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    csv = write_candles(tmp_path / "BTC_USDT-1h.csv", signal=0.6, seed=1, n=BARS)
    seed_sentiment(engine)
    prepared = prepare_plan(GOAL, engine=engine, data_file=str(csv), trials=3)
    assert prepared.plan is not None, prepared.question
    plan = prepared.plan
    assert {"volume_z", "sentiment"} <= set(plan.features)
    outcome = run_study(plan, engine=engine, out_dir=omc_env / "lab")
    assert (outcome.status, outcome.verdict) == ("done", "edge"), outcome.error
    sid = outcome.session
    out = tmp_path / "bt"

    # (c) unknown and not-yet-approved models are refused with one line
    refused(omc("backtest", "--data", str(csv), "--strategy", "model:L20990101-abcdef"),
            "no such Lab session")  # fmt: skip
    refused(omc("backtest", "--data", str(csv), "--strategy", "model:"), "needs a Lab session id")
    refused(omc("backtest", "--data", str(csv), "--strategy", f"model:{sid}"), "not approved")
    approved = omc("lab", "approve", sid)
    assert approved.exit_code == 0 and f"strategy model:{sid}" in approved.output

    # (a) a backtest through the CLI, like a built-in strategy
    bt = omc("backtest", "--data", str(csv), "--strategy", f"model:{sid}", "--out", str(out))
    assert bt.exit_code == 0, bt.output
    assert (out / "report.html").is_file() and any(out.glob("*.csv")), list(out.iterdir())
    assert f"model:{sid}" in bt.output

    # (b) parity: at every bar of a paper replay the model sees its training features
    seen: list[tuple[datetime, np.ndarray]] = []
    real_score = promoted_strategy.score

    def recording(model: Any, row: np.ndarray, at: datetime) -> float:
        seen.append((at, row.copy()))
        return real_score(model, row, at)

    monkeypatch.setattr(promoted_strategy, "score", recording)
    replay = tmp_path / "replay" / "BTC_USDT-1h.csv"
    replay.parent.mkdir()
    replay.write_text("".join(csv.read_text().splitlines(keepends=True)[: REPLAY + 1]))
    paper = omc("trade", "paper", "--strategy", f"model:{sid}", "--replay", str(replay), "--json")
    assert paper.exit_code == 0, paper.output
    monkeypatch.setattr(promoted_strategy, "score", real_score)
    folder = omc_env / "lab" / sid
    spec_doc = json.loads((folder / "feature_spec.json").read_text())
    columns = spec_doc["features"]
    assert "sent_mean_24h" in columns and "volz_48" in columns
    promoted = promotion.load_promoted(engine, sid)
    inputs = load_inputs(promoted.plan, engine=engine, as_of=promoted.plan.as_of)  # type: ignore[arg-type]
    X = build_matrix(promoted.spec, inputs)[columns]
    replayed = X.iloc[:REPLAY]
    known = replayed[np.isfinite(replayed.to_numpy()).all(axis=1)]
    assert len(known) > REPLAY - 300 and known["sent_count_24h"].nunique() > 5
    closes = [pd.Timestamp(t) - pd.Timedelta(hours=1) for t, _ in seen]
    assert closes == list(known.index)  # a decision at every bar with known features
    got = np.vstack([row for _, row in seen])
    want = known.to_numpy()
    led = [columns.index(c) for c in columns if c.startswith("sent_")]
    assert np.array_equal(got[:, led], want[:, led])  # ledger features: identical
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)  # exchange: to rounding

    # the sealed holdout: a backtest of the promoted model makes the study's holdout trades
    report = json.loads((folder / "report.json").read_text())
    holdout = report["holdout"]
    study_trades = holdout["trading"]["model"]
    first, last = (pd.Timestamp(t) for t in holdout["span"])
    bars = load_csv(csv)
    stamps = pd.to_datetime(bars.ts, unit="ns", utc=True)
    start = int(np.searchsorted(stamps, first))
    stop = int(np.searchsorted(stamps, last)) + 1 - plan.target.horizon_bars
    strategy = promotion.strategy_for(promoted, lambda: engine)()
    result = run_backtest(
        strategy,
        bars.slice(0, stop),
        cash=10_000,
        fees=FeeModel.flat(plan.evaluation.fee_bps),
        start=start,
    )
    assert len(result.trades) == study_trades["trades"]
    assert result.metrics["total_return"] == pytest.approx(study_trades["total_return"], rel=1e-6)

    # bars that are not the study's (every other hourly bar): said once, in a warning
    two_hourly = bars.slice(0, 700)
    two_hourly = type(two_hourly)(*(getattr(two_hourly, f) if f == "symbol" else
                                    getattr(two_hourly, f)[::2] for f in FIELDS))  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="omc.lab.promotion.strategy"):
        run_backtest(
            promotion.strategy_for(promoted, lambda: engine)(), two_hourly, check_lookahead=False
        )
    assert [r.getMessage() for r in caplog.records].count(
        f"model:{sid} was trained on bars 3600 s apart; this run's bars are 7200 s apart: "
        "its exchange features describe these bars, not the study's"
    ) == 1

    # (c) rejected, then (d) tampered: refused with one line
    assert omc("lab", "reject", sid, "--reason", "not today").exit_code == 0
    refused(omc("trade", "paper", "--strategy", f"model:{sid}", "--replay", str(replay)),
            "rejected", "not today")  # fmt: skip
    assert omc("lab", "approve", sid).exit_code == 0
    model_file = folder / "model.joblib"
    original = model_file.read_bytes()
    model_file.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    refused(omc("backtest", "--data", str(csv), "--strategy", f"model:{sid}"), "hash")
    model_file.write_bytes(original)
    assert promotion.load_promoted(engine, sid).session == sid


def test_registering_model_names_imports_no_lab() -> None:
    code = (
        "import sys, omc.cli.app\n"
        "heavy = [m for m in ('sklearn', 'lightgbm', 'omc.lab.promotion') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "from omc.floor.resolvers import resolver_for\n"
        "assert resolver_for('model') is not None\n"
        "import omc.lab.promotion\n"  # on its own, first of the Lab (no import cycle)
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_live_ledger_features_see_what_was_stored_by_each_close(engine: Engine) -> None:
    """On live quotes the ledgers are read again as of now when a bar closes after the last
    read: an item stored since counts from that bar on, never before it was stored."""
    families = {"sentiment": {"windows_hours": [1, 24]}, "news_volume": {"windows_hours": [24]}}
    spec = FeatureSpec(families=families, coin="BTC")
    now = [T0 + timedelta(hours=5)]
    feed = promotion.LedgerFeed(lambda: engine, spec, clock=lambda: now[0])

    def item(i: int, published: datetime, stored: datetime) -> None:
        upsert(engine, NewsItem.__table__, [  # type: ignore[arg-type]
            {"source": "cryptopanic", "source_id": f"x{i}", "url": None, "title": "BTC",
             "summary": None, "published_at": published, "sentiment": 0.5, "coins": ["BTC"],
             "story_key": None, "raw": None, "collected_at": stored}
        ])  # fmt: skip

    def at(close: datetime) -> dict[str, float]:
        return promotion.ledger_features_at(spec, feed.frames(close), close)

    item(1, T0 + timedelta(hours=3), T0 + timedelta(hours=3, minutes=1))
    assert at(now[0])["news_24h"] == 1 and feed.reads == 1
    # published before the next close but stored after it: invisible at that close
    item(2, T0 + timedelta(hours=5, minutes=30), T0 + timedelta(hours=6, minutes=10))
    now[0] = T0 + timedelta(hours=6, minutes=5)
    first = at(T0 + timedelta(hours=6))
    assert feed.reads == 2 and first["news_24h"] == 1
    now[0] = T0 + timedelta(hours=7, minutes=5)
    second = at(T0 + timedelta(hours=7))
    assert feed.reads == 3 and second["news_24h"] == 2 and second["sent_count_24h"] == 2
    assert at(T0 + timedelta(hours=6, minutes=5))["news_24h"] == 1  # a past bar: as it was
    assert feed.reads == 3
