"""The portfolio Guard: hypothesis-generated order sequences across strategies, accounts and
venues never breach a book-wide limit; allocation (fixed, equal, inverse volatility within
caps); correlated coins count together; the book's kill switch, drawdown and daily loss; and
in paper sessions a portfolio denial is journaled naming its layer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from itertools import count
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from omc.core.config import Settings
from omc.floor.book.allocation import allocate, correlation_groups
from omc.floor.book.portfolio import LayeredGuard, PortfolioGuard, PortfolioLimits, coin
from omc.floor.data import load_csv
from omc.floor.strategies import make_strategy
from omc.floor.trading.guard import GuardLimits, KillSwitchStore
from omc.floor.trading.journal import Event, Journal, TradingState
from omc.floor.trading.paper_session import replay_paper
from omc.floor.venues.base import Side
from tests.test_cli_errors import CSV

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)
PRICES = {"BTC/AUD": D(100), "BTC/USDT": D(65), "ETH/AUD": D(40), "SOL/AUD": D(10)}
ACCOUNTS = {"coinspot": ("BTC/AUD", "ETH/AUD", "SOL/AUD"), "binance": ("BTC/USDT",)}
STRATS = [("coinspot", "trend"), ("coinspot", "revert"), ("binance", "trend")]
LIMITS = PortfolioLimits(
    max_coin_gross=D(3000),
    max_coin_net=D(2500),
    max_gross_pct=D("0.6"),
    max_concentration=D("0.3"),
)
ACCOUNT_LIMITS = GuardLimits(
    max_order_notional=D(10**6),
    max_position_notional=D(10**6),
    max_position_pct=D(100),
    max_gross_exposure_pct=D(100),
    max_open_positions=10,
    max_orders_per_minute=10**6,
    cash_fee_bps=D(0),
    max_daily_loss=D(10**6),
    max_daily_loss_pct=D(1),
    drawdown_warn_pct=D("0.99"),
    drawdown_halt_pct=D("0.99"),
)


class Book:
    """Two accounts' trading states, filled by hand (market orders fill at the mark)."""

    def __init__(self, portfolio: PortfolioGuard) -> None:
        self.portfolio = portfolio
        self.seq = count()
        self.states = {a: TradingState() for a in ACCOUNTS}
        self.guards = {a: LayeredGuard(ACCOUNT_LIMITS, portfolio, a) for a in ACCOUNTS}
        for a, state in self.states.items():
            self._apply(a, "start", {"initial_cash": "10000"})
            marks = {s: str(PRICES[s]) for s in ACCOUNTS[a]}
            self._apply(a, "bar", {"index": 0, "marks": marks})
            portfolio.attach(a, state)

    def _apply(self, account: str, kind: str, data: dict[str, object], **kw: str) -> None:
        n = next(self.seq)
        self.states[account].apply(Event(n, account, NOW, kind, data, **kw))  # type: ignore[arg-type]

    def order(self, account: str, strategy: str, symbol: str, side: Side, qty: D) -> object:
        state = self.states[account]
        denial = self.guards[account].check(
            state, strategy=strategy, symbol=symbol, side=side, quantity=qty,
            price=PRICES[symbol], quote_ts=NOW, now=NOW, kill_active=False,
        )  # fmt: skip
        if denial is not None:
            return denial
        cid = f"{account}-{next(self.seq)}"
        ids = {"strategy": strategy, "symbol": symbol, "client_order_id": cid}
        order = {"side": str(side), "quantity": str(qty), "type": "market", "limit_price": None}
        self._apply(account, "order", order, **ids)
        fill = {"filled": str(qty), "notional": str(qty * PRICES[symbol]), "fee": "0"}
        self._apply(account, "order_update", fill | {"status": "filled"}, **ids)
        return None


def _assert_within(p: PortfolioGuard) -> None:
    gross, net, per = p.exposure()
    lim, equity = p.limits, p.equity()
    assert lim.max_coin_gross is not None and lim.max_coin_net is not None
    assert lim.max_gross_pct is not None and lim.max_concentration is not None
    for group, value in gross.items():
        assert value <= lim.max_coin_gross, (group, value)
        assert value <= lim.max_concentration * equity, (group, value, equity)
    for c, value in net.items():
        assert abs(value) <= lim.max_coin_net, (c, value)
    assert sum(gross.values(), D(0)) <= lim.max_gross_pct * equity
    for key, cap in p.capital.items():
        assert per.get(key, D(0)) <= cap, (key, per.get(key), cap)


