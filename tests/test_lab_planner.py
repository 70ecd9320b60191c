"""The Lab's planner: a table of goals -> plans, the clarifying questions and their answers,
and the catalog built from a real database (SQLite and PostgreSQL) and from a candles file."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from omc.core.upsert import upsert
from omc.lab.catalog import Catalog, CatalogError, Series, catalog_from_db, catalog_from_file
from omc.lab.plan import ResearchPlan
from omc.lab.planner import PlannerError, plan_goal
from omc.ledgers import pit
from omc.ledgers.exchange.candle_files import import_candles
from omc.ledgers.models import NewsItem, ProtocolMetric

DEMO = Path(__file__).resolve().parents[1] / "omc" / "demo" / "data" / "candles"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
# exchange, symbol, timeframe, bars: what the test database holds
STORED = [
    ("binance", "ADA/USDT", "1d", 40),
    ("binance", "BTC/USDT", "5m", 200),
    ("binance", "ETH/USDT", "1h", 100),
    ("binance", "ETH/USDT", "5m", 120),
    ("kraken", "SOL/USD", "1h", 50),
]
STEP = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
COINS = {
    "ADA": ("exchange",),
    "BTC": ("exchange", "human"),
    "ETH": ("exchange", "glass"),
    "SOL": ("exchange",),
}
CATALOG = Catalog(
    series=tuple(Series(ex, sym, tf, n, T0, T0 + STEP[tf] * (n - 1)) for ex, sym, tf, n in STORED),
    coins=COINS,
    protocols={"aave": ("AAVE",), "lido": ("LDO", "ETH")},
)
DEFAULT = ["returns", "volatility", "rsi", "sma_ratio", "volume_z"]
ALL_MODELS = ["logistic", "random_forest", "lightgbm"]

Check = Callable[[ResearchPlan], Any]
FIELDS: dict[str, Check] = {
    "symbol": lambda p: p.symbols[0],
    "exchange": lambda p: p.exchange,
    "timeframe": lambda p: p.timeframe,
    "kind": lambda p: p.target.kind,
    "horizon": lambda p: p.target.horizon_bars,
    "threshold": lambda p: round(p.target.threshold, 6),
    "features": lambda p: p.features,
    "ledgers": lambda p: p.ledgers,
    "models": lambda p: p.models,
    "trials": lambda p: p.trials,
    "scheme": lambda p: p.evaluation.scheme,
    "folds": lambda p: p.evaluation.folds,
    "fee_bps": lambda p: p.evaluation.fee_bps,
    "as_of": lambda p: p.as_of,
    "protocol": lambda p: p.protocol,
    "holdout": lambda p: p.evaluation.holdout_fraction,
    "embargo": lambda p: p.evaluation.embargo_bars,
    "seed": lambda p: p.seed,
}

# goal, explicit options, expected plan fields; "says": substrings of some assumption
TABLE: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "Does sentiment predict BTC direction over the next 4 hours?",
        {},
        dict(
            symbol="BTC/USDT",
            exchange="binance",
            timeframe="5m",
            kind="direction",
            horizon=48,
            features=[*DEFAULT, "sentiment"],
            ledgers=["exchange", "human"],
            models=ALL_MODELS,
            trials=20,
            says=["'4 hours' = 48 bars", "are added to sentiment"],
        ),
    ),
    (
        "Will bitcoin go up on the next bar?",
        {},
        dict(
            symbol="BTC/USDT",
            kind="direction",
            horizon=1,
            features=DEFAULT,
            ledgers=["exchange"],
            says=["price and volume only", "models: logistic regression", "trial budget: 20"],
        ),
    ),
    (
        "Predict the 4-hour return of ETH/USDT on 1h bars with lightgbm, 50 trials",
        {},
        dict(
            symbol="ETH/USDT",
            timeframe="1h",
            kind="forward_return",
            horizon=4,
            models=["lightgbm"],
            trials=50,
        ),
    ),
    (
        "ether volatility over the next day",
        {"timeframe": "1h"},
        dict(symbol="ETH/USDT", timeframe="1h", kind="volatility", horizon=24, features=DEFAULT),
    ),
    (
        "Is there momentum in SOL?",
        {},
        dict(
            symbol="SOL/USD",
            exchange="kraken",
            timeframe="1h",
            horizon=1,
            features=["returns", "sma_ratio"],
            says=["'momentum' → lagged returns"],
        ),
    ),
    (
        "mean reversion on ETH 5m candles, random forest",
        {},
        dict(
            symbol="ETH/USDT",
            timeframe="5m",
            features=["rsi", "sma_ratio"],
            models=["random_forest"],
            says=["'mean reversion' → RSI and SMA-ratio"],
        ),
    ),
    (
        "Do TVL and fees changes predict ETH direction?",
        {"timeframe": "1h"},
        dict(
            symbol="ETH/USDT",
            features=[*DEFAULT, "tvl", "fees"],
            ledgers=["exchange", "glass"],
            protocol="lido",
            says=["DeFiLlama's lido, configured for ETH"],
        ),
    ),
    (
        "Does on-chain activity move ETH? xgboost",
        {"timeframe": "1h"},
        dict(
            features=[*DEFAULT, "tvl", "fees"],
            models=["lightgbm"],
            says=["'on-chain' → the Glass ledger", "'xgboost' → LightGBM"],
        ),
    ),
    (
        "Do listings and delistings move cardano the next day?",
        {},
        dict(
            symbol="ADA/USDT",
            timeframe="1d",
            horizon=1,
            features=[*DEFAULT, "catalyst"],
            ledgers=["exchange", "catalyst"],
            says=["no catalyst-ledger data is stored for ADA"],
        ),
    ),
    (
        "BTC direction using news",
        {},
        dict(features=[*DEFAULT, "news_volume"], ledgers=["exchange", "human"]),
    ),
    ("predict BTC 30 minutes ahead", {}, dict(symbol="BTC/USDT", horizon=6)),
    (
        "BTC up or down in the next hour with logistic regression and gradient boosting",
        {},
        dict(
            horizon=12,
            kind="direction",
            models=["logistic", "lightgbm"],
            says=["'gradient boosting' → LightGBM"],
        ),
    ),
    (
        "Will BTC rise more than 1% in the next 2 hours?",
        {},
        dict(
            horizon=24,
            kind="direction",
            threshold=round(math.log(1.01), 6),
            says=["log return above 0.00995"],
        ),
    ),
    ("Does volume predict BTC?", {}, dict(features=["volume_z"], ledgers=["exchange"])),
    (
        "ETH 4-hour direction",
        {"symbol": "BTC/USDT", "horizon": 3, "trials": 7},
        dict(
            symbol="BTC/USDT",
            horizon=3,
            trials=7,
            says=["--horizon 3 is used", "--symbol BTC/USDT is used; the goal also names ETH"],
        ),
    ),
    ("SOL over 90 minutes", {}, dict(symbol="SOL/USD", horizon=2, says=["1.5 bars of 1h"])),
    (
        "BTC with 10 folds on a rolling window, 5 bps fees",
        {},
        dict(scheme="rolling", folds=10, fee_bps=5.0, features=DEFAULT),
    ),
    ("ETHUSDT hourly bars, next 3 bars", {}, dict(symbol="ETH/USDT", timeframe="1h", horizon=3)),
    ("XBT direction", {}, dict(symbol="BTC/USDT")),
    ("predict SOL direction, 50000 trials", {}, dict(trials=10_000, says=["capped at 10000"])),
    (
        "Does Reddit sentiment predict ETH direction?",
        {"exchange": "binance", "timeframe": "5m"},
        dict(
            symbol="ETH/USDT",
            timeframe="5m",
            features=[*DEFAULT, "sentiment"],
            says=["no human-ledger data is stored for ETH"],
        ),
    ),
    (
        "Does volatility predict bitcoin returns?",
        {},
        dict(kind="forward_return", features=["volatility"]),
    ),
    ("ETH on binance 1h bars, 1 day ahead", {}, dict(timeframe="1h", horizon=24)),
    (
        "Will ETH/USDT fall tomorrow?",
        {"timeframe": "1h", "as_of": T0 + timedelta(days=3)},
        dict(kind="direction", horizon=24, as_of=T0 + timedelta(days=3)),
    ),
    (
        "Predict whether Cardano goes up using sentiment, news, TVL, fees and SEC filings",
        {},
        dict(
            symbol="ADA/USDT",
            kind="direction",
            features=[*DEFAULT, "sentiment", "news_volume", "tvl", "fees", "catalyst"],
            ledgers=["exchange", "human", "glass", "catalyst"],
        ),
    ),
    (
        "BTC with a 30% holdout, embargo 10 bars, seed 7",
        {},
        dict(holdout=0.3, embargo=10, seed=7, horizon=1, says=["embargo of 10 bars of 5m"]),
    ),
    (
        "BTC 1 fold, 95% holdout",
        {},
        dict(folds=5, holdout=0.2, says=["folds 1 is out of range", "holdout fraction 0.95"]),
    ),
    (
        "BTC trend following with 8-fold cv",
        {},
        dict(features=["returns", "sma_ratio"], folds=8, says=["'trend' → lagged returns"]),
    ),
    (
        "Does Lido TVL predict ETH direction?",
        {"timeframe": "1h"},
        dict(
            symbol="ETH/USDT",
            protocol="lido",
            features=[*DEFAULT, "tvl"],
            says=["the Glass features (tvl) are DeFiLlama's lido, named in the goal"],
        ),
    ),
    (
        "Does on-chain data move BTC?",
        {},
        dict(
            symbol="BTC/USDT",
            protocol=None,
            ledgers=["exchange", "glass"],
            says=["no DeFiLlama protocol is configured for BTC", "no glass-ledger data"],
        ),
    ),
    (
        "bitcoin and ether: which is more predictable?",
        {},
        dict(symbol="BTC/USDT", says=["the study is on the first, BTC (not ETH)"]),
    ),
]


def check(plan: ResearchPlan, expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        if name == "says":
            for text in value:
                assert any(text in a for a in plan.assumptions), (text, plan.assumptions)
        else:
            assert FIELDS[name](plan) == value, (name, FIELDS[name](plan), plan.assumptions)


@pytest.mark.parametrize(("goal", "options", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_goal_table(goal: str, options: dict[str, Any], expected: dict[str, Any]) -> None:
    result = plan_goal(goal, CATALOG, **options)
    assert result.question is None, result.question
    assert result.plan is not None
    check(result.plan, expected)
    assert result.plan.goal == goal
    assert any(a.startswith("data: ") for a in result.plan.assumptions)
    assert any(a.startswith("evaluation: ") for a in result.plan.assumptions)
    # deterministic, and a plan survives JSON
    assert plan_goal(goal, CATALOG, **options) == result
    assert ResearchPlan.model_validate_json(result.plan.model_dump_json()) == result.plan


QUESTIONS = [
    ("predict the direction", {}, ["Which coin", "BTC", "ETH", "SOL"]),
    ("mean reversion on dogecoin", {}, ["no stored candles for DOGE", "ADA, BTC, ETH, SOL"]),
    ("Predict ETH direction", {}, ["Several stored series match ETH", "1h", "5m", "binance 1h"]),
    ("Will SOL go up in the next 30 minutes?", {}, ["'30 minutes' is shorter than one bar"]),
    ("BTC momentum", {"symbol": "BTC/AUD"}, ["no stored candles for BTC/AUD", "BTC/USDT 5m"]),
    ("ETH on kraken", {}, ["no stored candles for ETH on kraken", "binance ETH/USDT 1h"]),
    ("BTC direction on 1h bars", {}, ["no stored candles for BTC at 1h", "BTC/USDT 5m"]),
]


@pytest.mark.parametrize(("goal", "options", "parts"), QUESTIONS, ids=[q[0] for q in QUESTIONS])
def test_one_clarifying_question(goal: str, options: dict[str, Any], parts: list[str]) -> None:
    result = plan_goal(goal, CATALOG, **options)
    assert result.plan is None and result.question
    for part in parts:
        assert part in result.question, (part, result.question)


def test_answers_fold_in_and_the_planner_goes_on() -> None:
    first = plan_goal("Predict ETH direction", CATALOG)
    assert first.question
    done = plan_goal("Predict ETH direction", CATALOG, answer="binance 1h")
    assert done.plan is not None
    check(done.plan, dict(symbol="ETH/USDT", timeframe="1h", horizon=1))
    assert f"asked: {first.question} — answered: 'binance 1h'" in done.plan.assumptions
    # no coin: the answer names one; ETH then has two series, so a second (different) question
    again = plan_goal("predict the direction", CATALOG, answer="ETH")
    assert again.question and "Several stored series match ETH" in again.question
    assert "did not settle" not in again.question
    final = plan_goal("predict the direction", CATALOG, answer="ETH/USDT 5m")
    assert final.plan is not None and (final.plan.symbols, final.plan.timeframe) == (
        ["ETH/USDT"],
        "5m",
    )
    # successive answers, joined with ";": each folded in after the question it answers
    both = plan_goal("predict the direction", CATALOG, answer="ETH; binance 1h")
    assert both.plan is not None and both.plan.timeframe == "1h"
    assert [a for a in both.plan.assumptions if a.startswith("asked: ")] == [
        f"asked: {plan_goal('predict the direction', CATALOG).question} — answered: 'ETH'",
        f"asked: {again.question} — answered: 'binance 1h'",
    ]
    bitcoin = plan_goal("mean reversion on dogecoin", CATALOG, answer="bitcoin")
    assert bitcoin.plan is not None and bitcoin.plan.symbols == ["BTC/USDT"]
    assert bitcoin.plan.features == ["rsi", "sma_ratio"]
    # a horizon shorter than a bar: answered in bars
    bar = plan_goal("Will SOL go up in the next 30 minutes?", CATALOG, answer="1 bar")
    assert bar.plan is not None and bar.plan.target.horizon_bars == 1
    # an answer that settles nothing gets the same question, saying so
    vague = plan_goal("Predict ETH direction", CATALOG, answer="whatever")
    assert vague.question and vague.question.startswith(first.question)
    assert "'whatever' did not settle it" in vague.question


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeframe": "7x"}, "unknown timeframe"),
        ({"horizon": 0}, "--horizon"),
        ({"trials": 0}, "--trials"),
        ({"as_of": datetime(2024, 1, 1)}, "time zone"),
    ],
)
def test_invalid_options_are_one_clear_error(options: dict[str, Any], message: str) -> None:
    with pytest.raises(PlannerError, match=message):
        plan_goal("BTC direction", CATALOG, **options)


# ----------------------------------------------------------------------------- catalogs


def write_candles(path: Path, first: datetime, step: timedelta, n: int) -> Path:
    lines = ["timestamp,open,high,low,close,volume"]
    for i in range(n):
        ts = (first + step * i).isoformat().replace("+00:00", "Z")
        price = 100 + (i % 7)
        lines.append(f"{ts},{price},{price + 1},{price - 1},{price + 0.5},{10 + i}")
    path.write_text("\n".join(lines) + "\n")
    return path


def seed(engine: Engine, tmp_path: Path) -> None:
    """The STORED series through the candle import, plus a BTC news item and ETH protocol
    figure, so the catalog's coins list which ledgers know each coin."""
    for exchange, symbol, timeframe, n in STORED:
        path = write_candles(tmp_path / f"{exchange}-{timeframe}.csv", T0, STEP[timeframe], n)
        report = import_candles(engine, path, exchange, symbol, timeframe)
        assert not report.bad_rows
    now = datetime.now(UTC)
    upsert(engine, NewsItem.__table__, [{  # type: ignore[arg-type]
        "source": "cryptopanic", "source_id": "1", "url": None, "title": "BTC news",
        "summary": None, "published_at": T0, "sentiment": 0.5, "coins": ["BTC"],
        "story_key": None, "raw": None, "collected_at": now,
    }])  # fmt: skip
    upsert(engine, ProtocolMetric.__table__, [{  # type: ignore[arg-type]
        "source": "defillama", "protocol": "lido", "chain": "", "metric": "tvl", "ts": T0,
        "value": Decimal("1.5"), "coins": ["ETH"], "collected_at": now,
    }])  # fmt: skip


