"""Lab features: causal families, knowledge-time joins, the leakage check, spec determinism,
the data checks, and one-bar features equal to the matrix rows (on a real database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from omc.core.upsert import upsert
from omc.floor.data import load_csv
from omc.lab.features import (
    FeatureSpec,
    InputError,
    StudyInputs,
    build_matrix,
    features_at,
    library,
    load_inputs,
    run_checks,
)
from omc.lab.features.checks import check_leakage
from omc.lab.features.inputs import (
    PUBLICATION,
    Publication,
    _bars_frame,
    candle_publication,
    known_at,
)
from omc.lab.plan import ResearchPlan, Target
from omc.ledgers.exchange.candle_files import import_candles
from omc.ledgers.models import CatalystEvent, NewsItem, ProtocolMetric, SocialPost

CSV = Path(__file__).resolve().parents[1] / "omc/demo/data/candles/BTC_USDT-5m.csv"
ALL = ["returns", "volatility", "rsi", "sma_ratio", "volume_z", "sentiment", "news_volume",
       "tvl", "fees", "catalyst"]  # fmt: skip
LEDGERS: Any = ["exchange", "human", "glass", "catalyst"]
H = pd.Timedelta(hours=1)


def plan_for(**kw: Any) -> ResearchPlan:
    base: dict[str, Any] = {"goal": "test", "symbols": ["BTC/USDT"], "data_file": str(CSV)}
    return ResearchPlan(**(base | kw))


def label(bars: pd.DataFrame, horizon: int = 1) -> pd.Series:
    future = np.log(bars["close"]).shift(-horizon) - np.log(bars["close"])
    return (future > 0).astype(float).where(future.notna())


def synthetic_inputs(n: int = 3000, seed: int = 0) -> StudyInputs:
    """The bundled candles plus ledger frames whose rows arrive late and out of order."""
    rng = np.random.default_rng(seed)
    bars = load_csv(CSV, "BTC/USDT").slice(0, n)
    frame = _bars_frame(bars, 300.0, None)
    t0, t1 = frame.index[0], frame.index[-1]
    hours = pd.date_range(t0.floor("h") - 30 * H, t1, freq="h")
    late = pd.to_timedelta(rng.exponential(2.0, len(hours)) * 3600, unit="s").round("s")
    sent = pd.DataFrame(
        {
            "hour": hours,
            "count": rng.integers(1, 9, len(hours)),
            "mean_sentiment": rng.normal(0, 0.3, len(hours)),
            "weighted_sentiment": 0.0,
            "known_at": hours + H + late,
        }
    )
    span = int((t1 - t0).total_seconds())
    pub = t0 + pd.to_timedelta(np.sort(rng.integers(0, span, 800)), unit="s")
    news = pd.DataFrame({"published_at": pub, "source": "x", "source_id": range(len(pub))})
    news["known_at"] = pub + pd.to_timedelta(rng.integers(0, 20_000, len(pub)), unit="s")
    days = pd.date_range(t0.floor("D") - pd.Timedelta(days=9), t1, freq="D")
    tvl = pd.DataFrame(
        {"ts": days, "value": 1e9 * np.exp(np.cumsum(rng.normal(0, 0.03, len(days))))}
    )
    tvl["known_at"] = days + pd.Timedelta(hours=25)
    tvl.loc[len(tvl) - 4, "known_at"] += pd.Timedelta(days=2)  # one day published late
    fees = tvl.assign(value=tvl["value"] / 1000 * rng.uniform(0.5, 1.5, len(tvl)))
    evp = t0 + pd.to_timedelta(np.sort(rng.integers(0, span, 12)), unit="s")
    events = pd.DataFrame(
        {
            "published_at": evp,
            "source": ["sec", "announcements"] * 6,
            "event_id": [str(i) for i in range(12)],
            "kind": ["current_report", "listing", "registration", "delisting"] * 3,
            "impact": 0.5,
            "known_at": evp + pd.to_timedelta(rng.integers(0, 7200, 12), unit="s"),
        }
    )
    ledgers = {
        name: f.sort_values(["known_at"], kind="stable").reset_index(drop=True)
        for name, f in {
            "sentiment": sent,
            "news": news,
            "tvl": tvl,
            "fees": fees,
            "events": events,
        }.items()
    }
    plan = plan_for(ledgers=LEDGERS, features=ALL)
    return StudyInputs(plan, "BTC/USDT", frame, ledgers, datetime.now(UTC), "test", "BTC",
                       "p", 300.0)  # fmt: skip


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=True, check_freq=False)


# ----------------------------------------------------------------------------- causality


def test_every_family_is_causal_on_shorter_histories() -> None:
    inputs = synthetic_inputs()
    spec = FeatureSpec.from_plan(inputs.plan, inputs)
    X = build_matrix(spec, inputs)
    assert list(spec.families) == ALL and X.shape == (3000, 31)
    assert (X.dtypes == "float64").all() and X.index.equals(inputs.bars.index)
    assert X.iloc[400:].notna().all().all(), "NaN only in warm-up"
    closes = inputs.close_times
    rng = np.random.default_rng(1)
    for cut in sorted({1, 2, 15, 289, 290, 2999, *rng.integers(3, 3000, 20).tolist()}):
        sub = build_matrix(spec, inputs.until(closes[cut - 1]))
        assert len(sub) == cut
        assert_same(sub, X.iloc[:cut])
    # ledger features moved: they are not constant
    for name in ("sent_mean_24h", "news_24h", "tvl_chg_1d", "fees_chg_7d", "cat_listing_hours"):
        assert X[name].nunique() > 5, name


def test_ledger_features_are_as_of_knowledge_time() -> None:
    inputs = synthetic_inputs()
    sent = inputs.ledgers["sentiment"]
    spec = FeatureSpec.make(["sentiment", "tvl"], inputs)
    X = build_matrix(spec, inputs)
    closes = inputs.close_times
    # sent_count_1h = what became known in the last hour, never what was only claimed
    for i in (500, 1500, 2500):
        t = closes[i]
        known = sent[(sent["known_at"] > t - H) & (sent["known_at"] <= t)]
        assert X["sent_count_1h"].iloc[i] == known["count"].sum()
    # TVL: the newest day known at the bar against the newest known a day earlier, however
    # late a day was published
    tvl = inputs.ledgers["tvl"]
    late = tvl[tvl["known_at"] - tvl["ts"] > pd.Timedelta(hours=25)].iloc[0]
    window = np.flatnonzero((closes >= late["known_at"] - 30 * H) & (closes <= late["known_at"]))
    for i in [*window[::7], 1000, 2999]:

        def level(t: pd.Timestamp) -> float:
            known = tvl[tvl["known_at"] <= t]
            return float(np.arcsinh(known.loc[known["ts"].idxmax(), "value"]))

        t = closes[i]
        expected = level(t) - level(t - pd.Timedelta(days=1))
        assert X["tvl_chg_1d"].iloc[i] == pytest.approx(expected, abs=1e-12)


# ----------------------------------------------------------------------------- leakage


def _next_bar(ctx: library.Context) -> dict[str, library.FloatArray]:
    r = np.full(len(ctx), np.nan)
    r[:-1] = np.diff(np.log(ctx.close))  # the NEXT bar's return: a leak
    return {"ret_next": r}


def _claimed_time(ctx: library.Context) -> dict[str, library.FloatArray]:
    frame = ctx.ledger("sentiment")  # joined on the hour it describes, not on known_at
    hour_end = library.ns(frame["hour"] + H)
    order = np.argsort(hour_end, kind="stable")
    rows = np.searchsorted(hour_end[order], ctx.at, side="right") - 1
    values = frame["mean_sentiment"].to_numpy()[order]
    return {"sent_claimed": np.where(rows >= 0, values[np.maximum(rows, 0)], np.nan)}


def test_leaking_features_are_refused_and_named() -> None:
    inputs = synthetic_inputs()
    library.register("leak_next", _next_bar)
    library.register("leak_claimed", _claimed_time)
    try:
        spec = FeatureSpec.make(["returns", "sentiment", "leak_next", "leak_claimed"], inputs)
        X = build_matrix(spec, inputs)
        X["extra"] = 1.0  # a column the spec cannot recompute
        y = label(inputs.bars)
        results = {r.name: r for r in run_checks(inputs, X, y, inputs.plan, spec=spec)}
        leak = results["leakage"]
        assert leak.refused == ["extra", "ret_next", "sent_claimed"]
        assert leak.status == "warn"
        assert "ret_next" in leak.detail and "sent_claimed" in leak.detail
        assert set(leak.data["refused"]) == set(leak.refused)
        # a different spec hash and code version than without the leaky family
        honest = FeatureSpec.make(["returns", "sentiment"], inputs)
        assert honest.code_version != spec.code_version
    finally:
        library.unregister("leak_next")
        library.unregister("leak_claimed")


def test_leakage_check_passes_every_family_and_bundled_candles() -> None:
    inputs = synthetic_inputs(seed=3)
    spec = FeatureSpec.from_plan(inputs.plan, inputs)
    result = check_leakage(inputs, build_matrix(spec, inputs), spec, seed=5)
    assert result.status == "pass" and result.refused == [], result.detail
    assert len(result.data["cuts"]) >= 8


# ----------------------------------------------------------------------------- spec


def test_spec_determines_the_matrix() -> None:
    plan = plan_for()
    as_of = datetime(2025, 1, 1, tzinfo=UTC)
    first = load_inputs(plan, engine=None, as_of=as_of)
    again = load_inputs(plan, engine=None, as_of=as_of)
    spec = FeatureSpec.from_plan(plan, first)
    assert first.source == f"file:{CSV}" and first.bar_seconds == 300.0
    assert (first.bars["known_at"] == first.close_times).all()  # a CSV bar: known at close
    assert_same(build_matrix(spec, first), build_matrix(spec, again))
    restored = FeatureSpec.model_validate_json(spec.model_dump_json())
    assert restored == spec and restored.hash() == spec.hash()
    assert_same(build_matrix(restored, first), build_matrix(spec, first))
    other = FeatureSpec.from_plan(plan, first, overrides={"returns": {"lags": [1, 2]}})
    assert other.hash() != spec.hash()
    assert "ret_2" in build_matrix(other, first) and "ret_48" not in build_matrix(other, first)
    assert FeatureSpec.from_plan(plan, first).hash() == spec.hash()
    stale = spec.model_copy(update={"code_version": "0" * 16})
    with pytest.raises(ValueError, match="another version"):
        build_matrix(stale, first)


def test_sample_size_and_balance_fail_clearly() -> None:
    plan = plan_for(target=Target(horizon_bars=48))
    inputs = load_inputs(plan, engine=None, as_of=datetime(2025, 1, 1, tzinfo=UTC))
    inputs = inputs.until(inputs.close_times[2999])
    spec = FeatureSpec.from_plan(plan, inputs)
    X = build_matrix(spec, inputs)
    results = {r.name: r for r in run_checks(inputs, X, label(inputs.bars, 48), plan)}
    size = results["sample_size"]
    assert size.status == "fail" and size.data["required_rows"] > size.data["usable_rows"]
    assert "48-bar horizon" in size.detail
    assert results["class_balance"].status == "pass"
    ones = pd.Series(1.0, index=X.index)
    balance = {r.name: r for r in run_checks(inputs, X, ones, plan_for())}["class_balance"]
    assert balance.status == "fail"
    small = {r.name: r for r in run_checks(inputs, X, label(inputs.bars), plan_for())}
    assert small["sample_size"].status == "pass"


def test_missing_inputs_are_one_clear_error() -> None:
    with pytest.raises(InputError, match="no such candle file"):
        load_inputs(plan_for(data_file="/nope.csv"), engine=None, as_of=datetime.now(UTC))
    with pytest.raises(InputError, match="no candle file and no database"):
        load_inputs(plan_for(data_file=None), engine=None, as_of=datetime.now(UTC))


def test_knowledge_time_rule() -> None:
    day = pd.Series(pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-01"], utc=True))
    stored = pd.Series(pd.to_datetime(
        ["2024-01-01T10:00Z", "2024-01-02T03:00Z", "2024-03-01T00:00Z"], utc=True))  # fmt: skip
    got = known_at(day, stored, PUBLICATION["defillama"]).dt.strftime("%m-%dT%H:%M").tolist()
    # stored during the day: at day end + 1 h; stored late (live): when stored; backfilled:
    # the declared publication (day end + 1 h), not the backfill time
    assert got == ["01-02T01:00", "01-02T03:00", "01-02T01:00"]
    news = known_at(day, stored, PUBLICATION["news"]).dt.strftime("%m-%dT%H:%M").tolist()
    assert news == ["01-01T10:00", "01-02T03:00", "03-01T00:00"]  # news: never backfilled
    assert known_at(day, None, Publication(period=H)).iloc[0] == day.iloc[0] + H
    # a 5-minute candle: stored 2 min after its close (live) or 3 h after (a backfill)
    opened = pd.Series(pd.to_datetime(["2024-01-01T10:00Z"] * 2, utc=True))
    stored = pd.Series(pd.to_datetime(["2024-01-01T10:07Z", "2024-01-01T13:05Z"], utc=True))
    candles = known_at(opened, stored, candle_publication(300)).dt.strftime("%H:%M").tolist()
    assert candles == ["10:07", "10:05"]


# ----------------------------------------------------------------------------- database

T0 = datetime(2023, 1, 2, 16, 45, tzinfo=UTC)  # the bundled file's first bar


def seed_db(engine: Engine, tmp_path: Path, bars: int = 700) -> None:
    """Candles through the import path, Human/Glass/Catalyst rows as collectors store them."""
    path = tmp_path / "BTC_USDT-5m.csv"
    path.write_text("".join(CSV.read_text().splitlines(keepends=True)[: bars + 1]))
    import_candles(engine, path, "binance", "BTC/USDT", "5m")
    rng = np.random.default_rng(7)
    news, social = [], []
    for i in range(90):
        published = T0 + timedelta(minutes=int(rng.integers(0, bars * 5)))
        lag = timedelta(minutes=int(rng.choice([2, 20, 300])))
        news.append(
            {"source": "cryptopanic", "source_id": f"n{i}", "url": None, "title": f"BTC {i}",
             "summary": None, "published_at": published, "sentiment": float(rng.normal(0, .4)),
             "coins": ["BTC"], "story_key": None, "raw": None, "collected_at": published + lag}
        )  # fmt: skip
        social.append(
            {"platform": "reddit", "post_id": f"p{i}", "parent_id": None, "community": "btc",
             "author": "a", "title": "btc", "body": None, "url": None, "score": 3,
             "num_comments": 0, "published_at": published + timedelta(minutes=7),
             "sentiment": float(rng.normal(0, .4)), "coins": ["BTC"], "raw": None,
             "collected_at": published + timedelta(minutes=9) + lag}
        )  # fmt: skip
    upsert(engine, NewsItem.__table__, news)  # type: ignore[arg-type]
    upsert(engine, SocialPost.__table__, social)  # type: ignore[arg-type]
    metrics = []
    for d in range(-9, 4):
        ts = datetime(2023, 1, 2, tzinfo=UTC) + timedelta(days=d)
        live = ts + timedelta(days=1, hours=1, minutes=30)
        for metric, value in (("tvl", 1e9 + d * 3e7 + d * d * 1e6), ("fees", 1e5 + 7e3 * (d % 3))):
            metrics.append(
                {"source": "defillama", "protocol": "testproto", "chain": "", "metric": metric,
                 "ts": ts, "value": Decimal(str(value)), "coins": ["BTC"],
                 # older days backfilled today; the last days collected live
                 "collected_at": live if d >= 1 else datetime.now(UTC)}
            )  # fmt: skip
    upsert(engine, ProtocolMetric.__table__, metrics)  # type: ignore[arg-type]
    events = [
        ("sec", "f1", "current_report", T0 + timedelta(hours=5), timedelta(days=90)),
        ("announcements", "a1", "listing", T0 + timedelta(hours=20), timedelta(minutes=4)),
        ("announcements", "a2", "delisting", T0 + timedelta(hours=30), timedelta(hours=6)),
    ]
    upsert(
        engine,
        CatalystEvent.__table__,  # type: ignore[arg-type]
        [
            {"source": s, "event_id": e, "kind": k, "title": k, "url": None, "coins": ["BTC"],
             "impact": 0.5, "published_at": at, "payload": None, "collected_at": at + lag}
            for s, e, k, at, lag in events
        ],
    )  # fmt: skip


def db_plan() -> ResearchPlan:
    return ResearchPlan(
        goal="db", symbols=["BTC/USDT"], exchange="binance", timeframe="5m",
        ledgers=LEDGERS, features=ALL, protocol="testproto",
    )  # fmt: skip


def test_one_bar_features_equal_the_matrix_rows(engine: Engine, tmp_path: Path) -> None:
    seed_db(engine, tmp_path)
    plan = db_plan()
    inputs = load_inputs(plan, engine=engine, as_of=datetime.now(UTC))
    assert inputs.source == "db:binance:BTC/USDT:5m" and len(inputs.bars) == 700
    assert (inputs.bars["known_at"] == inputs.close_times).all()  # imported history
    assert {k: len(v) > 0 for k, v in inputs.ledgers.items()} == dict.fromkeys(
        ["events", "fees", "news", "sentiment", "tvl"], True
    )
    spec = FeatureSpec.from_plan(plan, inputs)
    X = build_matrix(spec, inputs)
    assert X.shape[1] == 31
    for name in ("sent_count_24h", "news_24h", "tvl_chg_1d", "fees_chg_1d", "cat_filing_weight"):
        assert X[name].nunique() > 2, name
    for bar in X.index[-300:]:
        one = features_at(spec, inputs, bar)
        row = X.loc[bar]
        assert np.array_equal(one.to_numpy(), row.to_numpy(), equal_nan=True), bar
    leak = check_leakage(inputs, X, spec)
    assert leak.status == "pass", leak.detail


def test_late_rows_are_invisible_until_stored(engine: Engine, tmp_path: Path) -> None:
    seed_db(engine, tmp_path, bars=400)
    late_at = T0 + timedelta(hours=12)
    upsert(
        engine,
        NewsItem.__table__,  # type: ignore[arg-type]
        [
            {"source": "cryptopanic", "source_id": "late", "url": None, "title": "BTC late",
             "summary": None, "published_at": T0 + timedelta(hours=2, minutes=5),
             "sentiment": 0.9, "coins": ["BTC"], "story_key": None, "raw": None,
             "collected_at": late_at}
        ],
    )  # fmt: skip
    plan = db_plan()
    inputs = load_inputs(plan, engine=engine, as_of=datetime.now(UTC))
    news = inputs.ledgers["news"]
    late = news[news["source_id"] == "late"]
    assert late["known_at"].tolist() == [pd.Timestamp(late_at)]
    sent = inputs.ledgers["sentiment"]
    hour2 = sent[sent["hour"] == pd.Timestamp(T0 + timedelta(hours=2)).floor("h")]
    assert (hour2["known_at"] >= pd.Timestamp(late_at)).all()  # counted only once stored
    spec = FeatureSpec.from_plan(plan, inputs)
    X = build_matrix(spec, inputs)
    closes = inputs.close_times
    # without the late item: the same features at every bar that closed before it was stored
    ledgers = dict(inputs.ledgers, news=news[news["source_id"] != "late"].reset_index(drop=True))
    Xw = build_matrix(spec, replace(inputs, ledgers=ledgers))
    before = closes < pd.Timestamp(late_at)
    assert_same(X[before], Xw[before])
    at = int(np.argmax(~before))
    assert X["news_24h"].iloc[at] == Xw["news_24h"].iloc[at] + 1
    # the hour the late item belongs to is invisible before it was stored: the sentiment
    # features there are those of a study without that hour at all
    ledgers = dict(inputs.ledgers, sentiment=sent.drop(hour2.index).reset_index(drop=True))
    Xs = build_matrix(spec, replace(inputs, ledgers=ledgers))
    assert_same(X[before], Xs[before])
    assert not X[~before]["sent_count_24h"].equals(Xs[~before]["sent_count_24h"])
    # backfilled TVL: known at the declared publication (day end + 1 h), not when stored
    tvl = inputs.ledgers["tvl"].set_index("ts")["known_at"]
    day = pd.Timestamp("2023-01-02", tz="UTC")
    assert tvl[day - pd.Timedelta(days=1)] == day + H
    # collected live, 30 min after its publication: known when stored
    assert tvl[day + pd.Timedelta(days=1)] == day + pd.Timedelta(days=2, hours=1, minutes=30)
    # a filing backfilled 90 days later: EDGAR's acceptance time; an announcement stored
    # 6 h late: when stored
    ev = inputs.ledgers["events"].set_index("event_id")
    assert ev.loc["f1", "known_at"] == ev.loc["f1", "published_at"]
    assert ev.loc["a2", "known_at"] == ev.loc["a2", "published_at"] + 6 * H


def test_missing_ledger_data_is_reported_not_fatal() -> None:
    plan = plan_for(ledgers=LEDGERS, features=ALL)
    inputs = load_inputs(plan, engine=None, as_of=datetime(2025, 1, 1, tzinfo=UTC))
    assert sorted(inputs.ledgers) == ["events", "fees", "news", "sentiment", "tvl"]
    assert all(frame.empty for frame in inputs.ledgers.values())
    X = build_matrix(FeatureSpec.from_plan(plan, inputs), inputs)
    assert X.iloc[300:].notna().all().all()  # neutral, not NaN: the study can still run
    results = {r.name: r for r in run_checks(inputs, X, label(inputs.bars), plan)}
    assert results["coverage:tvl"].status == "warn" and "tvl" in results["coverage:tvl"].detail
    feats = results["features"]
    assert feats.status == "warn" and "tvl_chg_1d" in feats.data["constant"]
    assert "ret_1" not in feats.data["constant"]
    assert results["sample_size"].status == "pass" and results["leakage"].refused == []


def test_asof_index_is_a_backward_merge_asof() -> None:
    rng = np.random.default_rng(2)
    known = np.sort(rng.integers(0, 1000, 300)).astype(np.int64)  # ties included
    at = rng.integers(-50, 1100, 500).astype(np.int64)
    left = pd.DataFrame({"t": at, "i": np.arange(len(at))}).sort_values("t")
    right = pd.DataFrame({"t": known, "row": np.arange(len(known))}).drop_duplicates(
        "t", keep="last"
    )
    joined = pd.merge_asof(left, right, on="t", direction="backward").sort_values("i")
    expected = joined["row"].fillna(-1).to_numpy(dtype=np.int64)
    assert np.array_equal(library.asof_index(known, at), expected)
    with pytest.raises(ValueError, match="sorted"):
        library.asof_index(known[::-1].copy(), at)