ORDERS = st.lists(
    st.tuples(
        st.integers(0, len(STRATS) - 1),
        st.integers(0, 2),
        st.sampled_from([Side.BUY, Side.BUY, Side.SELL]),
        st.decimals(min_value=D("0.1"), max_value=D(40), places=2),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orders=ORDERS, correlated=st.booleans(), method=st.sampled_from(["equal", "inverse-vol"]))
def test_generated_orders_across_strategies_never_breach(
    orders: list[tuple[int, int, Side, D]], correlated: bool, method: str
) -> None:
    keys = [f"{a}/{s}" for a, s in STRATS]
    vols = {k: v for k, v in zip(keys, (0.02, 0.05, 0.01), strict=True)}
    caps = allocate(method, keys, D(20000), vols=vols, max_share=D("0.4"))  # type: ignore[arg-type]
    p = PortfolioGuard(LIMITS, capital=caps)
    if correlated:  # BTC and ETH move together: they share one coin limit
        rng = np.random.default_rng(0)
        btc = rng.normal(0, 0.01, 200)
        p.set_correlations({"BTC/AUD": btc, "ETH/AUD": btc + rng.normal(0, 0.001, 200),
                            "SOL/AUD": rng.normal(0, 0.01, 200)})  # fmt: skip
    book = Book(p)
    denied = 0
    for i, which, side, qty in orders:
        account, strategy = STRATS[i]
        symbols = ACCOUNTS[account]
        denial = book.order(account, strategy, symbols[which % len(symbols)], side, qty)
        if denial is not None:
            assert getattr(denial, "layer", None) in {"account", "portfolio"}
            denied += 1
        _assert_within(p)


def test_correlated_coins_count_together_and_denials_name_the_layer() -> None:
    rng = np.random.default_rng(1)
    btc = rng.normal(0, 0.01, 300)
    groups = correlation_groups(
        {"BTC": btc, "ETH": btc * 1.2 + rng.normal(0, 0.002, 300), "SOL": rng.normal(0, 0.01, 300)},
        0.8,
    )
    assert groups == {"BTC": "BTC+ETH", "ETH": "BTC+ETH", "SOL": "SOL"}
    p = PortfolioGuard(PortfolioLimits(max_coin_gross=D(3000)))
    book = Book(p)
    assert book.order("coinspot", "trend", "BTC/AUD", Side.BUY, D(20)) is None  # 2,000 BTC
    assert book.order("binance", "trend", "BTC/USDT", Side.BUY, D(16)) is not None  # +1,040
    assert book.order("coinspot", "trend", "ETH/AUD", Side.BUY, D(30)) is None  # alone: 1,200
    p.groups = {"BTC": "BTC+ETH", "ETH": "BTC+ETH"}
    denial = book.order("coinspot", "revert", "ETH/AUD", Side.BUY, D(1))
    assert denial is not None and denial.layer == "portfolio"  # type: ignore[attr-defined]
    assert denial.code == "portfolio_coin_gross"  # type: ignore[attr-defined]
    assert "BTC+ETH across the book 3240.00 above 3000" in denial.message  # type: ignore[attr-defined]
    assert book.order("coinspot", "trend", "BTC/AUD", Side.SELL, D(5)) is None  # reducing: ok
    account_denial = book.order("coinspot", "trend", "SOL/AUD", Side.BUY, D(10**5))
    assert account_denial is not None and account_denial.layer == "account"  # type: ignore[attr-defined]
    assert coin("eth/aud") == "ETH"


def test_allocation_fixed_equal_and_inverse_volatility_within_caps() -> None:
    keys = ["a", "b", "c"]
    assert allocate("equal", keys, D(900)) == {"a": D(300), "b": D(300), "c": D(300)}
    fixed = allocate("fixed", keys, D(1000), fixed={"a": D(700), "b": D(100)}, max_share=D("0.5"))
    assert fixed == {"a": D(500), "b": D(100), "c": D(0)}
    inv = allocate("inverse-vol", keys, D(1000), vols={"a": 0.01, "b": 0.02, "c": 0.04})
    assert inv["a"] == pytest.approx(D(1000) * 4 / 7) and inv["c"] == pytest.approx(D(1000) / 7)
    capped = allocate(
        "inverse-vol", keys, D(1000), vols={"a": 0.01, "b": 0.02, "c": 0.04}, max_share=D("0.4")
    )
    assert capped["a"] == D(400) and sum(capped.values()) == pytest.approx(D(1000))
    assert capped["b"] == pytest.approx(D(600) * 2 / 3) and max(capped.values()) <= D(400)
    with pytest.raises(ValueError, match="volatility"):
        allocate("inverse-vol", keys, D(1000), vols={"a": 0.01})


def test_book_kill_switch_drawdown_and_daily_loss(engine: Engine) -> None:
    store = KillSwitchStore(engine, scope="book")
    p = PortfolioGuard(
        PortfolioLimits(max_drawdown_pct=D("0.1"), max_daily_loss=D(1500)),
        kill=lambda: store.get().active,
        kill_every_s=0,
    )
    book = Book(p)
    assert book.order("coinspot", "trend", "BTC/AUD", Side.BUY, D(10)) is None
    store.set(True, reason="test")
    denial = book.order("binance", "trend", "BTC/USDT", Side.BUY, D(1))
    assert denial is not None and denial.code == "portfolio_kill_switch"  # type: ignore[attr-defined]
    assert book.order("coinspot", "trend", "BTC/AUD", Side.SELL, D(1)) is None  # reducing
    store.set(False)
    # BTC falls 90 %: the coinspot account loses 810 of the book's 20,000 …
    book._apply("coinspot", "bar", {"index": 1, "marks": {"BTC/AUD": "10"}})
    assert book.order("coinspot", "trend", "SOL/AUD", Side.BUY, D(1)) is None
    book._apply("binance", "bar", {"index": 1, "marks": {"BTC/USDT": "65"}})
    assert book.order("binance", "trend", "BTC/USDT", Side.BUY, D(100)) is None
    book._apply("binance", "bar", {"index": 2, "marks": {"BTC/USDT": "30"}})  # … then 3,500
    denial = book.order("coinspot", "trend", "SOL/AUD", Side.BUY, D(1))
    assert denial is not None and denial.code == "portfolio_drawdown"  # type: ignore[attr-defined]
    p.limits = PortfolioLimits(max_daily_loss=D(1500))
    denial = book.order("coinspot", "trend", "SOL/AUD", Side.BUY, D(1))
    assert denial is not None and denial.code == "portfolio_daily_loss"  # type: ignore[attr-defined]
    p.observe(NOW + timedelta(days=1))  # a new day: today's loss starts again
    assert book.order("coinspot", "trend", "SOL/AUD", Side.BUY, D(1)) is None


def test_a_paper_session_passes_the_portfolio_guard(engine: Engine, tmp_path: Path) -> None:
    """Another venue's account already holds 5,000 of BTC: a BTC/USDT paper session may
    add only what the book's 6,000 BTC limit leaves (sized to it, or denied by the layer)."""
    lines = CSV.read_text().splitlines(keepends=True)
    path = tmp_path / "BTC_USDT-5m.csv"
    path.write_text(lines[0] + "".join(lines[1:400]))
    p = PortfolioGuard(PortfolioLimits(max_coin_gross=D(6000)))
    other = Book(p)
    assert other.order("binance", "trend", "BTC/USDT", Side.BUY, D(5000) / D(65)) is None
    p.states.pop("coinspot")
    summary = replay_paper(
        engine, make_strategy("sma_cross", {"fast": 12, "slow": 48, "size": 0.4}),
        load_csv(path), account="book-b", settings=Settings(_env_file=None),
        limits=GuardLimits(), cash=D(10000), guard=LayeredGuard(GuardLimits(), p, "book-b"),
    )  # fmt: skip
    assert summary["trades"] > 0
    state = Journal.open(engine, "book-b").state
    biggest = max(
        (e.data.get("quantity") for e in Journal(engine, "book-b").stored() if e.kind == "order"),
        key=D,
    )
    prices = [float(x.split(",")[4]) for x in lines[1:400]]
    assert D(biggest) * D(str(max(prices))) <= D(1000) * D("1.01")  # at most the book's room
    denials = [e for e in Journal(engine, "book-b").stored() if e.kind == "denial"]
    assert all(e.data["layer"] == "portfolio" for e in denials), denials
    assert state.book.traded_notional > 0
