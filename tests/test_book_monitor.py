"""The demotion monitor: the CUSUM is tuned as documented, scripted decays are caught within a
bounded number of trades, healthy strategies almost never (false-alarm rate measured on
simulations), the drawdown and denial rules, and in a running session a decayed strategy is
demoted (live → paper), its orders cancelled, the account halted and the alert delivered."""

from __future__ import annotations

import time
from decimal import Decimal as D
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

from omc.core.config import Settings
from omc.core.events import EventBus
from omc.floor.backtest.engine import run_backtest
from omc.floor.book import registry as r
from omc.floor.book.expectations import from_backtest
from omc.floor.book.monitor import Monitor, MonitorSettings, cusum_arl, cusum_threshold
from omc.floor.book.watch import Alerts, check_book, scan
from omc.floor.data import Bars
from omc.floor.strategies import make_strategy
from omc.floor.trading.guard import GuardLimits
from omc.floor.trading.journal import Journal
from omc.floor.trading.paper_session import replay_paper
from tests.fakes.notify_server import FakeNotify, running

EXPECT = {"trade_return_mean": 0.004, "trade_return_std": 0.01}
PARAMS = {"fast": 5, "slow": 20, "size": 0.4}
LIMITS = GuardLimits(max_order_notional=D(50_000), max_position_notional=D(50_000))


def _first_alarm(returns: np.ndarray) -> int | None:
    m = Monitor(EXPECT)
    for i, x in enumerate(returns):
        if m.trade(float(x)) is not None:
            return i
    return None


def test_the_threshold_gives_the_documented_false_alarm_run_length() -> None:
    for k in (0.1, 0.2, 0.5, 1.0):
        assert cusum_arl(k, cusum_threshold(k, 10_000)) == pytest.approx(10_000, rel=1e-6)
    m = Monitor(EXPECT)
    assert m.k == pytest.approx(0.2)  # δ = μ₀: detect the edge vanishing
    assert Monitor({"trade_return_mean": 0.0, "trade_return_std": 0.01}).k == pytest.approx(0.125)


def test_a_vanished_edge_is_caught_and_a_healthy_one_is_left_alone() -> None:
    """Per-trade returns N(0.4 %, 1 %): healthy for 200 trades (false alarms), or healthy for
    50 trades and then the edge gone (mean 0) — detection delay after the change."""
    rng = np.random.default_rng(7)
    healthy = [_first_alarm(rng.normal(0.004, 0.01, 200)) for _ in range(400)]
    false_alarm = sum(a is not None for a in healthy) / len(healthy)
    assert false_alarm <= 0.04  # measured: 1.4 % over 1,000 runs (README)
    delays = []
    for _ in range(200):
        series = np.concatenate([rng.normal(0.004, 0.01, 50), rng.normal(0.0, 0.01, 400)])
        alarm = _first_alarm(series)
        assert alarm is not None  # every decayed strategy is demoted ...
        delays.append(alarm - 50)
    assert max(delays) <= 350 and float(np.median(delays)) <= 80  # ... within a bound
    losing = [
        _first_alarm(np.concatenate([rng.normal(0.004, 0.01, 50), rng.normal(-0.002, 0.01, 300)]))
        for _ in range(100)
    ]
    assert all(a is not None and a - 50 <= 150 for a in losing)


def test_drawdown_beyond_the_approved_maximum_and_repeated_denials() -> None:
    m = Monitor({"max_drawdown": 0.04})  # limit 4 % × 1.5 = 6 %
    for eq in ("10000", "10500", "10000", "9900"):
        assert m.equity(D(eq)) is None  # 5.7 % below the peak of 10,500
    breach = m.equity(D("9860"))
    assert breach is not None and breach.rule == "drawdown" and "6.10%" in breach.detail
    m = Monitor({"max_drawdown": 0.04}, MonitorSettings(max_denials=3))
    assert [m.denial("insufficient_cash") for _ in range(10)] == [None] * 10  # not a limit
    assert [m.denial("max_position") is not None for _ in range(4)] == [False] * 3 + [True]
    unwatched = Monitor({})
    assert unwatched.equity(D(1)) is None and unwatched.equity(D("0.1")) is None
    assert unwatched.health()["status"] == "unwatched"


def _bars(close: np.ndarray, start_ns: int = 1_700_000_000 * 10**9) -> Bars:
    n = len(close)
    ts = start_ns + np.arange(n, dtype=np.int64) * 300 * 10**9
    opens = np.concatenate([[close[0]], close[:-1]])
    high, low = np.maximum(opens, close) * 1.0005, np.minimum(opens, close) * 0.9995
    return Bars("BTC/AUD", ts, opens, high, low, close, np.full(n, 1e6))


def _waves(rng: np.random.Generator, n: int) -> np.ndarray:
    """The regime the strategy was approved on: swings an SMA cross rides profitably."""
    t = np.arange(n)
    return np.exp(0.03 * np.sin(2 * np.pi * t / 100) + rng.normal(0, 0.004, n))


