"""Per-instrument rules: specs loaded from the exchange (CCXT markets from a local fake of
Binance's real exchangeInfo filters, both precision modes; CoinSpot's published precision;
the paper venue's configured rules), target-weight and strategy orders sized to them, and the
Guard's denials (`below_instrument_minimum`, `off_step`, `off_tick`, `unknown_instrument`)
before any venue sees the order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any, ClassVar

import ccxt
import pytest
from sqlalchemy import Engine

from omc.core.config import Settings
from omc.core.http import HttpClient, RetryPolicy
from omc.core.time import utcnow
from omc.floor.data import load_csv
from omc.floor.instruments import (
    CCXT_DECIMAL_PLACES,
    CCXT_SIGNIFICANT_DIGITS,
    CCXT_TICK_SIZE,
    InstrumentSpec,
    spec_from_ccxt_market,
)
from omc.floor.strategy import Strategy
from omc.floor.trading.guard import Denial, DenyCode, Guard, GuardLimits
from omc.floor.trading.journal import Journal
from omc.floor.trading.oms import ManagedOrder, OrderManager
from omc.floor.trading.paper_session import replay_paper
from omc.floor.trading.session import TradingSession
from omc.floor.venues.base import (
    OrderRequest,
    Quote,
    RejectReason,
    Side,
    VenueError,
    VenueOrderStatus,
    VenueOrderType,
)
from omc.floor.venues.ccxt_venue import CcxtCredentials, CcxtVenue
from omc.floor.venues.coinspot import CoinSpotVenue
from omc.floor.venues.paper import PaperSettings, PaperVenue, ReplayQuotes
from omc.ledgers.exchange.coinspot import CoinSpotClient
from tests.fakes.ccxt_exchange_server import API_KEY, API_SECRET, FakeBinanceTrading
from tests.fakes.coinspot_private_server import FakeCoinSpotPrivate
from tests.test_coinspot_private import make_client

CSV = Path(__file__).parents[1] / "omc" / "demo" / "data" / "candles" / "BTC_USDT-5m.csv"
USDT = "BTC/USDT"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
OPEN = GuardLimits(min_order_notional=D(0), max_quote_age_s=3600)  # only the instrument binds


@pytest.fixture
def binance() -> Iterator[FakeBinanceTrading]:
    server = FakeBinanceTrading().start()
    try:
        yield server
    finally:
        server.stop()


def ccxt_venue(fake: FakeBinanceTrading) -> CcxtVenue:
    settings = Settings(ccxt_base_url=fake.url, http_timeout_s=5)
    creds = CcxtCredentials(api_key=API_KEY, api_secret=API_SECRET)
    return CcxtVenue.from_settings("binance", settings, creds, symbols=(USDT,))


def oms_for(venue: Any, limits: GuardLimits = OPEN) -> OrderManager:
    journal = Journal(None, "acct")  # type: ignore[arg-type]  # never flushed: no database
    journal.append("start", {"initial_cash": D(10000)}, ts=T0)
    return OrderManager(journal, venue, Guard(limits), external=False)


# ------------------------------------------------------------------ loading the rules
def test_ccxt_spec_from_binance_exchange_info_filters(binance: FakeBinanceTrading) -> None:
    venue = ccxt_venue(binance)
    spec = venue.instrument(USDT)
    # LOT_SIZE stepSize/minQty, PRICE_FILTER tickSize, NOTIONAL minNotional
    assert (spec.quantity_step, spec.price_tick) == (D("0.00001"), D("0.01"))
    assert (spec.min_quantity, spec.min_notional) == (D("0.00001"), D(5))
    assert spec.source == "ccxt:binance markets"
    with pytest.raises(VenueError, match="ETH/EUR"):
        venue.instrument("ETH/EUR")


def test_ccxt_precision_modes() -> None:
    assert (CCXT_DECIMAL_PLACES, CCXT_SIGNIFICANT_DIGITS, CCXT_TICK_SIZE) == (
        ccxt.DECIMAL_PLACES,
        ccxt.SIGNIFICANT_DIGITS,
        ccxt.TICK_SIZE,
    )
    market = {
        "symbol": "ETH/EUR",
        "precision": {"amount": 8, "price": 2},
        "limits": {"amount": {"min": 0.002}, "cost": {"min": None}},
    }
    spec = spec_from_ccxt_market(market, ccxt.DECIMAL_PLACES)
    assert spec == InstrumentSpec("ETH/EUR", D("1E-8"), D("0.01"), D("0.002"), D(0))
    tick = {**market, "precision": {"amount": 0.0001, "price": 0.5}}
    spec = spec_from_ccxt_market(tick, ccxt.TICK_SIZE)
    assert (spec.quantity_step, spec.price_tick) == (D("0.0001"), D("0.5"))
    with pytest.raises(ValueError, match="no fixed step"):
        spec_from_ccxt_market(market, ccxt.SIGNIFICANT_DIGITS)


def test_spec_rounding_is_exact_and_never_worse() -> None:
    spec = InstrumentSpec(USDT, D("0.00001"), D("0.01"), D("0.00001"), D(5))
    assert spec.floor_quantity(D("0.000129999")) == D("0.00012")
    assert spec.floor_quantity(D("-0.000129999")) == D("-0.00012")  # toward zero
    assert spec.round_price(D("30000.126"), buy=True) == D("30000.12")
    assert spec.round_price(D("30000.121"), buy=False) == D("30000.13")
    assert spec.round_price(D("30000.12"), buy=False) == D("30000.12")
    assert spec.violation(D("0.00017"), limit_price=D("30000.12"), price=D(30000)) is None
    assert spec.violation(D("0.000125")).code == "off_step"  # type: ignore[union-attr]
    assert spec.violation(D("0.0001"), price=D(30000)).code == "below_instrument_minimum"  # type: ignore[union-attr]


# ------------------------------------------------------------------ the Guard
def test_guard_denies_with_instrument_reason_codes() -> None:
    spec = InstrumentSpec(USDT, D("0.00001"), D("0.01"), D("0.00002"), D(5))
    journal = Journal(None, "g")  # type: ignore[arg-type]
    journal.append("start", {"initial_cash": D(10000)}, ts=T0)
    guard = Guard(OPEN)

    def check(qty: str, limit: str | None = None) -> DenyCode | None:
        denial = guard.check(
            journal.state,
            strategy="s",
            symbol=USDT,
            side=Side.BUY,
            quantity=D(qty),
            price=D(limit or 30000),
            quote_ts=T0,
            now=T0,
            kill_active=False,
            limit_price=D(limit) if limit else None,
            instrument=spec,
        )
        return denial.code if denial else None

    assert check("0.00001") is DenyCode.BELOW_INSTRUMENT_MINIMUM  # below minQty
    assert check("0.00015") is DenyCode.BELOW_INSTRUMENT_MINIMUM  # 4.50 < 5 notional
    assert check("0.000205") is DenyCode.OFF_STEP
    assert check("0.001", "30000.005") is DenyCode.OFF_TICK
    assert check("0.001", "30000.01") is None
    # sizing: the headroom is a whole number of the instrument's steps
    room = guard.headroom(journal.state, "s", USDT, D("30010"), spec)
    assert room == D("0.16661") and room == spec.floor_quantity(room)


# ------------------------------------------------------------------ CCXT end to end
def test_ccxt_order_below_min_notional_or_off_grid_never_reaches_binance(
    binance: FakeBinanceTrading,
) -> None:
    oms = oms_for(ccxt_venue(binance))
    now = utcnow()
    small = oms.place("s", USDT, Side.BUY, D("0.0001"), now=now)  # 3.00 USDT < 5
    assert isinstance(small, Denial) and small.code is DenyCode.BELOW_INSTRUMENT_MINIMUM
    off = oms.place("s", USDT, Side.BUY, D("0.000123"), now=now)  # ccxt would send 0.00012
    assert isinstance(off, Denial) and off.code is DenyCode.OFF_STEP
    tick = oms.place(
        "s", USDT, Side.BUY, D("0.01"), now=now, type=VenueOrderType.LIMIT,
        limit_price=D("29000.005"),
    )  # fmt: skip
    assert isinstance(tick, Denial) and tick.code is DenyCode.OFF_TICK
    assert binance.order_posts == []  # nothing was sent
    assert oms.state.denials == {
        "below_instrument_minimum": 1,
        "off_step": 1,
        "off_tick": 1,
    }
    ok = oms.place("s", USDT, Side.BUY, D("0.00017"), now=now)  # 5.10 USDT
    assert isinstance(ok, ManagedOrder) and ok.filled == D("0.00017")
    assert [p["quantity"] for p in binance.order_posts] == ["0.00017"]


def test_ccxt_venue_refuses_off_grid_orders_itself(binance: FakeBinanceTrading) -> None:
    venue = ccxt_venue(binance)
    ack = venue.submit(OrderRequest("omc-i-1", USDT, Side.BUY, D("0.000123")))
    assert ack.status is VenueOrderStatus.REJECTED and ack.reason == RejectReason.INVALID_ORDER
    limit = OrderRequest("omc-i-2", USDT, Side.BUY, D("0.01"), VenueOrderType.LIMIT, D("29000.126"))
    ack = venue.submit(limit)  # ccxt alone would round it *up* to 29000.13
    assert ack.status is VenueOrderStatus.REJECTED and ack.reason == RejectReason.INVALID_ORDER
    assert binance.order_posts == []


class Mixed(Strategy):
    """Bar 1: a 37 % target; bar 2: an explicit off-grid limit buy; bar 3: a tiny target."""

    name = "mixed"
    defaults: ClassVar[dict[str, Any]] = {}
    bar = 0

    def on_bar(self, ctx: Any) -> dict[str, float] | None:
        self.bar += 1
        if self.bar == 1:
            return {USDT: 0.37}
        if self.bar == 2:
            ctx.order(USDT, 0.0123456789, limit=29000.126)
            return None
        return {USDT: 0.3701}  # a few cents more: below the instrument's minimum


def test_session_sizes_orders_to_binance_rules(engine: Engine, binance: FakeBinanceTrading) -> None:
    venue = ccxt_venue(binance)
    session = TradingSession(
        engine, "inst", Mixed(), (USDT,), venue, Guard(OPEN), initial_cash=D(10000)
    )
    session.start()
    try:
        for k in range(3):
            now = utcnow()
            session.step(now + timedelta(seconds=k), {USDT: (30000, 30000, 30000, 30000, 0)})
    finally:
        session.close()
    orders = sorted(session.state.orders.values(), key=lambda o: o.created)
    assert len(orders) == 2  # the third target was below the minimum: no order
    target, explicit = orders
    spec = venue.instrument(USDT)
    assert target.quantity == spec.floor_quantity(target.quantity) and target.quantity > 0
    assert target.filled == target.quantity  # what was journaled is what Binance filled
    assert (explicit.quantity, explicit.limit_price) == (D("0.01234"), D("29000.12"))
    posts = binance.order_posts
    assert [(p["quantity"], p.get("price")) for p in posts] == [
        (str(target.quantity), None),
        ("0.01234", "29000.12"),
    ]
    decision = [e for e in Journal(engine, "inst").stored() if e.kind == "order"][1]
    assert decision.data["reason"]["requested"]["limit"] == "29000.126"


# ------------------------------------------------------------------ CoinSpot
def test_coinspot_precision_enforced_by_the_guard(tmp_path: Path) -> None:
    server = FakeCoinSpotPrivate().start()
    client = make_client(server, tmp_path)
    pub = CoinSpotClient(HttpClient(server.url, source="coinspot", retry=RetryPolicy(0)))
    try:
        venue = CoinSpotVenue(client, pub, settle_s=0, sleep=lambda s: None)
        spec = venue.instrument("btc/aud")
        assert spec == InstrumentSpec("BTC/AUD", D("1E-8"), D("1E-8"), D(0), D(0), spec.source)
        assert "no documented minimum" in spec.source
        oms = oms_for(venue)
        now = utcnow()
        res = oms.place("s", "BTC/AUD", Side.BUY, D("0.000000015"), now=now)
        assert isinstance(res, Denial) and res.code is DenyCode.OFF_STEP
        res = oms.place(
            "s", "BTC/AUD", Side.BUY, D("0.001"), now=now, type=VenueOrderType.LIMIT,
            limit_price=D("1000.000000001"),
        )  # fmt: skip
        assert isinstance(res, Denial) and res.code is DenyCode.OFF_TICK
        assert not server.accepted("/my/buy") and not server.accepted("/my/buy/now")
    finally:
        pub.close()
        client.close()
        server.stop()


# ------------------------------------------------------------------ paper
def test_paper_venue_enforces_configured_rules() -> None:
    quotes = ReplayQuotes()
    rules = PaperSettings(
        quantity_step=D("0.001"), price_tick=D("0.5"), min_quantity=D("0.002"), min_notional=D(10)
    ).instruments()
    venue = PaperVenue(quotes, clock=lambda: T0, instruments=rules)
    quotes.set(Quote(USDT, D(100), D(100), D(100), T0))
    assert venue.instrument(USDT) == InstrumentSpec(
        USDT, D("0.001"), D("0.5"), D("0.002"), D(10), "paper settings"
    )

    def submit(cid: str, qty: str, limit: str | None = None) -> str | None:
        kind = VenueOrderType.LIMIT if limit else VenueOrderType.MARKET
        ack = venue.submit(
            OrderRequest(cid, USDT, Side.BUY, D(qty), kind, D(limit) if limit else None)
        )
        return ack.reason

    assert submit("a", "0.0015") == RejectReason.BELOW_MINIMUM
    assert submit("b", "0.0025") == RejectReason.INVALID_ORDER  # off step
    assert submit("c", "0.05") == RejectReason.BELOW_MINIMUM  # 5 < 10
    assert submit("d", "0.2", "99.3") == RejectReason.INVALID_ORDER  # off tick
    assert submit("e", "0.2", "99.5") is None and submit("f", "0.2") is None
    # default: CoinSpot's precision, no minimums
    default = PaperVenue(quotes, clock=lambda: T0).instrument(USDT)
    assert (default.quantity_step, default.price_tick, default.min_notional) == (
        D("1E-8"),
        D("1E-8"),
        D(0),
    )


def test_unknown_instrument_and_flatten_rounding() -> None:
    quotes = ReplayQuotes()
    known = InstrumentSpec(USDT, D("0.00001"))

    def rules(symbol: str) -> InstrumentSpec:
        if symbol != USDT:
            raise VenueError(f"{symbol} is not traded here")
        return known

    venue = PaperVenue(quotes, clock=lambda: T0, instruments=rules)
    quotes.set(Quote(USDT, D(100), D(100), D(100), T0))
    quotes.set(Quote("ETH/USDT", D(10), D(10), D(10), T0))
    oms = oms_for(venue)
    res = oms.place("s", "ETH/USDT", Side.BUY, D(1), now=T0)
    assert isinstance(res, Denial) and res.code is DenyCode.UNKNOWN_INSTRUMENT
    bought = oms.place("s", USDT, Side.BUY, D("0.12345"), now=T0)
    assert isinstance(bought, ManagedOrder) and bought.filled == D("0.12345")
    # a position off the step (e.g. after a fee in the base coin) flattens down to the step
    oms.state.book.apply_fill("s", USDT, D("0.000004"), D(100), D(0), T0)
    flat = oms.place("s", USDT, Side.SELL, D("0.123454"), now=T0, flatten=True)
    assert isinstance(flat, ManagedOrder) and flat.quantity == D("0.12345")


def test_bundled_candle_replay_keeps_working_on_a_coarse_step(engine: Engine) -> None:
    from omc.floor.strategies import make_strategy

    bars = load_csv(CSV).slice(0, 400)
    summary = replay_paper(
        engine,
        make_strategy("sma_cross", {"fast": 3, "slow": 8}),
        bars,
        account="coarse",
        settings=Settings(),
        limits=GuardLimits(),
        paper=PaperSettings(quantity_step=D("0.001"), quote_currency="USDT"),
    )
    orders = Journal.open(engine, "coarse").state.orders.values()
    assert len(orders) > 4 and not summary["denials"]
    assert all(o.quantity % D("0.001") == 0 and o.filled == o.quantity for o in orders)
