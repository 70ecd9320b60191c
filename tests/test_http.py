"""HttpClient against a real local server: retries, Retry-After, give-up, rate limit."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from omc.core.http import (
    HttpClient,
    HttpError,
    PayloadError,
    RateLimiter,
    RequestFailed,
    RetryPolicy,
    Unreachable,
    unreachable_reason,
)
from omc.core.http import parse_retry_after as parse
from tests.fakes.coinspot_server import FakeCoinSpot, Fault, running_coinspot

LATEST = "/pubapi/v2/latest"


@pytest.fixture
def server() -> Iterator[FakeCoinSpot]:
    yield from running_coinspot()


class Sleeps:
    """A `sleep` that records what it was asked to wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client(
    server: FakeCoinSpot,
    sleeps: Sleeps,
    *,
    retries: int = 3,
    timeout_s: float = 0.5,
    backoff_max_s: float = 30.0,
) -> HttpClient:
    return HttpClient(
        server.url,
        source="test",
        timeout_s=timeout_s,
        retry=RetryPolicy(max_retries=retries, backoff_base_s=0.01, backoff_max_s=backoff_max_s),
        sleep=sleeps,
    )


def test_good_request_is_sent_once(server: FakeCoinSpot) -> None:
    sleeps = Sleeps()
    with client(server, sleeps) as http:
        body = http.get_json(LATEST)
    assert body["status"] == "ok" and body["prices"]["btc"]["bid"] == "30049"
    assert server.paths() == [LATEST]
    assert sleeps.waits == []


@pytest.mark.parametrize(
    "fault",
    [
        Fault("delay", seconds=0.6),
        Fault("reset"),
        Fault("short_body"),
        Fault("http", status=500),
        Fault("http", status=502),
        Fault("http", status=503),
        Fault("http", status=504),
        Fault("html", status=502),
    ],
    ids=["timeout", "reset", "short-body", "500", "502", "503", "504", "html-502"],
)
def test_transient_failures_are_retried(server: FakeCoinSpot, fault: Fault) -> None:
    server.inject(fault, fault)
    sleeps = Sleeps()
    with client(server, sleeps, timeout_s=0.3) as http:
        body = http.get_json(LATEST)
        assert http.attempts == 3
    assert body["prices"]["eth"]["last"] == "815"
    assert server.paths() == [LATEST] * 3
    assert [r.fault for r in server.requests] == [fault.kind, fault.kind, None]
    assert len(sleeps.waits) == 2
    # exponential backoff with jitter: attempt n waits within [base*2^n / 2, base*2^n]
    assert 0.005 <= sleeps.waits[0] <= 0.01
    assert 0.01 <= sleeps.waits[1] <= 0.02


def test_429_waits_exactly_what_retry_after_says(server: FakeCoinSpot) -> None:
    server.inject(
        Fault("rate_limited", retry_after="7"),
        Fault("rate_limited", retry_after="2"),
        Fault("http", status=503, retry_after="3"),
    )
    sleeps = Sleeps()
    with client(server, sleeps) as http:
        assert http.get_json(LATEST)["status"] == "ok"
    assert sleeps.waits == [7.0, 2.0, 3.0]
    assert len(server.requests) == 4


def test_retry_after_is_capped_by_backoff_max(server: FakeCoinSpot) -> None:
    server.inject(Fault("rate_limited", retry_after="3600"))
    sleeps = Sleeps()
    with client(server, sleeps, backoff_max_s=5) as http:
        http.get(LATEST)
    assert sleeps.waits == [5.0]


