"""CoinSpot private API: signing, nonces, every endpoint's parsing, and the venue's behaviour
under faults (timeouts after acceptance, duplicates, partial fills, `status: error`) against
a local server that verifies the HMAC signature and the nonce like CoinSpot does."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from omc.core.http import HttpClient, HttpError, RetryPolicy
from omc.core.time import utcnow
from omc.floor.venues.base import (
    OrderRequest,
    RejectReason,
    Side,
    Venue,
    VenueOrderStatus,
    VenueOrderType,
    VenueUnavailable,
)
from omc.floor.venues.coinspot import CoinSpotVenue
from omc.floor.venues.coinspot_client import CoinSpotPrivateClient
from omc.floor.venues.coinspot_models import (
    CoinSpotAPIError,
    CoinSpotAuthError,
    CoinSpotNonceError,
    CoinSpotOutcomeUnknown,
)
from omc.floor.venues.coinspot_signing import CoinSpotCredentials, NonceSource, encode_body
from omc.ledgers.exchange.coinspot import CoinSpotClient
from tests.fakes.coinspot_private_server import FakeCoinSpotPrivate, Fault

REPO = Path(__file__).resolve().parents[1]
BALANCES_CAPTURE = REPO / "tests" / "data" / "api" / "coinspot_ro_my_balances_readonly_key.json"
D = Decimal


@pytest.fixture
def server() -> Iterator[FakeCoinSpotPrivate]:
    fake = FakeCoinSpotPrivate().start()
    try:
        yield fake
    finally:
        fake.stop()


def make_client(
    server: FakeCoinSpotPrivate, tmp_path: Path, secret: str | None = None, **kwargs: object
) -> CoinSpotPrivateClient:
    options: dict[str, object] = {
        "base_url": server.url,
        "nonces": NonceSource.for_key(server.key, tmp_path),
        "timeout_s": 0.5,
        "retry": RetryPolicy(max_retries=2, backoff_base_s=0, backoff_max_s=0),
        "rate_per_s": None,
        "sleep": lambda s: None,
    }
    options.update(kwargs)
    return CoinSpotPrivateClient(server.key, secret or server.secret, **options)  # type: ignore[arg-type]


@pytest.fixture
def client(server: FakeCoinSpotPrivate, tmp_path: Path) -> Iterator[CoinSpotPrivateClient]:
    c = make_client(server, tmp_path)
    yield c
    c.close()


@pytest.fixture
def venue(server: FakeCoinSpotPrivate, client: CoinSpotPrivateClient) -> Iterator[CoinSpotVenue]:
    pub = CoinSpotClient(HttpClient(server.url, source="coinspot", retry=RetryPolicy(0)))
    v = CoinSpotVenue(client, pub, settle_s=0, sleep=lambda s: None)
    yield v
    pub.close()


def limit(cid: str, side: Side, qty: str, price: str, symbol: str = "BTC/AUD") -> OrderRequest:
    return OrderRequest(cid, symbol, side, D(qty), VenueOrderType.LIMIT, D(price))


def market(cid: str, side: Side, qty: str, symbol: str = "BTC/AUD") -> OrderRequest:
    return OrderRequest(cid, symbol, side, D(qty), VenueOrderType.MARKET)


# ------------------------------------------------------------------ signing and auth


def test_sign_is_hmac_sha512_of_the_exact_bytes_sent(
    server: FakeCoinSpotPrivate, client: CoinSpotPrivateClient
) -> None:
    client.buy("btc", D("0.12345678"), D("40000.5"))
    request = server.requests[-1]
    expected = hmac.new(server.secret.encode(), request.raw, hashlib.sha512).hexdigest()
    assert request.headers["sign"] == expected
    assert request.headers["key"] == server.key
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.raw)
    assert body["cointype"] == "BTC" and isinstance(body["nonce"], int)
    assert b'"amount":0.12345678' in request.raw and b'"rate":40000.5' in request.raw
    assert request.outcome == "executed"


def test_encode_body_is_compact_exact_and_drops_none() -> None:
    body = encode_body({"a": D("1E-8"), "b": None, "c": "x", "nonce": 5})
    assert body == b'{"a":0.00000001,"c":"x","nonce":5}'


def test_wrong_secret_and_missing_key_are_refused_without_leaking(
    server: FakeCoinSpotPrivate, tmp_path: Path
) -> None:
    bad = make_client(server, tmp_path, secret="not-the-secret-XYZ")
    with pytest.raises(CoinSpotAuthError) as info:
        bad.status()
    assert info.value.api_message == "invalid sign"
    for text in (str(info.value), repr(info.value), repr(bad), str(info.value.args)):
        assert "not-the-secret-XYZ" not in text and server.key not in text
    assert server.requests[-1].outcome == "refused: invalid sign"
    # no key at all
    raw = httpx.post(f"{server.url}/api/v2/status", content=b'{"nonce":1}')
    assert raw.status_code == 401 and raw.json() == {"status": "error", "message": "no key"}


def test_credentials_come_from_env_and_stay_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMC_COINSPOT_API_KEY", "env-key-123")
    monkeypatch.setenv("OMC_COINSPOT_API_SECRET", "env-secret-456")
    creds = CoinSpotCredentials()
    key, secret = creds.require()
    assert key.get_secret_value() == "env-key-123" and secret.get_secret_value() == "env-secret-456"
    assert "env-secret-456" not in repr(creds) and "env-key-123" not in repr(creds)
    monkeypatch.delenv("OMC_COINSPOT_API_KEY")
    with pytest.raises(CoinSpotAuthError, match="OMC_COINSPOT_API_KEY"):
        CoinSpotCredentials(_env_file=None).require()  # type: ignore[call-arg]


# ------------------------------------------------------------------ nonces


def test_nonce_strictly_increasing_across_two_clients_of_one_key(
    server: FakeCoinSpotPrivate, tmp_path: Path
) -> None:
    a, b = make_client(server, tmp_path), make_client(server, tmp_path)
    for _ in range(15):
        a.status()
        b.status()
    nonces = [json.loads(r.raw)["nonce"] for r in server.requests]
    assert all(r.outcome == "executed" for r in server.requests)
    assert nonces == sorted(nonces) and len(set(nonces)) == len(nonces) == 30


def test_nonce_source_increases_with_a_frozen_clock(tmp_path: Path) -> None:
    source = NonceSource("frozen-clock-key", tmp_path / "n", clock=lambda: 1_700_000_000.0)
    values = [source.next() for _ in range(50)]
    assert values == list(range(values[0], values[0] + 50))
    # a fresh source (a new process) continues from the file, never below
    NonceSource._last.pop("frozen-clock-key")
    assert NonceSource("frozen-clock-key", tmp_path / "n", clock=lambda: 0.0).next() > values[-1]


def test_nonces_unique_across_processes_started_together(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path\n"
        "from omc.floor.venues.coinspot_signing import NonceSource\n"
        "s = NonceSource('proc-key', Path(sys.argv[1]))\n"
        "print(' '.join(str(s.next()) for _ in range(300)))\n"
    )
    path = tmp_path / "nonce-proc"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, cwd=REPO, text=True
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=30)[0] for p in procs]
    lists = [[int(x) for x in out.split()] for out in outputs]
    assert all(len(values) == 300 and values == sorted(set(values)) for values in lists)
    merged = [v for values in lists for v in values]
    assert len(set(merged)) == 900


def test_replayed_bytes_are_refused_as_stale_nonce(server: FakeCoinSpotPrivate) -> None:
    body = b'{"cointype":"BTC","amount":0.1,"rate":40000,"nonce":42}'
    headers = {
        "key": server.key,
        "sign": hmac.new(server.secret.encode(), body, hashlib.sha512).hexdigest(),
        "Content-Type": "application/json",
    }
    first = httpx.post(f"{server.url}/api/v2/my/buy", content=body, headers=headers)
    second = httpx.post(f"{server.url}/api/v2/my/buy", content=body, headers=headers)
    assert first.json()["status"] == "ok"
    assert second.json() == {"status": "error", "message": "invalid nonce"}
    assert len(server.orders()) == 1


def test_a_refused_nonce_is_a_clear_error(
    server: FakeCoinSpotPrivate, client: CoinSpotPrivateClient
) -> None:
    server.last_nonce[server.key] = 10**17  # someone else used this key with huge nonces
    with pytest.raises(CoinSpotNonceError, match="invalid nonce"):
        client.buy("btc", D("0.1"), D("40000"))
    assert server.orders() == []


# ------------------------------------------------------------------ parsing


def test_every_endpoint_parses(server: FakeCoinSpotPrivate, client: CoinSpotPrivateClient) -> None:
    assert client.status() == "ok"
    balances = client.balances()
    assert balances["AUD"].balance == D("100000") and balances["BTC"].rate == D("50000")
    assert client.quote_buy_now("btc", D("0.1")).rate == D("50100")
    assert client.quote_sell_now("btc", D("0.1")).rate == D("49900")
    bought = client.buy_now("btc", D("0.1"))
    assert (bought.coin, bought.amount, bought.total) == ("BTC", D("0.1"), D("5060.1"))
    sold = client.sell_now("btc", D("0.05"))
    assert sold.rate == D("49900") and sold.price == D("49900")
    placed = client.buy("btc", D("0.5"), D("40000"))
    assert placed.amount == D("0.5") and placed.rate == D("40000") and len(placed.id) == 24
    ask = client.sell("btc", D("0.25"), D("60000"))
    one = client.balance("btc")
    assert one.balance == D("1.05") and one.available == D("0.8")  # 0.25 locked
    open_orders = client.open_market_orders("btc")
    assert {(o.side, o.amount, o.rate) for o in open_orders} == {
        ("buy", D("0.5"), D("40000")),
        ("sell", D("0.25"), D("60000")),
    }
    assert all(o.created is not None and o.created.utcoffset() == timedelta(0) for o in open_orders)
    assert client.open_limit_orders() == []
    server.fill(placed.id, "0.2")
    done = client.completed_orders("btc", start=utcnow() - timedelta(days=1))
    assert [(e.side, e.amount) for e in done] == [
        ("buy", D("0.2")),  # buyorders first, newest first, then sellorders
        ("buy", D("0.1")),
        ("sell", D("0.05")),
    ]
    assert done[0].fee_aud == D("8") and done[0].solddate.tzinfo is not None
    assert [e.amount for e in client.completed_orders(market_only=True)] == [D("0.2")]
    txs = client.transactions(start=utcnow().date())
    assert txs[0].price == D("40000") and txs[0].created.utcoffset() == timedelta(0)
    client.cancel_buy(placed.id)
    client.cancel_sell(ask.id)
    assert client.open_market_orders() == []
    with pytest.raises(CoinSpotAPIError, match="Order not found"):
        client.cancel_buy(placed.id)


def test_real_balances_body_is_a_list_of_one_key_objects(tmp_path: Path) -> None:
    body = BALANCES_CAPTURE.read_bytes()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    c = CoinSpotPrivateClient(
        "k", "s", transport=transport, rate_per_s=None, nonces=NonceSource("capture")
    )
    ltc = c.balances()["LTC"]
    assert (ltc.balance, ltc.audbalance, ltc.rate) == (D("0.1"), D("16.59"), D("165.95"))


# ------------------------------------------------------------------ errors and retries


def test_status_error_is_a_clear_error_without_secrets(
    server: FakeCoinSpotPrivate, client: CoinSpotPrivateClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.inject(Fault("status_error", path="/my/buy", message="Insufficient funds"))
    with pytest.raises(CoinSpotAPIError) as info:
        client.buy("btc", D("1"), D("40000"))
    assert info.value.api_message == "Insufficient funds"
    assert "Insufficient funds" in str(info.value)
    for text in (str(info.value), repr(info.value), caplog.text):
        assert server.secret not in text and server.key not in text
    assert server.orders() == []


def test_read_calls_retry_5xx_and_429_with_fresh_nonces(
    server: FakeCoinSpotPrivate, client: CoinSpotPrivateClient
) -> None:
    server.inject(Fault("http", path="/ro/", status=503), Fault("rate_limited", path="/ro/"))
    assert "AUD" in client.balances()
    nonces = [json.loads(r.raw)["nonce"] for r in server.requests]
    assert len(nonces) == 3 and nonces == sorted(set(nonces))


def test_order_is_retried_after_429_but_not_after_5xx(
    server: FakeCoinSpotPrivate, client: CoinSpotPrivateClient
) -> None:
    server.inject(Fault("rate_limited", path="/my/buy"))
    client.buy("btc", D("0.1"), D("40000"))
    assert len(server.orders()) == 1
    server.inject(Fault("accept_then_5xx", path="/my/buy", status=502))
    with pytest.raises(CoinSpotOutcomeUnknown) as info:
        client.buy("btc", D("0.2"), D("40000"))
    assert info.value.params["amount"] == D("0.2") and info.value.status == 502
    assert len(server.orders()) == 2  # executed once, not replayed


def test_connect_error_is_retried_and_never_ambiguous(tmp_path: Path) -> None:
    c = CoinSpotPrivateClient(
        "k",
        "s",
        base_url="http://127.0.0.1:9",  # nothing listens on the discard port
        retry=RetryPolicy(max_retries=1, backoff_base_s=0, backoff_max_s=0),
        rate_per_s=None,
        nonces=NonceSource("connect", tmp_path / "n"),
    )
    with pytest.raises(HttpError) as info:
        c.buy("btc", D("0.1"), D("40000"))
    assert not isinstance(info.value, CoinSpotOutcomeUnknown)


# ------------------------------------------------------------------ the venue


def test_venue_satisfies_the_protocol(venue: CoinSpotVenue) -> None:
    assert isinstance(venue, Venue) and venue.name == "coinspot"


def test_timeout_after_acceptance_then_retry_yields_exactly_one_order(
    server: FakeCoinSpotPrivate, venue: CoinSpotVenue
) -> None:
    server.inject(Fault("accept_then_timeout", path="/my/buy", seconds=1.0))
    order = limit("cid-timeout-1", Side.BUY, "0.3", "41000")
    with pytest.raises(VenueUnavailable, match="outcome of cid-timeout-1 unknown"):
        venue.submit(order)
    assert len(server.orders()) == 1  # CoinSpot did accept it
    ack = venue.submit(order)  # same client id: reconcile, do not resend
    assert ack.status is VenueOrderStatus.SUBMITTED
    assert ack.venue_order_id == server.orders()[0].id
    assert len(server.accepted("/my/buy")) == 1 and len(server.orders()) == 1
    assert venue.submit(order).venue_order_id == ack.venue_order_id  # and again: nothing sent
    assert len(server.accepted("/my/buy")) == 1


def test_market_order_reset_after_acceptance_is_found_in_history(
    server: FakeCoinSpotPrivate, venue: CoinSpotVenue
) -> None:
    server.inject(Fault("accept_then_reset", path="/my/buy/now"))
    order = market("cid-now-1", Side.BUY, "0.1")
    with pytest.raises(VenueUnavailable):
        venue.submit(order)
    ack = venue.submit(order)
    assert ack.status is VenueOrderStatus.FILLED
    assert (ack.filled_quantity, ack.average_price, ack.fee) == (D("0.1"), D("50100"), D("50.1"))
    assert len(server.executions()) == 1 and server.balance("BTC") == D("1.1")


def test_a_request_that_never_executed_is_sent_again_once(
    server: FakeCoinSpotPrivate, venue: CoinSpotVenue
) -> None:
    server.inject(Fault("reset", path="/my/sell"))
    order = limit("cid-reset-1", Side.SELL, "0.4", "61000")
    with pytest.raises(VenueUnavailable):
        venue.submit(order)
    assert server.orders() == []
    ack = venue.submit(order)
    assert ack.status is VenueOrderStatus.SUBMITTED and len(server.orders()) == 1


def test_duplicate_submissions(server: FakeCoinSpotPrivate, venue: CoinSpotVenue) -> None:
    order = limit("cid-dup-1", Side.BUY, "0.1", "42000")
    first = venue.submit(order)
    again = venue.submit(order)
    assert again.venue_order_id == first.venue_order_id and len(server.orders()) == 1
    # an intermediary replays a submission: the extra order is visible, with no client id
    server.inject(Fault("duplicate", path="/my/buy"))
    venue.submit(limit("cid-dup-2", Side.BUY, "0.1", "42500"))
    listed = venue.open_orders("BTC/AUD")
    assert sorted(o.client_order_id or "?" for o in listed) == ["?", "cid-dup-1", "cid-dup-2"]


def test_equal_orders_close_together_are_not_confused(
    server: FakeCoinSpotPrivate, venue: CoinSpotVenue
) -> None:
    first = venue.submit(limit("cid-eq-1", Side.BUY, "0.1", "43000"))
    server.inject(Fault("accept_then_timeout", path="/my/buy", seconds=1.0))
    second = limit("cid-eq-2", Side.BUY, "0.1", "43000")
    with pytest.raises(VenueUnavailable):
        venue.submit(second)
    ack = venue.submit(second)
    assert ack.venue_order_id not in (None, first.venue_order_id)
    assert len(server.orders()) == 2


def test_partial_fills_are_reflected(server: FakeCoinSpotPrivate, venue: CoinSpotVenue) -> None:
    since = utcnow() - timedelta(seconds=1)
    order = limit("cid-part-1", Side.BUY, "0.5", "40000")
    ack = venue.submit(order)
    assert ack.venue_order_id is not None
    server.fill(ack.venue_order_id, "0.2")
    [working] = venue.open_orders()
    assert working.status is VenueOrderStatus.PARTIALLY_FILLED
    assert (working.quantity, working.filled_quantity) == (D("0.5"), D("0.2"))
    now = venue.submit(order)
    assert now.status is VenueOrderStatus.PARTIALLY_FILLED and now.filled_quantity == D("0.2")
    assert now.fee == D("8")
    server.fill(ack.venue_order_id, "0.3")
    done = venue.submit(order)
    assert done.status is VenueOrderStatus.FILLED and done.filled_quantity == D("0.5")
    fills = venue.fills_since(since)
    assert [(f.quantity, f.price, f.client_order_id) for f in fills] == [
        (D("0.2"), D("40000"), "cid-part-1"),
        (D("0.3"), D("40000"), "cid-part-1"),
    ]
    assert len({f.fill_id for f in fills}) == 2
    assert fills == venue.fills_since(since)  # stable ids
    assert venue.balances()["BTC"].total == D("1.5")


def test_cancel_partially_filled_and_unknown(
    server: FakeCoinSpotPrivate, venue: CoinSpotVenue
) -> None:
    ack = venue.submit(limit("cid-cx-1", Side.SELL, "0.6", "65000"))
    assert ack.venue_order_id is not None
    server.fill(ack.venue_order_id, "0.1")
    assert venue.balances()["BTC"].available == D("0.4")
    cancelled = venue.cancel(ack.venue_order_id, symbol="BTC/AUD", side=Side.SELL)
    assert cancelled.status is VenueOrderStatus.CANCELLED
    assert cancelled.filled_quantity == D("0.1")
    again = venue.cancel(ack.venue_order_id, symbol="BTC/AUD", side=Side.SELL)
    assert (again.status, again.filled_quantity) == (VenueOrderStatus.CANCELLED, D("0.1"))
    unknown = venue.cancel("ffffffffffffffffffffffff", symbol="BTC/AUD", side=Side.BUY)
    assert unknown.status is VenueOrderStatus.REJECTED
    assert unknown.reason == RejectReason.UNKNOWN_ORDER
    btc = venue.balances()["BTC"]
    assert (btc.total, btc.available) == (D("0.9"), D("0.9"))


def test_cancel_of_an_order_that_filled_first_reports_filled(
    server: FakeCoinSpotPrivate, venue: CoinSpotVenue
) -> None:
    ack = venue.submit(limit("cid-race-1", Side.BUY, "0.2", "39000"))
    assert ack.venue_order_id is not None
    server.fill(ack.venue_order_id)
    result = venue.cancel(ack.venue_order_id, symbol="BTC/AUD", side=Side.BUY)
    assert result.status is VenueOrderStatus.FILLED and result.filled_quantity == D("0.2")


def test_status_error_is_a_rejection_with_the_message(
    server: FakeCoinSpotPrivate, venue: CoinSpotVenue
) -> None:
    ack = venue.submit(market("cid-poor-1", Side.BUY, "100"))
    assert ack.status is VenueOrderStatus.REJECTED
    assert ack.reason == RejectReason.INSUFFICIENT_FUNDS and ack.message == "Insufficient funds"
    invalid = venue.submit(limit("cid-bad-1", Side.BUY, "0.123456789", "1"))
    assert invalid.status is VenueOrderStatus.REJECTED and invalid.reason == "invalid_order"
    assert server.orders() == []


def test_quote_comes_from_the_public_api(venue: CoinSpotVenue) -> None:
    quote = venue.quote("BTC/AUD")
    assert (quote.bid, quote.ask, quote.last) == (D("49900"), D("50100"), D("50000"))


def test_live_path_ends_consistent_with_the_exchange(
    server: FakeCoinSpotPrivate, venue: CoinSpotVenue
) -> None:
    """A session with faults; afterwards the venue's fills explain the exchange's balances
    exactly, and nothing was executed twice."""
    since = utcnow() - timedelta(seconds=1)
    start = {c: server.balance(c) for c in ("AUD", "BTC")}
    server.inject(Fault("accept_then_timeout", path="/my/buy/now", seconds=1.0))
    buy = market("s-1", Side.BUY, "0.2")
    with pytest.raises(VenueUnavailable):
        venue.submit(buy)
    venue.submit(buy)
    sell = limit("s-2", Side.SELL, "0.5", "52000")
    server.inject(Fault("accept_then_5xx", path="/my/sell"))
    with pytest.raises(VenueUnavailable):
        venue.submit(sell)
    placed = venue.submit(sell)
    assert placed.venue_order_id is not None
    server.fill(placed.venue_order_id, "0.3")
    venue.cancel(placed.venue_order_id, symbol="BTC/AUD", side=Side.SELL)
    server.inject(Fault("status_error", path="/my/sell/now", message="Exchange busy"))
    assert venue.submit(market("s-3", Side.SELL, "0.1")).status is VenueOrderStatus.REJECTED
    venue.submit(market("s-4", Side.SELL, "0.1"))

    fills = venue.fills_since(since)
    assert {f.client_order_id for f in fills} == {"s-1", "s-2", "s-4"}
    coin = sum((f.quantity if f.side is Side.BUY else -f.quantity for f in fills), D(0))
    cash = sum(
        (-(f.quantity * f.price) if f.side is Side.BUY else f.quantity * f.price) - f.fee
        for f in fills
    )
    assert server.balance("BTC") == start["BTC"] + coin == D("0.8")
    assert server.balance("AUD") == start["AUD"] + cash
    balances = venue.balances()
    assert balances["BTC"].total == server.balance("BTC")
    assert balances["AUD"].total == server.balance("AUD")
    assert venue.open_orders() == []
    assert len(server.executions()) == 3  # one buy now, one partial fill, one sell now


def test_paper_and_live_paths_end_in_the_same_state(
    server: FakeCoinSpotPrivate, venue: CoinSpotVenue
) -> None:
    """The same orders (live: with a lost answer and a duplicate submit) leave the paper
    venue and CoinSpot with the same balances and no working orders."""
    from omc.floor.fills import FeeModel
    from omc.floor.venues.base import Quote
    from omc.floor.venues.paper import PaperVenue, ReplayQuotes

    quotes = ReplayQuotes()
    quotes.set(Quote("BTC/AUD", D("49900"), D("50100"), D("50000"), utcnow()))
    paper = PaperVenue(quotes, cash=D("100000"), fees=FeeModel.flat(100))  # instant fee 1 %
    paper.restore(D("100000"), {"BTC/AUD": D("1")})
    orders = [market("pl-1", Side.BUY, "0.2"), market("pl-2", Side.SELL, "0.1")]
    server.inject(Fault("accept_then_timeout", path="/my/buy/now", seconds=1.0))
    for order in orders:
        paper.submit(order)
        try:
            venue.submit(order)
        except VenueUnavailable:
            venue.submit(order)
        venue.submit(order)  # a duplicate submit changes nothing
        paper.submit(order)
    live, simulated = venue.balances(), paper.balances()
    assert {a: b.total for a, b in live.items()} == {a: b.total for a, b in simulated.items()}
    assert venue.open_orders() == [] and paper.open_orders() == []
    assert len(server.executions()) == 2