def _approved(engine: Engine, account: str) -> r.Entry:
    rng = np.random.default_rng(1)
    oos = run_backtest(make_strategy("sma_cross", PARAMS), _bars(100 * _waves(rng, 2000)))
    expect = from_backtest(oos, source="test waves")
    assert expect["trades"] >= 20 and expect["trade_return_mean"] > expect["trade_return_std"]
    e = r.register(engine, make_strategy("sma_cross", PARAMS), account, expectations=expect)
    return r.move(engine, e.id, "live", actor="ann", reason="test: approved")


def _settings(notify: FakeNotify) -> Settings:
    return Settings(_env_file=None, alert_webhook_urls=[notify.url + "/hook"])  # type: ignore[call-arg]


@pytest.fixture
def notify() -> Any:
    yield from running(FakeNotify())


def test_a_decayed_strategy_is_demoted_in_its_session(engine: Engine, notify: FakeNotify) -> None:
    e = _approved(engine, "acc-decay")
    rng = np.random.default_rng(2)
    good = 100 * _waves(rng, 1000)
    walk = good[-1] * np.exp(rng.normal(0, 0.004, 2000).cumsum())  # the edge is gone
    bus = EventBus()
    seen: list[dict[str, Any]] = []
    bus.subscribe("book.demoted", lambda _t, event: seen.append(event))
    summary = replay_paper(
        engine, make_strategy("sma_cross", PARAMS), _bars(np.concatenate([good, walk])),
        account="acc-decay", settings=_settings(notify), limits=LIMITS, cash=D(10000),
        bus=bus,
    )  # fmt: skip
    after = r.get(engine, e.id)
    assert after.stage == "paper"  # live → paper
    assert summary["stopped"].startswith("demoted to paper")
    last = r.history(engine, e.id)[-1]
    assert (last["kind"], last["from"], last["to"], last["by"]) == (
        "demote",
        "live",
        "paper",
        "monitor",
    )
    assert last["data"]["rule"] in {"returns", "drawdown"}
    health = last["data"]["health"]
    state = Journal.open(engine, "acc-decay").state
    assert state.trading == "halted" and state.trading_reason == "demoted"
    assert not state.open_orders()
    before = run_backtest(make_strategy("sma_cross", PARAMS), _bars(good)).trades
    after_change = health["trades"] - sum(t.closed for t in before)
    assert 0 < after_change <= 15  # demoted within a bounded number of trades of the decay
    assert summary["health"]["trades"] == health["trades"]  # it traded no more
    assert seen and seen[0]["strategy_id"] == e.id and seen[0]["to"] == "paper"
    deadline = time.monotonic() + 5
    while not notify.webhook and time.monotonic() < deadline:
        time.sleep(0.02)
    assert notify.webhook and "demoted live → paper" in notify.webhook[0]["text"]


def test_a_healthy_strategy_is_not_demoted(engine: Engine, notify: FakeNotify) -> None:
    e = _approved(engine, "acc-ok")
    bars = _bars(100 * _waves(np.random.default_rng(3), 2000))
    summary = replay_paper(
        engine, make_strategy("sma_cross", PARAMS), bars,
        account="acc-ok", settings=_settings(notify), limits=LIMITS, cash=D(10000),
    )  # fmt: skip
    assert "stopped" not in summary
    assert summary["health"]["status"] == "ok" and summary["health"]["trades"] >= 25
    assert r.get(engine, e.id).stage == "live"
    w = scan(engine, r.get(engine, e.id))  # the journal read again: the same results
    assert w.monitor.trades == summary["health"]["trades"] and w.monitor.breach is None


def test_the_book_check_demotes_a_decayed_strategy_outside_any_session(engine: Engine) -> None:
    """Paper-traded before it had expectations (unwatched), then held to them by a check."""
    rng = np.random.default_rng(2)
    good = 100 * _waves(rng, 600)
    walk = good[-1] * np.exp(rng.normal(0, 0.004, 1500).cumsum())
    summary = replay_paper(
        engine, make_strategy("sma_cross", PARAMS), _bars(np.concatenate([good, walk])),
        account="acc-late", settings=Settings(_env_file=None), limits=LIMITS, cash=D(10000),
    )  # fmt: skip
    assert summary["health"]["status"] == "unwatched" and "stopped" not in summary
    (e,) = r.entries(engine)
    assert check_book(engine)[0]["status"] == "unwatched"
    approved = _approved(engine, "acc-other").expectations
    r.set_expectations(engine, e.id, approved, actor="ann", reason="its OOS backtest")
    bus = EventBus()
    seen: list[dict[str, Any]] = []
    bus.subscribe("book.demoted", lambda _t, event: seen.append(event))
    (row, other) = check_book(engine, alerts=Alerts(bus))
    assert row["id"] == e.id and row["status"] == "breach" and row["demoted_to"] == "research"
    assert other["status"] == "ok" and "demoted_to" not in other
    assert r.get(engine, e.id).stage == "research" and seen[0]["from"] == "paper"
    assert r.history(engine, e.id)[-1]["by"] == "monitor"