def test_retry_after_parsing() -> None:
    assert parse("120") == 120.0
    assert parse(" 1.5 ") == 1.5
    assert parse("-3") is None
    assert parse("nan") is None
    assert parse("soon") is None
    assert parse(None) is None
    http_date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    seconds = parse(http_date)
    assert seconds is not None and 27 <= seconds <= 31
    assert parse("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: go now


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_non_retryable_4xx_fails_at_once(server: FakeCoinSpot, status: int) -> None:
    server.inject(Fault("http", status=status))
    sleeps = Sleeps()
    with client(server, sleeps) as http, pytest.raises(HttpError) as info:
        http.get(LATEST)
    assert info.value.status == status
    assert f"HTTP {status}" in str(info.value)
    assert info.value.url == server.url + LATEST
    assert "server error" in info.value.body
    assert len(server.requests) == 1 and sleeps.waits == []


def test_gives_up_after_max_retries_with_a_clear_error(server: FakeCoinSpot) -> None:
    server.inject(*[Fault("http", status=503)] * 5)
    sleeps = Sleeps()
    with client(server, sleeps, retries=2) as http, pytest.raises(HttpError) as info:
        http.get(LATEST)
    assert str(info.value) == f"test: HTTP 503 on GET {LATEST} after 3 attempts"
    assert info.value.status == 503
    assert len(server.requests) == 3 and len(sleeps.waits) == 2
    assert len(server.pending_faults()) == 2


def test_gives_up_on_repeated_resets(server: FakeCoinSpot) -> None:
    server.inject(*[Fault("reset")] * 3)
    sleeps = Sleeps()
    with client(server, sleeps, retries=2) as http, pytest.raises(HttpError) as info:
        http.get(LATEST)
    message = str(info.value)
    assert message.startswith(f"test: ReadError on GET {LATEST} after 3 attempts")
    assert info.value.status is None
    assert len(server.requests) == 3


def test_zero_retries_means_one_attempt(server: FakeCoinSpot) -> None:
    server.inject(Fault("delay", seconds=0.5))
    sleeps = Sleeps()
    started = time.monotonic()
    with client(server, sleeps, retries=0, timeout_s=0.2) as http, pytest.raises(HttpError) as info:
        http.get(LATEST)
    assert time.monotonic() - started < 0.45
    assert "ReadTimeout" in str(info.value) and "after 1 attempts" in str(info.value)
    assert len(server.requests) == 1 and sleeps.waits == []


def test_connection_refused_is_retried_then_reported() -> None:
    sleeps = Sleeps()
    dead = FakeCoinSpot()
    url = dead.url
    dead.httpd.server_close()  # the port is now closed: connections are refused
    http = HttpClient(url, source="test", retry=RetryPolicy(2, 0.01, 1), sleep=sleeps)
    with http, pytest.raises(HttpError, match=r"ConnectError .* after 3 attempts"):
        http.get(LATEST)
    assert len(sleeps.waits) == 2


def test_bad_payloads_raise_payload_error_with_the_raw_body(server: FakeCoinSpot) -> None:
    server.inject(Fault("truncated"), Fault("html", status=200))
    with client(server, Sleeps()) as http:
        with pytest.raises(PayloadError, match="invalid JSON") as truncated:
            http.get_json(LATEST)
        assert truncated.value.raw.startswith('{"status": "ok"')
        with pytest.raises(PayloadError, match="HTML page") as html:
            http.get_json(LATEST)
        assert "<title>502 Bad Gateway</title>" in html.value.raw
    assert len(server.requests) == 2  # a bad payload is not retried by the HTTP layer


def test_unsupported_scheme_fails_at_once() -> None:
    sleeps = Sleeps()
    with (
        HttpClient("ftp://127.0.0.1:9", source="test", sleep=sleeps) as http,
        pytest.raises(HttpError, match="UnsupportedProtocol"),
    ):
        http.get(LATEST)
    assert sleeps.waits == []


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_rate_limiter_spaces_requests_evenly() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4.0, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        limiter.acquire()
    assert clock.waits == pytest.approx([0.25] * 4)
    clock.now += 10  # idle: the bucket refills only up to its burst
    limiter.acquire()
    limiter.acquire()
    assert clock.waits[4:] == pytest.approx([0.25])


def test_rate_limiter_allows_bursts() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2.0, burst=3, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        limiter.acquire()
    assert clock.waits == pytest.approx([0.5])


class SendTimes(httpx.HTTPTransport):
    """A real transport that notes, client-side, when each request leaves."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[float] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(time.monotonic())
        return super().handle_request(request)


def test_client_rate_limit_spaces_real_requests(server: FakeCoinSpot) -> None:
    """Lower bounds only, measured where the helper sends: request i (from 0) cannot leave
    before i / rate after the first call began. Load only delays requests, so it cannot break
    this; a limiter that lets requests through early still fails it."""
    rate, n = 20.0, 5
    transport = SendTimes()
    with HttpClient(server.url, source="test", rate_per_s=rate, transport=transport) as http:
        started = time.monotonic()
        for _ in range(n):
            http.get(LATEST)
    assert len(server.requests) == n and len(transport.sent) == n
    early = [
        (i, round(at - started, 4))
        for i, at in enumerate(transport.sent)
        if at - started < i / rate - 0.002  # 2 ms: clock granularity, not load
    ]
    assert not early, f"requests sent before their slot (index, seconds after start): {early}"


def test_rate_limit_applies_to_retries_too(server: FakeCoinSpot) -> None:
    clock = FakeClock()
    server.inject(Fault("http", status=500))
    with HttpClient(
        server.url,
        source="test",
        rate_per_s=1,
        retry=RetryPolicy(2, 0.01, 1),
        sleep=clock.sleep,
        clock=clock,
    ) as http:
        http.get(LATEST)
    # one backoff wait (≤ 0.01 s), then the limiter tops it up to a full second
    assert len(clock.waits) == 2
    assert sum(clock.waits) == pytest.approx(1.0)


UNRESOLVABLE = "http://omc-nonexistent.invalid"  # .invalid never resolves (RFC 2606)


def test_a_name_that_does_not_resolve_is_not_retried() -> None:
    sleeps = Sleeps()
    http = HttpClient(UNRESOLVABLE, source="test", retry=RetryPolicy(max_retries=4), sleep=sleeps)
    started = time.monotonic()
    with http, pytest.raises(Unreachable) as info:
        http.get("/x")
    assert http.attempts == 1 and sleeps.waits == []
    assert time.monotonic() - started < 10
    assert "cannot reach omc-nonexistent.invalid" in str(info.value)
    assert "not resolved" in str(info.value)
    # not an HttpError: a handler of one endpoint's failure (`except HttpError`) lets it
    # through, so the run stops; `except RequestFailed` catches both
    assert isinstance(info.value, RequestFailed) and not isinstance(info.value, HttpError)


def test_a_refused_connection_is_still_retried() -> None:
    """A refused port may be a restarting server: retried like a reset, never Unreachable."""
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    retry = RetryPolicy(max_retries=2, backoff_base_s=0.01)
    http = HttpClient(f"http://127.0.0.1:{port}", source="t", retry=retry, sleep=sleeps)
    with http, pytest.raises(HttpError) as info:
        http.get("/x")
    assert not isinstance(info.value, Unreachable)
    assert http.attempts == 3 and len(sleeps.waits) == 2


def test_an_untrusted_certificate_is_not_retried() -> None:
    import ssl

    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cause.verify_message = "self-signed certificate"
    wrapped = ConnectionError("connect failed")
    wrapped.__cause__ = cause
    assert unreachable_reason(wrapped) == "TLS certificate not trusted (self-signed certificate)"
    assert unreachable_reason(ConnectionRefusedError(111, "refused")) is None