def test_catalog_from_db_and_the_table_on_it(engine: Engine, tmp_path: Path) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    seed(engine, tmp_path)
    catalog = catalog_from_db(engine)
    assert catalog.series == CATALOG.series
    assert catalog.coins == COINS
    assert catalog.bases() == ["ADA", "BTC", "ETH", "SOL"]
    assert catalog.to_json()["series"][1]["symbol"] == "BTC/USDT"
    for goal, options, expected in TABLE:
        result = plan_goal(goal, catalog, **options)
        assert result.plan is not None, (goal, result.question)
        check(result.plan, expected)
    for goal, options, parts in QUESTIONS:
        question = plan_goal(goal, catalog, **options).question
        assert question and all(part in question for part in parts)
    # point in time: nothing was stored before the import
    early = catalog_from_db(engine, as_of=before)
    assert early.series == () and early.coins == {}
    assert pit.candle_series(engine, as_of=before).empty
    assert "Which coin" in (plan_goal("BTC", early).question or "")


def test_catalog_from_a_candles_file(tmp_path: Path) -> None:
    demo = catalog_from_file(DEMO / "BTC_USDT-5m.csv")
    (series,) = demo.series
    assert (series.symbol, series.timeframe, series.bars) == ("BTC/USDT", "5m", 10_999)
    assert series.first == datetime(2023, 1, 2, 16, 45, tzinfo=UTC)
    assert demo.data_file == str(DEMO / "BTC_USDT-5m.csv")

    result = plan_goal("Will it go up in the next hour?", demo, timeframe="1h")
    assert result.plan is not None
    check(
        result.plan,
        dict(
            symbol="BTC/USDT",
            exchange="file",
            timeframe="5m",
            horizon=12,
            says=["the file's symbol is BTC/USDT", "--timeframe 1h ignored"],
        ),
    )
    assert result.plan.data_file == str(DEMO / "BTC_USDT-5m.csv")
    assert ResearchPlan.model_validate_json(result.plan.model_dump_json()) == result.plan

    hourly = write_candles(tmp_path / "candles.csv", T0, timedelta(hours=1), 30)
    unnamed = catalog_from_file(hourly)
    assert (unnamed.series[0].symbol, unnamed.series[0].timeframe) == ("", "1h")
    eth = plan_goal("ETH 4-hour direction", unnamed)
    assert (
        eth.plan is not None and eth.plan.symbols == ["ETH"] and eth.plan.target.horizon_bars == 4
    )
    anon = plan_goal("direction next bar", unnamed)
    assert anon.plan is not None and anon.plan.symbols == ["CANDLES"]
    assert any("the file's coin is unknown" in a for a in anon.plan.assumptions)
    named = catalog_from_file(hourly, symbol="sol/usd")
    assert named.series[0].symbol == "SOL/USD"

    with pytest.raises(CatalogError, match="no such candles file"):
        catalog_from_file(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("when,price\n1,2\n")
    with pytest.raises(CatalogError, match="cannot read candles file"):
        catalog_from_file(tmp_path / "bad.csv")


def test_the_session_runner_plans_through_the_catalog(engine: Engine, tmp_path: Path) -> None:
    """`omc lab run` (prepare_plan): the planner on the DB's catalog, or on a --data file."""
    from omc.lab.session.runner import prepare_plan

    seed(engine, tmp_path)
    asked = prepare_plan("Predict ETH direction", engine=engine)
    assert asked.question and "Several stored series match ETH" in asked.question
    done = prepare_plan("Predict ETH direction", engine=engine, answer="binance 5m", trials=3)
    assert done.plan is not None and (done.plan.timeframe, done.plan.trials) == ("5m", 3)
    demo = str(DEMO / "BTC_USDT-5m.csv")
    filed = prepare_plan("BTC next hour", engine=engine, data_file=demo, horizon_bars=6)
    assert filed.plan is not None
    assert (filed.plan.data_file, filed.plan.target.horizon_bars) == (demo, 6)
    assert any("--horizon 6 is used" in a for a in filed.plan.assumptions)
