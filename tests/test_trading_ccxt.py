"""`CcxtVenue` against a local fake of Binance's signed spot API (ccxt 4.5 speaking real
Binance paths): signing, every Venue method, refusals with reason codes, a timeout after the
exchange accepted an order (the retry never double-submits), and `omc trade live --venue
ccxt:binance` end to end in a subprocess."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from omc.core.config import Settings
from omc.core.db import make_engine
from omc.floor.trading.guard import Guard, GuardLimits
from omc.floor.trading.journal import Journal
from omc.floor.trading.oms import ManagedOrder, OrderManager, OrderState
from omc.floor.venues.base import (
    OrderRequest,
    RejectReason,
    Side,
    Venue,
    VenueError,
    VenueOrderStatus,
    VenueOrderType,
    VenueUnavailable,
)
from omc.floor.venues.ccxt_venue import CcxtCredentials, CcxtVenue
from tests.fakes.ccxt_exchange_server import API_KEY, API_SECRET, FakeBinanceTrading

REPO = Path(__file__).resolve().parents[1]
D = Decimal
SYM = "BTC/USDT"
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeBinanceTrading]:
    server = FakeBinanceTrading().start()
    try:
        yield server
    finally:
        server.stop()


def make_venue(fake: FakeBinanceTrading, secret: str = API_SECRET) -> CcxtVenue:
    settings = Settings(ccxt_base_url=fake.url, http_timeout_s=5)
    creds = CcxtCredentials(api_key=API_KEY, api_secret=secret)
    return CcxtVenue.from_settings("binance", settings, creds, symbols=(SYM,))


def test_every_method_signed_against_binance_paths(fake: FakeBinanceTrading) -> None:
    venue = make_venue(fake)
    assert isinstance(venue, Venue) and venue.name == "ccxt:binance"
    q = venue.quote(SYM)
    assert (q.bid, q.ask, q.last) == (D(29990), D(30010), D(30000))
    ack = venue.submit(OrderRequest("omc-t-1", SYM, Side.BUY, D("0.01")))
    assert ack.status is VenueOrderStatus.FILLED and ack.filled_quantity == D("0.01")
    assert ack.average_price == D(30010) and ack.fee == D("0.3001")
    limit = OrderRequest("omc-t-2", SYM, Side.BUY, D("0.01"), VenueOrderType.LIMIT, D(29000))
    rest = venue.submit(limit)
    assert rest.status is VenueOrderStatus.SUBMITTED and rest.venue_order_id
    (listed,) = venue.open_orders()
    assert listed.client_order_id == "omc-t-2" and listed.limit_price == D(29000)
    bal = venue.balances()
    assert bal["BTC"].total == D("0.01") and bal["USDT"].total - bal["USDT"].available == D(290)
    cancelled = venue.cancel(rest.venue_order_id or "", symbol=SYM, side=Side.BUY)
    assert cancelled.status is VenueOrderStatus.CANCELLED
    assert cancelled.client_order_id == "omc-t-2"
    assert venue.open_orders() == []
    unknown = venue.cancel("999999", symbol=SYM, side=Side.BUY)
    assert unknown.status is VenueOrderStatus.REJECTED
    assert unknown.reason == RejectReason.UNKNOWN_ORDER
    (fill,) = venue.fills_since(EPOCH)
    assert (fill.client_order_id, fill.quantity, fill.price, fill.fee) == (
        "omc-t-1",
        D("0.01"),
        D(30010),
        D("0.3001"),
    )
    # the same client id again: nothing new is sent, the known order comes back
    again = venue.submit(OrderRequest("omc-t-1", SYM, Side.BUY, D("0.01")))
    assert again.status is VenueOrderStatus.FILLED and again.fee == D("0.3001")
    assert len(fake.order_posts) == 2
    assert [p["newClientOrderId"] for p in fake.order_posts] == ["omc-t-1", "omc-t-2"]
    assert fake.bad_signatures == 0
    used = set(fake.requests)
    for path in (
        "POST /api/v3/order",
        "GET /api/v3/openOrders",
        "GET /api/v3/account",
        "DELETE /api/v3/order",
        "GET /api/v3/myTrades",
        "GET /api/v3/ticker/24hr",
    ):
        assert path in used


def test_bad_secret_is_an_error_not_a_rejection(fake: FakeBinanceTrading) -> None:
    venue = make_venue(fake, secret="wrong")
    with pytest.raises(VenueError):
        venue.balances()
    assert fake.bad_signatures == 1


def test_insufficient_funds_and_invalid_orders_are_refusals(fake: FakeBinanceTrading) -> None:
    venue = make_venue(fake)
    ack = venue.submit(OrderRequest("omc-big", SYM, Side.BUY, D(10)))
    assert ack.status is VenueOrderStatus.REJECTED
    assert ack.reason == RejectReason.INSUFFICIENT_FUNDS and "insufficient" in ack.message
    sell = venue.submit(OrderRequest("omc-sell", SYM, Side.SELL, D(1)))
    assert sell.reason == RejectReason.INSUFFICIENT_FUNDS
    tiny = venue.submit(OrderRequest("omc-tiny", SYM, Side.BUY, D("0.0001")))
    assert tiny.status is VenueOrderStatus.REJECTED and tiny.reason == RejectReason.INVALID_ORDER
    assert fake.orders == {}


def test_timeout_after_acceptance_then_retry_does_not_double_submit(
    fake: FakeBinanceTrading,
) -> None:
    venue = make_venue(fake)
    venue.exchange.timeout = 400
    venue.quote(SYM)  # markets loaded
    fake.delay_next_orders, fake.delay_s = 1, 1.2
    order = OrderRequest("omc-slow", SYM, Side.BUY, D("0.01"))
    with pytest.raises(VenueUnavailable):
        venue.submit(order)
    assert len(fake.orders) == 1  # the exchange did accept it
    ack = venue.submit(order)  # looked up by origClientOrderId, not re-sent
    assert ack.status is VenueOrderStatus.FILLED and ack.fee == D("0.3001")
    assert len(fake.order_posts) == 1 and len(fake.orders) == 1
    # a second process that lost track resends: Binance says "Duplicate order sent."
    other = make_venue(fake)
    dup = other.submit(order)
    assert dup.status is VenueOrderStatus.FILLED and dup.venue_order_id == ack.venue_order_id
    assert len(fake.order_posts) == 2 and len(fake.orders) == 1


def test_order_manager_retries_a_timeout_into_one_order(
    engine: Engine, fake: FakeBinanceTrading
) -> None:
    venue = make_venue(fake)
    venue.exchange.timeout = 400
    venue.quote(SYM)
    fake.delay_next_orders, fake.delay_s = 1, 1.0
    journal = Journal.open(engine, "ccxt-oms", write=True)
    journal.append("start", {"initial_cash": D(10000)}, ts=datetime.now(UTC))
    oms = OrderManager(journal, venue, Guard(GuardLimits()))
    res = oms.place("s", SYM, Side.BUY, D("0.01"), now=datetime.now(UTC))
    journal.flush()
    assert isinstance(res, ManagedOrder) and res.state is OrderState.FILLED
    assert len(fake.orders) == 1 and len(fake.order_posts) == 1
    assert Journal.open(engine, "ccxt-oms").state.book.position(SYM) == D("0.01")


def test_secrets_never_logged(fake: FakeBinanceTrading, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    venue = make_venue(fake)
    venue.exchange.timeout = 300
    fake.delay_next_orders, fake.delay_s = 1, 0.8
    with pytest.raises(VenueUnavailable) as err:
        venue.submit(OrderRequest("omc-log", SYM, Side.BUY, D("0.01")))
    venue.submit(OrderRequest("omc-log", SYM, Side.BUY, D("0.01")))
    text = caplog.text + repr(venue) + str(err.value) + repr(CcxtCredentials(api_secret="zz9"))
    assert API_SECRET not in text and "zz9" not in text


def test_cli_trade_live_ccxt_binance_end_to_end(tmp_path: Path, fake: FakeBinanceTrading) -> None:
    fake.set_book(D(29990), D(30010), D(30000))
    env = {
        **os.environ,
        "OMC_DATA_DIR": str(tmp_path),
        "OMC_LIVE_TRADING": "true",
        "OMC_GUARD_MAX_ORDER_NOTIONAL": "2000",
        "OMC_GUARD_MAX_POSITION_NOTIONAL": "5000",
        "OMC_GUARD_MAX_DAILY_LOSS": "500",
        "OMC_CCXT_BASE_URL": fake.url,
        "OMC_CCXT_API_KEY": API_KEY,
        "OMC_CCXT_API_SECRET": API_SECRET,
    }
    env.pop("OMC_DATABASE_URL", None)
    args = [sys.executable, "-c", "from omc.cli.app import main; main()", "trade", "live",
            "--venue", "ccxt:binance", "--strategy", "sma_cross", "--param", "fast=1",
            "--param", "slow=2",
            "--param", "size=0.1", "--symbol", SYM, "--poll", "0.05",
            "--max-bars", "3"]  # fmt: skip
    refused = subprocess.run(args, env=env, capture_output=True, text=True, timeout=240)
    assert refused.returncode == 2 and "Refusing" in refused.stdout
    proc = subprocess.Popen(
        [*args, "--live"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )

    def ticks() -> None:  # down then up: the 1/2 SMA cross buys on the third bar
        deadline = time.monotonic() + 180  # a loaded machine starts slowly
        while "GET /api/v3/ticker/24hr" not in fake.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        for last in (29900, 30100):
            time.sleep(0.5)
            fake.set_book(D(last - 10), D(last + 10), D(last))

    mover = threading.Thread(target=ticks, daemon=True)
    mover.start()
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    mover.join(5)
    assert proc.returncode == 0, out + err
    (post,) = fake.order_posts
    assert post["side"] == "BUY" and post["type"] == "MARKET"
    assert post["newClientOrderId"].startswith("omc")
    assert fake.bad_signatures == 0
    db = make_engine(f"sqlite:///{tmp_path / 'omc.db'}")
    state = Journal.open(db, "ccxt:binance-sma_cross").state
    (order,) = state.orders.values()
    assert order.state is OrderState.FILLED and order.client_order_id == post["newClientOrderId"]
    assert state.book.position(SYM) == D(post["quantity"])
    db.dispose()
